//! The audit log's vocabulary (SPEC §6): who did what, when and from where.
//! Link opens, form posts, payments, staff commands and admin API calls are
//! appended as [`AuditEvent`]s (`db::audit` writes and reads them; the table
//! refuses updates).
//!
//! What must not live here, or anywhere in an event: mail addresses, message
//! bodies, tokens or secrets. An actor is an id (a contact's), a configured
//! name (a staff member's, the API token's) or a fixed word (`stripe`); a
//! `detail` holds a few ids and words. The constructors below take the
//! typed pieces, so a caller names what happened rather than pasting text.

use std::borrow::Cow;

use serde::Serialize;

use crate::clock::Millis;

/// The longest user agent kept; the rest is cut.
pub const USER_AGENT_CHARS: usize = 200;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A signed link opened (`/l/<token>`) or a page reached through one.
    LinkOpen,
    /// A form posted on a client's page (or a one-click unsubscribe).
    FormPost,
    /// A payment recorded, failed or refunded; an auto-pay charge.
    Payment,
    /// A technician's `#command` by mail (or the admin API's ticket actions).
    StaffCommand,
    /// A call of the admin API.
    AdminApi,
}

impl AuditKind {
    pub const ALL: [AuditKind; 5] = [
        AuditKind::LinkOpen,
        AuditKind::FormPost,
        AuditKind::Payment,
        AuditKind::StaffCommand,
        AuditKind::AdminApi,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LinkOpen => "link_open",
            AuditKind::FormPost => "form_post",
            AuditKind::Payment => "payment",
            AuditKind::StaffCommand => "staff_command",
            AuditKind::AdminApi => "admin_api",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who did it. Never an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A contact, by id (the holder of a signed link).
    Contact(i64),
    /// A `[[staff]]` member, by their configured name.
    Staff(String),
    /// The admin API's bearer token, by its name (`admin`: there is one).
    ApiToken(String),
    /// The payment provider's verified webhook.
    Stripe,
    /// Postdesk itself (a scheduled job, e.g. an auto-pay charge).
    System,
    /// Nobody known: a public page, or a link that did not check out.
    Anonymous,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Contact(_) => "contact",
            Actor::Staff(_) => "staff",
            Actor::ApiToken(_) => "api_token",
            Actor::Stripe => "stripe",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Actor::Contact(id) => Some(id.to_string()),
            Actor::Staff(name) | Actor::ApiToken(name) => Some(name.clone()),
            Actor::Stripe | Actor::System | Actor::Anonymous => None,
        }
    }

    /// The actor kinds a filter may name.
    pub const KINDS: [&'static str; 6] = [
        "contact",
        "staff",
        "api_token",
        "stripe",
        "system",
        "anonymous",
    ];
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused: no valid link, not theirs, a CSRF value missing, a rule.
    Denied,
    /// Tried and failed (a declined charge, a database error).
    Failed,
    /// A genuine link past its expiry.
    Expired,
    /// A genuine link whose contact was deactivated or moved on.
    Revoked,
    /// Malformed input.
    Invalid,
    /// Over a rate limit.
    Limited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::Invalid => "invalid",
            Outcome::Limited => "limited",
        }
    }

    /// The outcome an HTTP answer stands for, when the handler did not say.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            410 => Outcome::Expired,
            400 | 413 | 415 | 422 => Outcome::Invalid,
            429 => Outcome::Limited,
            401..=499 => Outcome::Denied,
            _ => Outcome::Failed,
        }
    }
}

/// Where a request came from: the client IP (as the rate limits see it) and
/// the user agent, cut to [`USER_AGENT_CHARS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn new(remote_addr: Option<String>, user_agent: Option<&str>) -> Origin {
        Origin {
            remote_addr,
            user_agent: user_agent.map(|u| u.chars().take(USER_AGENT_CHARS).collect()),
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: Millis,
    pub kind: AuditKind,
    pub actor: Actor,
    pub client_id: Option<i64>,
    /// A short machine word: `ticket.reply`, `invoice.pay`, `command.close`.
    pub action: Cow<'static, str>,
    /// What it was about: `ticket:T-1042`, `invoice:INV-0042`.
    pub resource: Option<String>,
    pub outcome: Outcome,
    pub origin: Origin,
    /// A small JSON object of ids and words; never bodies, tokens or addresses.
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    /// An event of `kind` at `at` (from the Clock), by nobody known, with
    /// outcome `ok`; the builders below fill in the rest.
    pub fn new(kind: AuditKind, action: impl Into<Cow<'static, str>>, at: Millis) -> AuditEvent {
        AuditEvent {
            at,
            kind,
            actor: Actor::Anonymous,
            client_id: None,
            action: action.into(),
            resource: None,
            outcome: Outcome::Ok,
            origin: Origin::default(),
            detail: None,
        }
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    pub fn client(mut self, client_id: Option<i64>) -> Self {
        self.client_id = client_id;
        self
    }

    /// `resource` as `<what>:<id>`, e.g. `resource("ticket", "T-1042")`.
    pub fn resource(mut self, what: &str, id: &str) -> Self {
        self.resource = Some(if id.is_empty() {
            what.to_string()
        } else {
            format!("{what}:{id}")
        });
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn origin(mut self, origin: &Origin) -> Self {
        self.origin = origin.clone();
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A stored entry, as `postdesk audit --json` prints it (one per line; the
/// field names are stable).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub client_id: Option<i64>,
    pub action: String,
    pub resource: Option<String>,
    pub outcome: String,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// Which entries to list; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after (inclusive).
    pub since: Option<Millis>,
    /// Before (exclusive).
    pub until: Option<Millis>,
    pub kind: Option<AuditKind>,
    pub client_id: Option<i64>,
    /// An actor kind (`contact`, `staff`, …) and, optionally, its id.
    pub actor: Option<(String, Option<String>)>,
    /// Actions starting with this (`ticket.` lists every ticket action).
    pub action_prefix: Option<String>,
    /// The newest this many entries (listed oldest first).
    pub limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::of_status(303), Outcome::Ok);
        assert_eq!(Outcome::of_status(404), Outcome::Denied);
        assert_eq!(Outcome::of_status(403), Outcome::Denied);
        assert_eq!(Outcome::of_status(410), Outcome::Expired);
        assert_eq!(Outcome::of_status(400), Outcome::Invalid);
        assert_eq!(Outcome::of_status(503), Outcome::Failed);
    }

    #[test]
    fn user_agents_are_cut() {
        let long = "x".repeat(500);
        let o = Origin::new(None, Some(&long));
        assert_eq!(o.user_agent.unwrap().len(), USER_AGENT_CHARS);
    }

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::parse("nope"), None);
    }
}
