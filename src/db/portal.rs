//! What the client's own pages read and change (issue 7): a ticket with its
//! public conversation and attachments, the tickets a contact may list
//! (searched and filtered), and the contacts page's changes — types,
//! deactivation, address changes waiting for their confirmation.
//! Who may see what is decided in `portal::access`; these queries take the
//! scope it decided.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;
use crate::domain::{ContactTypes, EmailAddress};

/// A ticket as its page shows it, with what access is decided on.
#[derive(Debug, Clone)]
pub struct PortalTicket {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub category: Option<String>,
    pub client_id: Option<i64>,
    pub requester_contact_id: Option<i64>,
    pub requester_email: String,
    pub assignee_email: Option<String>,
    pub time_worked_minutes: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub closed_at: Option<Millis>,
    pub participants: Vec<String>,
}

type PortalTicketRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    Option<i64>,
);

const PORTAL_TICKET_SELECT: &str = "SELECT id, number, subject, status, priority, category, \
     client_id, requester_contact_id, requester_email, assignee_email, time_worked_minutes, \
     created_at, updated_at, closed_at FROM tickets";

async fn portal_ticket_where(
    conn: &mut AnyConnection,
    condition: &str,
    bind: TicketKey<'_>,
) -> Result<Option<PortalTicket>, DbError> {
    let sql = format!("{PORTAL_TICKET_SELECT} WHERE {condition} = $1");
    let query = sqlx::query_as::<_, PortalTicketRow>(sqlx::AssertSqlSafe(sql));
    let row = match bind {
        TicketKey::Number(n) => query.bind(n.to_string()),
        TicketKey::Id(id) => query.bind(id),
    }
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let participants: Vec<(String,)> =
        sqlx::query_as("SELECT email FROM ticket_participants WHERE ticket_id = $1 ORDER BY email")
            .bind(r.0)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Some(PortalTicket {
        id: r.0,
        number: r.1,
        subject: r.2,
        status: r.3,
        priority: r.4,
        category: r.5,
        client_id: r.6,
        requester_contact_id: r.7,
        requester_email: r.8,
        assignee_email: r.9,
        time_worked_minutes: r.10,
        created_at: r.11,
        updated_at: r.12,
        closed_at: r.13,
        participants: participants.into_iter().map(|p| p.0).collect(),
    }))
}

enum TicketKey<'a> {
    Number(&'a str),
    Id(i64),
}

pub async fn ticket_by_number(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<PortalTicket>, DbError> {
    portal_ticket_where(conn, "number", TicketKey::Number(number)).await
}

pub async fn ticket_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<PortalTicket>, DbError> {
    portal_ticket_where(conn, "id", TicketKey::Id(id)).await
}

/// A file of a public message.
#[derive(Debug, Clone)]
pub struct PortalAttachment {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub content_id: Option<String>,
    pub inline: bool,
}

/// One message of the public conversation.
#[derive(Debug, Clone)]
pub struct PortalMessage {
    pub id: i64,
    pub direction: String,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub text: String,
    /// What the person wrote, without quoted history (inbound mail).
    pub trimmed: Option<String>,
    /// Sanitized when stored; the page sanitizes it again.
    pub html: Option<String>,
    pub created_at: Millis,
    pub attachments: Vec<PortalAttachment>,
}

type MessageRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
);
/// id, filename, content type, size, sha256, content id, inline, and the
/// message id (conversation) or ticket id (one attachment).
type AttachmentRow = (i64, String, String, i64, String, Option<String>, i64, i64);

/// The public messages of ticket `ticket_id`, newest first — never internal
/// notes or system records — each with its files. A technician's mail is
/// shown as the reply the client was sent, not as it came in (with its
/// commands).
pub async fn public_conversation(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Vec<PortalMessage>, DbError> {
    let messages: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, direction, from_email, from_name, body_text, body_trimmed, body_html, \
         created_at FROM messages WHERE ticket_id = $1 AND visibility = 'public' \
         AND NOT (direction = 'in' AND kind = 'staff-reply') \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let files: Vec<AttachmentRow> = sqlx::query_as(
        "SELECT a.id, a.filename, a.content_type, a.size_bytes, a.sha256, a.content_id, \
         a.is_inline, a.message_id FROM attachments a JOIN messages m ON m.id = a.message_id \
         WHERE m.ticket_id = $1 AND m.visibility = 'public' ORDER BY a.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(messages
        .into_iter()
        .map(|m| PortalMessage {
            attachments: files
                .iter()
                .filter(|f| f.7 == m.0)
                .map(|f| PortalAttachment {
                    id: f.0,
                    filename: f.1.clone(),
                    content_type: f.2.clone(),
                    size_bytes: f.3,
                    sha256: f.4.clone(),
                    content_id: f.5.clone(),
                    inline: super::flag(f.6),
                })
                .collect(),
            id: m.0,
            direction: m.1,
            from_email: m.2,
            from_name: m.3,
            text: m.4,
            trimmed: m.5,
            html: m.6,
            created_at: m.7,
        })
        .collect())
}

/// Attachment `id` with the ticket it belongs to, only when its message is
/// public: a file of an internal note is never served to a client.
pub async fn public_attachment(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<(i64, PortalAttachment)>, DbError> {
    let row: Option<AttachmentRow> = sqlx::query_as(
        "SELECT a.id, a.filename, a.content_type, a.size_bytes, a.sha256, a.content_id, \
             a.is_inline, m.ticket_id FROM attachments a JOIN messages m ON m.id = a.message_id \
             WHERE a.id = $1 AND m.visibility = 'public'",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| {
        (
            r.7,
            PortalAttachment {
                id: r.0,
                filename: r.1,
                content_type: r.2,
                size_bytes: r.3,
                sha256: r.4,
                content_id: r.5,
                inline: super::flag(r.6),
            },
        )
    }))
}

/// Whose tickets a list shows (decided by `portal::access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketScope {
    /// Every ticket of the client.
    Client(i64),
    /// Tickets the contact asked (by contact id or address) or takes part in.
    Own { contact_id: i64, email: String },
}

/// What the tickets page asks for: a search in number and subject, and a
/// status (`None`: every status).
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub search: Option<String>,
    pub status: Option<String>,
}

/// A line of the tickets list.
#[derive(Debug, Clone)]
pub struct TicketListRow {
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub category: Option<String>,
    pub requester_email: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub closed_at: Option<Millis>,
}

type ListRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
);

/// `text` as a LIKE pattern matching it anywhere, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The tickets of `scope` matching `filter`, most recently updated first.
pub async fn visible_tickets(
    conn: &mut AnyConnection,
    scope: &TicketScope,
    filter: &TicketFilter,
) -> Result<Vec<TicketListRow>, DbError> {
    let mut sql = String::from(
        "SELECT t.number, t.subject, t.status, t.priority, t.category, t.requester_email, \
         t.created_at, t.updated_at, t.closed_at FROM tickets t WHERE ",
    );
    match scope {
        TicketScope::Client(_) => sql.push_str("t.client_id = $1"),
        TicketScope::Own { .. } => sql.push_str(
            "(t.requester_contact_id = $1 OR t.requester_email = $2 OR EXISTS \
             (SELECT 1 FROM ticket_participants p WHERE p.ticket_id = t.id AND p.email = $2))",
        ),
    }
    let mut next = match scope {
        TicketScope::Client(_) => 2,
        TicketScope::Own { .. } => 3,
    };
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(contains_pattern);
    if search.is_some() {
        sql.push_str(&format!(
            " AND (LOWER(t.subject) LIKE ${next} ESCAPE '\\' OR LOWER(t.number) LIKE ${next} ESCAPE '\\')"
        ));
        next += 1;
    }
    if filter.status.is_some() {
        sql.push_str(&format!(" AND t.status = ${next}"));
    }
    sql.push_str(" ORDER BY t.updated_at DESC, t.id DESC");
    let mut query = sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql));
    query = match scope {
        TicketScope::Client(id) => query.bind(*id),
        TicketScope::Own { contact_id, email } => query.bind(*contact_id).bind(email.clone()),
    };
    if let Some(pattern) = search {
        query = query.bind(pattern);
    }
    if let Some(status) = &filter.status {
        query = query.bind(status.clone());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| TicketListRow {
            number: r.0,
            subject: r.1,
            status: r.2,
            priority: r.3,
            category: r.4,
            requester_email: r.5,
            created_at: r.6,
            updated_at: r.7,
            closed_at: r.8,
        })
        .collect())
}

// ------------------------------------------------------------ contacts page

/// Active primary contacts of `client_id` other than `except`.
pub async fn other_active_primaries(
    conn: &mut AnyConnection,
    client_id: i64,
    except: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM contacts \
         WHERE client_id = $1 AND active = 1 AND is_primary = 1 AND id <> $2",
    )
    .bind(client_id)
    .bind(except)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// Sets a contact's types (links are kept: what they open is checked
/// against the types whenever a page is shown).
pub async fn set_contact_types(
    conn: &mut AnyConnection,
    contact_id: i64,
    types: ContactTypes,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET is_primary = $1, is_billing = $2, is_technical = $3 WHERE id = $4",
    )
    .bind(i64::from(types.primary))
    .bind(i64::from(types.billing))
    .bind(i64::from(types.technical))
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deactivates a contact and revokes every link they hold.
pub async fn deactivate_contact(conn: &mut AnyConnection, contact_id: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET active = 0, link_generation = link_generation + 1 WHERE id = $1",
    )
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any contact (of any client, active or not) has `email`.
pub async fn address_taken(
    conn: &mut AnyConnection,
    email: &EmailAddress,
) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM contacts WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// A requested address change.
#[derive(Debug, Clone)]
pub struct AddressChange {
    pub id: i64,
    pub contact_id: i64,
    pub new_email: String,
    pub requested_at: Millis,
    /// `pending`, `confirmed` or `superseded`.
    pub status: String,
}

/// Records a request to change `contact_id`'s address to `new_email`;
/// pending older requests for the contact are superseded (their links stop
/// confirming anything).
pub async fn request_address_change(
    conn: &mut AnyConnection,
    contact_id: i64,
    new_email: &EmailAddress,
    requested_by: i64,
    now: Millis,
) -> Result<i64, DbError> {
    sqlx::query(
        "UPDATE contact_address_changes SET status = 'superseded' \
         WHERE contact_id = $1 AND status = 'pending'",
    )
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO contact_address_changes \
         (contact_id, new_email, requested_by, requested_at, status) \
         VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
    )
    .bind(contact_id)
    .bind(new_email.as_str())
    .bind(requested_by)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn address_change(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<AddressChange>, DbError> {
    let row: Option<(i64, i64, String, i64, String)> = sqlx::query_as(
        "SELECT id, contact_id, new_email, requested_at, status \
         FROM contact_address_changes WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| AddressChange {
        id: r.0,
        contact_id: r.1,
        new_email: r.2,
        requested_at: r.3,
        status: r.4,
    }))
}

/// The pending address changes of a client's contacts: (contact id, new
/// address).
pub async fn pending_address_changes(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT a.contact_id, a.new_email FROM contact_address_changes a \
         JOIN contacts c ON c.id = a.contact_id \
         WHERE c.client_id = $1 AND a.status = 'pending' ORDER BY a.id",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Applies a pending change: the contact gets the new address and a new
/// link generation (every older link, the confirmation's too, stops
/// working). False when the change was no longer pending.
pub async fn confirm_address_change(
    conn: &mut AnyConnection,
    change: &AddressChange,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE contact_address_changes SET status = 'confirmed', confirmed_at = $1 \
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(change.id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE contacts SET email = $1, link_generation = link_generation + 1 WHERE id = $2",
    )
    .bind(&change.new_email)
    .bind(change.contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// How many replies `contact_email` posted from ticket pages since `since`
/// (they are ingested as the contact's mail with a `portal.` Message-ID):
/// what the per-contact limit of `[limits] portal_replies_per_hour` counts.
pub async fn portal_replies_since(
    conn: &mut AnyConnection,
    contact_email: &str,
    since: Millis,
) -> Result<i64, DbError> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM messages WHERE direction = 'in' \
         AND message_id LIKE 'portal.%' AND LOWER(from_email) = LOWER($1) \
         AND created_at > $2",
    )
    .bind(contact_email)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count)
}
