//! The contacts page's changes (SPEC §6): a Primary or Technical contact
//! adds a contact of their client, changes a contact's types, deactivates
//! one (their links die with the bumped link generation), or asks to change
//! a contact's address — which takes effect only when the signed link
//! mailed to the NEW address is confirmed; until then the old address and
//! its links keep working.
//!
//! Rules that keep a client manageable: the last active Primary contact can
//! neither be deactivated nor lose the Primary type, and nobody deactivates
//! themselves or takes away their own right to manage contacts (another
//! Primary or Technical contact does that), so no one locks themselves out.

use serde_json::json;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::db::contacts::{self, Contact, ContactOrigin};
use crate::db::DbError;
use crate::db::{audit, portal};
use crate::domain::{ContactTypes, EmailAddress};
use crate::links::{sign, LinkClaims, LinkError, LinkPurpose};
use crate::mail::outgoing::{MailRequest, QueueError};

use super::access::manages_contacts;

/// How long the confirmation link of an address change opens.
pub const ADDRESS_CONFIRMATION_TTL_SECS: i64 = 3 * 86_400;

/// A change asked for on the contacts page.
#[derive(Debug, Clone)]
pub enum ContactChange {
    Add {
        email: EmailAddress,
        name: Option<String>,
        types: ContactTypes,
    },
    SetTypes {
        contact_id: i64,
        types: ContactTypes,
    },
    Deactivate {
        contact_id: i64,
    },
    ChangeAddress {
        contact_id: i64,
        new_email: EmailAddress,
    },
}

/// Why a change was refused; the message is shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Only primary and technical contacts manage contacts.")]
    NotAllowed,
    #[error("No such contact.")]
    UnknownContact,
    #[error("This is the last primary contact: make someone else primary first.")]
    LastPrimary,
    #[error("You cannot deactivate yourself: ask another primary or technical contact.")]
    SelfDeactivation,
    #[error(
        "You cannot take away your own primary and technical types: ask another primary or \
         technical contact."
    )]
    SelfLockout,
    #[error("That address cannot be used: it may already belong to a contact.")]
    AddressTaken,
    #[error("That is already the contact's address.")]
    SameAddress,
    #[error("This confirmation is no longer valid: ask for the change again.")]
    StaleConfirmation,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Link(#[from] LinkError),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        AdminError::Db(e.into())
    }
}

/// What a change did, for the page's notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Added,
    TypesChanged,
    Deactivated,
    /// The confirmation went to the new address.
    ConfirmationMailed,
}

/// Applies `change` for `actor` (the contacts link's holder), in one
/// transaction with the mail it causes and `audit` (the form post, as the
/// page saw it). A refused change writes nothing: the page's layer records
/// the refusal.
pub async fn apply(
    app: &App,
    actor: &Contact,
    change: ContactChange,
    audit: AuditEvent,
) -> Result<Done, AdminError> {
    let client_id = match actor.client_id {
        Some(id) if manages_contacts(actor) => id,
        _ => return Err(AdminError::NotAllowed),
    };
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    // The client's contact, or nothing: another client's id reads as unknown.
    async fn target(
        tx: &mut sqlx::AnyConnection,
        client_id: i64,
        id: i64,
    ) -> Result<Contact, AdminError> {
        match contacts::find_contact_by_id(tx, id).await? {
            Some(c) if c.client_id == Some(client_id) && c.active => Ok(c),
            _ => Err(AdminError::UnknownContact),
        }
    }
    let done = match change {
        ContactChange::Add { email, name, types } => {
            if portal::address_taken(&mut tx, &email).await? {
                return Err(AdminError::AddressTaken);
            }
            let name = name.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let id = contacts::insert_contact(
                &mut tx,
                Some(client_id),
                &email,
                name,
                types,
                ContactOrigin::Portal,
                now,
            )
            .await?;
            tracing::info!(actor = actor.id, contact = id, "contact added on the web");
            (Done::Added, Some(id), false)
        }
        ContactChange::SetTypes { contact_id, types } => {
            let contact = target(&mut tx, client_id, contact_id).await?;
            if contact.id == actor.id && !(types.primary || types.technical) {
                return Err(AdminError::SelfLockout);
            }
            if contact.types.primary
                && !types.primary
                && portal::other_active_primaries(&mut tx, client_id, contact.id).await? == 0
            {
                return Err(AdminError::LastPrimary);
            }
            portal::set_contact_types(&mut tx, contact.id, types).await?;
            tracing::info!(
                actor = actor.id,
                contact = contact.id,
                "contact types changed on the web"
            );
            (Done::TypesChanged, None, false)
        }
        ContactChange::Deactivate { contact_id } => {
            let contact = target(&mut tx, client_id, contact_id).await?;
            if contact.id == actor.id {
                return Err(AdminError::SelfDeactivation);
            }
            if contact.types.primary
                && portal::other_active_primaries(&mut tx, client_id, contact.id).await? == 0
            {
                return Err(AdminError::LastPrimary);
            }
            portal::deactivate_contact(&mut tx, contact.id).await?;
            tracing::info!(
                actor = actor.id,
                contact = contact.id,
                "contact deactivated on the web"
            );
            (Done::Deactivated, None, false)
        }
        ContactChange::ChangeAddress {
            contact_id,
            new_email,
        } => {
            let contact = target(&mut tx, client_id, contact_id).await?;
            if contact.email == new_email.as_str() {
                return Err(AdminError::SameAddress);
            }
            if portal::address_taken(&mut tx, &new_email).await? {
                return Err(AdminError::AddressTaken);
            }
            let change_id =
                portal::request_address_change(&mut tx, contact.id, &new_email, actor.id, now)
                    .await?;
            let queued =
                mail_confirmation(app, &mut tx, &contact, change_id, &new_email, now).await?;
            tracing::info!(
                actor = actor.id,
                contact = contact.id,
                change = change_id,
                "address change asked on the web; confirmation mailed"
            );
            (Done::ConfirmationMailed, None, queued)
        }
    };
    let (done, added, queued) = done;
    let audit = match added {
        Some(id) => audit.detail(json!({ "contact": id })),
        None => audit,
    };
    audit::record(&mut tx, &audit).await?;
    tx.commit().await?;
    if queued {
        app.ingestor.outbox_ready.notify_one();
    }
    Ok(done)
}

/// Queues the confirmation mail to the new address, with its signed link.
async fn mail_confirmation(
    app: &App,
    tx: &mut sqlx::AnyConnection,
    contact: &Contact,
    change_id: i64,
    new_email: &EmailAddress,
    now_ms: i64,
) -> Result<bool, AdminError> {
    let now = now_ms / 1000;
    let token = sign(
        &app.config.link_keys,
        &LinkClaims {
            purpose: LinkPurpose::AddressChange,
            resource: change_id.to_string(),
            contact_id: contact.id,
            generation: contact.link_generation,
            expires_at: now + ADDRESS_CONFIRMATION_TTL_SECS,
        },
    )?;
    let link = format!("{}/l/{token}", app.config.web.base_url);
    let expires = chrono::DateTime::from_timestamp(now + ADDRESS_CONFIRMATION_TTL_SECS, 0)
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_default();
    let client = match contact.client_id {
        Some(id) => contacts::client_name(tx, id).await?,
        None => None,
    };
    let queued = app
        .ingestor
        .mailer
        .queue(
            tx,
            MailRequest::notice(
                "address-confirmation",
                "address_confirmation",
                json!({
                    "link": link,
                    "name": contact.name,
                    "client": client,
                    "expires": expires,
                }),
                vec![new_email.clone()],
            ),
            now_ms,
        )
        .await?;
    Ok(queued.is_some())
}

/// The pending change `change_id` of `contact` (the confirmation link's
/// holder), if it still waits for its confirmation.
pub async fn pending_change(
    app: &App,
    contact: &Contact,
    change_id: i64,
) -> Result<Option<portal::AddressChange>, AdminError> {
    let mut conn = app.db.conn().await?;
    Ok(portal::address_change(&mut conn, change_id)
        .await?
        .filter(|c| c.contact_id == contact.id && c.status == "pending"))
}

/// Confirms change `change_id` for `contact`: the new address takes effect
/// and every older link of the contact stops working.
/// `audit` (the confirming post) is appended in the same transaction.
pub async fn confirm(
    app: &App,
    contact: &Contact,
    change_id: i64,
    audit: AuditEvent,
) -> Result<(), AdminError> {
    let now = app.clock.now_millis();
    let mut tx = app.db.begin().await?;
    let change = portal::address_change(&mut tx, change_id)
        .await?
        .filter(|c| c.contact_id == contact.id && c.status == "pending")
        .ok_or(AdminError::StaleConfirmation)?;
    let new_email =
        EmailAddress::parse(&change.new_email).map_err(|_| AdminError::StaleConfirmation)?;
    if portal::address_taken(&mut tx, &new_email).await? {
        return Err(AdminError::AddressTaken);
    }
    if !portal::confirm_address_change(&mut tx, &change, now).await? {
        return Err(AdminError::StaleConfirmation);
    }
    tell_old_address(app, &mut tx, contact, now).await?;
    audit::record(&mut tx, &audit).await?;
    tx.commit().await?;
    tracing::info!(
        contact = contact.id,
        change = change.id,
        "address change confirmed"
    );
    Ok(())
}

/// Queues the notice to the contact's OLD address that mail now goes
/// elsewhere, in the confirmation's transaction: if the change was not
/// theirs, they hear of it. It carries no links (their links just died, and
/// the address is no longer theirs on file) and does not name the new one.
async fn tell_old_address(
    app: &App,
    tx: &mut sqlx::AnyConnection,
    contact: &Contact,
    now_ms: i64,
) -> Result<(), AdminError> {
    let Ok(old) = EmailAddress::parse(&contact.email) else {
        return Ok(());
    };
    let client = match contact.client_id {
        Some(id) => contacts::client_name(tx, id).await?,
        None => None,
    };
    let confirmed = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|d| {
            d.with_timezone(&app.config.company.timezone)
                .format("%-d %B %Y, %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    app.ingestor
        .mailer
        .queue(
            tx,
            MailRequest::notice(
                "address-changed",
                "address_changed",
                json!({
                    "name": contact.name,
                    "client": client,
                    "confirmed": confirmed,
                }),
                vec![old],
            ),
            now_ms,
        )
        .await?;
    Ok(())
}
