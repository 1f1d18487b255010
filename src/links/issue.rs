//! Making a signed link for a contact: the contact must exist and be
//! active, and the document must be theirs to see — an invoice or quote of
//! their client; a ticket as `portal::access` decides (one they asked or take
//! part in, or any ticket of their client when they are a primary or
//! technical contact). Used by `postdesk link` and by the mails that carry
//! links.

use crate::config::Config;
use crate::db::contacts::{self, Contact};
use crate::db::{invoices, portal, Db, DbError};
use crate::domain::{EmailAddress, OptionalMail};
use crate::portal::access::may_open;

use super::token::{sign, LinkClaims, LinkError, LinkPurpose};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no contact has that address")]
    UnknownContact,
    #[error("the contact is deactivated")]
    InactiveContact,
    #[error("the contact belongs to no client")]
    NoClient,
    #[error("{0} links need a number")]
    NumberRequired(&'static str),
    #[error("{0} links take no number")]
    NumberNotTaken(&'static str),
    #[error("no {0} has number {1}")]
    NotFound(&'static str, String),
    #[error("{0} pages are not for this contact's types (statement and payment methods: billing or primary; contacts: primary or technical)")]
    WrongContactType(&'static str),
    #[error("{0} {1} is not this contact's to see")]
    NotTheirs(&'static str, String),
    #[error("{0} links are made by the pages, not handed out")]
    NotAPageLink(&'static str),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A signed link for `contact` to `purpose` (and `number`), valid for the
/// configured time from `now_secs`: the full URL under `web.base_url`.
pub async fn link_for(
    db: &Db,
    config: &Config,
    purpose: LinkPurpose,
    number: Option<&str>,
    contact: &EmailAddress,
    now_secs: i64,
) -> Result<String, IssueError> {
    let mut conn = db.conn().await?;
    let contact = contacts::find_contact_by_email(&mut conn, contact)
        .await?
        .ok_or(IssueError::UnknownContact)?;
    if !contact.active {
        return Err(IssueError::InactiveContact);
    }
    let kind = purpose.as_str();
    let resource = match (purpose.takes_resource(), number) {
        (true, None) => return Err(IssueError::NumberRequired(kind)),
        (false, Some(_)) => return Err(IssueError::NumberNotTaken(kind)),
        (false, None) => String::new(),
        (true, Some(n)) => n.trim().to_string(),
    };
    let client_id = contact.client_id;
    let not_found = || IssueError::NotFound(kind, resource.clone());
    let not_theirs = || IssueError::NotTheirs(kind, resource.clone());
    match purpose {
        LinkPurpose::Invoice => {
            let invoice = invoices::invoice_by_number(&mut conn, &resource)
                .await?
                .ok_or_else(not_found)?;
            if Some(invoice.client_id) != client_id {
                return Err(not_theirs());
            }
        }
        LinkPurpose::Quote => {
            let owner = invoices::quote_client(&mut conn, &resource)
                .await?
                .ok_or_else(not_found)?;
            if Some(owner) != client_id {
                return Err(not_theirs());
            }
        }
        LinkPurpose::Ticket => {
            let ticket = portal::ticket_by_number(&mut conn, &resource)
                .await?
                .ok_or_else(not_found)?;
            if !crate::portal::access::may_see_ticket(&contact, &ticket) {
                return Err(not_theirs());
            }
        }
        LinkPurpose::Attachment | LinkPurpose::AddressChange => {
            return Err(IssueError::NotAPageLink(kind))
        }
        // Their own tickets and preferences need no client.
        LinkPurpose::Tickets | LinkPurpose::Preferences => {}
        LinkPurpose::Statement | LinkPurpose::PaymentMethods | LinkPurpose::Contacts => {
            if client_id.is_none() {
                return Err(IssueError::NoClient);
            }
            if !may_open(&contact, purpose) {
                return Err(IssueError::WrongContactType(kind));
            }
        }
    }
    Ok(signed_link(config, &contact, purpose, &resource, now_secs)?)
}

/// The signed link of `contact` to `purpose` / `resource`, without checking
/// that the document is theirs: for callers that just selected the contact
/// as the document's recipient (an invoice mail to the client's billing
/// contacts).
pub fn signed_link(
    config: &Config,
    contact: &Contact,
    purpose: LinkPurpose,
    resource: &str,
    now_secs: i64,
) -> Result<String, LinkError> {
    let token = signed_token(config, contact, purpose, resource, now_secs)?;
    Ok(format!("{}/l/{token}", config.web.base_url))
}

/// "12 January 2027": when a link made at `now_ms` stops opening, as mails
/// tell it.
pub fn link_expiry_text(config: &Config, now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms + config.link_ttl.as_millis() as i64)
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_default()
}

/// The token of [`signed_link`], without the URL around it.
fn signed_token(
    config: &Config,
    contact: &Contact,
    purpose: LinkPurpose,
    resource: &str,
    now_secs: i64,
) -> Result<String, LinkError> {
    let claims = LinkClaims {
        purpose,
        resource: resource.to_string(),
        contact_id: contact.id,
        generation: contact.link_generation,
        expires_at: now_secs + config.link_ttl.as_secs() as i64,
    };
    sign(&config.link_keys, &claims)
}

/// The sub-address (`support+unsubscribe@…`) of the first mailbox that the
/// `mailto:` of `List-Unsubscribe` writes to; ingest recognises it.
pub const UNSUBSCRIBE_DETAIL: &str = "unsubscribe";

/// The ways `contact` can leave optional mail of `kind` without a browser,
/// as `List-Unsubscribe` carries them (RFC 2369, RFC 8058). Both hold the
/// token of a preferences link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeLinks {
    /// `<base_url>/unsubscribe/<kind>/<token>`: a POST there unsubscribes
    /// (RFC 8058 one-click); a GET shows the preferences.
    pub url: String,
    /// `mailto:support+unsubscribe@…?subject=unsubscribe <kind> <token>`:
    /// the mail a client sends for it unsubscribes when ingested. `None`
    /// without a mailbox (mail only piped in).
    pub mailto: Option<String>,
}

pub fn unsubscribe_links(
    config: &Config,
    contact: &Contact,
    kind: OptionalMail,
    now_secs: i64,
) -> Result<UnsubscribeLinks, LinkError> {
    let token = signed_token(config, contact, LinkPurpose::Preferences, "", now_secs)?;
    let kind = kind.as_str();
    Ok(UnsubscribeLinks {
        url: format!("{}/unsubscribe/{kind}/{token}", config.web.base_url),
        // The token is URL-safe base64 and dots: nothing to escape but the
        // spaces of the subject.
        mailto: config.mailboxes.first().map(|mailbox| {
            format!(
                "mailto:{}?subject=unsubscribe%20{kind}%20{token}",
                mailbox.address.with_detail(UNSUBSCRIBE_DETAIL)
            )
        }),
    })
}

/// The pages that matter for a contact, as signed links: their tickets,
/// their client's statement (billing and primary contacts of a client),
/// their client's contacts (primary and technical contacts) and their mail
/// preferences. Mail footers and "email me my links" carry them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ContactLinks {
    pub tickets: Option<String>,
    pub statement: Option<String>,
    pub contacts: Option<String>,
    pub preferences: Option<String>,
}

impl ContactLinks {
    pub fn of(config: &Config, contact: &Contact, now_secs: i64) -> Result<Self, LinkError> {
        // Only the pages the contact's types open.
        let link = |purpose| {
            may_open(contact, purpose)
                .then(|| signed_link(config, contact, purpose, "", now_secs))
                .transpose()
        };
        Ok(Self {
            tickets: link(LinkPurpose::Tickets)?,
            statement: link(LinkPurpose::Statement)?,
            contacts: link(LinkPurpose::Contacts)?,
            preferences: link(LinkPurpose::Preferences)?,
        })
    }
}
