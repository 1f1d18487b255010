//! SLA watch: an unanswered ticket whose first response is due within the
//! warning time gets a "due soon" mail, one past its target a "breached"
//! mail, to the assignee and the staff list. Keyed by the ticket and its due
//! time, so a priority change (a new target) is watched afresh; a first
//! response, or closing the ticket, ends the watch (checked when sending).

use serde_json::json;

use super::ticket_mail::{assignee_and_staff, local_time, ticket_target, watched_ticket};
use super::{JobKind, RunReport};
use crate::app::App;
use crate::clock::Millis;
use crate::db::job_runs::{JobRun, NewRun};
use crate::db::tickets::Visibility;
use crate::db::{ticket_watch, Conn};
use crate::mail::outgoing::{MailRequest, Origin};
use crate::mail::ticket_data::ticket_data;

pub const KIND: &str = "sla";
const DUE_SOON: &str = "due-soon";
const BREACHED: &str = "breached";

/// The latest stage that has come for a target `due_at`.
pub fn current_stage(due_at: Millis, warning_ms: i64, at: Millis) -> Option<&'static str> {
    if at >= due_at {
        Some(BREACHED)
    } else if at >= due_at - warning_ms {
        Some(DUE_SOON)
    } else {
        None
    }
}

fn warning_ms(app: &App) -> i64 {
    app.config.schedules.sla_warning.as_millis() as i64
}

pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    let warning = warning_ms(app);
    let mut runs = Vec::new();
    for t in ticket_watch::unanswered_due_by(tx, at + warning).await? {
        if let Some(stage) = current_stage(t.due_at, warning, at) {
            runs.push(NewRun {
                kind: KIND,
                target: format!("ticket:{}:{}", t.id, t.due_at),
                stage: stage.to_string(),
                client_id: None,
                due_at: at,
            });
        }
    }
    Ok(runs)
}

pub async fn execute(
    app: &App,
    tx: &mut Conn,
    run: &JobRun,
    at: Millis,
) -> anyhow::Result<RunReport> {
    let (id, due) = ticket_target(run)?;
    let Some((watched, ticket)) = watched_ticket(tx, id).await? else {
        return Ok(RunReport::new(run, JobKind::Sla, run.target.clone())
            .skipped("the ticket no longer exists"));
    };
    let report = RunReport::new(run, JobKind::Sla, format!("ticket {}", ticket.number));
    if ticket.is_closed() {
        return Ok(report.skipped("the ticket is closed"));
    }
    if watched.first_response_at.is_some() {
        return Ok(report.skipped("it was answered"));
    }
    if watched.first_response_due_at != Some(due) {
        return Ok(report.skipped("its target changed"));
    }
    match current_stage(due, warning_ms(app), at) {
        Some(stage) if stage == run.stage => {}
        Some(stage) => return Ok(report.skipped(format!("stage {stage} is due instead"))),
        None => return Ok(report.skipped("not due yet")),
    }
    let breached = run.stage == BREACHED;
    let to = assignee_and_staff(app, &ticket);
    if to.is_empty() {
        return Ok(report.skipped("no assignee and no staff list to tell"));
    }
    let minutes = (due - at).abs() / 60_000;
    let data = json!({
        "ticket": ticket_data(tx, &ticket).await?,
        "breached": breached,
        "due": local_time(app, due),
        "minutes": minutes,
    });
    let recipients: Vec<String> = to.iter().map(|a| a.to_string()).collect();
    app.ingestor
        .mailer
        .queue(
            tx,
            MailRequest {
                kind: "sla-alert",
                template: "sla_alert",
                data,
                to,
                cc: Vec::new(),
                ticket: Some(&ticket),
                visibility: Visibility::Internal,
                origin: Origin::Notice,
                from_name: None,
                in_reply_to: None,
                extra_references: &[],
                attachments: &[],
                thread_known: None,
            },
            at,
        )
        .await?;
    let why = if breached {
        format!("first response was due {}", local_time(app, due))
    } else {
        format!(
            "first response due {} ({minutes} min)",
            local_time(app, due)
        )
    };
    Ok(report.done(why).mailed("sla-alert", recipients))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_come_in_order() {
        let due = 1_000_000;
        let warn = 15 * 60_000;
        assert_eq!(current_stage(due, warn, due - warn - 1), None);
        assert_eq!(current_stage(due, warn, due - warn), Some(DUE_SOON));
        assert_eq!(current_stage(due, warn, due - 1), Some(DUE_SOON));
        assert_eq!(current_stage(due, warn, due), Some(BREACHED));
    }
}
