//! What the ticket jobs (SLA watch, waiting on the client) share: the
//! ticket a run is about, who on the staff side hears of it, times as
//! people read them.

use crate::app::App;
use crate::db::conversation::{self, TicketRef};
use crate::db::job_runs::JobRun;
use crate::db::ticket_watch::{self, Watched};
use crate::db::Conn;
use crate::domain::EmailAddress;

/// A ticket run's target `ticket:<id>:<n>`: the ticket id and the instant
/// the run is keyed by (a due time, the start of a wait).
pub fn ticket_target(run: &JobRun) -> anyhow::Result<(i64, i64)> {
    let mut parts = run.target.split(':').skip(1);
    match (
        parts.next().and_then(|p| p.parse::<i64>().ok()),
        parts.next().and_then(|p| p.parse::<i64>().ok()),
    ) {
        (Some(id), Some(n)) => Ok((id, n)),
        _ => anyhow::bail!("{} run {} has a malformed target", run.kind, run.id),
    }
}

/// The ticket of a run as the watch sees it and as mails show it, if it
/// still exists.
pub async fn watched_ticket(
    tx: &mut Conn,
    id: i64,
) -> anyhow::Result<Option<(Watched, TicketRef)>> {
    Ok(
        match (
            ticket_watch::watched(tx, id).await?,
            conversation::ticket_by_id(tx, id).await?,
        ) {
            (Some(w), Some(t)) => Some((w, t)),
            _ => None,
        },
    )
}

/// The assignee and everyone on the staff list, once each.
pub fn assignee_and_staff(app: &App, ticket: &TicketRef) -> Vec<EmailAddress> {
    let mut to: Vec<EmailAddress> = ticket
        .assignee_email
        .as_deref()
        .and_then(|a| EmailAddress::parse(a).ok())
        .into_iter()
        .collect();
    for member in &app.config.staff {
        if !to.iter().any(|a| a.same_mailbox(&member.email)) {
            to.push(member.email.clone());
        }
    }
    to
}

/// "Tue 1 Dec 10:30" in the company's zone.
pub fn local_time(app: &App, at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .with_timezone(&app.config.company.timezone)
        .format("%a %-d %b %H:%M")
        .to_string()
}
