//! What the pay forms of the invoice and statement pages share: reading an
//! amount as a client types it, starting the payment, and where the browser
//! goes next (the provider's checkout, or back with a notice).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::WebState;
use crate::billing::pay::{start_payment, PayRequest, PayStart};
use crate::db::contacts::Contact;
use crate::domain::{Currency, Money};

/// `"1,234.50"` / `"1234.5"` in `currency` → minor units, or what to tell
/// the client.
pub(crate) fn parse_amount(text: &str, currency: &str) -> Result<i64, String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != ' ')
        .collect();
    if cleaned.is_empty() {
        return Ok(0);
    }
    let currency = Currency::parse(currency).map_err(|e| e.to_string())?;
    Money::parse(&cleaned, currency)
        .map(|m| m.minor())
        .map_err(|_| format!("“{}” is not an amount in {}.", text.trim(), currency.code()))
}

/// Starts paying `items` for `contact`; the response is a redirect, or
/// `Err(notice)` for the page to show again.
pub(crate) async fn start(
    state: &WebState,
    contact: &Contact,
    items: Vec<(String, i64)>,
    return_path: &str,
) -> Result<Response, String> {
    let Some(provider) = &state.app.payments else {
        return Err("Online payment is not set up; please see how to pay below.".into());
    };
    let request = PayRequest {
        contact,
        items,
        return_path,
    };
    match start_payment(&state.app, provider, &request).await {
        Ok(Ok(PayStart::Redirect(url))) => Ok(see_other(&url)),
        Ok(Ok(PayStart::PaidWithCredit)) => Ok(see_other(&format!("{return_path}?paid=1"))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "starting a payment failed");
            Err("Payment could not be started just now; please try again later.".into())
        }
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, ()).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub(crate) fn form_expired(state: &WebState) -> Response {
    state.pages.render(
        StatusCode::FORBIDDEN,
        "form_expired",
        "Please try again",
        json!({}),
    )
}
