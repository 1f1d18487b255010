//! What the scheduler watches on tickets: first responses coming due,
//! tickets waiting on the client, and raw mail past its retention. Tickets
//! themselves are never deleted; only the raw copy of old messages is.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// An unanswered open ticket with a first-response target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub id: i64,
    pub due_at: Millis,
}

/// Open tickets nobody has answered whose first response is due by `until`.
pub async fn unanswered_due_by(
    conn: &mut AnyConnection,
    until: Millis,
) -> Result<Vec<Unanswered>, DbError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, first_response_due_at FROM tickets WHERE status <> 'closed' \
         AND first_response_at IS NULL AND first_response_due_at IS NOT NULL \
         AND first_response_due_at <= $1",
    )
    .bind(until)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Unanswered {
            id: r.0,
            due_at: r.1,
        })
        .collect())
}

/// A ticket as the watch re-checks it when its run comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub id: i64,
    pub status: String,
    pub first_response_at: Option<Millis>,
    pub first_response_due_at: Option<Millis>,
    pub waiting_since: Option<Millis>,
}

type WatchedRow = (i64, String, Option<i64>, Option<i64>, Option<i64>);

pub async fn watched(conn: &mut AnyConnection, id: i64) -> Result<Option<Watched>, DbError> {
    let row: Option<WatchedRow> = sqlx::query_as(
        "SELECT id, status, first_response_at, first_response_due_at, waiting_since \
         FROM tickets WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Watched {
        id: r.0,
        status: r.1,
        first_response_at: r.2,
        first_response_due_at: r.3,
        waiting_since: r.4,
    }))
}

/// Tickets waiting on the client since `before` or longer: (id, since).
pub async fn waiting_since_before(
    conn: &mut AnyConnection,
    before: Millis,
) -> Result<Vec<(i64, Millis)>, DbError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, waiting_since FROM tickets WHERE status = 'waiting-on-client' \
         AND waiting_since IS NOT NULL AND waiting_since <= $1",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Raw messages of tickets received before `before` and not yet purged,
/// whose raw copy no later message and no quarantined one shares (a
/// re-delivered message is stored once): (raw sha256), at most `limit`.
pub async fn purgeable_raw(
    conn: &mut AnyConnection,
    before: Millis,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT m.raw_sha256 FROM messages m \
         WHERE m.raw_sha256 IS NOT NULL AND m.raw_purged_at IS NULL AND m.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM messages n WHERE n.raw_sha256 = m.raw_sha256 \
                         AND n.created_at >= $1) \
         AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.raw_sha256 = m.raw_sha256) \
         ORDER BY m.raw_sha256 LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Records that the raw copy `sha256` is gone.
pub async fn mark_raw_purged(
    conn: &mut AnyConnection,
    sha256: &str,
    now: Millis,
) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "UPDATE messages SET raw_purged_at = $1 WHERE raw_sha256 = $2 AND raw_purged_at IS NULL",
    )
    .bind(now)
    .bind(sha256)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
