//! Mail preferences (SPEC §4, §6): `GET /preferences` (a preferences link
//! opens it) shows which optional mails the contact gets; `POST
//! /preferences` (link cookie + double-submit CSRF value) saves the choice,
//! then redirects back (post/redirect/get).
//!
//! RFC 8058 one-click unsubscribe: optional mail carries
//! `List-Unsubscribe: <base_url/unsubscribe/<kind>/<token>>`. A POST there
//! with the body `List-Unsubscribe=One-Click` switches that kind off without
//! a browser: the signed token in the URL authorises it, so no CSRF value
//! (an expired but genuine token still may: it only ever lowers mail). A GET
//! of the same URL changes nothing; it leads to the preferences page.
//! Changes count from the next scheduled send: the monthly jobs read the
//! choice with the contact.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::audit::{Note, RequestOrigin};
use super::pay::{form_expired, see_other};
use super::{csrf, link_holder, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::config::Config;
use crate::db::contacts::Contact;
use crate::db::{audit, preferences};
use crate::domain::{MailChoices, OptionalMail};
use crate::links::LinkPurpose;
use crate::portal::unsubscribe;

const PATH: &str = "/preferences";

/// The kinds of optional mail this contact could get at all: the statement
/// goes to billing and primary contacts of a client, the service report to
/// primary ones, announcements to anyone; a reminder only when the operator
/// made it optional, to whom it goes (expiry alerts: technical and primary
/// contacts; card expiry and dunning: billing and primary ones).
fn kinds_for(config: &Config, contact: &Contact) -> Vec<OptionalMail> {
    let of_client = contact.client_id.is_some();
    let types = &contact.types;
    OptionalMail::ALL
        .into_iter()
        .filter(|kind| !kind.is_reminder() || config.schedules.optional_reminders.contains(kind))
        .filter(|kind| match kind {
            OptionalMail::Statement | OptionalMail::CardExpiry | OptionalMail::Dunning => {
                of_client && (types.billing || types.primary)
            }
            OptionalMail::Report => of_client && types.primary,
            OptionalMail::ExpiryAlerts => of_client && (types.technical || types.primary),
            OptionalMail::Announcements => true,
        })
        .collect()
}

#[derive(serde::Deserialize)]
pub(crate) struct ShowQuery {
    saved: Option<String>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    Query(query): Query<ShowQuery>,
    headers: HeaderMap,
) -> Response {
    let contact = match holder(&state, &headers).await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    let notice = query
        .saved
        .is_some()
        .then_some("Saved. The change counts from the next mail we send.");
    page(&state, &contact, notice)
}

/// The preferences link's holder, or the page to answer with: a revoked
/// link explains itself and says how to get a fresh one.
async fn holder(state: &WebState, headers: &HeaderMap) -> Result<Contact, Response> {
    link_holder(state, headers, LinkPurpose::Preferences, "").await
}

fn page(state: &WebState, contact: &Contact, notice: Option<&str>) -> Response {
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(PATH, secure);
    let kinds: Vec<_> = kinds_for(&state.app.config, contact)
        .into_iter()
        .map(|kind| {
            json!({
                "name": kind.as_str(),
                "label": kind.label(),
                "wanted": contact.wants(kind),
            })
        })
        .collect();
    let mut response = state.pages.render(
        StatusCode::OK,
        "preferences",
        "Mail preferences",
        json!({
            "csrf": token,
            "notice": notice,
            "kinds": kinds,
        }),
    );
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /preferences`: a ticked box (`<kind>=on`) is a kind wanted, an
/// unticked one is not; kinds the contact is not offered keep what they
/// were.
pub(crate) async fn save(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let contact = match holder(&state, &headers).await {
        Ok(contact) => contact,
        Err(page) => return page,
    };
    let csrf_value = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !csrf::check(&headers, csrf_value) {
        return form_expired(&state);
    }
    let mut choices = MailChoices::all(false);
    for kind in OptionalMail::ALL {
        choices.set(kind, contact.wants(kind));
    }
    let offered = kinds_for(&state.app.config, &contact);
    for kind in &offered {
        let ticked = fields.iter().any(|(k, _)| k == kind.as_str());
        choices.set(*kind, ticked);
    }
    // The choice (of the kinds offered) and its audit entry commit together.
    let wanted: Vec<&str> = offered
        .into_iter()
        .filter(|k| choices.get(*k))
        .map(OptionalMail::as_str)
        .collect();
    let event = AuditEvent::new(
        AuditKind::FormPost,
        "preferences.save",
        state.app.clock.now_millis(),
    )
    .actor(Actor::Contact(contact.id))
    .client(contact.client_id)
    .resource("preferences", "")
    .origin(&origin)
    .detail(json!({ "wanted": wanted }));
    let saved = async {
        let mut tx = state.app.db.begin().await?;
        preferences::save_choices(&mut tx, contact.id, choices).await?;
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok::<(), crate::db::DbError>(())
    }
    .await;
    match saved {
        Ok(()) => {
            tracing::info!(contact = contact.id, "mail preferences saved");
            Note::recorded().on(see_other(&format!("{PATH}?saved=1")))
        }
        Err(e) => {
            tracing::error!(error = %e, "mail preferences: database");
            state.pages.unavailable()
        }
    }
}

/// `GET /unsubscribe/<kind>/<token>`: never unsubscribes (mail scanners
/// follow links); it opens the preferences through the token's link.
pub(crate) async fn one_click_get(
    State(state): State<WebState>,
    Path((kind, token)): Path<(String, String)>,
) -> Response {
    if OptionalMail::parse(&kind).is_none() {
        return state.pages.not_found();
    }
    see_other(&format!("/l/{token}"))
}

/// `POST /unsubscribe/<kind>/<token>` with `List-Unsubscribe=One-Click`
/// (RFC 8058): switches `kind` off for the token's contact; the change and
/// its audit entry commit together.
pub(crate) async fn one_click_post(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path((kind, token)): Path<(String, String)>,
    body: String,
) -> Response {
    let Some(kind) = OptionalMail::parse(&kind) else {
        return state.pages.not_found();
    };
    if !is_one_click(&body) {
        return (
            StatusCode::BAD_REQUEST,
            "Expected the body List-Unsubscribe=One-Click (RFC 8058).",
        )
            .into_response();
    }
    let config = &state.app.config;
    let now = state.app.clock.now_millis();
    let done = async {
        let mut tx = state.app.db.begin().await?;
        let contact = match unsubscribe::token_holder(config, &mut tx, &token, now / 1000).await? {
            Ok(contact) => contact,
            Err(refused) => return Ok(Err(refused)),
        };
        let changed = preferences::unsubscribe(&mut tx, contact.id, kind).await?;
        let event = AuditEvent::new(AuditKind::FormPost, "preferences.unsubscribe", now)
            .actor(Actor::Contact(contact.id))
            .client(contact.client_id)
            .resource("preferences", kind.as_str())
            .origin(&origin)
            .detail(json!({ "via": "one-click", "changed": changed }));
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok::<_, crate::db::DbError>(Ok((contact.id, changed)))
    }
    .await;
    match done {
        Ok(Ok((contact_id, changed))) => {
            if changed {
                tracing::info!(
                    contact = contact_id,
                    list = kind.as_str(),
                    "one-click unsubscribe"
                );
            }
            Note::recorded().on(state.pages.render(
                StatusCode::OK,
                "unsubscribed",
                "Unsubscribed",
                json!({ "what": kind.label() }),
            ))
        }
        Ok(Err(unsubscribe::Refused::NotGenuine)) => state.pages.not_found(),
        Ok(Err(unsubscribe::Refused::Revoked(contact_id))) => Note {
            actor: Some(Actor::Contact(contact_id)),
            outcome: Some(crate::audit::Outcome::Revoked),
            ..Note::default()
        }
        .on(revoked(&state)),
        Err(e) => {
            tracing::error!(error = %e, "one-click unsubscribe: database");
            state.pages.unavailable()
        }
    }
}

/// The RFC 8058 body: `List-Unsubscribe=One-Click`, form-urlencoded (what
/// mail providers send) or as a multipart/form-data field.
fn is_one_click(body: &str) -> bool {
    let urlencoded = body
        .split('&')
        .any(|pair| pair.trim() == "List-Unsubscribe=One-Click");
    let multipart = body.contains("name=\"List-Unsubscribe\"")
        && body.lines().any(|line| line.trim() == "One-Click");
    urlencoded || multipart
}

/// A genuine link whose contact was deactivated or changed address (its
/// link generation moved on): say so, and how to get fresh links.
pub(crate) fn revoked(state: &WebState) -> Response {
    state.pages.render(
        StatusCode::GONE,
        "link_revoked",
        "Link no longer valid",
        json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::is_one_click;

    #[test]
    fn the_one_click_body_is_recognised_in_both_encodings() {
        assert!(is_one_click("List-Unsubscribe=One-Click"));
        assert!(is_one_click("List-Unsubscribe=One-Click\r\n"));
        assert!(is_one_click(
            "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n"
        ));
        assert!(!is_one_click(""));
        assert!(!is_one_click("List-Unsubscribe=No"));
        assert!(!is_one_click("unsubscribe=One-Click"));
    }
}
