//! What the ticket jobs put in their mails about a ticket, and who on the
//! staff side hears of it.

use serde_json::{json, Value};

use crate::app::App;
use crate::db::conversation::TicketRef;
use crate::db::{contacts, Conn};
use crate::domain::{EmailAddress, Priority, TicketStatus};

/// The `ticket` object of the ticket templates.
pub async fn ticket_data(tx: &mut Conn, ticket: &TicketRef) -> anyhow::Result<Value> {
    let client = match ticket.client_id {
        Some(id) => contacts::client_name(tx, id).await?,
        None => None,
    };
    let status = TicketStatus::parse(&ticket.status).unwrap_or(TicketStatus::Open);
    let priority = Priority::parse(&ticket.priority).unwrap_or(Priority::Medium);
    Ok(json!({
        "number": ticket.number,
        "subject": ticket.subject,
        "status": status.as_str(),
        "status_label": status.label(),
        "priority": priority.as_str(),
        "priority_label": priority.label(),
        "client": client,
        "requester": ticket.requester_email,
        "assignee": ticket.assignee_email,
    }))
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
