//! `GET /invoice/<number>`: the invoice a link opened, for the cookie's
//! holder only. Shows; changes nothing.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::pages::{document_lines, money};
use super::statement::plain_amount;
use super::{csrf, link_holder, WebState};
use crate::billing::settle::method_label;
use crate::db::contacts::Contact;
use crate::db::{invoices, payments};
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
    page(&state, &contact, &number, None).await
}

/// Invoice `number` as `contact` may see it, with `notice` on top.
pub(crate) async fn page(
    state: &WebState,
    contact: &Contact,
    number: &str,
    notice: Option<&str>,
) -> Response {
    let found = match state.app.db.conn().await {
        Ok(mut conn) => match invoices::invoice_detail(&mut conn, number).await {
            Ok(Some(d)) if Some(d.summary.client_id) == contact.client_id => {
                // One query for both: what was received and what is in flight.
                payments::payments_of_invoice(&mut conn, d.summary.id)
                    .await
                    .map(|paid| {
                        let processing = paid
                            .iter()
                            .filter(|p| p.status == "processing")
                            .map(|p| p.amount_minor)
                            .sum::<i64>();
                        Some((d, paid, processing))
                    })
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (detail, paid, processing) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return state.pages.not_found(),
        Err(e) => {
            tracing::error!(error = %e, "invoice page: database");
            return state.pages.unavailable();
        }
    };
    let cur = detail.summary.currency.as_str();
    let status = InvoiceStatus::parse(&detail.summary.status);
    let (lines, tax_lines) = document_lines(&detail.lines, cur, detail.tax_minor);
    let balance = detail.summary.total_minor - detail.summary.paid_minor;
    let payable = (balance - processing).max(0);
    let open_for_payment = matches!(
        status,
        Some(
            InvoiceStatus::Sent
                | InvoiceStatus::Partial
                | InvoiceStatus::Overdue
                | InvoiceStatus::Processing
        )
    ) && payable > 0;
    let secure = state.app.config.web.base_url.starts_with("https://");
    let path = format!("/invoice/{}", detail.summary.number);
    let (token, cookie) = csrf::issue(&path, secure);
    let data = json!({
        "number": detail.summary.number,
        "status": status.map(|s| s.label()).unwrap_or("Unknown"),
        "notice": notice,
        "client": detail.client_name,
        "issue_date": detail.issue_date,
        "due_date": detail.summary.due_date,
        "lines": lines,
        "tax_lines": tax_lines,
        "subtotal": money(detail.subtotal_minor, cur),
        "total": money(detail.summary.total_minor, cur),
        "paid": money(detail.summary.paid_minor, cur),
        "balance": money(balance, cur),
        "processing": (processing > 0).then(|| money(processing, cur)),
        "payments": paid.iter().map(|p| json!({
            "date": day_of(p.received_at),
            "method": method_label(&p.method),
            "status": if p.status == "processing" { "Processing" } else { "Received" },
            "amount": money(p.amount_minor, &p.currency),
        })).collect::<Vec<_>>(),
        "payable": open_for_payment,
        "payable_plain": plain_amount(payable, cur),
        "currency": cur,
        "pay": pay_options(state),
        "csrf": token,
        "terms": detail.terms,
        "notes": detail.notes,
    });
    let mut response = state.pages.render(
        StatusCode::OK,
        "invoice",
        &format!("Invoice {}", detail.summary.number),
        data,
    );
    if let (true, Some(cookie)) = (open_for_payment, cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// How the pages offer payment: online through the provider, or the
/// operator's instructions (a bank account) when none is configured.
pub(crate) fn pay_options(state: &WebState) -> Value {
    json!({
        "online": state.app.payments.is_some(),
        "instructions": state.app.config.payment_instructions,
    })
}

/// The calendar day (UTC) of an instant, for lists.
pub(crate) fn day_of(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
pub(crate) struct PayForm {
    amount: String,
    csrf: String,
}

/// `POST /invoice/<number>/pay`: pays `amount` of the invoice (store credit
/// first, then the provider's checkout, where the client is redirected).
pub(crate) async fn pay(
    State(state): State<WebState>,
    Path(number): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PayForm>,
) -> Response {
    let contact = match link_holder(&state, &headers, LinkPurpose::Invoice, &number).await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    if !csrf::check(&headers, &form.csrf) {
        return super::pay::form_expired(&state);
    }
    let currency = match state.app.db.conn().await {
        Ok(mut conn) => match invoices::invoice_by_number(&mut conn, &number).await {
            Ok(Some(i)) if Some(i.client_id) == contact.client_id => i.currency,
            Ok(_) => return state.pages.not_found(),
            Err(e) => {
                tracing::error!(error = %e, "invoice payment: database");
                return state.pages.unavailable();
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "invoice payment: database");
            return state.pages.unavailable();
        }
    };
    let path = format!("/invoice/{number}");
    let amount = match super::pay::parse_amount(&form.amount, &currency) {
        Ok(a) => a,
        Err(message) => return page(&state, &contact, &number, Some(&message)).await,
    };
    match super::pay::start(&state, &contact, vec![(number.clone(), amount)], &path).await {
        Ok(response) => response,
        Err(message) => page(&state, &contact, &number, Some(&message)).await,
    }
}

/// `GET /invoice/<number>/pdf`: the invoice as a PDF, for the link's holder.
pub(crate) async fn pdf(
    State(state): State<WebState>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Response {
    let contact = match link_holder(&state, &headers, LinkPurpose::Invoice, &number).await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    let found = match state.app.db.conn().await {
        Ok(mut conn) => match invoices::invoice_detail(&mut conn, &number).await {
            Ok(Some(d)) if Some(d.summary.client_id) == contact.client_id => {
                payments::payments_of_invoice(&mut conn, d.summary.id)
                    .await
                    .map(|paid| Some((d, paid)))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (detail, paid) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return state.pages.not_found(),
        Err(e) => {
            tracing::error!(error = %e, "invoice PDF: database");
            return state.pages.unavailable();
        }
    };
    let shown: Vec<crate::pdf::PdfPayment> = paid
        .iter()
        .filter(|p| p.status == "succeeded")
        .map(|p| crate::pdf::PdfPayment {
            date: day_of(p.received_at),
            method: method_label(&p.method).to_string(),
            amount_minor: p.amount_minor,
        })
        .collect();
    let branding = state.app.config.branding.clone();
    // Rendering is CPU work of a few milliseconds per page; keep it off the
    // request threads.
    let rendered =
        tokio::task::spawn_blocking(move || crate::pdf::render_invoice(&detail, &shown, &branding))
            .await;
    match rendered {
        Ok(Ok(bytes)) => {
            let disposition = format!("attachment; filename=\"invoice-{number}.pdf\"");
            let mut response = axum::response::IntoResponse::into_response(bytes);
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/pdf"),
            );
            if let Ok(value) = header::HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "invoice PDF could not be rendered");
            state.pages.unavailable()
        }
        Err(e) => {
            tracing::error!(error = %e, "invoice PDF task failed");
            state.pages.unavailable()
        }
    }
}
