//! The `ticket` object every ticket mail template sees: number, subject,
//! status and priority (with their labels), client, requester, assignee.

use serde_json::{json, Value};
use sqlx::AnyConnection;

use crate::db::conversation::TicketRef;
use crate::db::{contacts, DbError};
use crate::domain::{Priority, TicketStatus};

pub async fn ticket_data(tx: &mut AnyConnection, ticket: &TicketRef) -> Result<Value, DbError> {
    let client = match ticket.client_id {
        Some(id) => contacts::client_name(tx, id).await?,
        None => None,
    };
    Ok(ticket_data_of(ticket, client))
}

/// [`ticket_data`] when the caller knows the client's name already.
pub fn ticket_data_of(ticket: &TicketRef, client: Option<String>) -> Value {
    let status = TicketStatus::parse(&ticket.status).unwrap_or(TicketStatus::Open);
    let priority = Priority::parse(&ticket.priority).unwrap_or(Priority::Medium);
    json!({
        "number": ticket.number,
        "subject": ticket.subject,
        "status": status.as_str(),
        "status_label": status.label(),
        "priority": priority.as_str(),
        "priority_label": priority.label(),
        "client": client,
        "requester": ticket.requester_email,
        "assignee": ticket.assignee_email,
    })
}
