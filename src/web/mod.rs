//! The web view (SPEC §6): signed links from mails open server-rendered
//! pages. GET and HEAD never change business data (mail link scanners open
//! links too; an open is only appended to the audit log, `audit`). Every response
//! carries the security headers; tokens are never logged.
//!
//! Handlers live in one file per page; SQL stays in `db/`, HTML in
//! `templates/web/`.

mod api;
mod audit;
mod client_ip;
mod contacts_page;
mod csrf;
mod health;
mod invoice;
mod link;
mod mail_html;
mod my_links;
pub mod pages;
mod pay;
mod payment_methods;
mod preferences;
mod quote;
mod renew;
mod statement;
mod ticket;
mod tickets;
mod webhook;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db::contacts::{self, Contact};
use crate::links::{verify, LinkClaims, LinkError, LinkPurpose};
use pages::Pages;

/// What every handler gets.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub pages: Pages,
}

/// The cookie that carries a verified link's token to its clean URL.
pub(crate) const LINK_COOKIE: &str = "pd_link";

pub fn router(app: App) -> Router {
    let csp = content_security_policy(&app);
    let reply_limit = app.config.limits.max_message_bytes;
    // Shared, not cloned per request.
    let trusted_proxies = std::sync::Arc::new(app.config.web.trusted_proxies.clone());
    let state = WebState {
        pages: Pages::new(app.config.branding.clone()),
        app,
    };
    // Every page reached through a signed link and every form post is
    // appended to the audit log by this layer (see `audit`).
    let audited = |route: audit::Route| {
        axum::middleware::from_fn_with_state((state.clone(), route), audit::layer)
    };
    use audit::{post as form, view};
    Router::new()
        .nest("/api/v1", api::router(state.clone()))
        .route(
            "/l/renew",
            post(renew::renew).layer(audited(form("link.renew", "link", None))),
        )
        .route("/l/{token}", get(link::open))
        .route(
            "/invoice/{number}",
            get(invoice::show).layer(audited(view("invoice.view", "invoice", Some("number")))),
        )
        .route(
            "/quote/{number}",
            get(quote::show).layer(audited(view("quote.view", "quote", Some("number")))),
        )
        .route(
            "/statement",
            get(statement::show).layer(audited(view("statement.view", "statement", None))),
        )
        .route(
            "/ticket/{number}",
            get(ticket::show).layer(audited(view("ticket.view", "ticket", Some("number")))),
        )
        .route(
            "/ticket/{number}/reply",
            post(ticket::reply)
                .layer(axum::extract::DefaultBodyLimit::max(
                    usize::try_from(reply_limit).unwrap_or(usize::MAX),
                ))
                .layer(audited(form("ticket.reply", "ticket", Some("number")))),
        )
        .route(
            "/ticket/{number}/state",
            post(ticket::set_state).layer(audited(form("ticket.state", "ticket", Some("number")))),
        )
        .route(
            "/ticket/{number}/files/{token}",
            get(ticket::file).layer(audited(view("ticket.file", "ticket", Some("number")))),
        )
        .route(
            "/tickets",
            get(tickets::show).layer(audited(view("tickets.view", "tickets", None))),
        )
        .route(
            "/tickets/export.csv",
            get(tickets::export).layer(audited(view("tickets.export", "tickets", None))),
        )
        .route(
            "/contacts",
            get(contacts_page::show).layer(audited(view("contacts.view", "contacts", None))),
        )
        .route(
            "/contacts/add",
            post(contacts_page::add).layer(audited(form("contacts.add", "contacts", None))),
        )
        .route(
            "/contacts/{id}/types",
            post(contacts_page::set_types).layer(audited(form(
                "contacts.change_types",
                "contact",
                Some("id"),
            ))),
        )
        .route(
            "/contacts/{id}/deactivate",
            post(contacts_page::deactivate).layer(audited(form(
                "contacts.deactivate",
                "contact",
                Some("id"),
            ))),
        )
        .route(
            "/contacts/{id}/address",
            post(contacts_page::change_address).layer(audited(form(
                "contacts.change_address",
                "contact",
                Some("id"),
            ))),
        )
        .route(
            "/address-change/{id}",
            get(contacts_page::show_confirmation)
                .layer(audited(view(
                    "address_change.view",
                    "address_change",
                    Some("id"),
                )))
                .merge(post(contacts_page::confirm).layer(audited(form(
                    "contacts.confirm_address",
                    "address_change",
                    Some("id"),
                )))),
        )
        .route(
            "/preferences",
            get(preferences::show)
                .layer(audited(view("preferences.view", "preferences", None)))
                .merge(post(preferences::save).layer(audited(form(
                    "preferences.save",
                    "preferences",
                    None,
                )))),
        )
        .route(
            "/unsubscribe/{kind}/{token}",
            get(preferences::one_click_get).merge(post(preferences::one_click_post).layer(
                audited(form("preferences.unsubscribe", "preferences", Some("kind"))),
            )),
        )
        .route(
            "/links",
            get(my_links::show).merge(post(my_links::request).layer(audited(form(
                "links.request",
                "links",
                None,
            )))),
        )
        .route(
            "/statement/pay",
            post(statement::pay).layer(audited(form("statement.pay", "statement", None))),
        )
        .route(
            "/payment-methods",
            get(payment_methods::show).layer(audited(view(
                "payment_methods.view",
                "payment_methods",
                None,
            ))),
        )
        .route(
            "/payment-methods/add",
            post(payment_methods::add).layer(audited(form(
                "payment_methods.add",
                "payment_methods",
                None,
            ))),
        )
        .route(
            "/payment-methods/auto-pay",
            post(payment_methods::auto_pay).layer(audited(form(
                "payment_methods.auto_pay",
                "payment_methods",
                None,
            ))),
        )
        .route(
            "/payment-methods/{id}/remove",
            post(payment_methods::remove).layer(audited(form(
                "payment_methods.remove",
                "payment_method",
                Some("id"),
            ))),
        )
        .route(
            "/invoice/{number}/pay",
            post(invoice::pay).layer(audited(form("invoice.pay", "invoice", Some("number")))),
        )
        .route(
            "/invoice/{number}/pdf",
            get(invoice::pdf).layer(audited(view("invoice.pdf", "invoice", Some("number")))),
        )
        .route("/webhooks/stripe", post(webhook::stripe))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/metrics",
            get(health::metrics).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::require_token,
            )),
        )
        .route(
            "/quote/{number}/decision",
            post(quote::decide).layer(audited(form("quote.decide", "quote", Some("number")))),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(csp, security_headers))
        // Outermost, so every layer and handler sees the resolved client.
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            client_ip::resolve,
        ))
        .with_state(state)
}

/// Serves the web view on `listener` until `cancel`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn not_found(axum::extract::State(state): axum::extract::State<WebState>) -> Response {
    state.pages.not_found()
}

/// The Content-Security-Policy of every page: no scripts at all, no
/// referrer, no framing. Forms post to ourselves — and, when a payment
/// provider is configured, may be redirected on to its hosted checkout
/// (browsers apply `form-action` to the redirect too).
fn content_security_policy(app: &App) -> HeaderValue {
    let checkout = app
        .config
        .payments
        .as_ref()
        .and_then(|p| checkout_origin(&p.api_base))
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; \
         form-action 'self'{checkout}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

/// Where the provider's hosted checkout lives: Stripe's API at
/// api.stripe.com serves its pages from checkout.stripe.com; any other API
/// base (a test double) serves them itself.
fn checkout_origin(api_base: &str) -> Option<String> {
    let rest = api_base
        .strip_prefix("https://")
        .map(|r| ("https", r))
        .or_else(|| api_base.strip_prefix("http://").map(|r| ("http", r)))?;
    let host = rest.1.split('/').next()?;
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return None;
    }
    Some(match host {
        "api.stripe.com" => "https://checkout.stripe.com".to_string(),
        _ => format!("{}://{host}", rest.0),
    })
}

async fn security_headers(
    axum::extract::State(csp): axum::extract::State<HeaderValue>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    // A page may set a stricter policy of its own (the ticket page).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// Why a token opens nothing.
pub(crate) enum Denied {
    /// Forged, altered, revoked, deactivated, or not for this page: the
    /// answer is a plain "not found", whatever the reason.
    NotFound,
    /// Genuine, but past its expiry.
    Expired,
}

/// Checks `token` for `purpose` (and `resource`, when given): the signature
/// and expiry, then that the contact still exists, is active and holds the
/// same link generation (a bumped generation revokes older links).
pub(crate) async fn check_token(
    state: &WebState,
    token: &str,
    expected: Option<(LinkPurpose, &str)>,
) -> Result<(LinkClaims, Contact), Denied> {
    let now = state.app.clock.now_millis() / 1000;
    let claims = match verify(&state.app.config.link_keys, token, now) {
        Ok(c) => c,
        Err(LinkError::Expired(_)) => return Err(Denied::Expired),
        Err(_) => return Err(Denied::NotFound),
    };
    if let Some((purpose, resource)) = expected {
        if claims.purpose != purpose || claims.resource != resource {
            return Err(Denied::NotFound);
        }
    }
    let contact = current_contact(state, &claims).await?;
    Ok((claims, contact))
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// The contact whose link cookie opens the page of `purpose` and `resource`,
/// or the page to answer with instead: "not found", or the expired page with
/// its offer of a fresh link.
pub(crate) async fn link_holder(
    state: &WebState,
    headers: &axum::http::HeaderMap,
    purpose: LinkPurpose,
    resource: &str,
) -> Result<Contact, Response> {
    let Some(token) = cookie(headers, LINK_COOKIE) else {
        return Err(state.pages.not_found());
    };
    match check_token(state, &token, Some((purpose, resource))).await {
        Ok((_, contact)) => Ok(contact),
        // An address confirmation is asked for again, not renewed.
        Err(Denied::Expired) if purpose == LinkPurpose::AddressChange => Err(state.pages.render(
            axum::http::StatusCode::GONE,
            "notice",
            "Confirmation expired",
            serde_json::json!({"text": "This confirmation link has expired: ask for the address change again."}),
        )),
        Err(Denied::Expired) => Err(renew::expired_page(state, &token)),
        // A preferences link may be old (an unsubscribe from a months-old
        // mail): say how to get a fresh one rather than just "not found".
        Err(Denied::NotFound) if purpose == LinkPurpose::Preferences => {
            Err(preferences::revoked(state))
        }
        Err(Denied::NotFound) => Err(state.pages.not_found()),
    }
}

/// The contact of `claims` if their links still hold.
pub(crate) async fn current_contact(
    state: &WebState,
    claims: &LinkClaims,
) -> Result<Contact, Denied> {
    let mut conn = state.app.db.conn().await.map_err(|e| {
        tracing::error!(error = %e, "database unavailable for a link");
        Denied::NotFound
    })?;
    match contacts::find_contact_by_id(&mut conn, claims.contact_id).await {
        Ok(Some(c))
            if c.active
                && c.link_generation == claims.generation
                && crate::portal::access::may_open(&c, claims.purpose) =>
        {
            Ok(c)
        }
        Ok(_) => Err(Denied::NotFound),
        Err(e) => {
            tracing::error!(error = %e, "contact lookup for a link failed");
            Err(Denied::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checkout_origin;

    #[test]
    fn checkout_pages_come_from_the_providers_origin() {
        assert_eq!(
            checkout_origin("https://api.stripe.com").as_deref(),
            Some("https://checkout.stripe.com")
        );
        assert_eq!(
            checkout_origin("http://127.0.0.1:4242/").as_deref(),
            Some("http://127.0.0.1:4242")
        );
        assert_eq!(checkout_origin("ftp://x"), None);
        assert_eq!(checkout_origin("https://evil; script-src *"), None);
    }
}
