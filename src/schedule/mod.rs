//! The scheduler: dunning, recurring invoices, auto-pay, expiry alerts,
//! the SLA watch, waiting-on-client reminders and auto-close, and the raw
//! mail purge — each due action exactly once.
//!
//! A pass of a job has two halves. The *planner* looks at the business data
//! as of an instant and records every action that is due as a job run keyed
//! (kind, target, stage) — `ON CONFLICT DO NOTHING`, so a second pass, a
//! restart or another replica plans nothing new. The *worker* claims due
//! runs one at a time with a lease and carries each out in one transaction
//! together with the outbox rows it writes, re-checking the business data
//! first (an invoice paid since it was planned is skipped). A crash leaves
//! the run pending and its lease runs out; nothing is half done.
//!
//! Planning is state-based, so a day the daemon was down is caught up by
//! the next pass; for a series (dunning, expiry alerts) only the latest
//! stage that is due is planned. Days are the client's, in its time zone.
//!
//! What lives elsewhere: SQL in `db::job_runs` and the business modules'
//! `db` files; mails through `billing::notify`; cron parsing in
//! `config::schedules`.

pub mod autopay;
pub mod calendar;
pub mod cert_probe;
pub mod dunning;
pub mod expiry;
pub mod listing;
pub mod monthly;
pub mod purge;
pub mod recurring;
pub mod report;
pub mod sla;
pub mod statement;
mod ticket_mail;
pub mod waiting;

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::Millis;
use crate::config::JobSchedule;
use crate::db::job_runs::{self, JobRun, NewRun, RunStatus};
use crate::db::Conn;

/// How long a worker holds a claimed run before another may take it.
pub const LEASE: Duration = Duration::from_secs(300);

/// A job whose pass deferred work (or failed) runs again after this, rather
/// than only at its next cron time; the deferred runs carry their own
/// backoff in `due_at`.
const RETRY_SOON: Duration = Duration::from_secs(300);

/// Passes that plan something new are repeated (a recurring invoice three
/// months behind bills one month per round), but never without end.
const MAX_ROUNDS: usize = 120;

/// The scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Payment reminders relative to the due date.
    Dunning,
    /// Invoices generated from recurring definitions.
    Recurring,
    /// Charges of saved payment methods for recurring invoices, and retries.
    Autopay,
    /// Domain, certificate, warranty, contract and saved-card expiry alerts.
    Expiry,
    /// First responses due soon or overdue.
    Sla,
    /// Tickets waiting on the client: reminder, then auto-close.
    Waiting,
    /// Deletion of raw mail past its retention.
    Purge,
    /// Monthly statements to billing contacts (optional mail).
    Statement,
    /// Monthly service reports to primary contacts (optional mail).
    Report,
}

impl JobKind {
    /// In the order a daemon runs them when several are due at once: bill
    /// first, then charge, then remind about what is still open.
    pub const ALL: [JobKind; 9] = [
        Self::Recurring,
        Self::Autopay,
        Self::Dunning,
        Self::Expiry,
        Self::Sla,
        Self::Waiting,
        Self::Purge,
        Self::Statement,
        Self::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dunning => "dunning",
            Self::Recurring => "recurring",
            Self::Autopay => "autopay",
            Self::Expiry => "expiry",
            Self::Sla => "sla",
            Self::Waiting => "waiting",
            Self::Purge => "purge",
            Self::Statement => "statement",
            Self::Report => "report",
        }
    }

    pub fn schedule(self, app: &App) -> &JobSchedule {
        let s = &app.config.schedules;
        match self {
            Self::Dunning => &s.dunning,
            Self::Recurring => &s.recurring,
            Self::Autopay => &s.autopay,
            Self::Expiry => &s.expiry,
            Self::Sla => &s.sla,
            Self::Waiting => &s.waiting,
            Self::Purge => &s.purge,
            Self::Statement => &s.statement,
            Self::Report => &s.report,
        }
    }
}

/// What a run did, or in a dry run would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The job run this reports on.
    #[serde(skip)]
    pub run_id: i64,
    pub kind: &'static str,
    pub target: String,
    pub stage: String,
    /// What it is about, for people: "invoice INV-1042".
    pub about: String,
    pub status: RunStatus,
    /// Why it was done or skipped.
    pub why: String,
    pub mails: Vec<MailReport>,
}

/// One mail a run queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailReport {
    pub kind: String,
    pub to: Vec<String>,
}

impl RunReport {
    fn new(run: &JobRun, kind: JobKind, about: String) -> Self {
        Self::of(run.id, kind, &run.target, &run.stage, about)
    }

    /// A report on run `run_id` (0: an action recorded without a claimed run).
    fn of(run_id: i64, kind: JobKind, target: &str, stage: &str, about: String) -> Self {
        Self {
            run_id,
            kind: kind.as_str(),
            target: target.to_string(),
            stage: stage.to_string(),
            about,
            status: RunStatus::Done,
            why: String::new(),
            mails: Vec::new(),
        }
    }

    fn skipped(mut self, why: impl Into<String>) -> Self {
        self.status = RunStatus::Skipped;
        self.why = why.into();
        self
    }

    fn done(mut self, why: impl Into<String>) -> Self {
        self.status = RunStatus::Done;
        self.why = why.into();
        self
    }

    fn mailed(mut self, kind: &str, to: Vec<String>) -> Self {
        if !to.is_empty() {
            self.mails.push(MailReport {
                kind: kind.to_string(),
                to,
            });
        }
        self
    }
}

/// What one pass of a job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub kind: Option<JobKind>,
    pub at: String,
    pub dry_run: bool,
    /// Runs the planner recorded that were not planned before.
    pub planned: u64,
    pub runs: Vec<RunReport>,
    /// Work that could not be done this time and stays due (the reason is
    /// logged; the run is retried).
    pub deferred: usize,
}

/// Where a worker stands: its name on the claims it takes.
#[derive(Debug, Clone)]
pub struct Worker {
    pub owner: String,
}

impl Worker {
    pub fn new() -> Self {
        Self {
            owner: format!("scheduler-{}-{}", std::process::id(), uuid::Uuid::new_v4()),
        }
    }
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

/// Plans the runs of `kind` that are due at `at`, in the caller's
/// transaction.
async fn plan(app: &App, tx: &mut Conn, kind: JobKind, at: Millis) -> anyhow::Result<u64> {
    let runs: Vec<NewRun> = match kind {
        JobKind::Dunning => dunning::plan(app, tx, at).await?,
        JobKind::Recurring => recurring::plan(app, tx, at).await?,
        // Charges are planned by the invoices they pay (and their retries).
        JobKind::Autopay => Vec::new(),
        JobKind::Expiry => expiry::plan(app, tx, at).await?,
        JobKind::Sla => sla::plan(app, tx, at).await?,
        JobKind::Waiting => waiting::plan(app, tx, at).await?,
        JobKind::Purge => purge::plan(app, tx, at).await?,
        JobKind::Statement => statement::plan(app, tx, at).await?,
        JobKind::Report => report::plan(app, tx, at).await?,
    };
    Ok(job_runs::plan_runs(tx, &runs, at).await?)
}

/// Carries out one claimed run of a kind that only touches the database,
/// in the caller's transaction.
async fn execute(
    app: &App,
    tx: &mut Conn,
    worker: &Worker,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<Vec<RunReport>> {
    match run.kind.as_str() {
        "dunning" => Ok(vec![dunning::execute(app, tx, run, at).await?]),
        "recurring" => Ok(vec![recurring::execute(app, tx, run, at).await?]),
        "expiry" => expiry::execute(app, tx, worker, run, at).await,
        "sla" => Ok(vec![sla::execute(app, tx, run, at).await?]),
        "waiting" => Ok(vec![waiting::execute(app, tx, run, at).await?]),
        "purge" => Ok(vec![purge::execute(app, tx, run, at).await?]),
        "statement" => Ok(vec![statement::execute(app, tx, run, at).await?]),
        "report" => Ok(vec![report::execute(app, tx, run, at).await?]),
        other => anyhow::bail!(
            "job run {} has kind {other}, which this worker does not do",
            run.id
        ),
    }
}

/// Plans and carries out every due run of `kind` as of `at`. With
/// `dry_run`, everything happens in one transaction that is rolled back:
/// the report says what would be sent, to whom and why, and nothing is
/// written or charged.
pub async fn run_pass(
    app: &App,
    worker: &Worker,
    kind: JobKind,
    at: Millis,
    dry_run: bool,
    cancel: &CancellationToken,
) -> anyhow::Result<PassReport> {
    let mut report = PassReport {
        kind: Some(kind),
        at: crate::clock::to_rfc3339(at),
        dry_run,
        ..PassReport::default()
    };
    if kind == JobKind::Expiry {
        // Network first, outside any transaction: the handshakes can take
        // seconds and their results are stored like an import would.
        expiry::probe_certificates(app, at, dry_run).await?;
    }
    if dry_run {
        let mut tx = app.db.begin().await?;
        for _ in 0..MAX_ROUNDS {
            let planned = plan(app, &mut tx, kind, at).await?;
            report.planned += planned;
            loop {
                let claimed = job_runs::claim_next(
                    &mut tx,
                    app.db.backend(),
                    kind.as_str(),
                    &worker.owner,
                    at,
                    at + LEASE.as_millis() as i64,
                )
                .await?;
                let Some(run) = claimed else { break };
                // What reaches outside the transaction is only described.
                let runs = match kind {
                    JobKind::Autopay => vec![autopay::preview(app, &mut tx, &run).await?],
                    JobKind::Purge => vec![purge::preview(app, &mut tx, &run, at).await?],
                    _ => execute(app, &mut tx, worker, &run, at).await?,
                };
                for r in &runs {
                    job_runs::finish(&mut tx, r.run_id, &worker.owner, r.status, &r.why, at)
                        .await?;
                }
                report.runs.extend(runs);
            }
            if planned == 0 {
                break;
            }
        }
        tx.rollback().await?;
        return Ok(report);
    }

    for _ in 0..MAX_ROUNDS {
        let planned = {
            let mut tx = app.db.begin().await?;
            let n = plan(app, &mut tx, kind, at)
                .await
                .with_context(|| format!("planning {} runs", kind.as_str()))?;
            tx.commit().await?;
            n
        };
        report.planned += planned;
        loop {
            if cancel.is_cancelled() {
                return Ok(report);
            }
            let claimed = {
                let mut conn = app.db.conn().await?;
                job_runs::claim_next(
                    &mut conn,
                    app.db.backend(),
                    kind.as_str(),
                    &worker.owner,
                    at,
                    app.clock.now_millis().max(at) + LEASE.as_millis() as i64,
                )
                .await?
            };
            let Some(run) = claimed else { break };
            if kind == JobKind::Autopay {
                match autopay::charge(app, worker, &run, at).await {
                    Ok(Some(r)) => {
                        count_run(app, &r);
                        report.runs.push(r)
                    }
                    Ok(None) => report.deferred += 1,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), run = run.id, "auto-pay run failed; retrying later");
                        defer(app, worker, &run, at, &e).await;
                        report.deferred += 1;
                    }
                }
                continue;
            }
            match execute_and_commit(app, worker, &run, at).await {
                Ok(Some(runs)) => {
                    runs.iter().for_each(|r| count_run(app, r));
                    report.runs.extend(runs)
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), run = run.id, kind = kind.as_str(), "job run failed; retrying later");
                    defer(app, worker, &run, at, &e).await;
                    report.deferred += 1;
                }
            }
        }
        if planned == 0 {
            break;
        }
    }
    let mut conn = app.db.conn().await?;
    job_runs::record_pass(&mut conn, kind.as_str(), at).await?;
    Ok(report)
}

fn count_run(app: &App, run: &RunReport) {
    app.metrics
        .job_runs
        .get_or_create(&crate::metrics::JobLabel {
            kind: run.kind.to_string(),
            status: run.status.as_str().to_string(),
        })
        .inc();
}

/// One run in its own transaction; `None` when its claim was lost to
/// another worker (which then did it).
async fn execute_and_commit(
    app: &App,
    worker: &Worker,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<Option<Vec<RunReport>>> {
    let mut tx = app.db.begin().await?;
    let runs = execute(app, &mut tx, worker, run, at).await?;
    let mut kept = true;
    for r in &runs {
        kept &= job_runs::finish(&mut tx, r.run_id, &worker.owner, r.status, &r.why, at).await?;
    }
    if !kept {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(Some(runs))
}

/// A failed run is tried again later: soon at first, then less often.
async fn defer(app: &App, worker: &Worker, run: &JobRun, at: Millis, error: &anyhow::Error) {
    let wait = Duration::from_secs(60 * 2u64.pow(run.attempts.clamp(0, 8) as u32));
    let note = format!("attempt {} failed: {}", run.attempts, short(error));
    let result = async {
        let mut conn = app.db.conn().await?;
        job_runs::retry_later(
            &mut conn,
            run.id,
            &worker.owner,
            at + wait.as_millis() as i64,
            &note,
        )
        .await
    }
    .await;
    if let Err(e) = result {
        // The lease runs out by itself; the run is retried then.
        tracing::warn!(error = %e, run = run.id, "could not record the retry time");
    }
}

/// The first line of an error chain, without addresses (errors here name
/// invoices and ids, not people).
fn short(error: &anyhow::Error) -> String {
    let text = error.to_string();
    text.chars().take(200).collect()
}

/// The daemon's scheduler: every job runs once at start (catching up what
/// came due while the daemon was down), then whenever its cron fires, in
/// the company's time zone. Stops between passes when `cancel` fires.
pub async fn run(app: App, cancel: CancellationToken) {
    let worker = Worker::new();
    // A first start is a pass: what came due before Postdesk ran here is
    // not caught up (no statements for months nobody asked about).
    let started = app.clock.now_millis();
    for kind in JobKind::ALL {
        let recorded = async {
            let mut conn = app.db.conn().await?;
            job_runs::first_start(&mut conn, kind.as_str(), started).await
        }
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, job = kind.as_str(), "cannot record the first start");
        }
    }
    let zone = app.config.company.timezone;
    let mut next: Vec<(JobKind, Option<Millis>)> = JobKind::ALL
        .iter()
        .map(|k| (*k, k.schedule(&app).cron.as_ref().map(|_| 0)))
        .collect();
    loop {
        let now = app.clock.now_millis();
        for (kind, due) in next.iter_mut() {
            let Some(at) = *due else { continue };
            if at > now || cancel.is_cancelled() {
                continue;
            }
            // Work that failed this time is tried again soon, not only at
            // the job's next cron time (a day away for most jobs).
            let retry_soon = match run_pass(&app, &worker, *kind, now, false, &cancel).await {
                Ok(report) => {
                    if !report.runs.is_empty() || report.deferred > 0 {
                        tracing::info!(
                            job = kind.as_str(),
                            runs = report.runs.len(),
                            deferred = report.deferred,
                            "scheduled job ran"
                        );
                    }
                    report.deferred > 0
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), job = kind.as_str(), "scheduled job failed; it runs again soon");
                    true
                }
            };
            let now = app.clock.now_millis();
            let after = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
            let next_cron = kind
                .schedule(&app)
                .cron
                .as_ref()
                .and_then(|c| c.next_after(after, zone))
                .map(|t| t.timestamp_millis());
            *due = match (next_cron, retry_soon) {
                (Some(t), true) => Some(t.min(now + RETRY_SOON.as_millis() as i64)),
                (t, _) => t,
            };
        }
        let now = app.clock.now_millis();
        let soonest = next.iter().filter_map(|(_, d)| *d).min();
        // Wake at least every minute: the clock may be moved (tests) and a
        // deferred run may have come due.
        let wait = soonest
            .map(|d| (d - now).clamp(0, 60_000))
            .unwrap_or(60_000);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
        }
    }
}

/// Parses a run target `prefix:id` (`invoice:42`).
pub(crate) fn target_id(run: &JobRun, prefix: &str) -> anyhow::Result<i64> {
    run.target
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split(':').next())
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("job run {} has a malformed target", run.id))
}
