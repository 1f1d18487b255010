//! `/api/v1/tickets`: list and show; open a ticket for a client's contact,
//! reply (publicly or as an internal note), set the status. Each action is
//! written as the mail the named technician would send to the support
//! address — commands on top, text below — and ingested like one, so the
//! API cannot do anything a technician's mail could not, and the ticket
//! records it the same way (with the raw message kept).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lettre::message::{header::ContentType, Mailbox};
use serde_json::json;

use super::{body, created, ok, ApiError, ApiResult};
use crate::config::StaffMember;
use crate::db::{conversation, tickets};
use crate::domain::{EmailAddress, Priority, TicketNumber, TicketStatus};
use crate::mail::ingest::{Delivery, Outcome, Source};
use crate::mail::staff_commands::parse_staff_reply;
use crate::web::WebState;

pub(super) async fn list(State(state): State<WebState>) -> ApiResult {
    let mut conn = state.app.db.conn().await?;
    ok(tickets::list_tickets(&mut conn).await?)
}

pub(super) async fn show(State(state): State<WebState>, Path(number): Path<String>) -> ApiResult {
    let number = ticket_number(&state, &number)?;
    let mut conn = state.app.db.conn().await?;
    let detail = tickets::show_ticket(&mut conn, &number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {number}")))?;
    ok(detail)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTicket {
    /// The technician opening it: a configured staff address or name.
    staff: String,
    /// The client's contact the ticket is for.
    requester: String,
    subject: String,
    text: String,
    #[serde(default)]
    priority: Option<String>,
}

pub(super) async fn create(State(state): State<WebState>, bytes: Bytes) -> ApiResult {
    let t: NewTicket = body(&bytes)?;
    let staff = staff_member(&state, &t.staff)?;
    let requester = EmailAddress::parse(&t.requester)
        .map_err(|e| ApiError::bad_request(format!("requester: {e}")))?;
    let mut commands = format!("#requester {}\n", requester.as_str());
    if let Some(p) = &t.priority {
        let p = Priority::parse(p).map_err(|e| ApiError::bad_request(format!("priority: {e}")))?;
        commands.push_str(&format!("#priority {}\n", p.as_str()));
    }
    let mailbox = support_address(&state)?;
    let outcome = ingest_as(&state, staff, mailbox, t.subject.trim(), &commands, &t.text).await?;
    match outcome {
        Outcome::TicketCreated { ticket } => created(json!({ "ticket": ticket })),
        other => Err(unexpected(other)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Reply {
    staff: String,
    text: String,
    /// An internal note, never mailed to the client.
    #[serde(default)]
    internal: bool,
    /// A status to set with the reply.
    #[serde(default)]
    status: Option<String>,
}

pub(super) async fn reply(
    State(state): State<WebState>,
    Path(number): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let r: Reply = body(&bytes)?;
    if r.text.trim().is_empty() {
        return Err(ApiError::bad_request("text: must not be empty"));
    }
    let mut commands = String::new();
    if r.internal {
        commands.push_str("#note\n");
    }
    if let Some(s) = &r.status {
        commands.push_str(&format!("#status {}\n", status(s)?.as_str()));
    }
    act_on_ticket(&state, &number, &r.staff, &commands, &r.text).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetStatus {
    staff: String,
    status: String,
}

pub(super) async fn set_status(
    State(state): State<WebState>,
    Path(number): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let s: SetStatus = body(&bytes)?;
    let commands = format!("#status {}\n", status(&s.status)?.as_str());
    act_on_ticket(&state, &number, &s.staff, &commands, "").await
}

async fn act_on_ticket(
    state: &WebState,
    number: &str,
    staff: &str,
    commands: &str,
    text: &str,
) -> ApiResult {
    let number = ticket_number(state, number)?;
    let staff = staff_member(state, staff)?;
    let ticket = {
        let mut conn = state.app.db.conn().await?;
        conversation::ticket_by_number(&mut conn, number.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("ticket {number}")))?
    };
    let to = state
        .app
        .ingestor
        .mailer
        .reply_address(&ticket)
        .ok_or_else(|| ApiError::internal("no mailbox is configured to reply through"))?;
    let subject = format!("Re: [{}] {}", ticket.number, ticket.subject);
    match ingest_as(state, staff, to, &subject, commands, text).await? {
        Outcome::Added { ticket, kind } => ok(json!({ "ticket": ticket, "recorded_as": kind })),
        other => Err(unexpected(other)),
    }
}

/// Writes the technician's mail and ingests it.
async fn ingest_as(
    state: &WebState,
    staff: &StaffMember,
    to: EmailAddress,
    subject: &str,
    commands: &str,
    text: &str,
) -> Result<Outcome, ApiError> {
    // A text that starts with `#word` would be read as commands: refuse it
    // with the parser's own reasons rather than apply or mail it.
    let composed = format!("{commands}\n{text}");
    if let Err(errors) = parse_staff_reply(&composed) {
        let reasons: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::bad_request(format!(
            "commands: {} (a text must not start with a `#word` line)",
            reasons.join("; ")
        )));
    }
    let from = Mailbox::new(
        Some(staff.name.clone()),
        staff.email.as_str().parse().map_err(ApiError::internal)?,
    );
    let domain = to.domain().to_string();
    let message = lettre::Message::builder()
        .from(from)
        .to(Mailbox::new(
            None,
            to.as_str().parse().map_err(ApiError::internal)?,
        ))
        .subject(subject)
        .message_id(Some(format!(
            "<api.{}@{domain}>",
            uuid::Uuid::new_v4().simple()
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(composed)
        .map_err(|e| ApiError::bad_request(format!("cannot write that mail: {e}")))?;
    let raw = message.formatted();
    state
        .app
        .ingestor
        .ingest(Delivery {
            source: Source::AdminApi,
            raw: &raw,
            oversized_bytes: None,
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "admin API: ingest failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unavailable; retry",
            )
        })
}

fn staff_member<'a>(state: &'a WebState, who: &str) -> Result<&'a StaffMember, ApiError> {
    state.app.config.find_staff(who).ok_or_else(|| {
        ApiError::bad_request(format!("staff: `{who}` is not a configured staff member"))
    })
}

fn support_address(state: &WebState) -> Result<EmailAddress, ApiError> {
    state
        .app
        .config
        .mailboxes
        .first()
        .map(|m| m.address.clone())
        .ok_or_else(|| ApiError::internal("no mailbox is configured"))
}

fn ticket_number(state: &WebState, number: &str) -> Result<TicketNumber, ApiError> {
    TicketNumber::parse(&state.app.config.tickets.prefix, number)
        .map_err(|e| ApiError::bad_request(format!("ticket number: {e}")))
}

fn status(s: &str) -> Result<TicketStatus, ApiError> {
    TicketStatus::parse(s).map_err(|e| ApiError::bad_request(format!("status: {e}")))
}

fn unexpected(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::CommandRejected { .. } => {
            ApiError::bad_request("the commands were refused; the technician was mailed why")
        }
        Outcome::Quarantined { reason } => ApiError::internal(format!("quarantined: {reason}")),
        other => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "not applied: {}",
                serde_json::to_string(&other).unwrap_or_default()
            ),
        ),
    }
}
