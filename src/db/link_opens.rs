//! The append-only record of signed-link opens. A GET may write here and
//! nowhere else: link scanners in mail systems open links too.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

pub struct LinkOpen<'a> {
    pub purpose: &'a str,
    pub resource: &'a str,
    pub contact_id: i64,
    /// opened, expired, revoked
    pub result: &'a str,
    pub remote_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub at: Millis,
}

pub async fn record(conn: &mut AnyConnection, open: &LinkOpen<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO link_opens (purpose, resource, contact_id, result, remote_addr, user_agent, opened_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(open.purpose)
    .bind(open.resource)
    .bind(open.contact_id)
    .bind(open.result)
    .bind(open.remote_addr)
    .bind(open.user_agent.map(|u| u.chars().take(200).collect::<String>()))
    .bind(open.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn count_for_contact(conn: &mut AnyConnection, contact_id: i64) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM link_opens WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n)
}
