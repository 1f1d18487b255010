//! One replica at a time watches a mailbox (SPEC §7): the watcher runs only
//! while this replica holds the mailbox's lease, renewing it every third of
//! its length. A replica that cannot renew in time stops watching before
//! the lease can pass to another; one that finds the lease held waits and
//! tries again, so a dead holder's mailbox is taken over within the lease
//! and a third. A clean shutdown gives the lease back at once.
//!
//! With SQLite there is one process, which always holds every lease. Nothing
//! here decides what is applied: receipts and mailbox UIDs keep ingest
//! exactly-once even while two replicas briefly overlap.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::imap;
use super::ingest::Ingestor;
use super::oauth2::TokenManager;
use crate::config::MailboxConfig;
use crate::db::mailbox_leases;

/// Who this process is, as a lease holder: host, process and a random part
/// (a restarted process is a new holder).
pub fn replica_id() -> String {
    let host = hostname().unwrap_or_else(|| "unknown-host".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

/// Watches `mailbox` whenever this replica holds its lease, until `cancel`.
pub async fn watch(
    ingestor: Ingestor,
    mailbox: MailboxConfig,
    tokens: Option<Arc<TokenManager>>,
    replica: Arc<str>,
    lease: Duration,
    cancel: CancellationToken,
) {
    let name = mailbox.name.clone();
    let held = ingestor.metrics.mailbox_lease(&name);
    held.set(0);
    let retry = lease / 3;
    let mut standby_logged = false;
    while !cancel.is_cancelled() {
        match take(&ingestor, &name, &replica, lease).await {
            Ok(Some(expires_at)) => {
                standby_logged = false;
                held.set(1);
                tracing::info!(mailbox = %name, "mailbox lease taken: watching it");
                let watching = cancel.child_token();
                let watcher = tokio::spawn(imap::watch_with(
                    ingestor.clone(),
                    mailbox.clone(),
                    tokens.clone(),
                    watching.clone(),
                ));
                keep_renewed(&ingestor, &name, &replica, lease, expires_at, &cancel).await;
                watching.cancel();
                if let Err(e) = watcher.await {
                    tracing::error!(mailbox = %name, error = %e, "IMAP watcher task failed");
                }
                held.set(0);
                if cancel.is_cancelled() {
                    give_back(&ingestor, &name, &replica).await;
                    break;
                }
                tracing::warn!(mailbox = %name, "mailbox lease lost: stopped watching it");
            }
            Ok(None) => {
                if !standby_logged {
                    tracing::info!(mailbox = %name, "mailbox leased by another replica: standing by");
                    standby_logged = true;
                }
            }
            Err(e) => {
                tracing::warn!(mailbox = %name, error = %e, "cannot take the mailbox lease; retrying");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// Takes the lease; the time it runs out, when taken.
async fn take(
    ingestor: &Ingestor,
    mailbox: &str,
    replica: &str,
    lease: Duration,
) -> Result<Option<i64>, crate::db::DbError> {
    let now = ingestor.clock.now_millis();
    let expires_at = now + lease.as_millis() as i64;
    let mut conn = ingestor.db.conn().await?;
    let taken = mailbox_leases::acquire(&mut conn, mailbox, replica, now, expires_at).await?;
    Ok(taken.then_some(expires_at))
}

/// Renews the lease every third of its length; returns when `cancel` is
/// cancelled, when another replica holds it, or when it could not be
/// renewed and is about to run out (a third of it left: time enough for the
/// watcher to stop before anyone else may take it).
async fn keep_renewed(
    ingestor: &Ingestor,
    mailbox: &str,
    replica: &str,
    lease: Duration,
    mut expires_at: i64,
    cancel: &CancellationToken,
) {
    let every = lease / 3;
    let margin = every.as_millis() as i64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let now = ingestor.clock.now_millis();
        let renewed_until = now + lease.as_millis() as i64;
        let renewed = async {
            let mut conn = ingestor.db.conn().await?;
            mailbox_leases::renew(&mut conn, mailbox, replica, renewed_until).await
        }
        .await;
        match renewed {
            Ok(true) => expires_at = renewed_until,
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(mailbox = %mailbox, error = %e, "cannot renew the mailbox lease");
                if ingestor.clock.now_millis() >= expires_at - margin {
                    return;
                }
            }
        }
    }
}

async fn give_back(ingestor: &Ingestor, mailbox: &str, replica: &str) {
    let released = async {
        let mut conn = ingestor.db.conn().await?;
        mailbox_leases::release(&mut conn, mailbox, replica).await
    }
    .await;
    if let Err(e) = released {
        // It runs out by itself.
        tracing::warn!(mailbox = %mailbox, error = %e, "cannot give the mailbox lease back");
    }
}
