//! Recurring invoice definitions: what a client is billed on a schedule
//! (scope, price, frequency, next bill date, auto-pay). Generating the
//! invoices belongs to the scheduler; this is their storage.

use sqlx::AnyConnection;

use super::DbError;
use crate::domain::{Currency, Frequency, Money, Quantity, TaxRate};

#[derive(Debug, Clone)]
pub struct NewRecurring {
    pub client_id: i64,
    pub scope: String,
    pub currency: Currency,
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub tax_rate: TaxRate,
    pub frequency: Frequency,
    pub next_bill_date: chrono::NaiveDate,
    pub payment_terms_days: u32,
    pub auto_pay: bool,
}

/// Adds a definition unless the client has one of that scope already;
/// returns its id, or `None` when it was kept as it was (import is
/// idempotent).
pub async fn insert_recurring(
    conn: &mut AnyConnection,
    r: &NewRecurring,
    now: i64,
) -> Result<Option<i64>, DbError> {
    let existing: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM recurring_invoices WHERE client_id = $1 AND scope = $2")
            .bind(r.client_id)
            .bind(&r.scope)
            .fetch_optional(&mut *conn)
            .await?;
    if existing.is_some() {
        return Ok(None);
    }
    use chrono::Datelike;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO recurring_invoices (client_id, scope, currency, description, quantity_milli, \
         unit_price_minor, tax_rate_bp, frequency, anchor_day, next_bill_date, \
         payment_terms_days, auto_pay, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13) RETURNING id",
    )
    .bind(r.client_id)
    .bind(&r.scope)
    .bind(r.currency.code())
    .bind(&r.description)
    .bind(r.quantity.thousandths())
    .bind(r.unit_price.minor())
    .bind(r.tax_rate.basis_points())
    .bind(r.frequency.as_str())
    .bind(i64::from(r.next_bill_date.day()))
    .bind(r.next_bill_date.to_string())
    .bind(i64::from(r.payment_terms_days))
    .bind(i64::from(r.auto_pay))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(id))
}

/// A definition as the statement shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecurringRow {
    pub id: i64,
    pub scope: String,
    pub description: String,
    pub currency: String,
    pub quantity_milli: i64,
    pub unit_price_minor: i64,
    pub tax_rate_bp: i64,
    pub frequency: String,
    pub next_bill_date: String,
    pub auto_pay: bool,
    pub payment_method_id: Option<i64>,
}

/// A client's active definitions, next bill date first.
pub async fn client_recurring(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<RecurringRow>, DbError> {
    type Row = (
        i64,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        String,
        String,
        i64,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, scope, description, currency, quantity_milli, unit_price_minor, tax_rate_bp, \
         frequency, next_bill_date, auto_pay, payment_method_id FROM recurring_invoices \
         WHERE client_id = $1 AND active = 1 ORDER BY next_bill_date, id",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RecurringRow {
            id: r.0,
            scope: r.1,
            description: r.2,
            currency: r.3,
            quantity_milli: r.4,
            unit_price_minor: r.5,
            tax_rate_bp: r.6,
            frequency: r.7,
            next_bill_date: r.8,
            auto_pay: r.9 != 0,
            payment_method_id: r.10,
        })
        .collect())
}

/// A definition whose bill date may have come, with its client's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRecurring {
    pub id: i64,
    pub client_id: i64,
    pub next_bill_date: String,
    pub client_timezone: Option<String>,
}

/// Active definitions billing on or before `latest` (a date no client's
/// today can be past; the planner checks each client's own day).
pub async fn due_definitions(
    conn: &mut AnyConnection,
    latest: &str,
) -> Result<Vec<DueRecurring>, DbError> {
    let rows: Vec<(i64, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT r.id, r.client_id, r.next_bill_date, c.timezone \
         FROM recurring_invoices r JOIN clients c ON c.id = r.client_id \
         WHERE r.active = 1 AND r.next_bill_date <= $1",
    )
    .bind(latest)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DueRecurring {
            id: r.0,
            client_id: r.1,
            next_bill_date: r.2,
            client_timezone: r.3,
        })
        .collect())
}

/// Everything needed to bill a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub id: i64,
    pub client_id: i64,
    pub scope: String,
    pub currency: String,
    pub description: String,
    pub quantity_milli: i64,
    pub unit_price_minor: i64,
    pub tax_rate_bp: i64,
    pub frequency: String,
    pub anchor_day: i64,
    pub next_bill_date: String,
    pub payment_terms_days: i64,
    pub auto_pay: bool,
    pub payment_method_id: Option<i64>,
    pub active: bool,
}

pub async fn definition(conn: &mut AnyConnection, id: i64) -> Result<Option<Definition>, DbError> {
    type Row = (
        i64,
        i64,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        String,
        i64,
        String,
        i64,
        i64,
        Option<i64>,
        i64,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, client_id, scope, currency, description, quantity_milli, unit_price_minor, \
         tax_rate_bp, frequency, anchor_day, next_bill_date, payment_terms_days, auto_pay, \
         payment_method_id, active FROM recurring_invoices WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Definition {
        id: r.0,
        client_id: r.1,
        scope: r.2,
        currency: r.3,
        description: r.4,
        quantity_milli: r.5,
        unit_price_minor: r.6,
        tax_rate_bp: r.7,
        frequency: r.8,
        anchor_day: r.9,
        next_bill_date: r.10,
        payment_terms_days: r.11,
        auto_pay: r.12 != 0,
        payment_method_id: r.13,
        active: r.14 != 0,
    }))
}

/// Moves a definition's next bill date from `from` to `to`. False when it
/// was not at `from` any more (billed already): the caller rolls back.
pub async fn advance(
    conn: &mut AnyConnection,
    id: i64,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE recurring_invoices SET next_bill_date = $1, updated_at = $2 \
         WHERE id = $3 AND next_bill_date = $4 AND active = 1",
    )
    .bind(to)
    .bind(now)
    .bind(id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
