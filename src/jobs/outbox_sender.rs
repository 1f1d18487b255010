//! The outbox sender: claims due outbox rows, sends them over SMTP, marks them
//! sent. A claim is a lease: when a sender dies mid-batch its rows become due
//! again after the lease, so a crash never loses a mail. The row is marked
//! sent right after the server accepted it; only a crash in that instant can
//! send a mail twice, and then with the same Message-ID, which receiving
//! systems and our own threading treat as one.

use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::db::{outbox, Db};
use crate::mail::smtp::{self, SmtpConnector};

/// Rows claimed per round: small enough that several senders share a backlog.
const BATCH: i64 = 25;
/// How long a claim holds before another sender may take the rows over.
const LEASE: Duration = Duration::from_secs(120);
/// Attempts before a mail is given up as failed (about two days of backoff).
const MAX_ATTEMPTS: i64 = 20;
/// How often to look for due rows when nobody rings.
const POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct OutboxSender {
    pub db: Db,
    pub clock: SharedClock,
    pub connector: SmtpConnector,
    pub ready: Arc<Notify>,
}

/// Backoff after `attempts` failed attempts: 30 s doubling, capped at 4 h.
pub fn retry_delay(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs((30u64 << exp).min(4 * 3600))
}

impl OutboxSender {
    /// Runs until `cancel`; finishes the mail in hand before stopping.
    pub async fn run(self, cancel: CancellationToken) {
        let mut session: Option<AsyncSmtpConnection> = None;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let sent_any = match self.round(&mut session, &cancel).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed");
                    false
                }
            };
            if !sent_any {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.ready.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
        if let Some(mut s) = session {
            let _ = s.quit().await;
        }
    }

    /// Claims and sends one batch; returns how many rows it handled.
    pub async fn round(
        &self,
        session: &mut Option<AsyncSmtpConnection>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let now = self.clock.now_millis();
        let mails = {
            let mut conn = self.db.conn().await?;
            outbox::claim_due(
                &mut conn,
                self.db.backend(),
                now,
                now + LEASE.as_millis() as i64,
                BATCH,
            )
            .await?
        };
        if mails.is_empty() {
            return Ok(0);
        }
        if mails.len() as i64 == BATCH {
            // More may be waiting: let another sender help.
            self.ready.notify_one();
        }
        let count = mails.len();
        for mail in mails {
            if cancel.is_cancelled() {
                // The lease runs out and the rest is sent later.
                break;
            }
            let result = match session {
                Some(s) if !s.has_broken() => {
                    smtp::send(s, &mail.envelope_from, &mail.recipients, &mail.raw).await
                }
                _ => match self.connector.connect().await {
                    Ok(mut s) => {
                        let r =
                            smtp::send(&mut s, &mail.envelope_from, &mail.recipients, &mail.raw)
                                .await;
                        *session = Some(s);
                        r
                    }
                    Err(e) => Err(e),
                },
            };
            let mut conn = self.db.conn().await?;
            let now = self.clock.now_millis();
            match result {
                Ok(()) => outbox::mark_sent(&mut conn, mail.id, now).await?,
                Err(e) => {
                    let attempts = mail.attempts + 1;
                    let retry_at = (!e.is_permanent() && attempts < MAX_ATTEMPTS)
                        .then(|| now + retry_delay(attempts).as_millis() as i64);
                    tracing::warn!(outbox_id = mail.id, attempts, permanent = e.is_permanent(), error = %e, "sending failed");
                    outbox::mark_attempt_failed(&mut conn, mail.id, &e.to_string(), retry_at)
                        .await?;
                    if !e.is_permanent() {
                        // The session may be unusable; open a fresh one next time.
                        *session = None;
                    }
                }
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert!(retry_delay(5) > retry_delay(4));
        assert_eq!(retry_delay(30), Duration::from_secs(4 * 3600));
    }
}
