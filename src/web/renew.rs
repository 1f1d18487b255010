//! An expired link offers to mail a fresh one to the address on file
//! (SPEC §6). The page's form is protected by a double-submit CSRF value (a
//! random value in a SameSite=Strict cookie and in the form); the POST mails
//! the contact's current address through the outbox, at most once an hour
//! per contact, and answers the same whether or not a mail went out.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde_json::json;

use super::audit::{Note, RequestOrigin};
use super::{current_contact, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::db::{audit, outbox};
use crate::domain::EmailAddress;
use crate::links::issue::link_expiry_text;
use crate::links::{link_for, verify, LinkError, LinkPurpose};
use crate::mail::outgoing::MailRequest;

const KIND: &str = "fresh-link";
const ONE_HOUR_MS: i64 = 3_600_000;

/// The expired page for `token`, with its form and CSRF cookie.
pub(crate) fn expired_page(state: &WebState, token: &str) -> Response {
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (csrf, cookie) = super::csrf::issue("/l/renew", secure);
    let mut response = state.pages.render(
        StatusCode::GONE,
        "expired",
        "Link expired",
        json!({ "token": token, "csrf": csrf }),
    );
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct RenewForm {
    token: String,
    csrf: String,
}

fn described(purpose: LinkPurpose, resource: &str) -> String {
    match purpose {
        LinkPurpose::Invoice => format!("invoice {resource}"),
        LinkPurpose::Quote => format!("quote {resource}"),
        LinkPurpose::Ticket => format!("ticket {resource}"),
        LinkPurpose::Tickets => "your tickets".into(),
        LinkPurpose::Statement => "your statement".into(),
        LinkPurpose::PaymentMethods => "your payment methods".into(),
        LinkPurpose::Contacts => "your company's contacts".into(),
        LinkPurpose::Preferences => "your mail preferences".into(),
        LinkPurpose::Attachment => "a file of your ticket".into(),
        LinkPurpose::AddressChange => "your address change".into(),
    }
}

pub(crate) async fn renew(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    Form(form): Form<RenewForm>,
) -> Response {
    if !super::csrf::check(&headers, &form.csrf) {
        return state.pages.render(
            StatusCode::FORBIDDEN,
            "form_expired",
            "Please try again",
            json!({}),
        );
    }
    let now_ms = state.app.clock.now_millis();
    let claims = match verify(&state.app.config.link_keys, &form.token, now_ms / 1000) {
        Ok(c) | Err(LinkError::Expired(c)) => c,
        Err(_) => return state.pages.not_found(),
    };
    let note = Note {
        actor: Some(Actor::Contact(claims.contact_id)),
        ..Note::default()
    };
    let Ok(contact) = current_contact(&state, &claims).await else {
        return note.on(state.pages.not_found());
    };
    let note = Note {
        client_id: contact.client_id,
        ..note
    };
    let sent = state
        .pages
        .render(StatusCode::OK, "renew_sent", "Check your mail", json!({}));
    let event = AuditEvent::new(AuditKind::FormPost, "link.renew", now_ms)
        .actor(Actor::Contact(contact.id))
        .client(contact.client_id)
        .resource("link", claims.purpose.as_str())
        .origin(&origin);
    if let Err(e) = mail_fresh_link(&state, &claims, &contact.email, now_ms, event).await {
        tracing::error!(error = %e, "could not queue a fresh link");
        return note.on(state.pages.unavailable());
    }
    Note::recorded().on(sent)
}

/// Queues the fresh link unless one went to this contact within the hour
/// (or the document left their reach), and appends `audit` with whether it
/// was mailed, in one transaction.
async fn mail_fresh_link(
    state: &WebState,
    claims: &crate::links::LinkClaims,
    email: &str,
    now_ms: i64,
    audit: AuditEvent,
) -> anyhow::Result<()> {
    let app = &state.app;
    let address = EmailAddress::parse(email)?;
    let resource = (!claims.resource.is_empty()).then_some(claims.resource.as_str());
    // The document may have moved out of the contact's reach meanwhile.
    let link = match link_for(
        &app.db,
        &app.config,
        claims.purpose,
        resource,
        &address,
        now_ms / 1000,
    )
    .await
    {
        Ok(link) => Some(link),
        Err(e) => {
            tracing::info!(reason = %e, "no fresh link for an expired one");
            None
        }
    };
    let mut tx = app.db.begin().await?;
    let sent_lately = outbox::recent_of_kind(&mut tx, KIND, email, now_ms - ONE_HOUR_MS).await? > 0;
    let (queued, why) = match link {
        None => (false, Some("out of reach")),
        Some(_) if sent_lately => (false, Some("sent within the hour")),
        Some(link) => {
            let expires = link_expiry_text(&app.config, now_ms);
            let queued = app
                .ingestor
                .mailer
                .queue(
                    &mut tx,
                    MailRequest::notice(
                        KIND,
                        "fresh_link",
                        json!({
                            "link": link,
                            "what": described(claims.purpose, &claims.resource),
                            "expires": expires,
                        }),
                        vec![address],
                    ),
                    now_ms,
                )
                .await?;
            (queued.is_some(), None)
        }
    };
    let detail = match why {
        Some(why) => json!({ "mailed": false, "why": why }),
        None => json!({ "mailed": queued }),
    };
    audit::record(&mut tx, &audit.detail(detail)).await?;
    tx.commit().await?;
    if queued {
        app.ingestor.outbox_ready.notify_one();
    }
    Ok(())
}
