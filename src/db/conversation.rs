//! A ticket as a conversation: finding the ticket a mail belongs to (by reply
//! token, number or stored Message-ID), who is on it, its thread of
//! Message-IDs, and the changes replies and staff commands make to it.
//! Composing and queueing mail is not here (`mail::outgoing`).

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;
use crate::domain::{EmailAddress, Priority, TicketStatus};

/// What threading and replies need to know about a ticket.
#[derive(Debug, Clone)]
pub struct TicketRef {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub category: Option<String>,
    pub client_id: Option<i64>,
    pub requester_email: String,
    pub assignee_email: Option<String>,
    pub mailbox: Option<String>,
    pub reply_token: String,
    pub closed_at: Option<Millis>,
    pub first_response_at: Option<Millis>,
}

impl TicketRef {
    pub fn is_closed(&self) -> bool {
        self.status == TicketStatus::Closed.as_str()
    }
}

type TicketRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
);

const TICKET_SELECT: &str = "SELECT id, number, subject, status, priority, category, client_id, \
     requester_email, assignee_email, mailbox, reply_token, closed_at, first_response_at FROM tickets";

fn from_row(r: TicketRow) -> TicketRef {
    TicketRef {
        id: r.0,
        number: r.1,
        subject: r.2,
        status: r.3,
        priority: r.4,
        category: r.5,
        client_id: r.6,
        requester_email: r.7,
        assignee_email: r.8,
        mailbox: r.9,
        reply_token: r.10,
        closed_at: r.11,
        first_response_at: r.12,
    }
}

async fn ticket_where(
    conn: &mut AnyConnection,
    condition: &str,
    value: &str,
) -> Result<Option<TicketRef>, DbError> {
    let row: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TICKET_SELECT} WHERE {condition} = $1"
    )))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(from_row))
}

pub async fn ticket_by_reply_token(
    conn: &mut AnyConnection,
    token: &str,
) -> Result<Option<TicketRef>, DbError> {
    ticket_where(conn, "reply_token", &token.to_ascii_lowercase()).await
}

pub async fn ticket_by_number(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<TicketRef>, DbError> {
    ticket_where(conn, "number", number).await
}

pub async fn ticket_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<TicketRef>, DbError> {
    let row: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TICKET_SELECT} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(from_row))
}

/// The ticket holding a message with one of `message_ids` (in or out),
/// trying the last — the most recent reference — first.
pub async fn ticket_by_message_ids(
    conn: &mut AnyConnection,
    message_ids: &[String],
) -> Result<Option<(TicketRef, String)>, DbError> {
    for id in message_ids.iter().rev() {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT ticket_id FROM messages WHERE message_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((ticket_id,)) = found {
            if let Some(t) = ticket_by_id(conn, ticket_id).await? {
                return Ok(Some((t, id.clone())));
            }
        }
    }
    Ok(None)
}

pub async fn participants(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Vec<EmailAddress>, DbError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT email FROM ticket_participants WHERE ticket_id = $1 ORDER BY email")
            .bind(ticket_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(e,)| EmailAddress::parse(&e).ok())
        .collect())
}

/// The Message-IDs of the ticket's client thread, oldest first: what the
/// `References` of the next mail about it carry.
pub async fn thread_message_ids(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT message_id FROM messages WHERE ticket_id = $1 AND visibility = 'public' \
         AND message_id IS NOT NULL ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn set_status(
    conn: &mut AnyConnection,
    ticket_id: i64,
    status: TicketStatus,
    now: Millis,
) -> Result<(), DbError> {
    let closed_at = (status == TicketStatus::Closed).then_some(now);
    // Waiting on the client counts from when it started, not from the last
    // time the status was set to the same.
    let waiting_since = (status == TicketStatus::WaitingOnClient).then_some(now);
    sqlx::query(
        "UPDATE tickets SET status = $1, closed_at = $2, updated_at = $3, \
         waiting_since = CASE WHEN $5 IS NULL THEN NULL ELSE COALESCE(waiting_since, $5) END \
         WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(closed_at)
    .bind(now)
    .bind(ticket_id)
    .bind(waiting_since)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets when a ticket's first response is due (its priority changed
/// before anyone answered).
pub async fn set_first_response_due(
    conn: &mut AnyConnection,
    ticket_id: i64,
    due: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE tickets SET first_response_due_at = $1 WHERE id = $2 AND first_response_at IS NULL",
    )
    .bind(due)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When ticket `ticket_id` was opened.
pub async fn opened_at(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Option<Millis>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT created_at FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

pub async fn set_priority(
    conn: &mut AnyConnection,
    ticket_id: i64,
    priority: Priority,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tickets SET priority = $1, updated_at = $2 WHERE id = $3")
        .bind(priority.as_str())
        .bind(now)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_category(
    conn: &mut AnyConnection,
    ticket_id: i64,
    category: &str,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tickets SET category = $1, updated_at = $2 WHERE id = $3")
        .bind(category)
        .bind(now)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_assignee(
    conn: &mut AnyConnection,
    ticket_id: i64,
    assignee: &EmailAddress,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tickets SET assignee_email = $1, updated_at = $2 WHERE id = $3")
        .bind(assignee.as_str())
        .bind(now)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn add_time_worked(
    conn: &mut AnyConnection,
    ticket_id: i64,
    minutes: u32,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE tickets SET time_worked_minutes = time_worked_minutes + $1, updated_at = $2 \
         WHERE id = $3",
    )
    .bind(i64::from(minutes))
    .bind(now)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A client wrote: the ticket is touched, and reopened when it was closed.
pub async fn client_replied(
    conn: &mut AnyConnection,
    ticket_id: i64,
    reopen: bool,
    now: Millis,
) -> Result<(), DbError> {
    let sql = if reopen {
        "UPDATE tickets SET status = 'open', closed_at = NULL, updated_at = $1 WHERE id = $2"
    } else {
        "UPDATE tickets SET updated_at = $1 WHERE id = $2"
    };
    sqlx::query(sql)
        .bind(now)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A technician answered the client: the first response, if it is one.
pub async fn staff_responded(
    conn: &mut AnyConnection,
    ticket_id: i64,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE tickets SET first_response_at = COALESCE(first_response_at, $1), updated_at = $1 \
         WHERE id = $2",
    )
    .bind(now)
    .bind(ticket_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn link_to(
    conn: &mut AnyConnection,
    ticket_id: i64,
    earlier_ticket_id: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE tickets SET linked_ticket_id = $1 WHERE id = $2")
        .bind(earlier_ticket_id)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn time_worked_minutes(conn: &mut AnyConnection, ticket_id: i64) -> Result<i64, DbError> {
    let (m,): (i64,) = sqlx::query_as("SELECT time_worked_minutes FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(m)
}
