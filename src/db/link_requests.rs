//! Requests of the public "email me my links" page, kept for its rate
//! limits. Rows hold keyed hashes of the address and of the client's IP,
//! never the address itself.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; the lookup and the mail are under way.
    Pending,
    /// The links went out (an outbox row).
    Mailed,
    /// No active contact has the address: nothing was sent.
    Unknown,
    /// Over the per-address or per-IP limit: nothing was sent.
    Limited,
    /// A contact's address on the suppression list: nothing was sent.
    Withheld,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Mailed => "mailed",
            Self::Unknown => "unknown",
            Self::Limited => "limited",
            Self::Withheld => "withheld",
        }
    }
}

/// How many requests came for `address_key`, and from `client_key`, since
/// `since` (before this one is recorded).
pub async fn recent(
    conn: &mut AnyConnection,
    address_key: &str,
    client_key: &str,
    since: Millis,
) -> Result<(i64, i64), DbError> {
    let (by_address,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM link_requests WHERE address_key = $1 AND requested_at > $2",
    )
    .bind(address_key)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    let (by_client,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM link_requests WHERE client_key = $1 AND requested_at > $2",
    )
    .bind(client_key)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok((by_address, by_client))
}

/// Deletes requests from before `before`: the limits look back an hour, and
/// nothing else needs them.
pub async fn forget_before(conn: &mut AnyConnection, before: Millis) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM link_requests WHERE requested_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Records a request; returns its id.
pub async fn record(
    conn: &mut AnyConnection,
    address_key: &str,
    client_key: &str,
    outcome: Outcome,
    now: Millis,
) -> Result<i64, DbError> {
    let handled = (outcome != Outcome::Pending).then_some(now);
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO link_requests (address_key, client_key, outcome, requested_at, handled_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(address_key)
    .bind(client_key)
    .bind(outcome.as_str())
    .bind(now)
    .bind(handled)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Marks a pending request handled with `outcome`.
pub async fn finish(
    conn: &mut AnyConnection,
    id: i64,
    outcome: Outcome,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query("UPDATE link_requests SET outcome = $1, handled_at = $2 WHERE id = $3")
        .bind(outcome.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The outcome of every request, oldest first (holds no address).
pub async fn outcomes(conn: &mut AnyConnection) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, outcome FROM link_requests ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows)
}
