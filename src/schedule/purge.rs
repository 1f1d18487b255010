//! Retention: the raw copy of a message that came in more than
//! `raw_mail_days` ago is deleted from storage (its ticket, text, HTML and
//! attachments stay for good). Raw mail still shared by a newer message or
//! by a quarantined one is kept. Beside it, the audit log's entries older
//! than `[audit] retention_days` are deleted (target `audit-log`; the only
//! deletion of that table). One run of each per day; idempotent.

use super::calendar::local_date;
use super::{JobKind, RunReport};
use crate::app::App;
use crate::clock::Millis;
use crate::db::job_runs::{JobRun, NewRun};
use crate::db::{audit, ticket_watch, Conn};
use crate::storage::BlobKind;

pub const KIND: &str = "purge";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Blobs per statement; a large first purge runs in rounds of this.
const BATCH: i64 = 500;

fn cutoff(app: &App, at: Millis) -> Millis {
    at - i64::from(app.config.schedules.raw_mail_days) * DAY_MS
}

/// The run target of the audit log's prune (the raw mail's is `raw-mail`).
pub const AUDIT_TARGET: &str = "audit-log";

/// Entries of the audit log before this go; `None`: kept for good.
fn audit_cutoff(app: &App, at: Millis) -> Option<Millis> {
    app.config
        .audit_retention_days
        .map(|days| at - i64::from(days) * DAY_MS)
}

pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    let stage = local_date(at, app.config.company.timezone).to_string();
    let mut runs = Vec::new();
    if !ticket_watch::purgeable_raw(tx, cutoff(app, at), 1)
        .await?
        .is_empty()
    {
        runs.push(NewRun {
            kind: KIND,
            target: "raw-mail".into(),
            stage: stage.clone(),
            client_id: None,
            due_at: at,
        });
    }
    if let Some(before) = audit_cutoff(app, at) {
        if audit::any_older_than(tx, before).await? {
            runs.push(NewRun {
                kind: KIND,
                target: AUDIT_TARGET.into(),
                stage,
                client_id: None,
                due_at: at,
            });
        }
    }
    Ok(runs)
}

/// Deletes the raw copies due (file first, then the record, so a crash
/// between them only leaves a record to be marked on the next run).
pub async fn execute(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    if run.target == AUDIT_TARGET {
        let Some(before) = audit_cutoff(app, at) else {
            return Ok(RunReport::new(run, JobKind::Purge, "audit log".into())
                .done("the audit log is kept for good"));
        };
        let deleted = audit::prune_older_than(tx, before).await?;
        return Ok(
            RunReport::new(run, JobKind::Purge, "audit log".into()).done(format!(
                "deleted {deleted} audit entries from before {}",
                crate::clock::to_rfc3339(before)
            )),
        );
    }
    let before = cutoff(app, at);
    let mut deleted = 0usize;
    loop {
        let batch = ticket_watch::purgeable_raw(tx, before, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for sha in &batch {
            app.ingestor.store.remove(BlobKind::RawMail, sha)?;
            ticket_watch::mark_raw_purged(tx, sha, at).await?;
            deleted += 1;
        }
    }
    Ok(
        RunReport::new(run, JobKind::Purge, "raw mail".into()).done(format!(
            "deleted {deleted} raw messages received before {}",
            crate::clock::to_rfc3339(before)
        )),
    )
}

/// A dry run's count; deletes nothing.
pub async fn preview(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    if run.target == AUDIT_TARGET {
        let n = match audit_cutoff(app, at) {
            Some(before) => audit::count_older_than(tx, before).await?,
            None => 0,
        };
        return Ok(RunReport::new(run, JobKind::Purge, "audit log".into())
            .done(format!("would delete {n} audit entries")));
    }
    let before = cutoff(app, at);
    let n = ticket_watch::purgeable_raw(tx, before, i64::MAX)
        .await?
        .len();
    Ok(
        RunReport::new(run, JobKind::Purge, "raw mail".into()).done(format!(
            "would delete {n} raw messages received before {}",
            crate::clock::to_rfc3339(before)
        )),
    )
}
