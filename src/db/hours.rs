//! Prepaid hour blocks and the time entries that draw them down (or wait
//! to be billed). The rules — which block an entry draws from, when the
//! primary contact is told — live in `crate::billing::hours`.

use sqlx::AnyConnection;

use super::expiring::Upserted;
use super::DbError;
use crate::clock::Millis;

/// A block to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlock {
    pub client_id: i64,
    pub name: String,
    pub minutes: i64,
    pub starts_on: chrono::NaiveDate,
    pub ends_on: Option<chrono::NaiveDate>,
}

/// Adds the block, or updates the one of that client and name; an
/// unchanged one is not written.
pub async fn upsert_block(
    conn: &mut AnyConnection,
    b: &NewBlock,
    now: Millis,
) -> Result<Upserted, DbError> {
    let existing: Option<(i64, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, minutes, starts_on, ends_on FROM hour_blocks WHERE client_id = $1 AND name = $2",
    )
    .bind(b.client_id)
    .bind(&b.name)
    .fetch_optional(&mut *conn)
    .await?;
    let starts = b.starts_on.to_string();
    let ends = b.ends_on.map(|d| d.to_string());
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO hour_blocks (client_id, name, minutes, starts_on, ends_on, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(b.client_id)
            .bind(&b.name)
            .bind(b.minutes)
            .bind(&starts)
            .bind(&ends)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(Upserted::Added)
        }
        Some(e) if e.1 == b.minutes && e.2 == starts && e.3 == ends => Ok(Upserted::Unchanged),
        Some(e) => {
            sqlx::query(
                "UPDATE hour_blocks SET minutes = $1, starts_on = $2, ends_on = $3 WHERE id = $4",
            )
            .bind(b.minutes)
            .bind(&starts)
            .bind(&ends)
            .bind(e.0)
            .execute(&mut *conn)
            .await?;
            Ok(Upserted::Updated)
        }
    }
}

/// A block with what has been drawn from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockUse {
    pub id: i64,
    pub name: String,
    pub minutes: i64,
    pub used: i64,
    pub starts_on: String,
    pub ends_on: Option<String>,
}

/// The client's blocks that can be drawn on `today`, oldest first.
pub async fn open_blocks(
    conn: &mut AnyConnection,
    client_id: i64,
    today: &str,
) -> Result<Vec<BlockUse>, DbError> {
    let rows: Vec<(i64, String, i64, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT b.id, b.name, b.minutes, \
           CAST(COALESCE((SELECT SUM(t.minutes) FROM time_entries t WHERE t.block_id = b.id), 0) AS BIGINT), \
           b.starts_on, b.ends_on \
         FROM hour_blocks b WHERE b.client_id = $1 AND b.starts_on <= $2 \
         AND (b.ends_on IS NULL OR b.ends_on >= $2) ORDER BY b.starts_on, b.id",
    )
    .bind(client_id)
    .bind(today)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BlockUse {
            id: r.0,
            name: r.1,
            minutes: r.2,
            used: r.3,
            starts_on: r.4,
            ends_on: r.5,
        })
        .collect())
}

pub async fn insert_entry(
    conn: &mut AnyConnection,
    ticket_id: i64,
    client_id: Option<i64>,
    minutes: i64,
    block_id: Option<i64>,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO time_entries (ticket_id, client_id, minutes, block_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ticket_id)
    .bind(client_id)
    .bind(minutes)
    .bind(block_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The client's time not covered by a block and not yet invoiced:
/// (entry ids, total minutes).
pub async fn unbilled(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<(Vec<i64>, i64), DbError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, minutes FROM time_entries WHERE client_id = $1 AND block_id IS NULL \
         AND invoice_id IS NULL ORDER BY id",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    let total = rows.iter().map(|r| r.1).sum();
    Ok((rows.into_iter().map(|r| r.0).collect(), total))
}

/// Records that `entries` were billed on `invoice_id`.
pub async fn mark_billed(
    conn: &mut AnyConnection,
    entries: &[i64],
    invoice_id: i64,
) -> Result<(), DbError> {
    for id in entries {
        sqlx::query("UPDATE time_entries SET invoice_id = $1 WHERE id = $2 AND invoice_id IS NULL")
            .bind(invoice_id)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Minutes the client's tickets were worked on between `from` and `to`.
pub async fn minutes_between(
    conn: &mut AnyConnection,
    client_id: i64,
    from: Millis,
    to: Millis,
) -> Result<i64, DbError> {
    let (m,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM time_entries \
         WHERE client_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    Ok(m)
}
