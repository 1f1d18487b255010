//! The bookkeeping of inbound mail: de-duplication receipts, applied mailbox
//! UIDs, per-mailbox checkpoints and the quarantine.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// Claims `dedupe_key` for this message. Returns false when the key was
/// already claimed: the message was applied before and must not be again.
pub async fn claim_receipt(
    conn: &mut AnyConnection,
    dedupe_key: &str,
    raw_sha256: &str,
    outcome: &str,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO inbound_receipts (dedupe_key, raw_sha256, outcome, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(dedupe_key)
    .bind(raw_sha256)
    .bind(outcome)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_receipt_outcome(
    conn: &mut AnyConnection,
    dedupe_key: &str,
    outcome: &str,
    ticket_id: Option<i64>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE inbound_receipts SET outcome = $1, ticket_id = $2 WHERE dedupe_key = $3")
        .bind(outcome)
        .bind(ticket_id)
        .bind(dedupe_key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What happened to an earlier copy of a message, if any.
pub async fn receipt_outcome(
    conn: &mut AnyConnection,
    dedupe_key: &str,
) -> Result<Option<String>, DbError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT outcome FROM inbound_receipts WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| r.0))
}

/// A position in a mailbox: the folder's UIDVALIDITY and a UID in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxUid {
    pub uidvalidity: u32,
    pub uid: u32,
}

pub async fn uid_applied(
    conn: &mut AnyConnection,
    mailbox: &str,
    at: MailboxUid,
) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT uid FROM mailbox_uids WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3",
    )
    .bind(mailbox)
    .bind(i64::from(at.uidvalidity))
    .bind(i64::from(at.uid))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// Records that the message at `at` is applied and moves the checkpoint.
pub async fn record_uid(
    conn: &mut AnyConnection,
    mailbox: &str,
    at: MailboxUid,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO mailbox_uids (mailbox, uidvalidity, uid) VALUES ($1, $2, $3) \
         ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING",
    )
    .bind(mailbox)
    .bind(i64::from(at.uidvalidity))
    .bind(i64::from(at.uid))
    .execute(&mut *conn)
    .await?;
    move_checkpoint(conn, mailbox, at, now).await
}

/// Moves the mailbox's checkpoint up to `at` (never down within one
/// UIDVALIDITY; a new UIDVALIDITY starts over).
async fn move_checkpoint(
    conn: &mut AnyConnection,
    mailbox: &str,
    at: MailboxUid,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO mailbox_checkpoints (mailbox, uidvalidity, last_uid, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
         uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at, \
         last_uid = CASE WHEN mailbox_checkpoints.uidvalidity = excluded.uidvalidity \
           AND mailbox_checkpoints.last_uid > excluded.last_uid \
           THEN mailbox_checkpoints.last_uid ELSE excluded.last_uid END",
    )
    .bind(mailbox)
    .bind(i64::from(at.uidvalidity))
    .bind(i64::from(at.uid))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Of `uids` in one mailbox folder, those already applied.
pub async fn applied_uids(
    conn: &mut AnyConnection,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
) -> Result<Vec<u32>, DbError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT uid FROM mailbox_uids WHERE mailbox = $1 AND uidvalidity = $2 AND uid IN ({})",
        super::placeholder_rows(3, uids.len(), 1)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(mailbox)
        .bind(i64::from(uidvalidity));
    for uid in uids {
        query = query.bind(i64::from(*uid));
    }
    let rows: Vec<(i64,)> = query.fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(u,)| u32::try_from(u).ok())
        .collect())
}

/// Of `keys`, those whose message was applied before.
pub async fn known_receipts(
    conn: &mut AnyConnection,
    keys: &[&str],
) -> Result<Vec<String>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT dedupe_key FROM inbound_receipts WHERE dedupe_key IN ({})",
        super::placeholder_rows(1, keys.len(), 1)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for key in keys {
        query = query.bind(*key);
    }
    let rows: Vec<(String,)> = query.fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

/// A message's receipt, written once its outcome is known.
pub struct NewReceipt<'a> {
    pub dedupe_key: &'a str,
    pub raw_sha256: &'a str,
    pub outcome: &'a str,
    pub ticket_id: Option<i64>,
}

/// Writes the receipts of a batch in one statement. Returns how many were
/// written: fewer than given means another process claimed one of the keys
/// meanwhile, and the caller must roll back.
pub async fn insert_receipts(
    conn: &mut AnyConnection,
    receipts: &[NewReceipt<'_>],
    now: Millis,
) -> Result<usize, DbError> {
    if receipts.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO inbound_receipts (dedupe_key, raw_sha256, outcome, ticket_id, created_at) \
         VALUES {} ON CONFLICT (dedupe_key) DO NOTHING",
        super::placeholder_rows(1, receipts.len(), 5)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in receipts {
        query = query
            .bind(r.dedupe_key)
            .bind(r.raw_sha256)
            .bind(r.outcome)
            .bind(r.ticket_id)
            .bind(now);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() as usize)
}

/// Records a batch of applied UIDs of one mailbox folder and moves its
/// checkpoint to the highest: what [`record_uid`] does, in two statements.
pub async fn record_uids(
    conn: &mut AnyConnection,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
    now: Millis,
) -> Result<(), DbError> {
    let Some(highest) = uids.iter().max() else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO mailbox_uids (mailbox, uidvalidity, uid) VALUES {} \
         ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING",
        super::placeholder_rows(1, uids.len(), 3)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for uid in uids {
        query = query
            .bind(mailbox)
            .bind(i64::from(uidvalidity))
            .bind(i64::from(*uid));
    }
    query.execute(&mut *conn).await?;
    move_checkpoint(
        conn,
        mailbox,
        MailboxUid {
            uidvalidity,
            uid: *highest,
        },
        now,
    )
    .await
}

/// The highest applied UID of the mailbox, when its UIDVALIDITY still matches.
pub async fn checkpoint(
    conn: &mut AnyConnection,
    mailbox: &str,
    uidvalidity: u32,
) -> Result<Option<u32>, DbError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((v, last)) if v == i64::from(uidvalidity) => u32::try_from(last).ok(),
        _ => None,
    })
}

pub struct NewQuarantine<'a> {
    pub raw_sha256: &'a str,
    /// `mailbox:<name>` or `ingest` (pipe mode).
    pub source: &'a str,
    pub reason: &'a str,
    pub subject: Option<&'a str>,
    pub now: Millis,
}

pub async fn insert_quarantine(
    conn: &mut AnyConnection,
    q: &NewQuarantine<'_>,
) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO quarantine (raw_sha256, source, reason, subject, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(q.raw_sha256)
    .bind(q.source)
    .bind(q.reason)
    .bind(q.subject)
    .bind(q.now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub raw_sha256: String,
    pub source: String,
    pub reason: String,
    pub subject: Option<String>,
    pub created_at: String,
}

pub async fn list_quarantine(conn: &mut AnyConnection) -> Result<Vec<QuarantineEntry>, DbError> {
    let rows: Vec<(i64, String, String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT id, raw_sha256, source, reason, subject, created_at FROM quarantine ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| QuarantineEntry {
            id: r.0,
            raw_sha256: r.1,
            source: r.2,
            reason: r.3,
            subject: r.4,
            created_at: crate::clock::to_rfc3339(r.5),
        })
        .collect())
}

pub async fn is_suppressed(conn: &mut AnyConnection, email: &str) -> Result<bool, DbError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT email FROM suppressions WHERE email = $1")
        .bind(email.to_ascii_lowercase())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Puts `email` on the suppression list (a hard bounce, an opt-out).
pub async fn suppress(
    conn: &mut AnyConnection,
    email: &str,
    reason: &str,
    now: crate::clock::Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO suppressions (email, reason, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.to_ascii_lowercase())
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
