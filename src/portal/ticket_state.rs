//! Closing and reopening a ticket from its page. A client's mail cannot
//! carry `#close` (commands are for staff), so this is a direct change of
//! the ticket in one transaction with the mail the mail path writes for a
//! status change: the staff are told (assignee, else the staff list) and
//! the requester and participants get the "status changed" mail. Reopening
//! follows the reply rule: within `tickets.reopen_days` of the close; later
//! a reply opens a new ticket instead.

use serde_json::json;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::db::contacts::Contact;
use crate::db::conversation::{self, TicketRef};
use crate::db::tickets::Visibility;
use crate::db::{audit, DbError};
use crate::domain::{EmailAddress, TicketStatus};
use crate::mail::outgoing::{MailRequest, Origin, QueueError};

/// What the contact asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    Close,
    Reopen,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no ticket has that number")]
    UnknownTicket,
    #[error("This ticket was closed more than {0} days ago: reply below to open a new one.")]
    ReopenWindowPassed(u32),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for StateError {
    fn from(e: sqlx::Error) -> Self {
        StateError::Db(e.into())
    }
}

/// Applies `change` to ticket `number` for `contact` (who may see it, as
/// the caller checked) and appends `audit` (the form post, as the page saw
/// it) in the same transaction. Returns false when the ticket already was
/// so (the post is recorded all the same).
pub async fn change_state(
    app: &App,
    contact: &Contact,
    number: &str,
    change: StateChange,
    audit: AuditEvent,
) -> Result<bool, StateError> {
    let now = app.clock.now_millis();
    let config = &app.config;
    let mut tx = app.db.begin().await?;
    let ticket = conversation::ticket_by_number(&mut tx, number)
        .await?
        .ok_or(StateError::UnknownTicket)?;
    let changed = match change {
        StateChange::Close if ticket.is_closed() => false,
        StateChange::Reopen if !ticket.is_closed() => false,
        StateChange::Close => {
            conversation::set_status(&mut tx, ticket.id, TicketStatus::Closed, now).await?;
            true
        }
        StateChange::Reopen => {
            let window = i64::from(config.tickets.reopen_days) * 86_400_000;
            if now - ticket.closed_at.unwrap_or(0) > window {
                return Err(StateError::ReopenWindowPassed(config.tickets.reopen_days));
            }
            conversation::client_replied(&mut tx, ticket.id, true, now).await?;
            true
        }
    };
    let mut queued = false;
    if changed {
        let ticket = conversation::ticket_by_id(&mut tx, ticket.id)
            .await?
            .ok_or(StateError::UnknownTicket)?;
        let headline = match change {
            StateChange::Close => "Client closed the ticket on the web",
            StateChange::Reopen => "Client reopened the ticket on the web",
        };
        queued = notify_staff(app, &mut tx, contact, &ticket, headline, now).await?;
        queued |= notify_client(app, &mut tx, &ticket, now).await?;
        tracing::info!(
            contact = contact.id,
            ticket = %ticket.number,
            status = %ticket.status,
            "ticket status changed on the web"
        );
    }
    audit::record(&mut tx, &audit.detail(json!({ "changed": changed }))).await?;
    tx.commit().await?;
    if queued {
        app.ingestor.outbox_ready.notify_one();
    }
    Ok(changed)
}

/// The staff notification a client's mail on the ticket would cause.
async fn notify_staff(
    app: &App,
    tx: &mut sqlx::AnyConnection,
    contact: &Contact,
    ticket: &TicketRef,
    headline: &str,
    now: i64,
) -> Result<bool, StateError> {
    let to: Vec<EmailAddress> = match ticket
        .assignee_email
        .as_deref()
        .and_then(|a| EmailAddress::parse(a).ok())
    {
        Some(assignee) => vec![assignee],
        None => app.config.staff.iter().map(|s| s.email.clone()).collect(),
    };
    if to.is_empty() {
        return Ok(false);
    }
    let author = match &contact.name {
        Some(name) => format!("{name} <{}>", contact.email),
        None => contact.email.clone(),
    };
    let data = json!({
        "headline": headline,
        "notice": null,
        "author": author,
        "text": "",
        "ticket": crate::mail::ticket_data::ticket_data(tx, ticket).await?,
    });
    let queued = app
        .ingestor
        .mailer
        .queue(
            tx,
            MailRequest {
                kind: "staff-notification",
                template: "staff_notification",
                data,
                to,
                cc: Vec::new(),
                ticket: Some(ticket),
                visibility: Visibility::Internal,
                origin: Origin::Reaction,
                from_name: None,
                in_reply_to: None,
                extra_references: &[],
                attachments: &[],
                thread_known: None,
            },
            now,
        )
        .await?;
    Ok(queued.is_some())
}

/// The "status changed" mail to the requester and participants, as a
/// technician's `#close` without a reply sends it.
async fn notify_client(
    app: &App,
    tx: &mut sqlx::AnyConnection,
    ticket: &TicketRef,
    now: i64,
) -> Result<bool, StateError> {
    let to: Vec<EmailAddress> = EmailAddress::parse(&ticket.requester_email)
        .into_iter()
        .collect();
    let cc = conversation::participants(tx, ticket.id).await?;
    let data = json!({
        "closed": ticket.is_closed(),
        "reopen_days": app.config.tickets.reopen_days,
        "ticket": crate::mail::ticket_data::ticket_data(tx, ticket).await?,
    });
    let queued = app
        .ingestor
        .mailer
        .queue_to_client(
            tx,
            MailRequest {
                kind: "status-changed",
                template: "status_changed",
                data,
                to,
                cc,
                ticket: Some(ticket),
                visibility: Visibility::Public,
                origin: Origin::Reaction,
                from_name: None,
                in_reply_to: None,
                extra_references: &[],
                attachments: &[],
                thread_known: None,
            },
            None,
            now,
        )
        .await?;
    Ok(queued.is_some())
}
