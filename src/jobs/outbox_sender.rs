//! The outbox sender: claims due outbox rows, sends them over SMTP, marks them
//! sent. A claim is a lease: when a sender dies mid-batch its rows become due
//! again after the lease, so a crash never loses a mail. A crash after the
//! server has the message but before the row says so is covered by the
//! sender's journal (`send_journal`), so it does not send the mail twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::db::{outbox, Db};
use crate::jobs::send_journal::{self, SendJournal};
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
    /// Where the senders keep their journals (under `storage.dir`).
    pub journal_dir: PathBuf,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What one sender holds between rounds: its SMTP session and its journal.
pub struct SenderState {
    session: Option<AsyncSmtpConnection>,
    journal: SendJournal,
}

impl SenderState {
    /// Ends the SMTP session politely.
    pub async fn close(mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = s.quit().await;
        }
    }
}

/// Backoff after `attempts` failed attempts: 30 s after the first, doubling,
/// capped at an hour (like an MTA's: after a long SMTP outage, mail goes out
/// within the hour once the server is back).
pub fn retry_delay(attempts: i64) -> Duration {
    let exp = (attempts - 1).clamp(0, 10) as u32;
    Duration::from_secs((30u64 << exp).min(3600))
}

impl OutboxSender {
    /// A fresh state for one sender: no session yet, its own journal.
    pub fn new_state(&self) -> anyhow::Result<SenderState> {
        Ok(SenderState {
            session: None,
            journal: SendJournal::create(&self.journal_dir)?,
        })
    }

    /// Runs until `cancel`; finishes the mail in hand before stopping.
    pub async fn run(self, cancel: CancellationToken) {
        let mut state = loop {
            match self.new_state() {
                Ok(s) => break s,
                Err(e) => {
                    tracing::error!(error = %e, "outbox sender cannot start; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    }
                }
            }
        };
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let sent_any = match self.round(&mut state, &cancel).await {
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
        state.close().await;
    }

    /// Settles the journals of senders that died: their recorded mail is
    /// with the server already.
    async fn recover_dead_senders(&self) -> anyhow::Result<()> {
        send_journal::recover(&self.journal_dir, |dead| async move {
            let mut conn = self.db.conn().await?;
            if let Some(id) = dead.committed {
                outbox::mark_sent_unconfirmed(&mut conn, id, self.clock.now_millis()).await?;
                tracing::warn!(
                    outbox_id = id,
                    "a sender died after handing a mail to the SMTP server; marked sent"
                );
            }
            // Its other claims need not wait for their lease.
            outbox::release_claims_of(&mut conn, &dead.owner).await?;
            anyhow::Ok(())
        })
        .await?;
        Ok(())
    }

    /// Claims and sends one batch; returns how many rows it handled.
    pub async fn round(
        &self,
        state: &mut SenderState,
        cancel: &CancellationToken,
    ) -> anyhow::Result<usize> {
        self.recover_dead_senders().await?;
        let now = self.clock.now_millis();
        let mails = {
            let mut conn = self.db.conn().await?;
            outbox::claim_due(
                &mut conn,
                self.db.backend(),
                state.journal.owner(),
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
            let journal = &state.journal;
            let mut committed = false;
            let before_commit = || match journal.record(mail.id) {
                Ok(()) => committed = true,
                Err(e) => tracing::warn!(error = %e, "send journal not written"),
            };
            let result = match &mut state.session {
                Some(s) if !s.has_broken() => {
                    smtp::send(
                        s,
                        &mail.envelope_from,
                        &mail.recipients,
                        &mail.raw,
                        before_commit,
                    )
                    .await
                }
                _ => match self.connector.connect().await {
                    Ok(mut s) => {
                        let r = smtp::send(
                            &mut s,
                            &mail.envelope_from,
                            &mail.recipients,
                            &mail.raw,
                            before_commit,
                        )
                        .await;
                        state.session = Some(s);
                        r
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = self.record_outcome(&mail, result).await {
                if committed {
                    // The server may have the mail and the row does not say
                    // so: leave the record to `recover`, never resend blindly.
                    let fresh = SendJournal::create(&self.journal_dir)?;
                    std::mem::replace(&mut state.journal, fresh).abandon();
                    // (Its claims are released by that recovery too.)
                }
                return Err(e);
            }
            if committed {
                state.journal.clear()?;
            }
        }
        Ok(count)
    }

    async fn record_outcome(
        &self,
        mail: &outbox::ClaimedMail,
        result: Result<(), smtp::SmtpError>,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let now = self.clock.now_millis();
        match result {
            Ok(()) => {
                outbox::mark_sent(&mut conn, mail.id, now).await?;
                // Counted once the row says so: a scrape in between would
                // see the mail both sent and still in the outbox's depth.
                self.metrics.mail_sent.inc();
            }
            Err(e) => {
                let attempts = mail.attempts + 1;
                let retry_at = (!e.is_permanent() && attempts < MAX_ATTEMPTS)
                    .then(|| now + retry_delay(attempts).as_millis() as i64);
                tracing::warn!(outbox_id = mail.id, attempts, permanent = e.is_permanent(), error = %e, "sending failed");
                outbox::mark_attempt_failed(&mut conn, mail.id, &e.to_string(), retry_at).await?;
                self.metrics.send_failures.inc();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(30));
        assert_eq!(retry_delay(2), Duration::from_secs(60));
        assert!(retry_delay(5) > retry_delay(4));
        assert_eq!(retry_delay(30), Duration::from_secs(3600));
    }
}
