//! Tickets waiting on the client: after `remind_after_days` the requester
//! is reminded (in the ticket's thread, so a reply lands on it), after
//! `close_after_days` the ticket is closed with a closing mail. Keyed by the
//! ticket and the time it began waiting, so a ticket that waits again later
//! is handled again; a reply from the client (the status moves on) ends it.

use serde_json::json;

use super::ticket_mail::{ticket_target, watched_ticket};
use super::{JobKind, RunReport};
use crate::app::App;
use crate::clock::Millis;
use crate::db::job_runs::{JobRun, NewRun};
use crate::db::tickets::Visibility;
use crate::db::{conversation, ticket_watch, Conn};
use crate::domain::{EmailAddress, TicketStatus};
use crate::mail::outgoing::{MailRequest, Origin};
use crate::mail::ticket_data::ticket_data;

pub const KIND: &str = "waiting";
const REMIND: &str = "reminder";
const CLOSE: &str = "close";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The latest stage that has come for a ticket waiting since `since`.
pub fn current_stage(app: &App, since: Millis, at: Millis) -> Option<&'static str> {
    let s = &app.config.schedules;
    let waited = at - since;
    if waited >= i64::from(s.waiting_close_after_days) * DAY_MS {
        Some(CLOSE)
    } else if waited >= i64::from(s.waiting_remind_after_days) * DAY_MS {
        Some(REMIND)
    } else {
        None
    }
}

pub async fn plan(app: &App, tx: &mut Conn, at: Millis) -> anyhow::Result<Vec<NewRun>> {
    let remind_ms = i64::from(app.config.schedules.waiting_remind_after_days) * DAY_MS;
    let mut runs = Vec::new();
    for (id, since) in ticket_watch::waiting_since_before(tx, at - remind_ms).await? {
        if let Some(stage) = current_stage(app, since, at) {
            runs.push(NewRun {
                kind: KIND,
                target: format!("ticket:{id}:{since}"),
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
    let (id, since) = ticket_target(run)?;
    let Some((watched, ticket)) = watched_ticket(tx, id).await? else {
        return Ok(RunReport::new(run, JobKind::Waiting, run.target.clone())
            .skipped("the ticket no longer exists"));
    };
    let report = RunReport::new(run, JobKind::Waiting, format!("ticket {}", ticket.number));
    if watched.status != TicketStatus::WaitingOnClient.as_str()
        || watched.waiting_since != Some(since)
    {
        return Ok(report.skipped("it no longer waits on the client"));
    }
    match current_stage(app, since, at) {
        Some(stage) if stage == run.stage => {}
        Some(stage) => return Ok(report.skipped(format!("stage {stage} is due instead"))),
        None => return Ok(report.skipped("not due yet")),
    }
    let Ok(requester) = EmailAddress::parse(&ticket.requester_email) else {
        return Ok(report.skipped("the requester has no usable address"));
    };
    let closing = run.stage == CLOSE;
    if closing {
        conversation::set_status(tx, id, TicketStatus::Closed, at).await?;
    }
    let ticket = conversation::ticket_by_id(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("ticket {id} vanished"))?;
    let days = (at - since) / DAY_MS;
    let data = json!({
        "ticket": ticket_data(tx, &ticket).await?,
        "days": days,
        "close_after_days": app.config.schedules.waiting_close_after_days,
        "reopen_days": app.config.tickets.reopen_days,
    });
    let (kind, template) = if closing {
        ("auto-closed", "ticket_auto_closed")
    } else {
        ("waiting-reminder", "waiting_reminder")
    };
    let cc = conversation::participants(tx, id)
        .await?
        .into_iter()
        .filter(|p| !p.same_mailbox(&requester))
        .collect::<Vec<_>>();
    let mut recipients = vec![requester.to_string()];
    recipients.extend(cc.iter().map(|a| a.to_string()));
    let queued = app
        .ingestor
        .mailer
        .queue_to_client(
            tx,
            MailRequest {
                kind,
                template,
                data,
                to: vec![requester],
                cc,
                ticket: Some(&ticket),
                visibility: Visibility::Public,
                origin: Origin::Notice,
                from_name: None,
                in_reply_to: None,
                extra_references: &[],
                attachments: &[],
                thread_known: None,
            },
            None,
            at,
        )
        .await?;
    let mailed = if queued.is_some() {
        recipients
    } else {
        Vec::new()
    };
    let why = if closing {
        format!("closed after waiting {days} days on the client")
    } else {
        format!("reminded after waiting {days} days on the client")
    };
    Ok(report.done(why).mailed(kind, mailed))
}
