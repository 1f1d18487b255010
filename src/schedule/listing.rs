//! `postdesk jobs list`: each job's cron and next time, and its runs by
//! status, with the most recent runs.

use serde::Serialize;

use super::JobKind;
use crate::app::App;
use crate::clock::{to_rfc3339, Millis};
use crate::db::job_runs::{self, JobRun};

#[derive(Debug, Clone, Serialize)]
pub struct JobListing {
    pub timezone: String,
    pub jobs: Vec<JobLine>,
    /// The latest runs of every kind, newest first.
    pub recent: Vec<JobRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobLine {
    pub kind: JobKind,
    /// `None`: switched off (`enabled = false`).
    pub cron: Option<String>,
    pub next_at: Option<String>,
    pub pending: i64,
    pub done: i64,
    pub skipped: i64,
    pub failed: i64,
    pub last_finished_at: Option<String>,
}

pub async fn list(app: &App) -> anyhow::Result<JobListing> {
    let mut conn = app.db.conn().await?;
    let counts = job_runs::counts(&mut conn).await?;
    let recent = job_runs::recent(&mut conn, None, 20).await?;
    let now = chrono::DateTime::from_timestamp_millis(app.clock.now_millis()).unwrap_or_default();
    let zone = app.config.company.timezone;
    let jobs = JobKind::ALL
        .iter()
        .map(|kind| {
            let cron = kind.schedule(app).cron.as_ref();
            let of = |status: &str| {
                counts
                    .iter()
                    .find(|c| c.kind == kind.as_str() && c.status == status)
                    .map(|c| c.count)
                    .unwrap_or(0)
            };
            let last: Option<Millis> = counts
                .iter()
                .filter(|c| c.kind == kind.as_str())
                .filter_map(|c| c.last_finished_at)
                .max();
            JobLine {
                kind: *kind,
                cron: cron.map(|c| c.expression.clone()),
                next_at: cron
                    .and_then(|c| c.next_after(now, zone))
                    .map(|t| to_rfc3339(t.timestamp_millis())),
                pending: of("pending"),
                done: of("done"),
                skipped: of("skipped"),
                failed: of("failed"),
                last_finished_at: last.map(to_rfc3339),
            }
        })
        .collect();
    Ok(JobListing {
        timezone: zone.name().to_string(),
        jobs,
        recent,
    })
}

impl JobListing {
    /// A table for people.
    pub fn to_text(&self) -> String {
        let mut out = format!("times in {}\n", self.timezone);
        out.push_str(&format!(
            "{:<10} {:<16} {:<21} {:>7} {:>7} {:>7} {:>7}\n",
            "job", "cron", "next", "pending", "done", "skipped", "failed"
        ));
        for j in &self.jobs {
            out.push_str(&format!(
                "{:<10} {:<16} {:<21} {:>7} {:>7} {:>7} {:>7}\n",
                j.kind.as_str(),
                j.cron.as_deref().unwrap_or("off"),
                j.next_at.as_deref().unwrap_or("-"),
                j.pending,
                j.done,
                j.skipped,
                j.failed
            ));
        }
        out
    }
}
