//! Payments, their allocation to invoices, store credit, and the record of
//! provider webhook events already applied.
//!
//! An invoice's `paid_minor` and status are never set by hand: they are
//! recomputed from its succeeded (and processing) allocations by
//! [`refresh_invoice`], inside the transaction that moved the money. Nothing
//! here talks to a provider or sends mail; `billing` orchestrates.

use sqlx::AnyConnection;

use super::invoices::{invoice_by_id, summary_of, InvoiceSummary, SummaryRow};
use super::DbError;
use crate::domain::{InvoiceStatus, PaymentStatus};

/// A payment to record, with the invoices it settles.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub client_id: i64,
    /// Who paid, when a contact did (not for staff-booked transfers).
    pub contact_id: Option<i64>,
    /// card, us-bank-account, sepa-debit, bank-transfer, cash, credit, manual
    pub method: &'a str,
    pub provider: Option<&'a str>,
    pub provider_reference: Option<&'a str>,
    /// Staff's free-text reference (a bank transfer's), not unique.
    pub reference: Option<&'a str>,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub status: PaymentStatus,
    /// (invoice id, amount in minor units); they add up to `amount_minor`.
    pub allocations: &'a [(i64, i64)],
}

pub async fn insert_payment(
    conn: &mut AnyConnection,
    p: &NewPayment<'_>,
    now: i64,
) -> Result<i64, DbError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO payments (client_id, contact_id, invoice_id, method, provider, \
         provider_reference, reference, currency, amount_minor, status, received_at, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11) RETURNING id",
    )
    .bind(p.client_id)
    .bind(p.contact_id)
    // The single invoice, when there is one; the allocations are the truth.
    .bind(match p.allocations {
        [(invoice, _)] => Some(*invoice),
        _ => None,
    })
    .bind(p.method)
    .bind(p.provider)
    .bind(p.provider_reference)
    .bind(p.reference)
    .bind(p.currency)
    .bind(p.amount_minor)
    .bind(p.status.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    for (invoice_id, amount) in p.allocations {
        sqlx::query(
            "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) \
             VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(invoice_id)
        .bind(amount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// A stored payment and the invoices it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: i64,
    pub client_id: i64,
    pub contact_id: Option<i64>,
    pub method: String,
    pub provider_reference: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub status: PaymentStatus,
    pub allocations: Vec<Allocation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub invoice_id: i64,
    pub invoice_number: String,
    pub amount_minor: i64,
}

/// The payment a provider knows by `reference` (a Checkout Session id).
pub async fn payment_by_reference(
    conn: &mut AnyConnection,
    provider: &str,
    reference: &str,
) -> Result<Option<PaymentRecord>, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM payments WHERE provider = $1 AND provider_reference = $2")
            .bind(provider)
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((id,)) => payment_by_id(conn, id).await,
        None => Ok(None),
    }
}

pub async fn payment_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<PaymentRecord>, DbError> {
    type Row = (
        i64,
        i64,
        Option<i64>,
        String,
        Option<String>,
        String,
        i64,
        String,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, client_id, contact_id, method, provider_reference, currency, amount_minor, \
         status FROM payments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let status = PaymentStatus::parse(&r.7).ok_or_else(|| DbError::Corrupt {
        column: "payments.status",
        value: r.7.clone(),
    })?;
    let allocations: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT a.invoice_id, i.number, a.amount_minor FROM payment_allocations a \
         JOIN invoices i ON i.id = a.invoice_id WHERE a.payment_id = $1 ORDER BY i.number",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(PaymentRecord {
        id: r.0,
        client_id: r.1,
        contact_id: r.2,
        method: r.3,
        provider_reference: r.4,
        currency: r.5,
        amount_minor: r.6,
        status,
        allocations: allocations
            .into_iter()
            .map(|a| Allocation {
                invoice_id: a.0,
                invoice_number: a.1,
                amount_minor: a.2,
            })
            .collect(),
    }))
}

/// Sets the provider's reference once it is known (the session id comes back
/// after the row that reserved the attempt was written).
pub async fn set_provider_reference(
    conn: &mut AnyConnection,
    id: i64,
    reference: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE payments SET provider_reference = $1 WHERE id = $2")
        .bind(reference)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves payment `id` to `to` if it is in one of `from`; false when it was
/// not (already settled by an earlier event), so a caller changes nothing
/// else. `method` records how it was paid, once the provider says.
pub async fn transition_payment(
    conn: &mut AnyConnection,
    id: i64,
    from: &[PaymentStatus],
    to: PaymentStatus,
    method: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
    let sql = format!(
        "UPDATE payments SET status = $1, method = COALESCE($2, method), updated_at = $3, \
         received_at = $3 WHERE id = $4 AND status IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(method)
        .bind(now)
        .bind(id);
    for status in from {
        query = query.bind(status.as_str());
    }
    let done = query.execute(&mut *conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Changes what payment `payment_id` gives invoice `invoice_id` (an
/// allocation larger than the invoice's balance is cut to it when the money
/// arrives; the rest becomes store credit).
pub async fn set_allocation(
    conn: &mut AnyConnection,
    payment_id: i64,
    invoice_id: i64,
    amount_minor: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE payment_allocations SET amount_minor = $1 WHERE payment_id = $2 AND invoice_id = $3",
    )
    .bind(amount_minor)
    .bind(payment_id)
    .bind(invoice_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recomputes invoice `invoice_id`'s paid amount and status from its
/// allocations. `today` is the client's calendar day (`YYYY-MM-DD`), for
/// "overdue". Returns the invoice as it now stands.
pub async fn refresh_invoice(
    conn: &mut AnyConnection,
    invoice_id: i64,
    today: &str,
    now: i64,
) -> Result<InvoiceSummary, DbError> {
    let (paid, processing): (i64, i64) = sqlx::query_as(
        "SELECT \
           CAST(COALESCE(SUM(CASE WHEN p.status = 'succeeded' THEN a.amount_minor ELSE 0 END), 0) AS BIGINT), \
           CAST(COALESCE(SUM(CASE WHEN p.status = 'processing' THEN a.amount_minor ELSE 0 END), 0) AS BIGINT) \
         FROM payment_allocations a JOIN payments p ON p.id = a.payment_id \
         WHERE a.invoice_id = $1",
    )
    .bind(invoice_id)
    .fetch_one(&mut *conn)
    .await?;
    let current = invoice_by_id(&mut *conn, invoice_id)
        .await?
        .ok_or(DbError::Corrupt {
            column: "payment_allocations.invoice_id",
            value: invoice_id.to_string(),
        })?;
    let status = InvoiceStatus::parse(&current.status).ok_or_else(|| DbError::Corrupt {
        column: "invoices.status",
        value: current.status.clone(),
    })?;
    let past_due = current.due_date.as_str() < today;
    let next = status.after_payment(current.total_minor, paid, processing, past_due);
    if next != status || paid != current.paid_minor {
        sqlx::query(
            "UPDATE invoices SET paid_minor = $1, status = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(paid)
        .bind(next.as_str())
        .bind(now)
        .bind(invoice_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(InvoiceSummary {
        paid_minor: paid,
        status: next.as_str().to_string(),
        ..current
    })
}

/// One line of a payment history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentLine {
    pub received_at: i64,
    pub method: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: String,
    /// The invoices it settled, comma-separated numbers.
    pub invoices: String,
}

/// The payments applied to invoice `invoice_id` (what of each went to it),
/// processing ones included, failed and abandoned ones not.
pub async fn payments_of_invoice(
    conn: &mut AnyConnection,
    invoice_id: i64,
) -> Result<Vec<PaymentLine>, DbError> {
    let rows: Vec<(i64, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT p.received_at, p.method, p.currency, a.amount_minor, p.status, i.number \
         FROM payment_allocations a JOIN payments p ON p.id = a.payment_id \
         JOIN invoices i ON i.id = a.invoice_id \
         WHERE a.invoice_id = $1 AND p.status IN ('succeeded', 'processing') \
         ORDER BY p.received_at, p.id",
    )
    .bind(invoice_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(payment_line).collect())
}

/// A client's payments, newest first (failed ones too: the client should see
/// that a debit bounced), at most `limit`.
pub async fn client_payments(
    conn: &mut AnyConnection,
    client_id: i64,
    limit: i64,
) -> Result<Vec<PaymentLine>, DbError> {
    // One statement: the payments with their invoice numbers, one row per
    // allocation, grouped here (string aggregation is not portable SQL).
    type Row = (i64, i64, String, String, i64, String, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.id, p.received_at, p.method, p.currency, p.amount_minor, p.status, i.number \
         FROM (SELECT * FROM payments WHERE client_id = $1 \
               AND status IN ('succeeded', 'processing', 'failed') \
               ORDER BY received_at DESC, id DESC LIMIT $2) p \
         LEFT JOIN payment_allocations a ON a.payment_id = p.id \
         LEFT JOIN invoices i ON i.id = a.invoice_id \
         ORDER BY p.received_at DESC, p.id DESC, i.number",
    )
    .bind(client_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<(i64, PaymentLine)> = Vec::new();
    for (id, received_at, method, currency, amount, status, number) in rows {
        if out.last().map(|(last, _)| *last) != Some(id) {
            out.push((
                id,
                payment_line((received_at, method, currency, amount, status, String::new())),
            ));
        }
        if let (Some(number), Some((_, line))) = (number, out.last_mut()) {
            if !line.invoices.is_empty() {
                line.invoices.push_str(", ");
            }
            line.invoices.push_str(&number);
        }
    }
    Ok(out.into_iter().map(|(_, line)| line).collect())
}

fn payment_line(r: (i64, String, String, i64, String, String)) -> PaymentLine {
    PaymentLine {
        received_at: r.0,
        method: r.1,
        currency: r.2,
        amount_minor: r.3,
        status: r.4,
        invoices: r.5,
    }
}

/// A client's invoices that still ask for money (sent, partial, overdue,
/// processing), oldest due first.
pub async fn open_invoices(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<InvoiceSummary>, DbError> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT id, number, client_id, status, currency, due_date, total_minor, paid_minor \
         FROM invoices WHERE client_id = $1 \
         AND status IN ('sent', 'partial', 'overdue', 'processing') \
         AND total_minor > paid_minor ORDER BY due_date, number",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(summary_of).collect())
}

/// Amount still committed to unsettled (processing) payments of an invoice:
/// the part of its balance that must not be asked for twice.
pub async fn processing_of_invoice(
    conn: &mut AnyConnection,
    invoice_id: i64,
) -> Result<i64, DbError> {
    let (sum,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(a.amount_minor), 0) AS BIGINT) FROM payment_allocations a \
         JOIN payments p ON p.id = a.payment_id \
         WHERE a.invoice_id = $1 AND p.status = 'processing'",
    )
    .bind(invoice_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(sum)
}

/// The client's store credit in `currency` (the ledger's sum).
pub async fn store_credit(
    conn: &mut AnyConnection,
    client_id: i64,
    currency: &str,
) -> Result<i64, DbError> {
    let (sum,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM store_credit_entries \
         WHERE client_id = $1 AND currency = $2",
    )
    .bind(client_id)
    .bind(currency)
    .fetch_one(&mut *conn)
    .await?;
    Ok(sum)
}

/// Every currency the client holds credit in, with its balance (non-zero only).
pub async fn store_credit_balances(
    conn: &mut AnyConnection,
    client_id: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) FROM store_credit_entries WHERE client_id = $1 \
         GROUP BY currency HAVING SUM(amount_minor) <> 0 ORDER BY currency",
    )
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Appends to the store-credit ledger: positive adds credit (an
/// overpayment, a goodwill credit), negative uses it.
pub async fn add_store_credit(
    conn: &mut AnyConnection,
    client_id: i64,
    currency: &str,
    amount_minor: i64,
    reason: &str,
    invoice_id: Option<i64>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO store_credit_entries (client_id, currency, amount_minor, reason, \
         invoice_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client_id)
    .bind(currency)
    .bind(amount_minor)
    .bind(reason)
    .bind(invoice_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that webhook event `event_id` of `provider` is being applied; false
/// when it was already (a replay or a re-delivery), so the caller changes
/// nothing. Runs in the transaction that applies the event, so a crash leaves
/// the event unrecorded and the provider's retry applies it.
pub async fn record_webhook_event(
    conn: &mut AnyConnection,
    provider: &str,
    event_id: &str,
    kind: &str,
    now: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO webhook_events (provider, event_id, kind, received_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (provider, event_id) DO NOTHING",
    )
    .bind(provider)
    .bind(event_id)
    .bind(kind)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The payment of `client_id` recorded under our own `reference` (an
/// auto-pay attempt's idempotency key), if one was.
pub async fn payment_with_reference(
    conn: &mut AnyConnection,
    client_id: i64,
    reference: &str,
) -> Result<Option<PaymentRecord>, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM payments WHERE client_id = $1 AND reference = $2")
            .bind(client_id)
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((id,)) => payment_by_id(conn, id).await,
        None => Ok(None),
    }
}
