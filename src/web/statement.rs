//! `GET /statement`: a client's account as a statement link opens it —
//! balance due, store credit, open invoices (with the amounts to pay, which
//! the client may change and pay together), payment history and recurring
//! invoices with their next bill date. Shows; changes nothing.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::pages::money;
use super::{csrf, link_holder, WebState};
use crate::billing::settle::method_label;
use crate::db::contacts::{self, Contact};
use crate::db::{payments, recurring};
use crate::domain::{price_line, Currency, Frequency, InvoiceStatus, Money, Quantity, TaxRate};
use crate::links::LinkPurpose;

pub(crate) async fn show(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let contact = match link_holder(&state, &headers, LinkPurpose::Statement, "").await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    page(&state, &contact, None).await
}

/// The statement of `contact`'s client, with `notice` on top.
pub(crate) async fn page(state: &WebState, contact: &Contact, notice: Option<&str>) -> Response {
    let Some(client_id) = contact.client_id else {
        return state.pages.not_found();
    };
    match statement_data(state, client_id).await {
        Ok(mut data) => {
            let secure = state.app.config.web.base_url.starts_with("https://");
            let (token, cookie) = csrf::issue("/statement", secure);
            if let Value::Object(map) = &mut data {
                map.insert("csrf".into(), json!(token));
                map.insert("notice".into(), json!(notice));
                map.insert("pay".into(), super::invoice::pay_options(state));
            }
            let mut response = state
                .pages
                .render(StatusCode::OK, "statement", "Statement", data);
            if let Some(cookie) = cookie {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "statement page: database");
            state.pages.unavailable()
        }
    }
}

async fn statement_data(state: &WebState, client_id: i64) -> Result<Value, crate::db::DbError> {
    let mut conn = state.app.db.conn().await?;
    let client = contacts::client_name(&mut conn, client_id)
        .await?
        .unwrap_or_default();
    let open = payments::open_invoices(&mut conn, client_id).await?;
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let mut invoices = Vec::new();
    for inv in &open {
        let processing = payments::processing_of_invoice(&mut conn, inv.id).await?;
        let balance = inv.total_minor - inv.paid_minor;
        let payable = (balance - processing).max(0);
        *balances.entry(inv.currency.clone()).or_default() += balance;
        invoices.push(json!({
            "number": inv.number,
            "due_date": inv.due_date,
            "status": InvoiceStatus::parse(&inv.status).map(|s| s.label()).unwrap_or("Unknown"),
            "currency": inv.currency,
            "balance": money(balance, &inv.currency),
            "payable": payable > 0,
            "payable_plain": plain_amount(payable, &inv.currency),
        }));
    }
    let credits = payments::store_credit_balances(&mut conn, client_id).await?;
    let history = payments::client_payments(&mut conn, client_id, 50).await?;
    let plans = recurring::client_recurring(&mut conn, client_id).await?;
    Ok(json!({
        "client": client,
        "balances": balances.iter().filter(|(_, v)| **v > 0)
            .map(|(c, v)| json!({"currency": c, "amount": money(*v, c)})).collect::<Vec<_>>(),
        "credits": credits.iter().filter(|(_, v)| *v > 0)
            .map(|(c, v)| json!({"currency": c, "amount": money(*v, c)})).collect::<Vec<_>>(),
        "invoices": invoices,
        "payments": history.iter().map(|p| json!({
            "date": super::invoice::day_of(p.received_at),
            "method": method_label(&p.method),
            "invoices": p.invoices,
            "status": match p.status.as_str() {
                "succeeded" => "Received",
                "processing" => "Processing",
                _ => "Failed",
            },
            "amount": money(p.amount_minor, &p.currency),
        })).collect::<Vec<_>>(),
        "recurring": plans.iter().map(|r| json!({
            "scope": r.scope,
            "frequency": Frequency::parse(&r.frequency).map(|f| f.label()).unwrap_or("Unknown"),
            "next_bill_date": r.next_bill_date,
            "auto_pay": r.auto_pay,
            "amount": recurring_amount(r),
        })).collect::<Vec<_>>(),
    }))
}

/// What one bill of a recurring invoice comes to, tax included.
fn recurring_amount(r: &recurring::RecurringRow) -> String {
    let Ok(currency) = Currency::parse(&r.currency) else {
        return String::new();
    };
    match price_line(
        Quantity::from_thousandths(r.quantity_milli),
        Money::from_minor(r.unit_price_minor, currency),
        TaxRate::from_basis_points(r.tax_rate_bp),
    ) {
        Ok(line) => money(line.net.minor() + line.tax.minor(), &r.currency),
        Err(_) => String::new(),
    }
}

/// `1234.50`: an amount as a client types it back into a form.
pub(crate) fn plain_amount(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money::from_minor(minor, c).to_string(),
        Err(_) => minor.to_string(),
    }
}

/// `POST /statement/pay`: pays the amounts typed next to the open invoices
/// (fields `amount:<number>`) together.
pub(crate) async fn pay(
    State(state): State<WebState>,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let contact = match link_holder(&state, &headers, LinkPurpose::Statement, "").await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    let csrf_value = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !csrf::check(&headers, csrf_value) {
        return super::pay::form_expired(&state);
    }
    let Some(client_id) = contact.client_id else {
        return state.pages.not_found();
    };
    let open = match state.app.db.conn().await {
        Ok(mut conn) => payments::open_invoices(&mut conn, client_id).await,
        Err(e) => Err(e),
    };
    let open = match open {
        Ok(open) => open,
        Err(e) => {
            tracing::error!(error = %e, "statement payment: database");
            return state.pages.unavailable();
        }
    };
    let mut items = Vec::new();
    for (key, value) in &fields {
        let Some(number) = key.strip_prefix("amount:") else {
            continue;
        };
        // Only the client's open invoices; anything else is not theirs.
        let Some(invoice) = open.iter().find(|i| i.number == number) else {
            return page(
                &state,
                &contact,
                Some(&format!("Invoice {number} cannot be paid here.")),
            )
            .await;
        };
        match super::pay::parse_amount(value, &invoice.currency) {
            Ok(amount) => items.push((number.to_string(), amount)),
            Err(message) => return page(&state, &contact, Some(&message)).await,
        }
    }
    match super::pay::start(&state, &contact, items, "/statement").await {
        Ok(response) => response,
        Err(message) => page(&state, &contact, Some(&message)).await,
    }
}
