//! The ticket page (SPEC §6), opened by a ticket link:
//! - `GET /ticket/<number>`: status, priority, category, assignee, time
//!   worked (when `[portal] show_time_worked`), the public conversation
//!   newest first — never internal notes — with its files behind signed,
//!   expiring URLs; a reply form (text and files, phone cameras welcome) and
//!   close / reopen. Printable.
//! - `POST /ticket/<number>/reply` (multipart, within `[limits]
//!   max_message_mb`): written as the contact's own mail and ingested like
//!   an emailed reply (`portal::reply`).
//! - `POST /ticket/<number>/state`: close or reopen (`portal::ticket_state`).
//! - `GET /ticket/<number>/files/<token>`: one attachment; the token names
//!   the attachment, the contact and their link generation, and expires.
//!
//! Every request checks the link's contact (active, current generation) and
//! that the ticket is still theirs to see (`portal::access`). Forms carry
//! the double-submit CSRF value. Mail HTML is shown only through
//! [`super::mail_html`], under a CSP that allows no script and no remote
//! image.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::audit::{Note, RequestOrigin};
use super::mail_html::safe_mail_html;
use super::pay::{form_expired, see_other};
use super::{csrf, current_contact, link_holder, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::db::contacts::Contact;
use crate::db::portal::{self, PortalAttachment, PortalTicket};
use crate::domain::{Priority, TicketStatus};
use crate::links::{sign, verify, LinkClaims, LinkPurpose};
use crate::mail::ingest::Outcome;
use crate::portal::access::may_see_ticket;
use crate::portal::reply::{post_reply, PortalReply, ReplyError, UploadedFile};
use crate::portal::ticket_state::{change_state, StateChange, StateError};
use crate::storage::BlobKind;

/// How long an attachment URL of a rendered page works.
const ATTACHMENT_URL_TTL_SECS: i64 = 3600;

/// The ticket page's CSP: no script, images only from Postdesk itself,
/// `data:` (a mail's remote images are removed, never fetched) and the
/// configured logo's exact URL, no frames.
pub(crate) fn ticket_page_csp(branding: &crate::config::Branding) -> HeaderValue {
    const STRICT: &str = "default-src 'none'; img-src 'self' data:; \
     style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    match &branding.logo_url {
        // The config allows only plain URLs (no spaces, `;` or `,`).
        Some(logo) => HeaderValue::from_str(&STRICT.replacen(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {logo}"),
            1,
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(STRICT)),
        None => HeaderValue::from_static(STRICT),
    }
}

/// What the image types the page shows inline may be; any other file is
/// served as a download.
const INLINE_IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

fn page_path(number: &str) -> String {
    format!("/ticket/{number}")
}

#[derive(serde::Deserialize)]
pub(crate) struct ShowQuery {
    done: Option<String>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    Path(number): Path<String>,
    Query(query): Query<ShowQuery>,
    headers: HeaderMap,
) -> Response {
    let (contact, ticket) = match holder_and_ticket(&state, &headers, &number).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let notice = match query.done.as_deref() {
        Some("reply") => Some("Thank you: your reply was added."),
        Some("closed") => Some("The ticket is closed."),
        Some("reopened") => Some("The ticket is open again."),
        _ => None,
    };
    page(&state, &contact, &ticket, notice, StatusCode::OK).await
}

/// The link's holder and the ticket, when it is still theirs to see.
async fn holder_and_ticket(
    state: &WebState,
    headers: &HeaderMap,
    number: &str,
) -> Result<(Contact, PortalTicket), Response> {
    let contact = link_holder(state, headers, LinkPurpose::Ticket, number).await?;
    let ticket = visible_ticket(state, &contact, number).await?;
    Ok((contact, ticket))
}

async fn visible_ticket(
    state: &WebState,
    contact: &Contact,
    number: &str,
) -> Result<PortalTicket, Response> {
    let found = match state.app.db.conn().await {
        Ok(mut conn) => portal::ticket_by_number(&mut conn, number).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(ticket)) if may_see_ticket(contact, &ticket) => Ok(ticket),
        Ok(_) => Err(state.pages.not_found()),
        Err(e) => {
            tracing::error!(error = %e, "ticket page: database");
            Err(state.pages.unavailable())
        }
    }
}

/// A time as the company reads it.
pub(crate) fn local_time(state: &WebState, millis: i64) -> String {
    let zone = state.app.config.company.timezone;
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A status as people read it.
pub(crate) fn status_label(status: &str) -> &'static str {
    TicketStatus::parse(status)
        .map(|s| s.label())
        .unwrap_or("Unknown")
}

fn priority_label(priority: &str) -> &'static str {
    Priority::parse(priority).map(|p| p.label()).unwrap_or("—")
}

/// Our mail's text without the "reply above this line" marker it starts
/// with (it means something in a mail client, nothing on the page).
fn without_reply_marker(text: &str) -> &str {
    let trimmed = text.trim_start();
    match trimmed.split_once('\n') {
        Some((first, rest)) if first.contains("Reply above this line") => rest.trim_start(),
        _ => text,
    }
}

/// Minutes as "1 h 30 min".
fn duration_label(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn size_label(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// The signed URL of one attachment of `ticket` for `contact`.
fn attachment_url(
    state: &WebState,
    contact: &Contact,
    ticket: &PortalTicket,
    file: &PortalAttachment,
    now_secs: i64,
) -> Option<String> {
    let token = sign(
        &state.app.config.link_keys,
        &LinkClaims {
            purpose: LinkPurpose::Attachment,
            resource: file.id.to_string(),
            contact_id: contact.id,
            generation: contact.link_generation,
            expires_at: now_secs + ATTACHMENT_URL_TTL_SECS,
        },
    )
    .ok()?;
    Some(format!(
        "{}/ticket/{}/files/{token}",
        state.app.config.web.base_url, ticket.number
    ))
}

async fn page(
    state: &WebState,
    contact: &Contact,
    ticket: &PortalTicket,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let messages = match state.app.db.conn().await {
        Ok(mut conn) => portal::public_conversation(&mut conn, ticket.id).await,
        Err(e) => Err(e),
    };
    let messages = match messages {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "ticket page: database");
            return state.pages.unavailable();
        }
    };
    let config = &state.app.config;
    let now_secs = state.app.clock.now_millis() / 1000;
    let company = &config.branding.company_name;
    let shown: Vec<Value> = messages
        .iter()
        .map(|m| {
            let outbound = m.direction == "out";
            let author = if outbound {
                m.from_name.clone().unwrap_or_else(|| company.clone())
            } else {
                m.from_name
                    .clone()
                    .or_else(|| m.from_email.clone())
                    .unwrap_or_else(|| "Unknown sender".into())
            };
            let files: Vec<(&PortalAttachment, Option<String>)> = m
                .attachments
                .iter()
                .map(|f| (f, attachment_url(state, contact, ticket, f, now_secs)))
                .collect();
            let inline: HashMap<String, String> = files
                .iter()
                .filter_map(|(f, url)| Some((f.content_id.clone()?, url.clone()?)))
                .collect();
            let full_html = m
                .html
                .as_deref()
                .filter(|h| !h.trim().is_empty())
                .map(|h| safe_mail_html(h, inline));
            let said = if outbound {
                without_reply_marker(&m.text)
            } else {
                m.trimmed
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or(&m.text)
            };
            // The whole message is offered when it says more than the
            // trimmed text (quoted history, signature, formatting).
            let whole_text = (!outbound && full_html.is_none() && said.trim() != m.text.trim())
                .then(|| m.text.clone());
            json!({
                "author": author,
                "staff": outbound,
                "date": local_time(state, m.created_at),
                "text": said,
                "html": full_html,
                "whole_text": whole_text,
                "has_files": !files.is_empty(),
                "files": files.iter().map(|(f, url)| json!({
                    "name": f.filename,
                    "size": size_label(f.size_bytes),
                    "url": url,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let closed = ticket.status == TicketStatus::Closed.as_str();
    let reopen_window_ms = i64::from(config.tickets.reopen_days) * 86_400_000;
    let can_reopen =
        closed && state.app.clock.now_millis() - ticket.closed_at.unwrap_or(0) <= reopen_window_ms;
    let assignee = ticket.assignee_email.as_deref().map(|a| {
        config
            .find_staff(a)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| company.clone())
    });
    // Back to the list: through a fresh tickets link of the contact's.
    let tickets_link =
        crate::links::issue::signed_link(config, contact, LinkPurpose::Tickets, "", now_secs)
            .ok()
            .map(|url| {
                url.strip_prefix(&config.web.base_url)
                    .map(str::to_string)
                    .unwrap_or(url)
            });
    let secure = config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(&page_path(&ticket.number), secure);
    let data = json!({
        "number": ticket.number,
        "subject": ticket.subject,
        "status": status_label(&ticket.status),
        "priority": priority_label(&ticket.priority),
        "category": ticket.category,
        "assignee": assignee,
        "time_worked": config.portal.show_time_worked.then(|| duration_label(ticket.time_worked_minutes)),
        "opened": local_time(state, ticket.created_at),
        "updated": local_time(state, ticket.updated_at),
        "closed": closed,
        "can_reopen": can_reopen,
        "reopen_days": config.tickets.reopen_days,
        "messages": shown,
        "notice": notice,
        "csrf": token,
        "max_mb": config.limits.max_message_bytes / (1024 * 1024),
        "tickets_link": tickets_link,
    });
    let mut response = state.pages.render(
        status,
        "ticket",
        &format!("{} {}", ticket.number, ticket.subject),
        data,
    );
    let headers = response.headers_mut();
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        ticket_page_csp(&state.app.config.branding),
    );
    response
}

/// `POST /ticket/<number>/reply`: `csrf`, `text` and any number of `files`.
pub(crate) async fn reply(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(number): Path<String>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let (contact, ticket) = match holder_and_ticket(&state, &headers, &number).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let too_large = || ReplyError::TooLarge {
        limit_mb: state.app.config.limits.max_message_bytes / (1024 * 1024),
    };
    let form = match read_reply_form(multipart).await {
        Ok(form) => form,
        Err(status) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            return page(
                &state,
                &contact,
                &ticket,
                Some(&too_large().to_string()),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await
        }
        Err(_) => return form_expired(&state),
    };
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    match over_reply_limit(&state, &contact).await {
        Ok(false) => {}
        Ok(true) => {
            let notice = format!(
                "You have posted {} replies from this page in the last hour, as many as \
                 we take. Nothing was added this time: please try again later, or reply \
                 to one of our mails about this ticket.",
                state.app.config.limits.portal_replies_per_hour
            );
            return page(
                &state,
                &contact,
                &ticket,
                Some(&notice),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "ticket page reply: database");
            return state.pages.unavailable();
        }
    }
    let reply = PortalReply {
        text: form.text,
        files: form.files,
        idempotency_key: form.csrf,
    };
    let event = AuditEvent::new(
        AuditKind::FormPost,
        "ticket.reply",
        state.app.clock.now_millis(),
    )
    .actor(Actor::Contact(contact.id))
    .client(contact.client_id)
    .resource("ticket", &ticket.number)
    .origin(&origin);
    let posted = post_reply(
        &state.app.ingestor,
        &contact,
        &ticket.number,
        &reply,
        &event,
    )
    .await;
    // Applied, the post's entry went in with the mail; a repeated post or a
    // refusal is left to the layer.
    let note = match &posted {
        Ok(Outcome::Duplicate) | Err(_) => Note::default(),
        Ok(_) => Note::recorded(),
    };
    let response = match posted {
        Ok(Outcome::TicketCreated { ticket: new_number }) => {
            // Past the reopen window the reply opened a new ticket: open it
            // through a fresh link of the contact's.
            let now = state.app.clock.now_millis() / 1000;
            match crate::links::issue::signed_link(
                &state.app.config,
                &contact,
                LinkPurpose::Ticket,
                &new_number,
                now,
            ) {
                Ok(url) => see_other(
                    url.strip_prefix(&state.app.config.web.base_url)
                        .unwrap_or(&url),
                ),
                Err(_) => see_other(&page_path(&ticket.number)),
            }
        }
        Ok(_) => see_other(&format!("{}?done=reply", page_path(&ticket.number))),
        Err(e @ ReplyError::Empty) => {
            page(
                &state,
                &contact,
                &ticket,
                Some(&e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e @ ReplyError::TooLarge { .. }) => {
            page(
                &state,
                &contact,
                &ticket,
                Some(&e.to_string()),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, ticket = %ticket.number, "ticket page reply failed");
            state.pages.unavailable()
        }
    };
    note.on(response)
}

/// Whether `contact` has posted `[limits] portal_replies_per_hour` replies
/// from ticket pages in the last hour already. Two posts at the same
/// instant may both pass: a brake on floods, not an exact quota.
async fn over_reply_limit(
    state: &WebState,
    contact: &crate::db::contacts::Contact,
) -> Result<bool, crate::db::DbError> {
    const HOUR_MS: i64 = 3_600_000;
    let since = state.app.clock.now_millis() - HOUR_MS;
    let mut conn = state.app.db.conn().await?;
    let posted = crate::db::portal::portal_replies_since(&mut conn, &contact.email, since).await?;
    Ok(posted >= i64::from(state.app.config.limits.portal_replies_per_hour))
}

struct ReplyForm {
    csrf: String,
    text: String,
    files: Vec<UploadedFile>,
}

/// Reads the multipart form; the route's body limit bounds it (an overrun
/// reads as 413).
async fn read_reply_form(mut multipart: Multipart) -> Result<ReplyForm, StatusCode> {
    let mut form = ReplyForm {
        csrf: String::new(),
        text: String::new(),
        files: Vec::new(),
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(e.status()),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf" => form.csrf = field.text().await.map_err(|e| e.status())?,
            "text" => form.text = field.text().await.map_err(|e| e.status())?,
            "files" => {
                let filename = field.file_name().unwrap_or_default().to_string();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let bytes = field.bytes().await.map_err(|e| e.status())?;
                // An empty file input posts one nameless, empty part.
                if !bytes.is_empty() {
                    form.files.push(UploadedFile {
                        filename,
                        content_type,
                        bytes: bytes.to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(form)
}

#[derive(serde::Deserialize)]
pub(crate) struct StateForm {
    csrf: String,
    action: String,
}

/// `POST /ticket/<number>/state`: `action` is `close` or `reopen`.
pub(crate) async fn set_state(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(number): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<StateForm>,
) -> Response {
    let (contact, ticket) = match holder_and_ticket(&state, &headers, &number).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if !csrf::check(&headers, &form.csrf) {
        return form_expired(&state);
    }
    let (change, done) = match form.action.as_str() {
        "close" => (StateChange::Close, "closed"),
        "reopen" => (StateChange::Reopen, "reopened"),
        _ => return (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    };
    let action = match change {
        StateChange::Close => "ticket.close",
        StateChange::Reopen => "ticket.reopen",
    };
    let note = Note {
        action: Some(action),
        client_id: contact.client_id,
        ..Note::default()
    };
    // The change and its audit entry commit together; a refusal is
    // recorded by the layer, with the note.
    let event = AuditEvent::new(AuditKind::FormPost, action, state.app.clock.now_millis())
        .actor(Actor::Contact(contact.id))
        .client(contact.client_id)
        .resource("ticket", &ticket.number)
        .origin(&origin);
    match change_state(&state.app, &contact, &ticket.number, change, event).await {
        Ok(_) => Note::recorded().on(see_other(&format!(
            "{}?done={done}",
            page_path(&ticket.number)
        ))),
        Err(e @ StateError::ReopenWindowPassed(_)) => note.on(page(
            &state,
            &contact,
            &ticket,
            Some(&e.to_string()),
            StatusCode::CONFLICT,
        )
        .await),
        Err(e) => {
            tracing::error!(error = %e, ticket = %ticket.number, "ticket state change failed");
            note.on(state.pages.unavailable())
        }
    }
}

/// `GET /ticket/<number>/files/<token>`: the attachment the token names,
/// when its message is public, the ticket is `number` and still the
/// contact's to see, and the contact's links still hold.
pub(crate) async fn file(
    State(state): State<WebState>,
    Path((number, token)): Path<(String, String)>,
) -> Response {
    let now = state.app.clock.now_millis() / 1000;
    let Ok(claims) = verify(&state.app.config.link_keys, &token, now) else {
        return state.pages.not_found();
    };
    if claims.purpose != LinkPurpose::Attachment {
        return state.pages.not_found();
    }
    let Ok(attachment_id) = claims.resource.parse::<i64>() else {
        return state.pages.not_found();
    };
    let Ok(contact) = current_contact(&state, &claims).await else {
        return state.pages.not_found();
    };
    let found = match state.app.db.conn().await {
        Ok(mut conn) => match portal::public_attachment(&mut conn, attachment_id).await {
            Ok(Some((ticket_id, file))) => portal::ticket_by_id(&mut conn, ticket_id)
                .await
                .map(|t| t.map(|t| (t, file))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (ticket, file) = match found {
        Ok(Some((t, f))) if t.number == number && may_see_ticket(&contact, &t) => (t, f),
        Ok(_) => return state.pages.not_found(),
        Err(e) => {
            tracing::error!(error = %e, "attachment: database");
            return state.pages.unavailable();
        }
    };
    let bytes = match state
        .app
        .ingestor
        .store
        .get(BlobKind::Attachment, &file.sha256)
    {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, attachment = file.id, "attachment blob unreadable");
            return state.pages.unavailable();
        }
    };
    tracing::debug!(contact = contact.id, ticket = %ticket.number, attachment = file.id, "attachment served");
    let image = INLINE_IMAGE_TYPES.contains(&file.content_type.as_str());
    let content_type = if image {
        file.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    let disposition =
        content_disposition(if image { "inline" } else { "attachment" }, &file.filename);
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Served files are never rendered as pages of this origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // For the audit layer: the token's contact (the link cookie may be
    // someone else's, or gone), which file.
    Note {
        actor: Some(Actor::Contact(contact.id)),
        client_id: ticket.client_id,
        detail: Some(json!({ "attachment": file.id })),
        ..Note::default()
    }
    .on(response)
}

/// `Content-Disposition` with an ASCII fallback and the RFC 5987 UTF-8 name.
fn content_disposition(kind: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_people_write_them() {
        assert_eq!(duration_label(90), "1 h 30 min");
        assert_eq!(duration_label(120), "2 h");
        assert_eq!(duration_label(5), "5 min");
        assert_eq!(size_label(2048), "2 KB");
        assert_eq!(
            without_reply_marker("-- Reply above this line --\n\nHello Alice"),
            "Hello Alice"
        );
        assert_eq!(without_reply_marker("Hello"), "Hello");
        assert_eq!(
            content_disposition("attachment", "Grüße \"x\".pdf"),
            "attachment; filename=\"Gr__e _x_.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.pdf"
        );
    }
}
