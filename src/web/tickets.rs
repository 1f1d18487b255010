//! The tickets page (SPEC §6), opened by a tickets link:
//! - `GET /tickets?q=…&status=…`: a Standard contact's own tickets (asked or
//!   taking part), or all of the client's for Technical and Primary
//!   contacts (`portal::access`); search in number and subject, filter by
//!   status. Each ticket opens through a fresh signed ticket link of the
//!   contact's, so its page checks the same rules.
//! - `GET /tickets/export.csv?q=…&status=…`: the same list as CSV, formula
//!   cells defused ([`crate::csv`]).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ticket::{local_time, status_label};
use super::{link_holder, WebState};
use crate::db::contacts::Contact;
use crate::db::portal::{self, TicketFilter, TicketListRow, TicketScope};
use crate::domain::TicketStatus;
use crate::links::issue::signed_link;
use crate::links::LinkPurpose;
use crate::portal::access::ticket_scope;

/// The page's query, as typed by the person: parsed once here.
#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    q: Option<String>,
    status: Option<String>,
}

impl ListQuery {
    /// The filter it asks for; an unknown status is "every status".
    fn filter(&self) -> TicketFilter {
        TicketFilter {
            search: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(200).collect()),
            status: self
                .status
                .as_deref()
                .and_then(|s| TicketStatus::parse(s).ok())
                .map(|s| s.as_str().to_string()),
        }
    }
}

async fn tickets_of(
    state: &WebState,
    headers: &HeaderMap,
    query: &ListQuery,
) -> Result<(Contact, TicketScope, Vec<TicketListRow>), Response> {
    let contact = link_holder(state, headers, LinkPurpose::Tickets, "").await?;
    let scope = ticket_scope(&contact);
    let rows = match state.app.db.conn().await {
        Ok(mut conn) => portal::visible_tickets(&mut conn, &scope, &query.filter()).await,
        Err(e) => Err(e),
    };
    match rows {
        Ok(rows) => Ok((contact, scope, rows)),
        Err(e) => {
            tracing::error!(error = %e, "tickets page: database");
            Err(state.pages.unavailable())
        }
    }
}

pub(crate) async fn show(
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (contact, scope, rows) = match tickets_of(&state, &headers, &query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let config = &state.app.config;
    let now = state.app.clock.now_millis() / 1000;
    let filter = query.filter();
    let tickets: Vec<_> = rows
        .iter()
        .map(|t| {
            let link = signed_link(config, &contact, LinkPurpose::Ticket, &t.number, now)
                .ok()
                .map(|url| {
                    url.strip_prefix(&config.web.base_url)
                        .map(str::to_string)
                        .unwrap_or(url)
                });
            json!({
                "number": t.number,
                "subject": t.subject,
                "status": status_label(&t.status),
                "requester": t.requester_email,
                "updated": local_time(&state, t.updated_at),
                "link": link,
            })
        })
        .collect();
    let statuses: Vec<_> = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::WaitingOnClient,
        TicketStatus::WaitingOnVendor,
        TicketStatus::Closed,
    ]
    .into_iter()
    .map(|s| {
        json!({
            "value": s.as_str(),
            "label": s.label(),
            "selected": filter.status.as_deref() == Some(s.as_str()),
        })
    })
    .collect();
    let export = {
        let mut pairs = Vec::new();
        if let Some(q) = &filter.search {
            pairs.push(format!("q={}", query_value(q)));
        }
        if let Some(s) = &filter.status {
            pairs.push(format!("status={}", query_value(s)));
        }
        if pairs.is_empty() {
            "/tickets/export.csv".to_string()
        } else {
            format!("/tickets/export.csv?{}", pairs.join("&"))
        }
    };
    state.pages.render(
        StatusCode::OK,
        "tickets",
        "Your tickets",
        json!({
            "all_of_client": matches!(scope, TicketScope::Client(_)),
            "has_tickets": !tickets.is_empty(),
            "tickets": tickets,
            "search": filter.search,
            "statuses": statuses,
            "filtered": filter.search.is_some() || filter.status.is_some(),
            "export": export,
        }),
    )
}

pub(crate) async fn export(
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (_, _, rows) = match tickets_of(&state, &headers, &query).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let mut csv = crate::csv::line(&[
        "number",
        "subject",
        "status",
        "priority",
        "category",
        "requester",
        "opened",
        "updated",
        "closed",
    ]);
    for t in &rows {
        csv.push_str(&crate::csv::line(&[
            t.number.clone(),
            t.subject.clone(),
            status_label(&t.status).to_string(),
            t.priority.clone(),
            t.category.clone().unwrap_or_default(),
            t.requester_email.clone(),
            local_time(&state, t.created_at),
            local_time(&state, t.updated_at),
            t.closed_at
                .map(|c| local_time(&state, c))
                .unwrap_or_default(),
        ]));
    }
    let mut response = csv.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tickets.csv\""),
    );
    response
}

/// A query-string value, percent-encoded.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
