//! `GET /invoice/<number>`: the invoice a link opened, for the cookie's
//! holder only. Shows; changes nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::pages::{document_lines, money};
use super::{link_holder, WebState};
use crate::db::invoices;
use crate::domain::InvoiceStatus;
use crate::links::LinkPurpose;

pub(crate) async fn show(
    State(state): State<WebState>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Response {
    let contact = match link_holder(&state, &headers, LinkPurpose::Invoice, &number).await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    let detail = match state.app.db.conn().await {
        Ok(mut conn) => invoices::invoice_detail(&mut conn, &number).await,
        Err(e) => Err(e),
    };
    let detail = match detail {
        Ok(Some(d)) if Some(d.summary.client_id) == contact.client_id => d,
        Ok(_) => return state.pages.not_found(),
        Err(e) => {
            tracing::error!(error = %e, "invoice page: database");
            return state.pages.unavailable();
        }
    };
    let cur = detail.summary.currency.as_str();
    let status = InvoiceStatus::parse(&detail.summary.status)
        .map(|s| s.label())
        .unwrap_or("Unknown");
    let (lines, tax_lines) = document_lines(&detail.lines, cur, detail.tax_minor);
    let balance = detail.summary.total_minor - detail.summary.paid_minor;
    let data = json!({
        "number": detail.summary.number,
        "status": status,
        "client": detail.client_name,
        "issue_date": detail.issue_date,
        "due_date": detail.summary.due_date,
        "lines": lines,
        "tax_lines": tax_lines,
        "subtotal": money(detail.subtotal_minor, cur),
        "total": money(detail.summary.total_minor, cur),
        "paid": money(detail.summary.paid_minor, cur),
        "balance": money(balance, cur),
        "terms": detail.terms,
        "notes": detail.notes,
    });
    state.pages.render(
        StatusCode::OK,
        "invoice",
        &format!("Invoice {}", detail.summary.number),
        data,
    )
}
