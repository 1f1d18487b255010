//! The contacts page (SPEC §6), for Primary and Technical contacts only,
//! opened by a contacts link:
//! - `GET /contacts`: the client's active contacts with their types and any
//!   address change waiting for its confirmation;
//! - `POST /contacts/add`, `/contacts/<id>/types`, `/contacts/<id>/deactivate`,
//!   `/contacts/<id>/address`: the changes of `portal::contact_admin`, each
//!   with the link cookie and the double-submit CSRF value, then
//!   post/redirect/get.
//!
//! And the confirmation of an address change, opened by the link mailed to
//! the new address: `GET /address-change/<id>` shows it, `POST` confirms.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::audit::{Note, RequestOrigin};
use super::pay::{form_expired, see_other};
use super::{csrf, link_holder, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind, Origin};
use crate::db::contacts::{self, Contact};
use crate::db::portal;
use crate::domain::{ContactTypes, EmailAddress};
use crate::links::LinkPurpose;
use crate::portal::access::manages_contacts;
use crate::portal::contact_admin::{self, AdminError, ContactChange, Done};

const PATH: &str = "/contacts";

/// The contacts link's holder, when they manage contacts; anyone else gets
/// "not found", as for any page that is not theirs.
async fn manager(state: &WebState, headers: &HeaderMap) -> Result<Contact, Response> {
    let contact = link_holder(state, headers, LinkPurpose::Contacts, "").await?;
    if manages_contacts(&contact) {
        Ok(contact)
    } else {
        Err(state.pages.not_found())
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ShowQuery {
    done: Option<String>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    Query(query): Query<ShowQuery>,
    headers: HeaderMap,
) -> Response {
    let actor = match manager(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let notice = match query.done.as_deref() {
        Some("added") => Some("The contact was added."),
        Some("types") => Some("The contact's types were changed."),
        Some("deactivated") => {
            Some("The contact was deactivated; the links they were sent no longer work.")
        }
        Some("address") => Some(
            "We mailed a confirmation link to the new address. The change takes effect when it \
             is confirmed; until then the old address keeps working.",
        ),
        _ => None,
    };
    page(&state, &actor, notice, StatusCode::OK).await
}

fn types_of(c: &Contact) -> serde_json::Value {
    json!({
        "primary": c.types.primary,
        "billing": c.types.billing,
        "technical": c.types.technical,
        "names": c.types.names().join(", "),
    })
}

async fn page(
    state: &WebState,
    actor: &Contact,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(client_id) = actor.client_id else {
        return state.pages.not_found();
    };
    let found = match state.app.db.conn().await {
        Ok(mut conn) => match contacts::client_contacts(&mut conn, client_id).await {
            Ok(list) => portal::pending_address_changes(&mut conn, client_id)
                .await
                .map(|pending| (list, pending)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (list, pending) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "contacts page: database");
            return state.pages.unavailable();
        }
    };
    let rows: Vec<_> = list
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "email": c.email,
                "types": types_of(c),
                "is_me": c.id == actor.id,
                "pending_email": pending.iter().rev().find(|(id, _)| *id == c.id).map(|(_, e)| e),
            })
        })
        .collect();
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(PATH, secure);
    let mut response = state.pages.render(
        status,
        "contacts",
        "Your company's contacts",
        json!({
            "contacts": rows,
            "notice": notice,
            "csrf": token,
        }),
    );
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A posted form's fields, by name.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn types(&self) -> ContactTypes {
        ContactTypes {
            primary: self.get("primary").is_some(),
            billing: self.get("billing").is_some(),
            technical: self.get("technical").is_some(),
        }
    }
}

/// A post of the contacts page: its request and what the audit log calls it.
struct Posted<'a> {
    headers: &'a HeaderMap,
    origin: &'a Origin,
    /// The route's action (`contacts.add`, …).
    action: &'static str,
    /// The contact the post is about (none when adding one).
    contact_id: Option<i64>,
}

/// Checks the holder and the CSRF value, applies `change`, redirects to
/// the page with its notice — or shows the page with why not.
async fn post_change(
    state: &WebState,
    posted: Posted<'_>,
    fields: &Fields,
    change: impl FnOnce() -> Result<ContactChange, &'static str>,
) -> Response {
    let Posted {
        headers,
        origin,
        action,
        contact_id,
    } = posted;
    let actor = match manager(state, headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    if !csrf::check(headers, fields.get("csrf").unwrap_or("")) {
        return form_expired(state);
    }
    let change = match change() {
        Ok(change) => change,
        Err(message) => return page(state, &actor, Some(message), StatusCode::BAD_REQUEST).await,
    };
    // The change and its audit entry commit together; a refusal is
    // recorded by the page's layer.
    let event = AuditEvent::new(AuditKind::FormPost, action, state.app.clock.now_millis())
        .actor(Actor::Contact(actor.id))
        .client(actor.client_id)
        .origin(origin);
    let event = match contact_id {
        Some(id) => event.resource("contact", &id.to_string()),
        None => event.resource("contacts", ""),
    };
    match contact_admin::apply(&state.app, &actor, change, event).await {
        Ok(done) => {
            let done = match done {
                Done::Added => "added",
                Done::TypesChanged => "types",
                Done::Deactivated => "deactivated",
                Done::ConfirmationMailed => "address",
            };
            Note::recorded().on(see_other(&format!("{PATH}?done={done}")))
        }
        Err(e @ (AdminError::Db(_) | AdminError::Queue(_) | AdminError::Link(_))) => {
            tracing::error!(error = %e, "contacts page: change failed");
            state.pages.unavailable()
        }
        Err(e @ AdminError::UnknownContact) => {
            page(state, &actor, Some(&e.to_string()), StatusCode::NOT_FOUND).await
        }
        Err(e) => page(state, &actor, Some(&e.to_string()), StatusCode::CONFLICT).await,
    }
}

fn address(fields: &Fields, name: &str) -> Result<EmailAddress, &'static str> {
    EmailAddress::parse(fields.get(name).unwrap_or("").trim())
        .map_err(|_| "That is not an email address.")
}

pub(crate) async fn add(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let posted = Posted {
        headers: &headers,
        origin: &origin,
        action: "contacts.add",
        contact_id: None,
    };
    post_change(&state, posted, &fields, || {
        Ok(ContactChange::Add {
            email: address(&fields, "email")?,
            name: fields.get("name").map(|n| n.chars().take(200).collect()),
            types: fields.types(),
        })
    })
    .await
}

pub(crate) async fn set_types(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let posted = Posted {
        headers: &headers,
        origin: &origin,
        action: "contacts.change_types",
        contact_id: Some(id),
    };
    post_change(&state, posted, &fields, || {
        Ok(ContactChange::SetTypes {
            contact_id: id,
            types: fields.types(),
        })
    })
    .await
}

pub(crate) async fn deactivate(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let posted = Posted {
        headers: &headers,
        origin: &origin,
        action: "contacts.deactivate",
        contact_id: Some(id),
    };
    post_change(&state, posted, &fields, || {
        Ok(ContactChange::Deactivate { contact_id: id })
    })
    .await
}

pub(crate) async fn change_address(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let posted = Posted {
        headers: &headers,
        origin: &origin,
        action: "contacts.change_address",
        contact_id: Some(id),
    };
    post_change(&state, posted, &fields, || {
        Ok(ContactChange::ChangeAddress {
            contact_id: id,
            new_email: address(&fields, "email")?,
        })
    })
    .await
}

// ------------------------------------------------- address confirmation

fn confirmation_path(id: i64) -> String {
    format!("/address-change/{id}")
}

fn notice_page(state: &WebState, status: StatusCode, title: &str, text: &str) -> Response {
    state
        .pages
        .render(status, "notice", title, json!({ "text": text }))
}

/// `GET /address-change/<id>`: what confirming would do, and the button.
pub(crate) async fn show_confirmation(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let contact = match link_holder(
        &state,
        &headers,
        LinkPurpose::AddressChange,
        &id.to_string(),
    )
    .await
    {
        Ok(c) => c,
        Err(page) => return page,
    };
    let change = match contact_admin::pending_change(&state.app, &contact, id).await {
        Ok(Some(change)) => change,
        Ok(None) => {
            return notice_page(
                &state,
                StatusCode::GONE,
                "Confirmation no longer valid",
                &AdminError::StaleConfirmation.to_string(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "address confirmation: database");
            return state.pages.unavailable();
        }
    };
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(&confirmation_path(id), secure);
    let mut response = state.pages.render(
        StatusCode::OK,
        "address_change",
        "Confirm your new address",
        json!({
            "id": id,
            "new_email": change.new_email,
            "csrf": token,
        }),
    );
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /address-change/<id>`: the new address takes effect.
pub(crate) async fn confirm(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<i64>,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let contact = match link_holder(
        &state,
        &headers,
        LinkPurpose::AddressChange,
        &id.to_string(),
    )
    .await
    {
        Ok(c) => c,
        Err(page) => return page,
    };
    let fields = Fields(fields);
    if !csrf::check(&headers, fields.get("csrf").unwrap_or("")) {
        return form_expired(&state);
    }
    let event = AuditEvent::new(
        AuditKind::FormPost,
        "contacts.confirm_address",
        state.app.clock.now_millis(),
    )
    .actor(Actor::Contact(contact.id))
    .client(contact.client_id)
    .resource("address_change", &id.to_string())
    .origin(&origin);
    match contact_admin::confirm(&state.app, &contact, id, event).await {
        Ok(()) => Note::recorded().on(notice_page(
            &state,
            StatusCode::OK,
            "Address changed",
            "Thank you: mail from us now goes to this address. Links sent to the old address \
             no longer work; new mails bring new ones.",
        )),
        Err(e @ (AdminError::StaleConfirmation | AdminError::AddressTaken)) => notice_page(
            &state,
            StatusCode::CONFLICT,
            "Address not changed",
            &e.to_string(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "address confirmation failed");
            state.pages.unavailable()
        }
    }
}
