//! `GET /quote/<number>`: a quote a link opened; `POST
//! /quote/<number>/decision`: the client accepts or declines it. The POST
//! needs the link cookie and the form's CSRF value; the server checks that
//! the quote is still open and not past its validity (in UTC days for now),
//! records the decision, and in the same transaction queues a mail to the
//! staff and a confirmation to the client.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde_json::json;

use super::audit::{Note, RequestOrigin};
use super::pages::{document_lines, money};
use super::{csrf, link_holder, WebState};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::billing::notify::mail_staff;
use crate::db::audit;
use crate::db::contacts::Contact;
use crate::db::invoices::{self, QuoteDetail};
use crate::domain::{EmailAddress, QuoteStatus};
use crate::links::LinkPurpose;
use crate::mail::outgoing::MailRequest;

/// The link's contact for quote `number`, or the page to answer with.
async fn holder(
    state: &WebState,
    headers: &HeaderMap,
    number: &str,
) -> Result<(Contact, QuoteDetail), Response> {
    let contact = link_holder(state, headers, LinkPurpose::Quote, number).await?;
    let detail = match state.app.db.conn().await {
        Ok(mut conn) => invoices::quote_detail(&mut conn, number).await,
        Err(e) => Err(e),
    };
    match detail {
        Ok(Some(q)) if Some(q.client_id) == contact.client_id => Ok((contact, q)),
        Ok(_) => Err(state.pages.not_found()),
        Err(e) => {
            tracing::error!(error = %e, "quote page: database");
            Err(state.pages.unavailable())
        }
    }
}

/// The client's calendar day, in its time zone, as stored dates are written.
async fn today(state: &WebState, client_id: i64) -> anyhow::Result<String> {
    let mut conn = state.app.db.conn().await?;
    crate::billing::client_today(
        &state.app,
        &mut conn,
        client_id,
        state.app.clock.now_millis(),
    )
    .await
}

/// Whether quote `q` is past its last valid day (an unreadable clock or
/// database counts as not expired here; the decision re-checks).
async fn expired(state: &WebState, q: &QuoteDetail) -> Result<bool, Response> {
    match today(state, q.client_id).await {
        Ok(day) => Ok(day > q.expiry_date),
        Err(e) => {
            tracing::error!(error = %e, "quote page: database");
            Err(state.pages.unavailable())
        }
    }
}

fn page(state: &WebState, q: &QuoteDetail, notice: Option<&str>, expired: bool) -> Response {
    let cur = q.currency.as_str();
    let status = QuoteStatus::parse(&q.status);
    let open = status == Some(QuoteStatus::Sent) && !expired;
    let label = match status {
        Some(QuoteStatus::Sent) if expired => "Expired",
        Some(s) => s.label(),
        None => "Unknown",
    };
    let secure = state.app.config.web.base_url.starts_with("https://");
    let (token, cookie) = csrf::issue(&format!("/quote/{}", q.number), secure);
    let (lines, tax_lines) = document_lines(&q.lines, cur, q.tax_minor);
    let mut response = state.pages.render(
        StatusCode::OK,
        "quote",
        &format!("Quote {}", q.number),
        json!({
            "number": q.number,
            "status": label,
            "notice": notice,
            "client": q.client_name,
            "issue_date": q.issue_date,
            "expiry_date": q.expiry_date,
            "lines": lines,
            "tax_lines": tax_lines,
            "subtotal": money(q.subtotal_minor, cur),
            "total": money(q.total_minor, cur),
            "terms": q.terms,
            "notes": q.notes,
            "open": open,
            "csrf": token,
        }),
    );
    if let (true, Some(cookie)) = (open, cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

pub(crate) async fn show(
    State(state): State<WebState>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Response {
    match holder(&state, &headers, &number).await {
        Ok((_, q)) => match expired(&state, &q).await {
            Ok(expired) => page(&state, &q, None, expired),
            Err(response) => response,
        },
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct DecisionForm {
    decision: String,
    csrf: String,
}

pub(crate) async fn decide(
    State(state): State<WebState>,
    RequestOrigin(origin): RequestOrigin,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    let (contact, quote) = match holder(&state, &headers, &number).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !csrf::check(&headers, &form.csrf) {
        return state.pages.render(
            StatusCode::FORBIDDEN,
            "form_expired",
            "Please try again",
            json!({}),
        );
    }
    let decision = match form.decision.as_str() {
        "accept" => QuoteStatus::Accepted,
        "decline" => QuoteStatus::Declined,
        _ => return (StatusCode::BAD_REQUEST, "unknown decision").into_response(),
    };
    let is_expired = match expired(&state, &quote).await {
        Ok(e) => e,
        Err(response) => return response,
    };
    if is_expired {
        let notice = format!(
            "This quote was valid until {}; please ask us for a new one.",
            quote.expiry_date
        );
        return page(&state, &quote, Some(&notice), true);
    }
    let action = match decision {
        QuoteStatus::Declined => "quote.decline",
        _ => "quote.accept",
    };
    let note = Note {
        action: Some(action),
        client_id: contact.client_id,
        ..Note::default()
    };
    let event = AuditEvent::new(AuditKind::FormPost, action, state.app.clock.now_millis())
        .actor(Actor::Contact(contact.id))
        .client(contact.client_id)
        .resource("quote", &quote.number)
        .origin(&origin);
    match record_decision(&state, &quote, &contact, decision, &event).await {
        Ok(true) => {
            // Post/redirect/get: a reload does not post again.
            let mut response = (StatusCode::SEE_OTHER, ()).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/quote/{}", quote.number)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Note::recorded().on(response)
        }
        Ok(false) => note.on(page(
            &state,
            &quote,
            Some("This quote has been decided already; nothing was changed."),
            false,
        )),
        Err(e) => {
            tracing::error!(error = %e, "quote decision failed");
            state.pages.unavailable()
        }
    }
}

/// The decision, its two mails and its audit entry, in one transaction; false when the quote
/// was no longer open.
async fn record_decision(
    state: &WebState,
    quote: &QuoteDetail,
    contact: &Contact,
    decision: QuoteStatus,
    event: &AuditEvent,
) -> anyhow::Result<bool> {
    let app = &state.app;
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    if !invoices::decide_quote(&mut tx, quote.id, decision, contact.id, now).await? {
        return Ok(false);
    }
    audit::record(&mut tx, event).await?;
    let data = json!({
        "number": quote.number,
        "client": quote.client_name,
        "decision": decision.label().to_ascii_lowercase(),
        "total": money(quote.total_minor, &quote.currency),
        "contact": contact.name.clone().unwrap_or_else(|| contact.email.clone()),
    });
    mail_staff(
        app,
        &mut tx,
        "quote-decided",
        "quote_decided",
        data.clone(),
        now,
    )
    .await?;
    let mailer = &app.ingestor.mailer;
    mailer
        .queue(
            &mut tx,
            MailRequest::notice(
                "quote-confirmation",
                "quote_confirmation",
                data,
                vec![EmailAddress::parse(&contact.email)?],
            ),
            now,
        )
        .await?;
    tx.commit().await?;
    app.ingestor.outbox_ready.notify_one();
    Ok(true)
}
