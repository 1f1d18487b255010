//! Tickets, their participants, messages and attachments.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;
use crate::domain::{EmailAddress, Priority, TicketNumber, TicketStatus};

pub struct NewTicket<'a> {
    pub number: &'a TicketNumber,
    pub subject: &'a str,
    pub priority: Priority,
    pub category: Option<&'a str>,
    pub client_id: Option<i64>,
    pub requester_contact_id: Option<i64>,
    pub requester_email: &'a EmailAddress,
    pub mailbox: Option<&'a str>,
    pub reply_token: &'a str,
    pub first_response_due_at: Millis,
    pub now: Millis,
}

pub async fn insert_ticket(conn: &mut AnyConnection, t: &NewTicket<'_>) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO tickets (number, subject, status, priority, category, client_id, \
         requester_contact_id, requester_email, mailbox, reply_token, created_at, updated_at, \
         first_response_due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING id",
    )
    .bind(t.number.as_str())
    .bind(t.subject)
    .bind(TicketStatus::Open.as_str())
    .bind(t.priority.as_str())
    .bind(t.category)
    .bind(t.client_id)
    .bind(t.requester_contact_id)
    .bind(t.requester_email.as_str())
    .bind(t.mailbox)
    .bind(t.reply_token)
    .bind(t.now)
    .bind(t.first_response_due_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn add_participant(
    conn: &mut AnyConnection,
    ticket_id: i64,
    email: &EmailAddress,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO ticket_participants (ticket_id, email) VALUES ($1, $2) \
         ON CONFLICT (ticket_id, email) DO NOTHING",
    )
    .bind(ticket_id)
    .bind(email.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Who may see a message of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The client thread.
    Public,
    /// Staff only: notes, mail from people not on the ticket, auto-replies.
    Internal,
    /// Recorded by Postdesk itself (bounces).
    System,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
            Visibility::System => "system",
        }
    }
}

pub struct NewMessage<'a> {
    pub ticket_id: i64,
    pub direction: Direction,
    /// `request`, `reply`, `note`, `system`, `auto-reply`, `acknowledgement` …
    pub kind: &'a str,
    pub message_id: Option<&'a str>,
    pub from_email: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub to_list: &'a str,
    pub cc_list: &'a str,
    pub subject: &'a str,
    pub visibility: Visibility,
    pub body_text: &'a str,
    /// What the person wrote, without quoted history and signature.
    pub body_trimmed: Option<&'a str>,
    pub body_html: Option<&'a str>,
    pub raw_sha256: Option<&'a str>,
    pub size_bytes: i64,
    pub truncated: bool,
    pub now: Millis,
}

pub async fn insert_message(conn: &mut AnyConnection, m: &NewMessage<'_>) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO messages (ticket_id, direction, kind, message_id, from_email, from_name, \
         to_list, cc_list, subject, body_text, body_html, raw_sha256, size_bytes, truncated, created_at, \
         visibility, body_trimmed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
    )
    .bind(m.ticket_id)
    .bind(m.direction.as_str())
    .bind(m.kind)
    .bind(m.message_id)
    .bind(m.from_email)
    .bind(m.from_name)
    .bind(m.to_list)
    .bind(m.cc_list)
    .bind(m.subject)
    .bind(m.body_text)
    .bind(m.body_html)
    .bind(m.raw_sha256)
    .bind(m.size_bytes)
    .bind(i64::from(m.truncated))
    .bind(m.now)
    .bind(m.visibility.as_str())
    .bind(m.body_trimmed)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub struct NewAttachment<'a> {
    pub message_id: i64,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub content_id: Option<&'a str>,
    pub inline: bool,
}

pub async fn insert_attachment(
    conn: &mut AnyConnection,
    a: &NewAttachment<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO attachments (message_id, filename, content_type, size_bytes, sha256, \
         content_id, is_inline) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.message_id)
    .bind(a.filename)
    .bind(a.content_type)
    .bind(a.size_bytes)
    .bind(a.sha256)
    .bind(a.content_id)
    .bind(i64::from(a.inline))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ------------------------------------------------------------------ reading

#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketSummary {
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub category: Option<String>,
    pub client: Option<String>,
    pub requester: String,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub first_response_due_at: Option<String>,
    pub first_response_at: Option<String>,
    pub closed_at: Option<String>,
    pub time_worked_minutes: i64,
    /// The earlier ticket this one continues (a reply after the reopen window).
    pub linked_ticket: Option<String>,
}

type SummaryRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
);

const SUMMARY_SELECT: &str = "SELECT t.id, t.number, t.subject, t.status, t.priority, t.category, \
     c.name, t.requester_email, t.assignee_email, t.created_at, t.updated_at, t.first_response_due_at, \
     t.first_response_at, t.closed_at, t.time_worked_minutes, l.number \
     FROM tickets t LEFT JOIN clients c ON c.id = t.client_id \
     LEFT JOIN tickets l ON l.id = t.linked_ticket_id";

fn summary_from_row(r: SummaryRow) -> (i64, TicketSummary) {
    use crate::clock::to_rfc3339;
    (
        r.0,
        TicketSummary {
            number: r.1,
            subject: r.2,
            status: r.3,
            priority: r.4,
            category: r.5,
            client: r.6,
            requester: r.7,
            assignee: r.8,
            created_at: to_rfc3339(r.9),
            updated_at: to_rfc3339(r.10),
            first_response_due_at: r.11.map(to_rfc3339),
            first_response_at: r.12.map(to_rfc3339),
            closed_at: r.13.map(to_rfc3339),
            time_worked_minutes: r.14,
            linked_ticket: r.15,
        },
    )
}

pub async fn list_tickets(conn: &mut AnyConnection) -> Result<Vec<TicketSummary>, DbError> {
    let rows: Vec<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SUMMARY_SELECT} ORDER BY t.id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| summary_from_row(r).1).collect())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AttachmentView {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageView {
    pub direction: String,
    pub kind: String,
    pub visibility: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    /// What the person wrote (inbound mail), without quotes and signature.
    pub trimmed: Option<String>,
    pub html: Option<String>,
    pub truncated: bool,
    pub created_at: String,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketSummary,
    pub participants: Vec<String>,
    pub messages: Vec<MessageView>,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

type MessageRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    Option<String>,
);
type AttachmentRow = (i64, String, String, i64, String, Option<String>, i64);

pub async fn show_ticket(
    conn: &mut AnyConnection,
    number: &TicketNumber,
) -> Result<Option<TicketDetail>, DbError> {
    let row: Option<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SUMMARY_SELECT} WHERE t.number = $1"
    )))
    .bind(number.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (ticket_id, ticket) = summary_from_row(row);

    let participants: Vec<(String,)> =
        sqlx::query_as("SELECT email FROM ticket_participants WHERE ticket_id = $1 ORDER BY email")
            .bind(ticket_id)
            .fetch_all(&mut *conn)
            .await?;

    let messages: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, direction, kind, message_id, from_email, to_list, cc_list, subject, \
         body_text, body_html, truncated, created_at, visibility, body_trimmed \
         FROM messages WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;

    let attachments: Vec<AttachmentRow> = sqlx::query_as(
        "SELECT a.message_id, a.filename, a.content_type, a.size_bytes, a.sha256, a.content_id, \
         a.is_inline FROM attachments a JOIN messages m ON m.id = a.message_id \
         WHERE m.ticket_id = $1 ORDER BY a.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;

    let messages = messages
        .into_iter()
        .map(|m| MessageView {
            attachments: attachments
                .iter()
                .filter(|a| a.0 == m.0)
                .map(|a| AttachmentView {
                    filename: a.1.clone(),
                    content_type: a.2.clone(),
                    size: a.3,
                    sha256: a.4.clone(),
                    content_id: a.5.clone(),
                    inline: super::flag(a.6),
                })
                .collect(),
            direction: m.1,
            kind: m.2,
            visibility: m.12,
            trimmed: m.13,
            message_id: m.3,
            from: m.4,
            to: split_list(&m.5),
            cc: split_list(&m.6),
            subject: m.7,
            text: m.8,
            html: m.9,
            truncated: super::flag(m.10),
            created_at: crate::clock::to_rfc3339(m.11),
        })
        .collect();

    Ok(Some(TicketDetail {
        ticket,
        participants: participants.into_iter().map(|p| p.0).collect(),
        messages,
    }))
}
