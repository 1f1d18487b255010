//! `GET /l/<token>`: a link from a mail. A valid link sets a cookie scoped to
//! its page and redirects (303) there, so the token leaves the address bar
//! and the history; an expired one explains itself; anything else is "not
//! found". Only the audit log is written: one `link_open` event
//! (`link.open`, outcome ok / expired / revoked) per genuine link.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::audit::{record_alone, RequestOrigin};
use super::{current_contact, Denied, WebState, LINK_COOKIE};
use crate::audit::{Actor, AuditEvent, AuditKind, Outcome};
use crate::links::{verify, LinkError, LinkPurpose};

/// The clean URL of a link's page.
pub(crate) fn page_path(purpose: LinkPurpose, resource: &str) -> String {
    if purpose.takes_resource() {
        format!("/{}/{resource}", purpose.as_str())
    } else {
        format!("/{}", purpose.as_str())
    }
}

pub(crate) async fn open(
    State(state): State<WebState>,
    Path(token): Path<String>,
    RequestOrigin(origin): RequestOrigin,
) -> Response {
    let now_ms = state.app.clock.now_millis();
    let (claims, result) = match verify(&state.app.config.link_keys, &token, now_ms / 1000) {
        Ok(claims) => (claims, "opened"),
        Err(LinkError::Expired(claims)) => (claims, "expired"),
        Err(_) => return state.pages.not_found(),
    };
    // Attachment URLs are served where the ticket page put them, not here.
    if claims.purpose == LinkPurpose::Attachment {
        return state.pages.not_found();
    }
    let contact = current_contact(&state, &claims).await;
    let result = if contact.is_err() { "revoked" } else { result };
    let event = AuditEvent::new(AuditKind::LinkOpen, "link.open", now_ms)
        .actor(Actor::Contact(claims.contact_id))
        .client(contact.as_ref().ok().and_then(|c| c.client_id))
        .resource(claims.purpose.as_str(), &claims.resource)
        .outcome(match result {
            "expired" => Outcome::Expired,
            "revoked" => Outcome::Revoked,
            _ => Outcome::Ok,
        })
        .origin(&origin);
    record_alone(&state, &event).await;
    match (contact, result) {
        // Genuine but revoked: a preferences link says how to get a fresh
        // one (its mail may be old); others stay a plain "not found".
        (Err(_), _) if claims.purpose == LinkPurpose::Preferences => {
            super::preferences::revoked(&state)
        }
        (Err(Denied::NotFound | Denied::Expired), _) => state.pages.not_found(),
        (Ok(_), "expired") if claims.purpose == LinkPurpose::AddressChange => {
            state.pages.render(
                StatusCode::GONE,
                "notice",
                "Confirmation expired",
                serde_json::json!({"text": "This confirmation link has expired: ask for the address change again."}),
            )
        }
        (Ok(_), "expired") => super::renew::expired_page(&state, &token),
        (Ok(_), _) => {
            let path = page_path(claims.purpose, &claims.resource);
            let secure = if state.app.config.web.base_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let max_age = (claims.expires_at - now_ms / 1000).max(0);
            let cookie =
                format!("{LINK_COOKIE}={token}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
            let mut response = (StatusCode::SEE_OTHER, ()).into_response();
            let headers = response.headers_mut();
            match (HeaderValue::from_str(&path), HeaderValue::from_str(&cookie)) {
                (Ok(location), Ok(cookie)) => {
                    headers.insert(header::LOCATION, location);
                    headers.insert(header::SET_COOKIE, cookie);
                    response
                }
                _ => state.pages.not_found(),
            }
        }
    }
}
