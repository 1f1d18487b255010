//! `GET /payment-methods`: a client's saved cards and bank accounts and the
//! auto-pay choice of each recurring invoice. The POSTs (CSRF-checked): add
//! one through the provider's hosted setup (which collects the consent and
//! mandate; the method is saved when its webhook arrives), remove one
//! (detached at the provider first, then never charged: auto-pay that used
//! it is switched off in the same statement), and choose auto-pay.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::audit::{Note, RequestOrigin};
use super::pay::{form_expired, see_other};
use super::{csrf, link_holder, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::db::contacts::{self, Contact};
use crate::db::{audit, payment_methods, recurring, DbError};
use crate::domain::{Currency, Frequency};
use crate::links::LinkPurpose;
use crate::payments::{CheckoutSetup, NewCustomer};

const PATH: &str = "/payment-methods";

async fn holder(state: &WebState, headers: &HeaderMap) -> Result<(Contact, i64), Response> {
    let contact = link_holder(state, headers, LinkPurpose::PaymentMethods, "").await?;
    match contact.client_id {
        Some(client) => Ok((contact, client)),
        None => Err(state.pages.not_found()),
    }
}

pub(crate) async fn show(State(state): State<WebState>, headers: HeaderMap) -> Response {
    match holder(&state, &headers).await {
        Ok((_, client)) => page(&state, client, None).await,
        Err(response) => response,
    }
}

async fn page(state: &WebState, client_id: i64, notice: Option<&str>) -> Response {
    let loaded = match state.app.db.conn().await {
        Ok(mut conn) => {
            let name = contacts::client_name(&mut conn, client_id).await;
            let methods = payment_methods::client_methods(&mut conn, client_id).await;
            let plans = recurring::client_recurring(&mut conn, client_id).await;
            match (name, methods, plans) {
                (Ok(n), Ok(m), Ok(p)) => Ok((n.unwrap_or_default(), m, p)),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let (client, methods, plans) = match loaded {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "payment methods page: database");
            return state.pages.unavailable();
        }
    };
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(PATH, secure);
    let data = json!({
        "client": client,
        "notice": notice,
        "csrf": token,
        "online": state.app.payments.is_some(),
        "methods": methods.iter().map(|m| json!({
            "id": m.id,
            "label": label(m),
            "expires": match (m.exp_month, m.exp_year) {
                (Some(mm), Some(yy)) => format!("{mm:02}/{yy}"),
                _ => String::new(),
            },
            "saved": super::invoice::day_of(m.consent_at),
        })).collect::<Vec<_>>(),
        "recurring": plans.iter().map(|r| json!({
            "id": r.id,
            "scope": r.scope,
            "frequency": Frequency::parse(&r.frequency).map(|f| f.label()).unwrap_or("Unknown"),
            "next_bill_date": r.next_bill_date,
            "method_id": r.payment_method_id,
        })).collect::<Vec<_>>(),
    });
    let mut response =
        state
            .pages
            .render(StatusCode::OK, "payment_methods", "Payment methods", data);
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// "Visa •••• 4242", "SEPA Direct Debit •••• 3000": what may be shown.
fn label(m: &payment_methods::SavedMethod) -> String {
    let name = match (m.kind.as_str(), m.brand.as_deref()) {
        ("card", Some(brand)) => {
            let mut chars = brand.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_else(|| "Card".into())
        }
        ("card", None) => "Card".to_string(),
        ("sepa-debit", _) => "SEPA Direct Debit".to_string(),
        ("us-bank-account", Some(bank)) => bank.to_string(),
        _ => "Bank account".to_string(),
    };
    match &m.last4 {
        Some(last4) => format!("{name} •••• {last4}"),
        None => name,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

/// Starts the provider's hosted setup for a new card or bank account.
pub(crate) async fn add(
    State(state): State<WebState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    let (contact, client_id) = match holder(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    let Some(provider) = &state.app.payments else {
        return page(&state, client_id, Some("Online payment is not set up.")).await;
    };
    match start_setup(&state, provider, &contact, client_id).await {
        Ok(url) => see_other(&url),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "payment method setup could not start");
            page(
                &state,
                client_id,
                Some("Adding a payment method is not possible just now; please try again later."),
            )
            .await
        }
    }
}

async fn start_setup(
    state: &WebState,
    provider: &std::sync::Arc<dyn crate::payments::PaymentProvider>,
    contact: &Contact,
    client_id: i64,
) -> anyhow::Result<String> {
    let app = &state.app;
    let now = app.clock.now_millis();
    let mut conn = app.db.conn().await?;
    let name = contacts::client_name(&mut conn, client_id)
        .await?
        .unwrap_or_default();
    let customer =
        match payment_methods::provider_customer(&mut conn, client_id, provider.name()).await? {
            Some(c) => c,
            None => {
                // One customer per client, whoever asks first: the idempotency
                // key makes a concurrent second request return the same one.
                let created = provider
                    .create_customer(&NewCustomer {
                        client_ref: client_id.to_string(),
                        name: name.clone(),
                        email: crate::domain::EmailAddress::parse(&contact.email).ok(),
                        idempotency_key: format!("postdesk-customer-{client_id}"),
                    })
                    .await?;
                payment_methods::set_provider_customer(
                    &mut conn,
                    client_id,
                    provider.name(),
                    &created,
                    now,
                )
                .await?;
                payment_methods::provider_customer(&mut conn, client_id, provider.name())
                    .await?
                    .unwrap_or(created)
            }
        };
    let currency = recurring::client_recurring(&mut conn, client_id)
        .await?
        .first()
        .map(|r| r.currency.clone())
        .unwrap_or_else(|| "EUR".into());
    let base = &app.config.web.base_url;
    let redirect = provider
        .create_checkout_setup(&CheckoutSetup {
            client_ref: client_id.to_string(),
            customer,
            currency: Currency::parse(&currency)?,
            consent_text: Some(format!(
                "I authorise {} to charge this payment method for invoices of {name}, \
                 including recurring invoices with auto-pay switched on.",
                app.config.branding.company_name
            )),
            success_url: format!("{base}{PATH}?saved=1"),
            cancel_url: format!("{base}{PATH}"),
            idempotency_key: format!(
                "postdesk-setup-{client_id}-{}",
                uuid::Uuid::new_v4().simple()
            ),
        })
        .await?;
    Ok(redirect.url)
}

/// Removes a saved method: detached at the provider, then marked removed
/// and taken off auto-pay.
pub(crate) async fn remove(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    let (contact, client_id) = match holder(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    let now = state.app.clock.now_millis();
    let method = match state.app.db.conn().await {
        Ok(mut conn) => payment_methods::method_of_client(&mut conn, id, client_id).await,
        Err(e) => Err(e),
    };
    let method = match method {
        Ok(Some(m)) => m,
        Ok(None) => {
            return page(&state, client_id, Some("That payment method is not saved.")).await
        }
        Err(e) => {
            tracing::error!(error = %e, "removing a payment method: database");
            return state.pages.unavailable();
        }
    };
    // Off our list first (with its audit entry), so no auto-pay picks it
    // while the provider is asked; then detached there, so it cannot be
    // charged at all.
    let event = AuditEvent::new(AuditKind::FormPost, "payment_methods.remove", now)
        .actor(Actor::Contact(contact.id))
        .client(Some(client_id))
        .resource("payment_method", &id.to_string())
        .origin(&origin);
    let removed = async {
        let mut tx = state.app.db.begin().await?;
        payment_methods::remove_method(&mut tx, id, client_id, now).await?;
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok::<(), DbError>(())
    }
    .await;
    if let Err(e) = removed {
        tracing::error!(error = %e, "removing a payment method: database");
        return state.pages.unavailable();
    }
    if let Some(provider) = &state.app.payments {
        if let Err(e) = provider
            .detach_payment_method(&method.provider_method)
            .await
        {
            tracing::warn!(error = %e, method = id, "detaching a removed method failed");
        }
    }
    Note::recorded().on(see_other(&format!("{PATH}?removed=1")))
}

#[derive(serde::Deserialize)]
pub(crate) struct AutoPayForm {
    csrf: String,
    recurring: i64,
    /// A saved method's id, or empty for off.
    method: String,
}

pub(crate) async fn auto_pay(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<AutoPayForm>,
) -> Response {
    let (contact, client_id) = match holder(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    let method = match form.method.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => return page(&state, client_id, Some("Please choose a saved method.")).await,
        },
    };
    let now = state.app.clock.now_millis();
    let event = AuditEvent::new(AuditKind::FormPost, "payment_methods.auto_pay", now)
        .actor(Actor::Contact(contact.id))
        .client(Some(client_id))
        .resource("recurring", &form.recurring.to_string())
        .origin(&origin)
        .detail(json!({ "method": method }));
    // The choice and its audit entry commit together; a refused one writes
    // nothing here (the page's layer records it).
    let changed = async {
        let mut tx = state.app.db.begin().await?;
        let changed =
            payment_methods::set_auto_pay(&mut tx, form.recurring, client_id, method, now).await?;
        if changed {
            audit::record(&mut tx, &event).await?;
            tx.commit().await?;
        }
        Ok::<bool, DbError>(changed)
    }
    .await;
    match changed {
        Ok(true) => Note::recorded().on(see_other(&format!("{PATH}?auto-pay=1"))),
        Ok(false) => {
            page(
                &state,
                client_id,
                Some("That choice is not available; nothing was changed."),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "auto-pay: database");
            state.pages.unavailable()
        }
    }
}
