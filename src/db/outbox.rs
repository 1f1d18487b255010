//! The outbox: every mail Postdesk sends is first a row here, written in the
//! transaction of the change that caused it; the sender worker claims due rows,
//! sends them and marks them sent.

use sqlx::AnyConnection;

use super::{Backend, DbError};
use crate::clock::Millis;

pub struct NewOutgoing<'a> {
    pub kind: &'a str,
    pub ticket_id: Option<i64>,
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    /// Envelope recipients.
    pub recipients: &'a [&'a str],
    pub subject: &'a str,
    pub raw: &'a [u8],
    /// Sent by the system (counts against the automatic-mail rate limits).
    pub automated: bool,
    /// `pending`, or `rate-limited` for automatic mail over a limit (kept
    /// for the record, never sent).
    pub status: &'a str,
    /// Not sent before this time (a person's mail delayed by a limit).
    pub not_before: Millis,
    pub now: Millis,
}

pub async fn enqueue(conn: &mut AnyConnection, m: &NewOutgoing<'_>) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (kind, ticket_id, message_id, envelope_from, recipients, subject, raw, \
         status, attempts, next_attempt_at, claimed_until, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 0, $10) RETURNING id",
    )
    .bind(m.kind)
    .bind(m.ticket_id)
    .bind(m.message_id)
    .bind(m.envelope_from)
    .bind(m.recipients.join(","))
    .bind(m.subject)
    .bind(m.raw)
    .bind(m.status)
    .bind(m.not_before.max(m.now))
    .bind(m.now)
    .fetch_one(&mut *conn)
    .await?;
    for r in m.recipients {
        sqlx::query(
            "INSERT INTO outbox_recipients (outbox_id, email, ticket_id, automated, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(r.to_ascii_lowercase())
        .bind(m.ticket_id)
        .bind(i64::from(m.automated))
        .bind(m.now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// What the outbox needs to know about a recipient before queueing to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientStanding {
    /// On the suppression list (a hard bounce, an opt-out).
    pub suppressed: bool,
    /// Automatic mails queued for them since a time, about the ticket and in
    /// all. Rate-limited ones do not count: they were never sent.
    pub about_ticket: i64,
    pub overall: i64,
}

/// [`RecipientStanding`] of `email` in one statement.
pub async fn recipient_standing(
    conn: &mut AnyConnection,
    email: &str,
    ticket_id: Option<i64>,
    since: Millis,
) -> Result<RecipientStanding, DbError> {
    let (suppressed, about_ticket, overall): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM suppressions WHERE email = $2), \
         COALESCE(SUM(CASE WHEN r.ticket_id = $1 THEN 1 ELSE 0 END), 0), COUNT(*) \
         FROM outbox_recipients r JOIN outbox o ON o.id = r.outbox_id \
         WHERE r.email = $2 AND r.automated = 1 AND r.created_at >= $3 \
         AND o.status <> 'rate-limited'",
    )
    .bind(ticket_id.unwrap_or(-1))
    .bind(email.to_ascii_lowercase())
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok(RecipientStanding {
        suppressed: suppressed > 0,
        about_ticket,
        overall,
    })
}

#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: i64,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: i64,
}

/// Claims up to `limit` due mails until `lease_until`: a claim that is not
/// finished by then (the worker died) becomes due again. On PostgreSQL, rows
/// another replica is claiming are skipped instead of waited for.
pub async fn claim_due(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> Result<Vec<ClaimedMail>, DbError> {
    let sql = match backend {
        Backend::Sqlite => {
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND claimed_until <= $2 \
             ORDER BY id LIMIT $3) \
             RETURNING id, envelope_from, recipients, raw, attempts"
        }
        Backend::Postgres => {
            "UPDATE outbox SET claimed_until = $1, claimed_by = $4 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND claimed_until <= $2 \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, envelope_from, recipients, raw, attempts"
        }
    };
    let rows: Vec<(i64, String, String, Vec<u8>, i64)> = sqlx::query_as(sql)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?;
    let mut mails: Vec<ClaimedMail> = rows
        .into_iter()
        .map(|r| ClaimedMail {
            id: r.0,
            envelope_from: r.1,
            recipients: r
                .2
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            raw: r.3,
            attempts: r.4,
        })
        .collect();
    mails.sort_by_key(|m| m.id);
    Ok(mails)
}

pub async fn mark_sent(conn: &mut AnyConnection, id: i64, now: Millis) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, \
         last_error = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Hands the claims of a sender known to be dead back at once instead of
/// when their lease runs out.
pub async fn release_claims_of(conn: &mut AnyConnection, owner: &str) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE outbox SET claimed_until = 0, claimed_by = NULL \
         WHERE claimed_by = $1 AND status = 'pending'",
    )
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks a mail sent whose sender died after handing it to the SMTP server
/// but before hearing the reply; a row already settled is left as it is.
pub async fn mark_sent_unconfirmed(
    conn: &mut AnyConnection,
    id: i64,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, \
         claimed_until = 0, \
         last_error = 'sender stopped before the server confirmed; assumed delivered' \
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or given up (`failed`)
/// when `retry_at` is `None`.
pub async fn mark_attempt_failed(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    retry_at: Option<Millis>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, claimed_until = 0, \
         next_attempt_at = COALESCE($2, next_attempt_at), \
         status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'pending' END WHERE id = $3",
    )
    .bind(error)
    .bind(retry_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a mail as not to be sent (every recipient is suppressed).
pub async fn mark_suppressed(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE outbox SET status = 'suppressed', claimed_until = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub kind: String,
    pub ticket: Option<String>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<OutboxEntry>, DbError> {
    type Row = (
        i64,
        String,
        Option<String>,
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        i64,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.id, o.kind, t.number, o.message_id, o.recipients, o.subject, o.status, \
         o.attempts, o.last_error, o.created_at, o.sent_at \
         FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id ORDER BY o.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    use crate::clock::to_rfc3339;
    Ok(rows
        .into_iter()
        .map(|r| OutboxEntry {
            id: r.0,
            kind: r.1,
            ticket: r.2,
            message_id: r.3,
            recipients: r.4.split(',').map(str::to_string).collect(),
            subject: r.5,
            status: r.6,
            attempts: r.7,
            last_error: r.8,
            created_at: to_rfc3339(r.9),
            sent_at: r.10.map(to_rfc3339),
        })
        .collect())
}

/// Number of mails waiting to be sent.
pub async fn pending_count(conn: &mut AnyConnection) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n)
}

/// How many mails of `kind` went to `email` since `since` (any status but
/// rate-limited): for per-purpose limits such as fresh links.
pub async fn recent_of_kind(
    conn: &mut AnyConnection,
    kind: &str,
    email: &str,
    since: Millis,
) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox_recipients r JOIN outbox o ON o.id = r.outbox_id \
         WHERE o.kind = $1 AND r.email = $2 AND r.created_at >= $3 AND o.status <> 'rate-limited'",
    )
    .bind(kind)
    .bind(email.to_ascii_lowercase())
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// The rendered message of outbox row `id`, as it is (or was) sent.
pub async fn raw_of(conn: &mut AnyConnection, id: i64) -> Result<Option<Vec<u8>>, DbError> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT raw FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// When the oldest mail still waiting was queued, if any.
pub async fn oldest_pending(conn: &mut AnyConnection) -> Result<Option<Millis>, DbError> {
    let (oldest,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(oldest)
}
