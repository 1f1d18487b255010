//! Invoices and their lines. Amounts are minor units; the caller computes
//! line amounts and totals with `domain::money` before anything is stored,
//! so stored totals always equal the sum of the stored lines.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;
use crate::domain::{Currency, InvoiceStatus, Money, PricedLine, Quantity, TaxRounding, Totals};

/// One line to store, priced.
#[derive(Debug, Clone)]
pub struct NewInvoiceLine {
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub priced: PricedLine,
}

#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub number: String,
    pub client_id: i64,
    pub status: InvoiceStatus,
    pub currency: Currency,
    pub issue_date: chrono::NaiveDate,
    pub due_date: chrono::NaiveDate,
    pub tax_rounding: TaxRounding,
    pub lines: Vec<NewInvoiceLine>,
    pub totals: Totals,
    pub notes: Option<String>,
    pub terms: Option<String>,
}

fn rounding_str(r: TaxRounding) -> &'static str {
    match r {
        TaxRounding::PerLine => "per-line",
        TaxRounding::PerInvoice => "per-invoice",
    }
}

/// Inserts the invoice unless its number exists; returns the new id, or
/// `None` when the number was taken (the existing invoice is untouched).
pub async fn insert_invoice(
    conn: &mut AnyConnection,
    invoice: &NewInvoice,
    now: Millis,
) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO invoices (number, client_id, status, currency, issue_date, due_date, \
         tax_rounding, subtotal_minor, tax_minor, total_minor, notes, terms, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
         ON CONFLICT (number) DO NOTHING RETURNING id",
    )
    .bind(&invoice.number)
    .bind(invoice.client_id)
    .bind(invoice.status.as_str())
    .bind(invoice.currency.code())
    .bind(invoice.issue_date.to_string())
    .bind(invoice.due_date.to_string())
    .bind(rounding_str(invoice.tax_rounding))
    .bind(invoice.totals.subtotal.minor())
    .bind(invoice.totals.tax.minor())
    .bind(invoice.totals.total.minor())
    .bind(invoice.notes.as_deref())
    .bind(invoice.terms.as_deref())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id,)) = row else { return Ok(None) };
    for (position, line) in invoice.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, position, description, quantity_milli, \
             unit_price_minor, tax_rate_bp, net_minor, tax_minor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&line.description)
        .bind(line.quantity.thousandths())
        .bind(line.unit_price.minor())
        .bind(line.priced.rate.basis_points())
        .bind(line.priced.net.minor())
        .bind(line.priced.tax.minor())
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(id))
}

/// What a link or a list needs to know of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceSummary {
    pub id: i64,
    pub number: String,
    pub client_id: i64,
    pub status: String,
    pub currency: String,
    pub due_date: String,
    pub total_minor: i64,
    pub paid_minor: i64,
}

pub async fn invoice_by_number(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<InvoiceSummary>, DbError> {
    type Row = (i64, String, i64, String, String, String, i64, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, number, client_id, status, currency, due_date, total_minor, paid_minor \
         FROM invoices WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| InvoiceSummary {
        id: r.0,
        number: r.1,
        client_id: r.2,
        status: r.3,
        currency: r.4,
        due_date: r.5,
        total_minor: r.6,
        paid_minor: r.7,
    }))
}

/// The client a quote belongs to, by number.
pub async fn quote_client(conn: &mut AnyConnection, number: &str) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT client_id FROM quotes WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}
