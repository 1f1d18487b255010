//! The scheduler's job runs: one row per due action, keyed (kind, target,
//! stage). Planning inserts with `ON CONFLICT DO NOTHING`, so planning twice
//! is planning once; workers claim due rows with a lease and finish them in
//! the transaction that carries out the action. What a run does lives in
//! `crate::schedule`; this is its storage.

use sqlx::AnyConnection;

use super::{Backend, DbError};
use crate::clock::Millis;

/// A due action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub kind: &'static str,
    pub target: String,
    pub stage: String,
    pub client_id: Option<i64>,
    pub due_at: Millis,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Pending,
    /// Carried out (the mails are in the outbox, the charge was made).
    Done,
    /// Not needed any more when its time came (paid, cancelled, renewed).
    Skipped,
    /// Gave up after retries; the note says why.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Done, Self::Skipped, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRun {
    pub id: i64,
    pub kind: String,
    pub target: String,
    pub stage: String,
    pub client_id: Option<i64>,
    pub due_at: Millis,
    pub status: RunStatus,
    pub attempts: i64,
    pub note: Option<String>,
    pub finished_at: Option<Millis>,
}

type RunRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    i64,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

const RUN_COLUMNS: &str =
    "id, kind, target, stage, client_id, due_at, status, attempts, note, finished_at";

fn run_from_row(r: RunRow) -> Result<JobRun, DbError> {
    let status = RunStatus::parse(&r.6).ok_or(DbError::Corrupt {
        column: "job_runs.status",
        value: r.6.clone(),
    })?;
    Ok(JobRun {
        id: r.0,
        kind: r.1,
        target: r.2,
        stage: r.3,
        client_id: r.4,
        due_at: r.5,
        status,
        attempts: r.7,
        note: r.8,
        finished_at: r.9,
    })
}

/// Rows per INSERT: 6 parameters each, well under SQLite's limit.
const PLAN_CHUNK: usize = 80;

/// Records `runs` as pending unless their key exists; returns how many were
/// new. Safe to call from any number of planners at once.
pub async fn plan_runs(
    conn: &mut AnyConnection,
    runs: &[NewRun],
    now: Millis,
) -> Result<u64, DbError> {
    let mut inserted = 0;
    for chunk in runs.chunks(PLAN_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO job_runs (kind, target, stage, client_id, due_at, status, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 6;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, 'pending', ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        sql.push_str(" ON CONFLICT (kind, target, stage) DO NOTHING");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for run in chunk {
            query = query
                .bind(run.kind)
                .bind(run.target.clone())
                .bind(run.stage.clone())
                .bind(run.client_id)
                .bind(run.due_at)
                .bind(now);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Records a run that was carried out outside the planner (a reminder staff
/// sent by hand counts as its stage). Returns false when the key existed.
pub async fn record_done(
    conn: &mut AnyConnection,
    run: &NewRun,
    note: &str,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO job_runs (kind, target, stage, client_id, due_at, status, note, created_at, \
         finished_at) VALUES ($1, $2, $3, $4, $5, 'done', $6, $7, $7) \
         ON CONFLICT (kind, target, stage) DO NOTHING",
    )
    .bind(run.kind)
    .bind(&run.target)
    .bind(&run.stage)
    .bind(run.client_id)
    .bind(run.due_at)
    .bind(note)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Claims the oldest due pending run of `kind` until `lease_until`. A claim
/// whose worker died runs out and the run becomes claimable again.
pub async fn claim_next(
    conn: &mut AnyConnection,
    backend: Backend,
    kind: &str,
    owner: &str,
    now: Millis,
    lease_until: Millis,
) -> Result<Option<JobRun>, DbError> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE job_runs SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM job_runs WHERE status = 'pending' AND kind = $3 \
         AND due_at <= $4 AND claimed_until <= $4 ORDER BY due_at, id LIMIT 1{lock}) \
         AND status = 'pending' AND claimed_until <= $4 RETURNING {RUN_COLUMNS}"
    );
    let row: Option<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(lease_until)
        .bind(kind)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(run_from_row).transpose()
}

/// Ends a claimed run as `status` with `note`, in the caller's transaction
/// (the one that wrote its mails). Returns false, changing nothing, when the
/// claim was lost (the lease ran out and another worker finished it): the
/// caller must then roll back.
pub async fn finish(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    status: RunStatus,
    note: &str,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE job_runs SET status = $1, note = $2, finished_at = $3, claimed_until = 0 \
         WHERE id = $4 AND claimed_by = $5 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(note)
    .bind(now)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Gives a claimed run back to be tried again at `retry_at` (the provider
/// was unreachable, the database hiccuped).
pub async fn retry_later(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    retry_at: Millis,
    note: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE job_runs SET due_at = $1, note = $2, claimed_until = 0 \
         WHERE id = $3 AND claimed_by = $4 AND status = 'pending'",
    )
    .bind(retry_at)
    .bind(note)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The run of a key, if planned.
pub async fn find(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    stage: &str,
) -> Result<Option<JobRun>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE kind = $1 AND target = $2 AND stage = $3"
    );
    let row: Option<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(target)
        .bind(stage)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(run_from_row).transpose()
}

/// Every run of `target` of `kind`, oldest first.
pub async fn runs_of_target(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
) -> Result<Vec<JobRun>, DbError> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM job_runs WHERE kind = $1 AND target = $2 ORDER BY id");
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(target)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(run_from_row).collect()
}

/// The most recent runs of `kind` (all kinds when `None`), newest first.
pub async fn recent(
    conn: &mut AnyConnection,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRun>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE (CAST($1 AS TEXT) IS NULL OR kind = $1) \
         ORDER BY id DESC LIMIT $2"
    );
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(run_from_row).collect()
}

/// Per kind and status: how many runs, and when the last one finished.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
    pub last_finished_at: Option<Millis>,
}

pub async fn counts(conn: &mut AnyConnection) -> Result<Vec<RunCount>, DbError> {
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT kind, status, CAST(COUNT(*) AS BIGINT), MAX(finished_at) FROM job_runs \
         GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RunCount {
            kind: r.0,
            status: r.1,
            count: r.2,
            last_finished_at: r.3,
        })
        .collect())
}

/// Claims, besides the run a worker holds, every other due pending run of
/// `kind` for `client_id`, so one mail can cover them all (expiry alerts:
/// one mail per client per run).
pub async fn claim_client_runs(
    conn: &mut AnyConnection,
    kind: &str,
    client_id: i64,
    owner: &str,
    now: Millis,
    lease_until: Millis,
) -> Result<Vec<JobRun>, DbError> {
    let sql = format!(
        "UPDATE job_runs SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
         WHERE kind = $3 AND client_id = $4 AND status = 'pending' AND due_at <= $5 \
         AND claimed_until <= $5 RETURNING {RUN_COLUMNS}"
    );
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(lease_until)
        .bind(kind)
        .bind(client_id)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    let mut runs: Vec<JobRun> = rows
        .into_iter()
        .map(run_from_row)
        .collect::<Result<_, _>>()?;
    runs.sort_by_key(|r| r.id);
    Ok(runs)
}

/// When a pass of `kind` last ran, if one ever did.
pub async fn last_pass(conn: &mut AnyConnection, kind: &str) -> Result<Option<Millis>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT last_at FROM schedule_passes WHERE kind = $1")
        .bind(kind)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Records a pass of `kind` at `at` (a later one is kept).
pub async fn record_pass(conn: &mut AnyConnection, kind: &str, at: Millis) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO schedule_passes (kind, last_at) VALUES ($1, $2) \
         ON CONFLICT (kind) DO UPDATE SET last_at = excluded.last_at \
         WHERE schedule_passes.last_at < excluded.last_at",
    )
    .bind(kind)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A first start: records `at` as the last pass of `kind` unless there is one.
pub async fn first_start(conn: &mut AnyConnection, kind: &str, at: Millis) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO schedule_passes (kind, last_at) VALUES ($1, $2) ON CONFLICT (kind) DO NOTHING",
    )
    .bind(kind)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
