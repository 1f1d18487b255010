//! What the monthly service report of a client reads: its tickets opened
//! and closed in a period, and the invoices issued in it.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;

/// A ticket as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTicket {
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub created_at: Millis,
    pub first_response_at: Option<Millis>,
    pub first_response_due_at: Option<Millis>,
    pub closed_at: Option<Millis>,
    pub time_worked_minutes: i64,
}

type TicketRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// The client's tickets opened in `[from, to)`, oldest first.
pub async fn tickets_opened(
    conn: &mut AnyConnection,
    client_id: i64,
    from: Millis,
    to: Millis,
) -> Result<Vec<ReportTicket>, DbError> {
    let rows: Vec<TicketRow> = sqlx::query_as(
        "SELECT number, subject, status, priority, created_at, first_response_at, \
         first_response_due_at, closed_at, time_worked_minutes FROM tickets \
         WHERE client_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReportTicket {
            number: r.0,
            subject: r.1,
            status: r.2,
            priority: r.3,
            created_at: r.4,
            first_response_at: r.5,
            first_response_due_at: r.6,
            closed_at: r.7,
            time_worked_minutes: r.8,
        })
        .collect())
}

/// How many of the client's tickets were closed in `[from, to)`.
pub async fn tickets_closed(
    conn: &mut AnyConnection,
    client_id: i64,
    from: Millis,
    to: Millis,
) -> Result<i64, DbError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM tickets WHERE client_id = $1 \
         AND closed_at IS NOT NULL AND closed_at >= $2 AND closed_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// An invoice issued in the period: (number, currency, total, status).
pub async fn invoices_issued(
    conn: &mut AnyConnection,
    client_id: i64,
    first_day: &str,
    last_day: &str,
) -> Result<Vec<(String, String, i64, String)>, DbError> {
    let rows = sqlx::query_as(
        "SELECT number, currency, total_minor, status FROM invoices WHERE client_id = $1 \
         AND issue_date >= $2 AND issue_date <= $3 AND status <> 'draft' \
         ORDER BY issue_date, number",
    )
    .bind(client_id)
    .bind(first_day)
    .bind(last_day)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}
