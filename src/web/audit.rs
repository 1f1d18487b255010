//! The web side of the audit log: one layer, put on every page reached
//! through a signed link and every form post of the client's pages (see
//! `router`), appends what happened after the handler answered — the page or
//! action (a [`Route`]), the resource from the path, who (the link cookie's
//! contact, even when the link was refused), the outcome from the status,
//! and where from ([`RequestOrigin`]: the client address as the "email me
//! my links" limits see it, and the user agent).
//!
//! A handler that knows better says so with a [`Note`] on its response (the
//! precise action, the client, a small detail), or writes the event itself
//! in the transaction of the change it records and marks the response
//! [`Note::recorded`] so the layer does not write it twice. Everything the
//! layer writes is a record of its own: a denied or failed post has no
//! change to commit with.
//!
//! Never recorded: tokens (the path parameter of a token route is never
//! read), addresses, bodies.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use super::client_ip::ClientIp;
use super::{cookie, WebState, LINK_COOKIE};
use crate::audit::{Actor, AuditEvent, AuditKind, Origin, Outcome};
use crate::db::{audit, contacts};
use crate::links::{verify, LinkError};

/// Where a request came from. The client IP is the one [`ClientIp`] resolved
/// (the TCP peer, or the client a trusted proxy forwarded for), the same the
/// rate limits of `/links` count.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestOrigin(pub Origin);

impl RequestOrigin {
    fn of(extensions: &axum::http::Extensions, headers: &HeaderMap) -> RequestOrigin {
        let remote = extensions.get::<ClientIp>().map(|c| c.0.to_string());
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        RequestOrigin(Origin::new(remote, agent))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin::of(&parts.extensions, &parts.headers))
    }
}

/// What a route is, for the log: the event's kind and action, and the
/// resource as `<what>:<path parameter>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub kind: AuditKind,
    pub action: &'static str,
    pub resource: &'static str,
    /// The path parameter naming the resource (never a token's).
    pub param: Option<&'static str>,
}

/// A page reached through a signed link (kind `link_open`).
pub(crate) const fn view(
    action: &'static str,
    resource: &'static str,
    param: Option<&'static str>,
) -> Route {
    Route {
        kind: AuditKind::LinkOpen,
        action,
        resource,
        param,
    }
}

/// A form post (kind `form_post`).
pub(crate) const fn post(
    action: &'static str,
    resource: &'static str,
    param: Option<&'static str>,
) -> Route {
    Route {
        kind: AuditKind::FormPost,
        action,
        resource,
        param,
    }
}

/// What a handler adds to its response for the layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Note {
    /// The handler wrote the event itself (in its transaction).
    pub recorded: bool,
    pub actor: Option<Actor>,
    pub client_id: Option<i64>,
    pub action: Option<&'static str>,
    pub outcome: Option<Outcome>,
    pub detail: Option<serde_json::Value>,
}

impl Note {
    pub fn recorded() -> Note {
        Note {
            recorded: true,
            ..Note::default()
        }
    }

    /// Adds this note to `response`.
    pub fn on(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Writes `event` on a connection of its own; a failure is logged (the
/// answer has been decided already).
pub(crate) async fn record_alone(state: &WebState, event: &AuditEvent) {
    let result = match state.app.db.conn().await {
        Ok(mut conn) => audit::record(&mut conn, event).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, action = %event.action, "could not append to the audit log");
    }
}

/// The layer (`axum::middleware::from_fn_with_state` with `(state, route)`).
pub(crate) async fn layer(
    State((state, route)): State<(WebState, Route)>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let origin = RequestOrigin::of(request.extensions(), request.headers()).0;
    let link_contact = cookie(request.headers(), LINK_COOKIE).and_then(|token| {
        let now = state.app.clock.now_millis() / 1000;
        match verify(&state.app.config.link_keys, &token, now) {
            Ok(claims) | Err(LinkError::Expired(claims)) => Some(claims.contact_id),
            Err(_) => None,
        }
    });
    let resource_id = route
        .param
        .and_then(|name| params.iter().find(|(n, _)| *n == name))
        .map(|(_, v)| v.chars().take(100).collect::<String>())
        .unwrap_or_default();
    let response = next.run(request).await;
    let note = response
        .extensions()
        .get::<Note>()
        .cloned()
        .unwrap_or_default();
    if note.recorded {
        return response;
    }
    let actor = note
        .actor
        .clone()
        .or(link_contact.map(Actor::Contact))
        .unwrap_or(Actor::Anonymous);
    let client_id = match (note.client_id, &actor) {
        (Some(id), _) => Some(id),
        (None, Actor::Contact(id)) => client_of(&state, *id).await,
        _ => None,
    };
    let mut event = AuditEvent::new(
        route.kind,
        note.action.unwrap_or(route.action),
        state.app.clock.now_millis(),
    )
    .actor(actor)
    .client(client_id)
    .resource(route.resource, &resource_id)
    .outcome(
        note.outcome
            .unwrap_or_else(|| Outcome::of_status(response.status().as_u16())),
    )
    .origin(&origin);
    if let Some(detail) = note.detail {
        event = event.detail(detail);
    }
    record_alone(&state, &event).await;
    response
}

async fn client_of(state: &WebState, contact_id: i64) -> Option<i64> {
    let mut conn = state.app.db.conn().await.ok()?;
    contacts::find_contact_by_id(&mut conn, contact_id)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.client_id)
}

/// The layer of the admin API (outside the token check, so refused calls
/// are recorded too): method, route, the token's name, the status. The
/// action is the route's words (`invoices.send`, `clients.create`), the
/// resource its first parameter (`invoice:INV-0042`). Bodies are never read.
pub(crate) async fn api_layer(
    State(state): State<WebState>,
    matched: Option<axum::extract::MatchedPath>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let origin = RequestOrigin::of(request.extensions(), request.headers()).0;
    let method = request.method().clone();
    let route = matched
        .as_ref()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unknown)".into());
    let first_param = params
        .iter()
        .next()
        .map(|(_, v)| v.chars().take(100).collect::<String>());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let (action, what) = api_action(&route, method.as_str());
    // 401: the token did not match; 404 before routing: no API at all.
    let actor = if status == 401 || matched.is_none() {
        Actor::Anonymous
    } else {
        Actor::ApiToken("admin".into())
    };
    let event = AuditEvent::new(AuditKind::AdminApi, action, state.app.clock.now_millis())
        .actor(actor)
        .resource(&what, first_param.as_deref().unwrap_or(""))
        .outcome(Outcome::of_status(status))
        .origin(&origin)
        .detail(serde_json::json!({
            "method": method.as_str(),
            "route": route,
            "status": status,
        }));
    record_alone(&state, &event).await;
    response
}

/// `(action, resource kind)` of an admin API route: the route's static
/// words joined by dots, plus `list`/`show`/`create` where the route ends
/// in its collection or a parameter; the resource is the collection's
/// singular.
fn api_action(route: &str, method: &str) -> (String, String) {
    // No matched route (the API's fallback): "(unknown)".
    if !route.starts_with('/') {
        return ("api.unknown".into(), "api".into());
    }
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    let words: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.starts_with('{'))
        .collect();
    let Some(first) = words.first() else {
        return ("api.unknown".into(), "api".into());
    };
    let ends_in_param = segments.last().is_some_and(|s| s.starts_with('{'));
    let mut action = words.join(".");
    if words.len() == 1 {
        let verb = match (method, ends_in_param) {
            ("GET", true) => "show",
            ("GET", false) => "list",
            ("POST", false) => "create",
            _ => "change",
        };
        action = format!("{action}.{verb}");
    }
    let what = first.strip_suffix('s').unwrap_or(first).replace('-', "_");
    (action.replace('-', "_"), what)
}

#[cfg(test)]
mod tests {
    use super::api_action;

    #[test]
    fn api_routes_name_their_action_and_resource() {
        let a = |r, m| api_action(r, m);
        assert_eq!(
            a("/api/v1/invoices/{number}/send", "POST"),
            ("invoices.send".into(), "invoice".into())
        );
        assert_eq!(
            a("/api/v1/invoices", "POST"),
            ("invoices.create".into(), "invoice".into())
        );
        assert_eq!(
            a("/api/v1/clients/{id}", "GET"),
            ("clients.show".into(), "client".into())
        );
        assert_eq!(
            a("/api/v1/hour-blocks", "POST"),
            ("hour_blocks.create".into(), "hour_block".into())
        );
        assert_eq!(a("(unknown)", "GET").0, "api.unknown");
    }
}
