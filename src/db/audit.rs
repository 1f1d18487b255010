//! The `audit_events` table: append an event, list them with filters, and
//! the retention prune — the only DELETE of the table (an UPDATE is refused
//! by a trigger on both backends). Times come from the caller's Clock.
//!
//! Link opens live here too (kind `link_open`); the older `link_opens`
//! table is no longer written (migration 0009 copied its rows over).

use sqlx::AnyConnection;

use super::DbError;
use crate::audit::{AuditEvent, AuditFilter, AuditRecord};
use crate::clock::{to_rfc3339, Millis};

/// Appends `event`, on `conn` — pass a transaction to commit it with the
/// change it records.
pub async fn record(conn: &mut AnyConnection, event: &AuditEvent) -> Result<(), DbError> {
    let detail = event.detail.as_ref().map(|d| d.to_string());
    sqlx::query(
        "INSERT INTO audit_events (occurred_at, kind, actor_kind, actor_id, client_id, action, \
         resource, outcome, remote_addr, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(event.at)
    .bind(event.kind.as_str())
    .bind(event.actor.kind())
    .bind(event.actor.id())
    .bind(event.client_id)
    .bind(event.action.as_ref())
    .bind(event.resource.clone())
    .bind(event.outcome.as_str())
    .bind(event.origin.remote_addr.clone())
    .bind(event.origin.user_agent.clone())
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

enum Param {
    Int(i64),
    Text(String),
}

/// Adds `param` and returns its placeholder (`$n`).
fn placeholder(params: &mut Vec<Param>, param: Param) -> String {
    params.push(param);
    format!("${}", params.len())
}

type Row = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The entries matching `filter`: the newest `limit` of them (all without
/// a limit), oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
) -> Result<Vec<AuditRecord>, DbError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    if let Some(since) = filter.since {
        let p = placeholder(&mut params, Param::Int(since));
        clauses.push(format!("occurred_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = placeholder(&mut params, Param::Int(until));
        clauses.push(format!("occurred_at < {p}"));
    }
    if let Some(kind) = filter.kind {
        let p = placeholder(&mut params, Param::Text(kind.as_str().into()));
        clauses.push(format!("kind = {p}"));
    }
    if let Some(client) = filter.client_id {
        let p = placeholder(&mut params, Param::Int(client));
        clauses.push(format!("client_id = {p}"));
    }
    if let Some((kind, id)) = &filter.actor {
        let p = placeholder(&mut params, Param::Text(kind.clone()));
        clauses.push(format!("actor_kind = {p}"));
        if let Some(id) = id {
            let p = placeholder(&mut params, Param::Text(id.clone()));
            clauses.push(format!("actor_id = {p}"));
        }
    }
    if let Some(prefix) = &filter.action_prefix {
        // SUBSTR rather than LIKE: no wildcards to escape, same on both backends.
        let len = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        let l = placeholder(&mut params, Param::Int(len));
        let p = placeholder(&mut params, Param::Text(prefix.clone()));
        clauses.push(format!("SUBSTR(action, 1, CAST({l} AS INTEGER)) = {p}"));
    }
    let mut sql = String::from(
        "SELECT id, occurred_at, kind, actor_kind, actor_id, client_id, action, resource, \
         outcome, remote_addr, user_agent, detail FROM audit_events",
    );
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY occurred_at DESC, id DESC");
    if let Some(limit) = filter.limit {
        let p = placeholder(&mut params, Param::Int(limit));
        sql.push_str(&format!(" LIMIT {p}"));
    }
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql));
    for p in params {
        query = match p {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
        };
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut records = rows
        .into_iter()
        .map(|r| AuditRecord {
            id: r.0,
            at: to_rfc3339(r.1),
            kind: r.2,
            actor_kind: r.3,
            actor_id: r.4,
            client_id: r.5,
            action: r.6,
            resource: r.7,
            outcome: r.8,
            remote_addr: r.9,
            user_agent: r.10,
            detail: r.11.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect::<Vec<_>>();
    records.reverse();
    Ok(records)
}

/// Deletes the entries that occurred before `cutoff`; how many.
pub async fn prune_older_than(conn: &mut AnyConnection, cutoff: Millis) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM audit_events WHERE occurred_at < $1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Whether any entry occurred before `cutoff` (the purge job plans a run
/// only then).
pub async fn any_older_than(conn: &mut AnyConnection, cutoff: Millis) -> Result<bool, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM audit_events WHERE occurred_at < $1 LIMIT 1")
            .bind(cutoff)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.is_some())
}

/// How many entries occurred before `cutoff` (a dry run of the prune).
pub async fn count_older_than(conn: &mut AnyConnection, cutoff: Millis) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE occurred_at < $1")
        .bind(cutoff)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n)
}

/// How often `contact_id`'s signed links were opened (`/l/<token>`).
pub async fn link_opens_by_contact(
    conn: &mut AnyConnection,
    contact_id: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE kind = 'link_open' AND action = 'link.open' \
         AND actor_kind = 'contact' AND actor_id = $1",
    )
    .bind(contact_id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}
