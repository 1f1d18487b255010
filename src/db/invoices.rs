//! Invoices and their lines. Amounts are minor units; the caller computes
//! line amounts and totals with `domain::money` before anything is stored,
//! so stored totals always equal the sum of the stored lines.

use sqlx::AnyConnection;

use super::DbError;
use crate::clock::Millis;
use crate::domain::{
    Currency, InvoiceStatus, Money, PricedLine, Quantity, QuoteStatus, TaxRounding, Totals,
};

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
    insert_lines(conn, LineTable::Invoice, id, &invoice.lines).await?;
    Ok(Some(id))
}

/// Which document's lines: invoices and quotes keep theirs in tables of the
/// same shape.
#[derive(Clone, Copy)]
enum LineTable {
    Invoice,
    Quote,
}

impl LineTable {
    /// (table, column naming the document)
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Invoice => ("invoice_lines", "invoice_id"),
            Self::Quote => ("quote_lines", "quote_id"),
        }
    }
}

async fn insert_lines(
    conn: &mut AnyConnection,
    table: LineTable,
    owner: i64,
    lines: &[NewInvoiceLine],
) -> Result<(), DbError> {
    let (table, owner_column) = table.names();
    for (position, line) in lines.iter().enumerate() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({owner_column}, position, description, quantity_milli, \
             unit_price_minor, tax_rate_bp, net_minor, tax_minor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(owner)
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
    Ok(())
}

async fn lines_of(
    conn: &mut AnyConnection,
    table: LineTable,
    owner: i64,
) -> Result<Vec<InvoiceLineRow>, DbError> {
    let (table, owner_column) = table.names();
    type Line = (String, i64, i64, i64, i64, i64);
    let lines: Vec<Line> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT description, quantity_milli, unit_price_minor, tax_rate_bp, net_minor, tax_minor \
         FROM {table} WHERE {owner_column} = $1 ORDER BY position"
    )))
    .bind(owner)
    .fetch_all(&mut *conn)
    .await?;
    Ok(lines
        .into_iter()
        .map(|l| InvoiceLineRow {
            description: l.0,
            quantity_milli: l.1,
            unit_price_minor: l.2,
            tax_rate_bp: l.3,
            net_minor: l.4,
            tax_minor: l.5,
        })
        .collect())
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

const SUMMARY_COLUMNS: &str =
    "SELECT id, number, client_id, status, currency, due_date, total_minor, paid_minor \
     FROM invoices";
pub(super) type SummaryRow = (i64, String, i64, String, String, String, i64, i64);

pub async fn invoice_by_number(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<InvoiceSummary>, DbError> {
    let row: Option<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SUMMARY_COLUMNS} WHERE number = $1"
    )))
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(summary_of))
}

pub async fn invoice_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<InvoiceSummary>, DbError> {
    let row: Option<SummaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SUMMARY_COLUMNS} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(summary_of))
}

/// A client's invoices (every client's when `None`), newest first.
pub async fn list_invoices(
    conn: &mut AnyConnection,
    client_id: Option<i64>,
) -> Result<Vec<InvoiceSummary>, DbError> {
    const ORDER: &str = "ORDER BY issue_date DESC, number DESC";
    let rows: Vec<SummaryRow> = match client_id {
        Some(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SUMMARY_COLUMNS} WHERE client_id = $1 {ORDER}"
            )))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SUMMARY_COLUMNS} {ORDER}")))
                .fetch_all(&mut *conn)
                .await?
        }
    };
    Ok(rows.into_iter().map(summary_of).collect())
}

pub(super) fn summary_of(r: SummaryRow) -> InvoiceSummary {
    InvoiceSummary {
        id: r.0,
        number: r.1,
        client_id: r.2,
        status: r.3,
        currency: r.4,
        due_date: r.5,
        total_minor: r.6,
        paid_minor: r.7,
    }
}

/// The client a quote belongs to, by number.
pub async fn quote_client(conn: &mut AnyConnection, number: &str) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT client_id FROM quotes WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// One stored line, as shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceLineRow {
    pub description: String,
    pub quantity_milli: i64,
    pub unit_price_minor: i64,
    pub tax_rate_bp: i64,
    pub net_minor: i64,
    pub tax_minor: i64,
}

/// Everything the invoice page shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceDetail {
    pub summary: InvoiceSummary,
    pub client_name: String,
    pub issue_date: String,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub notes: Option<String>,
    pub terms: Option<String>,
    pub lines: Vec<InvoiceLineRow>,
}

pub async fn invoice_detail(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<InvoiceDetail>, DbError> {
    type Row = (
        i64,
        String,
        i64,
        String,
        String,
        String,
        i64,
        i64,
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
    );
    // One query for the head: a page view is a handful of statements.
    let row: Option<Row> = sqlx::query_as(
        "SELECT i.id, i.number, i.client_id, i.status, i.currency, i.due_date, i.total_minor, \
         i.paid_minor, c.name, i.issue_date, i.subtotal_minor, i.tax_minor, i.notes, i.terms \
         FROM invoices i JOIN clients c ON c.id = i.client_id WHERE i.number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let summary = summary_of((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7));
    let lines = lines_of(conn, LineTable::Invoice, summary.id).await?;
    Ok(Some(InvoiceDetail {
        summary,
        client_name: r.8,
        issue_date: r.9,
        subtotal_minor: r.10,
        tax_minor: r.11,
        notes: r.12,
        terms: r.13,
        lines,
    }))
}

/// Publishes a draft (status `sent`); false when it was not a draft. Sending
/// again an invoice already out only mails it again, so that is not an error
/// of the caller's either: it checks the status it gets back.
pub async fn mark_sent(conn: &mut AnyConnection, id: i64, now: i64) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE invoices SET status = 'sent', undeliverable = 0, updated_at = $1 \
         WHERE id = $2 AND status = 'draft'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Publishes a draft quote; false when it was not a draft.
pub async fn mark_quote_sent(conn: &mut AnyConnection, id: i64, now: i64) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE quotes SET status = 'sent', updated_at = $1 WHERE id = $2 AND status = 'draft'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Flags (or clears) an invoice whose mail reached no billing contact.
pub async fn set_undeliverable(
    conn: &mut AnyConnection,
    id: i64,
    undeliverable: bool,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE invoices SET undeliverable = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(undeliverable))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn is_undeliverable(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    let (flag,): (i64,) = sqlx::query_as("SELECT undeliverable FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(flag != 0)
}

/// Cancels an invoice nobody has paid anything of; false otherwise (a paid
/// or part-paid invoice is settled by a credit note, not voided).
pub async fn void_invoice(conn: &mut AnyConnection, id: i64, now: i64) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE invoices SET status = 'cancelled', updated_at = $1 \
         WHERE id = $2 AND status IN ('draft', 'sent', 'overdue') AND paid_minor = 0 \
         AND NOT EXISTS (SELECT 1 FROM payment_allocations a \
           JOIN payments p ON p.id = a.payment_id \
           WHERE a.invoice_id = $2 AND p.status IN ('processing', 'succeeded'))",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A snapshot of the business data a page request must never change: row
/// counts of the billing, mail and ticket tables and every invoice's state.
pub async fn business_snapshot(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let mut out = Vec::new();
    for table in [
        "invoices",
        "invoice_lines",
        "payments",
        "payment_allocations",
        "quotes",
        "store_credit_entries",
        "payment_methods",
        "recurring_invoices",
        "webhook_events",
        "outbox",
        "contacts",
        "tickets",
    ] {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await?;
        out.push(format!("{table}={n}"));
    }
    let states: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT number, status, paid_minor, updated_at FROM invoices ORDER BY number",
    )
    .fetch_all(&mut *conn)
    .await?;
    out.extend(
        states
            .into_iter()
            .map(|(n, s, p, u)| format!("{n}:{s}:{p}:{u}")),
    );
    let quotes: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT number, status, updated_at FROM quotes ORDER BY number")
            .fetch_all(&mut *conn)
            .await?;
    out.extend(
        quotes
            .into_iter()
            .map(|(n, s, u)| format!("quote {n}:{s}:{u}")),
    );
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct NewQuote {
    pub number: String,
    pub client_id: i64,
    pub status: QuoteStatus,
    pub currency: Currency,
    pub issue_date: chrono::NaiveDate,
    pub expiry_date: chrono::NaiveDate,
    pub tax_rounding: TaxRounding,
    pub lines: Vec<NewInvoiceLine>,
    pub totals: Totals,
    pub notes: Option<String>,
    pub terms: Option<String>,
}

/// Inserts the quote unless its number exists (then `None`, untouched).
pub async fn insert_quote(
    conn: &mut AnyConnection,
    quote: &NewQuote,
    now: Millis,
) -> Result<Option<i64>, DbError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO quotes (number, client_id, status, currency, issue_date, expiry_date, \
         tax_rounding, subtotal_minor, tax_minor, total_minor, notes, terms, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
         ON CONFLICT (number) DO NOTHING RETURNING id",
    )
    .bind(&quote.number)
    .bind(quote.client_id)
    .bind(quote.status.as_str())
    .bind(quote.currency.code())
    .bind(quote.issue_date.to_string())
    .bind(quote.expiry_date.to_string())
    .bind(rounding_str(quote.tax_rounding))
    .bind(quote.totals.subtotal.minor())
    .bind(quote.totals.tax.minor())
    .bind(quote.totals.total.minor())
    .bind(quote.notes.as_deref())
    .bind(quote.terms.as_deref())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id,)) = row else { return Ok(None) };
    insert_lines(conn, LineTable::Quote, id, &quote.lines).await?;
    Ok(Some(id))
}

/// Everything the quote page shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuoteDetail {
    pub id: i64,
    pub number: String,
    pub client_id: i64,
    pub client_name: String,
    pub status: String,
    pub currency: String,
    pub issue_date: String,
    pub expiry_date: String,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub notes: Option<String>,
    pub terms: Option<String>,
    pub lines: Vec<InvoiceLineRow>,
}

pub async fn quote_detail(
    conn: &mut AnyConnection,
    number: &str,
) -> Result<Option<QuoteDetail>, DbError> {
    type Head = (
        i64,
        String,
        i64,
        String,
        String,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        Option<String>,
        Option<String>,
    );
    let head: Option<Head> = sqlx::query_as(
        "SELECT q.id, q.number, q.client_id, c.name, q.status, q.currency, q.issue_date, \
         q.expiry_date, q.subtotal_minor, q.tax_minor, q.total_minor, q.notes, q.terms \
         FROM quotes q JOIN clients c ON c.id = q.client_id WHERE q.number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(h) = head else { return Ok(None) };
    let lines = lines_of(conn, LineTable::Quote, h.0).await?;
    Ok(Some(QuoteDetail {
        id: h.0,
        number: h.1,
        client_id: h.2,
        client_name: h.3,
        status: h.4,
        currency: h.5,
        issue_date: h.6,
        expiry_date: h.7,
        subtotal_minor: h.8,
        tax_minor: h.9,
        total_minor: h.10,
        notes: h.11,
        terms: h.12,
        lines,
    }))
}

/// Records a client's decision on a quote that is still open (`sent`);
/// false when it was decided already (nothing changes).
pub async fn decide_quote(
    conn: &mut AnyConnection,
    id: i64,
    decision: QuoteStatus,
    contact_id: i64,
    now: Millis,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE quotes SET status = $1, decided_at = $2, decided_by = $3, updated_at = $2 \
         WHERE id = $4 AND status = 'sent'",
    )
    .bind(decision.as_str())
    .bind(now)
    .bind(contact_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An invoice the dunning planner considers: published, unpaid, not
/// disputed, with its client's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningCandidate {
    pub id: i64,
    pub number: String,
    pub client_id: i64,
    pub due_date: String,
    pub client_timezone: Option<String>,
}

/// Every invoice that may need a payment reminder.
pub async fn dunning_candidates(
    conn: &mut AnyConnection,
) -> Result<Vec<DunningCandidate>, DbError> {
    let rows: Vec<(i64, String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT i.id, i.number, i.client_id, i.due_date, c.timezone \
         FROM invoices i JOIN clients c ON c.id = i.client_id \
         WHERE i.status IN ('sent', 'partial', 'overdue') AND i.disputed = 0 \
         AND i.total_minor > i.paid_minor",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DunningCandidate {
            id: r.0,
            number: r.1,
            client_id: r.2,
            due_date: r.3,
            client_timezone: r.4,
        })
        .collect())
}

/// Whether staff marked invoice `id` as disputed by the client.
pub async fn is_disputed(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT disputed FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some_and(|r| r.0 != 0))
}

/// Marks invoice `id` disputed (reminders stop) or not.
pub async fn set_disputed(
    conn: &mut AnyConnection,
    id: i64,
    disputed: bool,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query("UPDATE invoices SET disputed = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disputed))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A sent or partly paid invoice past its due date becomes overdue.
pub async fn mark_overdue(conn: &mut AnyConnection, id: i64, now: Millis) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE invoices SET status = 'overdue', updated_at = $1 \
         WHERE id = $2 AND status IN ('sent', 'partial')",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Links a generated invoice to the recurring definition it came from.
pub async fn set_recurring_origin(
    conn: &mut AnyConnection,
    invoice_id: i64,
    recurring_id: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE invoices SET recurring_id = $1 WHERE id = $2")
        .bind(recurring_id)
        .bind(invoice_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The recurring definition invoice `id` was generated from, if any.
pub async fn recurring_origin(conn: &mut AnyConnection, id: i64) -> Result<Option<i64>, DbError> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT recurring_id FROM invoices WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}
