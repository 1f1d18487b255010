//! Mailbox leases: which replica watches which mailbox (SPEC §7). A lease
//! is taken when free or expired, renewed by its holder, and given back on
//! a clean shutdown. Exactly-once ingest does not rest on it (receipts and
//! mailbox UIDs do); the lease only keeps replicas from fetching the same
//! mail twice.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// Takes the lease of `mailbox` for `holder` until `expires_at`, when it is
/// free, expired at `now`, or already `holder`'s. Returns whether it did.
pub async fn acquire(
    conn: &mut AnyConnection,
    mailbox: &str,
    holder: &str,
    now: Millis,
    expires_at: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO mailbox_leases (mailbox, holder, acquired_at, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
         holder = excluded.holder, expires_at = excluded.expires_at, \
         acquired_at = CASE WHEN mailbox_leases.holder = excluded.holder \
           THEN mailbox_leases.acquired_at ELSE excluded.acquired_at END \
         WHERE mailbox_leases.holder = excluded.holder OR mailbox_leases.expires_at <= $3",
    )
    .bind(mailbox)
    .bind(holder)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends `holder`'s lease to `expires_at`. Returns false when the lease is
/// no longer theirs (it expired and another replica took it).
pub async fn renew(
    conn: &mut AnyConnection,
    mailbox: &str,
    holder: &str,
    expires_at: Millis,
) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE mailbox_leases SET expires_at = $1 WHERE mailbox = $2 AND holder = $3")
            .bind(expires_at)
            .bind(mailbox)
            .bind(holder)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease back (a clean shutdown), so another replica need not
/// wait for it to expire.
pub async fn release(conn: &mut AnyConnection, mailbox: &str, holder: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM mailbox_leases WHERE mailbox = $1 AND holder = $2")
        .bind(mailbox)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A mailbox's lease as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub holder: String,
    pub acquired_at: Millis,
    pub expires_at: Millis,
}

pub async fn lease_of(conn: &mut AnyConnection, mailbox: &str) -> Result<Option<Lease>, DbError> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT holder, acquired_at, expires_at FROM mailbox_leases WHERE mailbox = $1",
    )
    .bind(mailbox)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(holder, acquired_at, expires_at)| Lease {
        holder,
        acquired_at,
        expires_at,
    }))
}
