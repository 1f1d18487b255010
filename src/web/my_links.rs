//! "Email me my links" (SPEC §6): a public page where a person types their
//! address and gets a mail with signed links to their tickets, statement
//! and preferences.
//!
//! It never tells whether an address is known: every valid request gets the
//! same status and the same bytes, and does the same work before answering
//! — record the request and check the limits in one transaction. The
//! contact lookup and the mail (an outbox row, written in the lookup's
//! transaction) happen after the answer, in a task of their own, so neither
//! the lookup nor the queueing shows in the response time. An unknown
//! address gets nothing queued at all. A shutdown between the answer and
//! that task's commit loses the request (the person asks again), never half
//! a mail.
//!
//! Rate limits (`[web] links_per_address_per_hour`, `links_per_ip_per_hour`)
//! count requests per address and per client IP over the last hour; over
//! either, the answer is the same and nothing is mailed. The address and IP
//! are stored only as keyed hashes; neither is ever logged. The IP is the
//! client's as `client_ip` resolved it (behind a `[web] trusted_proxies`
//! proxy, the address it forwarded for).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::audit::{Note, RequestOrigin};
use super::pay::form_expired;
use super::{csrf, WebState};
use crate::app::App;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Millis;
use crate::db::contacts;
use crate::db::link_requests::{self, Outcome};
use crate::domain::EmailAddress;
use crate::links::issue::{link_expiry_text, ContactLinks};
use crate::mail::outgoing::MailRequest;

const PATH: &str = "/links";
const KIND: &str = "my-links";
const ONE_HOUR_MS: i64 = 3_600_000;

pub(crate) async fn show(State(state): State<WebState>) -> Response {
    form_page(&state, StatusCode::OK, None)
}

fn form_page(state: &WebState, status: StatusCode, notice: Option<&str>) -> Response {
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(PATH, secure);
    let mut response = state.pages.render(
        status,
        "links",
        "Email me my links",
        json!({ "csrf": token, "notice": notice }),
    );
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct LinksForm {
    address: String,
    csrf: String,
}

pub(crate) async fn request(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LinksForm>,
) -> Response {
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    let Ok(address) = EmailAddress::parse(&form.address) else {
        return form_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("That does not look like a mail address. Please check it and try again."),
        );
    };
    let ip = origin
        .remote_addr
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let now = state.app.clock.now_millis();
    // Who asked is nobody known: the address is not kept, not even hashed.
    let event = AuditEvent::new(AuditKind::FormPost, "links.request", now)
        .resource("links", "")
        .origin(&origin);
    match admit(&state.app, &address, &ip, now, event).await {
        Ok(Some(request_id)) => {
            let app = state.app.clone();
            tokio::spawn(async move {
                if let Err(e) = mail_links(&app, request_id, &address, now).await {
                    tracing::error!(request = request_id, error = %format!("{e:#}"),
                        "could not queue a links mail");
                }
            });
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "links request: database");
            return state.pages.unavailable();
        }
    }
    Note::recorded().on(state.pages.render(
        StatusCode::OK,
        "links_sent",
        "Check your mail",
        json!({}),
    ))
}

/// Records the request and checks the limits, with `audit` (outcome `ok`
/// or `limited`) in the same transaction; the id of the request to carry
/// out, or `None` when it is over a limit.
async fn admit(
    app: &App,
    address: &EmailAddress,
    ip: &str,
    now: Millis,
    audit: AuditEvent,
) -> anyhow::Result<Option<i64>> {
    let address_key = keyed_hash(app, "address", address.as_str())?;
    let client_key = keyed_hash(app, "ip", ip)?;
    let web = &app.config.web;
    let mut tx = app.db.begin().await?;
    link_requests::forget_before(&mut tx, now - 24 * ONE_HOUR_MS).await?;
    let (by_address, by_client) =
        link_requests::recent(&mut tx, &address_key, &client_key, now - ONE_HOUR_MS).await?;
    let allowed = by_address < i64::from(web.links_per_address_per_hour)
        && by_client < i64::from(web.links_per_ip_per_hour);
    let outcome = if allowed {
        Outcome::Pending
    } else {
        Outcome::Limited
    };
    let id = link_requests::record(&mut tx, &address_key, &client_key, outcome, now).await?;
    let audit = if allowed {
        audit
    } else {
        audit.outcome(crate::audit::Outcome::Limited)
    };
    crate::db::audit::record(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(allowed.then_some(id))
}

/// HMAC-SHA256 of `value` under the first link key: the same value always
/// gives the same key, and the table names nobody.
fn keyed_hash(app: &App, what: &str, value: &str) -> anyhow::Result<String> {
    let key = app
        .config
        .link_keys
        .first()
        .ok_or_else(|| anyhow::anyhow!("no link key is configured"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.secret).expect("HMAC takes any key");
    mac.update(b"postdesk-link-request\n");
    mac.update(what.as_bytes());
    mac.update(b"\n");
    mac.update(value.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Looks the address up and, for an active contact, queues the mail with
/// their links — one transaction, which also marks the request handled.
async fn mail_links(
    app: &App,
    request_id: i64,
    address: &EmailAddress,
    now: Millis,
) -> anyhow::Result<()> {
    let mut tx = app.db.begin().await?;
    let contact = contacts::find_contact_by_email(&mut tx, address)
        .await?
        .filter(|c| c.active);
    let outcome = match contact {
        None => Outcome::Unknown,
        Some(contact) => {
            let links = ContactLinks::of(&app.config, &contact, now / 1000)?;
            let listed: Vec<_> = [
                ("Your tickets", &links.tickets),
                ("Your statement", &links.statement),
                ("Your company's contacts", &links.contacts),
                ("Which mails you get", &links.preferences),
            ]
            .into_iter()
            .filter_map(|(what, url)| url.as_ref().map(|u| json!({ "what": what, "url": u })))
            .collect();
            let expires = link_expiry_text(&app.config, now);
            let to = EmailAddress::parse(&contact.email)?;
            let queued = app
                .ingestor
                .mailer
                .queue(
                    &mut tx,
                    MailRequest::notice(
                        KIND,
                        "my_links",
                        json!({
                            "name": contact.name,
                            "links": listed,
                            "expires": expires,
                        }),
                        vec![to],
                    ),
                    now,
                )
                .await?;
            if queued.is_some() {
                Outcome::Mailed
            } else {
                Outcome::Withheld
            }
        }
    };
    link_requests::finish(&mut tx, request_id, outcome, now).await?;
    tx.commit().await?;
    if outcome == Outcome::Mailed {
        app.ingestor.outbox_ready.notify_one();
    }
    Ok(())
}
