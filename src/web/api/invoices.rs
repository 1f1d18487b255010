//! `/api/v1/invoices` and `/api/v1/quotes`: create (the import's format and
//! validation; a new invoice is a draft unless the body says otherwise),
//! list, show, send, void, and record a payment received outside the
//! provider (a bank transfer, cash).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::json;

use super::clients::run_import;
use super::{body, created, ok, ApiError, ApiResult};
use crate::billing::{self, BillingError, ManualPayment};
use crate::db::{invoices, payments};
use crate::domain::{Currency, Money};
use crate::import::{ImportFile, ImportInvoice, ImportQuote};
use crate::web::WebState;

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    client_id: Option<i64>,
}

pub(super) async fn list(State(state): State<WebState>, Query(q): Query<ListQuery>) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    ok(invoices::list_invoices(&mut conn, q.client_id).await?)
}

pub(super) async fn show(State(state): State<WebState>, Path(number): Path<String>) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    let detail = invoices::invoice_detail(&mut conn, &number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("invoice {number}")))?;
    let paid = payments::payments_of_invoice(&mut conn, detail.summary.id).await?;
    let undeliverable = invoices::is_undeliverable(&mut conn, detail.summary.id).await?;
    ok(json!({
        "invoice": detail,
        "balance_minor": detail.summary.total_minor - detail.summary.paid_minor,
        "undeliverable": undeliverable,
        "payments": paid,
    }))
}

pub(super) async fn create(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let mut invoice: ImportInvoice = body(&bytes)?;
    invoice.status.get_or_insert_with(|| "draft".into());
    let number = invoice.number.trim().to_string();
    let summary = run_import(
        &state,
        ImportFile {
            invoices: vec![invoice],
            ..ImportFile::default()
        },
    )
    .await?;
    if summary.invoices_kept > 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("invoice {number} exists already"),
        ));
    }
    let mut conn = state.app.db.conn().await?;
    let detail = invoices::invoice_detail(&mut conn, &number).await?;
    created(detail)
}

pub(super) async fn send(State(state): State<WebState>, Path(number): Path<String>) -> ApiResult {
    match billing::send_invoice(&state.app, &number).await {
        Ok(sent) => ok(sent),
        Err(e) => Err(billing_error(e)),
    }
}

pub(super) async fn void(State(state): State<WebState>, Path(number): Path<String>) -> ApiResult {
    let now = state.app.clock.now_millis();
    let mut conn = state.app.db.conn().await?;
    let invoice = invoices::invoice_by_number(&mut conn, &number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("invoice {number}")))?;
    if !invoices::void_invoice(&mut conn, invoice.id, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "invoice {number} is {} or has payments; only an unpaid invoice can be voided",
                invoice.status
            ),
        ));
    }
    ok(json!({ "number": number, "status": "cancelled" }))
}

/// "Send reminder now": the reminder counts as the dunning stage that is due.
pub(super) async fn remind(State(state): State<WebState>, Path(number): Path<String>) -> ApiResult {
    match crate::schedule::dunning::send_now(&state.app, &number).await {
        Ok(report) => ok(report),
        Err(e) => Err(billing_error(e)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisputeBody {
    disputed: bool,
}

/// Marks an invoice disputed by the client (reminders and auto-pay stop) or
/// settles the dispute.
pub(super) async fn dispute(
    State(state): State<WebState>,
    Path(number): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let body: DisputeBody = body(&bytes)?;
    let now = state.app.clock.now_millis();
    let mut tx = state.app.db.begin().await?;
    let invoice = invoices::invoice_by_number(&mut tx, &number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("invoice {number}")))?;
    invoices::set_disputed(&mut tx, invoice.id, body.disputed, now).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    ok(json!({ "number": number, "disputed": body.disputed }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PaymentBody {
    /// In major units of the invoice's currency, as text: "120.50".
    amount: String,
    /// bank-transfer, cash, cheque, card, manual
    method: String,
    #[serde(default)]
    reference: Option<String>,
}

const MANUAL_METHODS: [&str; 5] = ["bank-transfer", "cash", "cheque", "card", "manual"];

pub(super) async fn pay(
    State(state): State<WebState>,
    Path(number): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let p: PaymentBody = body(&bytes)?;
    if !MANUAL_METHODS.contains(&p.method.as_str()) {
        return Err(ApiError::bad_request(format!(
            "method: `{}` is not one of {}",
            p.method,
            MANUAL_METHODS.join(", ")
        )));
    }
    let currency = {
        let mut conn = state.app.db.conn().await?;
        invoices::invoice_by_number(&mut conn, &number)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("invoice {number}")))?
            .currency
    };
    let currency = Currency::parse(&currency).map_err(ApiError::internal)?;
    let amount = Money::parse(&p.amount, currency)
        .map_err(|e| ApiError::bad_request(format!("amount: {e}")))?;
    let id = billing::record_manual_payment(
        &state.app,
        &ManualPayment {
            invoice_number: &number,
            amount_minor: amount.minor(),
            method: &p.method,
            reference: p.reference.as_deref(),
        },
    )
    .await
    .map_err(billing_error)?;
    let mut conn = state.app.db.conn().await?;
    let invoice = invoices::invoice_by_number(&mut conn, &number).await?;
    created(json!({ "payment_id": id, "invoice": invoice }))
}

pub(super) async fn create_quote(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let quote: ImportQuote = body(&bytes)?;
    let number = quote.number.trim().to_string();
    let summary = run_import(
        &state,
        ImportFile {
            quotes: vec![quote],
            ..ImportFile::default()
        },
    )
    .await?;
    if summary.quotes_kept > 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("quote {number} exists already"),
        ));
    }
    let mut conn = state.app.db.conn().await?;
    created(invoices::quote_detail(&mut conn, &number).await?)
}

pub(super) async fn show_quote(
    State(state): State<WebState>,
    Path(number): Path<String>,
) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    let quote = invoices::quote_detail(&mut conn, &number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("quote {number}")))?;
    ok(quote)
}

pub(super) async fn send_quote(
    State(state): State<WebState>,
    Path(number): Path<String>,
) -> ApiResult {
    match billing::send_quote(&state.app, &number).await {
        Ok(sent) => ok(sent),
        Err(e) => Err(billing_error(e)),
    }
}

/// A billing failure as the API answers it: the caller's mistakes are
/// 404/409/400 with the reason; anything else is ours.
fn billing_error(e: anyhow::Error) -> ApiError {
    match e.downcast_ref::<BillingError>() {
        Some(BillingError::UnknownInvoice(_) | BillingError::UnknownQuote(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string())
        }
        Some(BillingError::WrongState(..)) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        Some(BillingError::BadAmount(_)) => ApiError::bad_request(e.to_string()),
        None => ApiError::internal(format!("{e:#}")),
    }
}
