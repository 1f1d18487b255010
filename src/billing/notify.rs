//! Billing mails to a client's people: every active billing and primary
//! contact gets their own copy with their own signed link (a link names its
//! contact, so it cannot be shared across a `To:` list). Queued on the
//! caller's transaction, like every mail. Each copy's footer carries the
//! person's own links (tickets, statement, preferences); optional mail also
//! carries their one-click unsubscribe (RFC 8058) and skips who declined it.

use serde_json::{json, Value};

use crate::app::App;
use crate::config::Config;
use crate::db::contacts::{self, Contact};
use crate::db::{inbound, Conn};
use crate::domain::{ContactTypes, EmailAddress, OptionalMail};
use crate::links::issue::{link_expiry_text, signed_link, unsubscribe_links, ContactLinks};
use crate::links::LinkPurpose;
use crate::mail::outgoing::{MailRequest, Mailer, OutgoingAttachment, PersonalParts};

/// One billing mail: what it is, and the page its link opens.
pub struct BillingMail<'a> {
    pub kind: &'a str,
    pub template: &'a str,
    pub purpose: LinkPurpose,
    /// The document number for invoice links; empty for the statement.
    pub resource: &'a str,
    /// Template data; `name`, `link` and `expires` are added (and
    /// `branding`, by the mailer).
    pub data: Value,
    /// Someone outside the billing and primary contacts who should also
    /// have it (the contact who paid).
    pub also: Option<&'a Contact>,
    /// Optional mail of this kind (the monthly statement): not for contacts
    /// who declined it, and it carries the unsubscribe headers.
    pub optional: Option<OptionalMail>,
    /// Files every copy carries (the invoice PDF).
    pub attachments: &'a [OutgoingAttachment],
}

/// Who got the mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub queued: usize,
    /// The addresses it was queued for (for `jobs run --dry-run`; never logged).
    pub recipients: Vec<String>,
    /// The client has billing contacts and every one of them is on the
    /// suppression list (a hard bounce): the document did not reach billing.
    pub billing_unreachable: bool,
}

/// Queues `mail` to each active billing and primary contact of `client_id`.
pub async fn mail_billing_contacts(
    app: &App,
    tx: &mut Conn,
    client_id: i64,
    mail: BillingMail<'_>,
    now_ms: i64,
) -> anyhow::Result<Reach> {
    let mut people: Vec<Contact> = contacts::client_contacts(tx, client_id)
        .await?
        .into_iter()
        .filter(|c| c.types.billing || c.types.primary)
        .collect();
    if let Some(extra) = mail.also {
        if extra.active && !people.iter().any(|c| c.id == extra.id) {
            people.push(extra.clone());
        }
    }
    let mut reach = Reach::default();
    let mut billing = 0;
    let mut billing_suppressed = 0;
    for person in &people {
        if mail.optional.is_some_and(|kind| !person.wants(kind)) {
            continue;
        }
        let suppressed = inbound::is_suppressed(tx, &person.email).await?;
        if person.types.billing {
            billing += 1;
            billing_suppressed += usize::from(suppressed);
        }
        if suppressed {
            continue;
        }
        let Ok(address) = EmailAddress::parse(&person.email) else {
            continue;
        };
        let link = signed_link(
            &app.config,
            person,
            mail.purpose,
            mail.resource,
            now_ms / 1000,
        )?;
        let mut data = mail.data.clone();
        if let Value::Object(map) = &mut data {
            map.insert("name".into(), json!(person.name));
            map.insert("link".into(), json!(link));
            map.insert(
                "expires".into(),
                json!(link_expiry_text(&app.config, now_ms)),
            );
        }
        let personal = personal_parts(&app.config, person, mail.optional, now_ms)?;
        let queued = queue_copy(
            &app.ingestor.mailer,
            tx,
            address,
            (mail.kind, mail.template),
            data,
            mail.attachments,
            &personal,
            now_ms,
        )
        .await?;
        if queued {
            reach.queued += 1;
            reach.recipients.push(person.email.clone());
        }
    }
    reach.billing_unreachable = billing > 0 && billing == billing_suppressed;
    Ok(reach)
}

/// Queues `template` to every configured staff member (internal notices).
pub async fn mail_staff(
    app: &App,
    tx: &mut Conn,
    kind: &str,
    template: &str,
    data: Value,
    now_ms: i64,
) -> anyhow::Result<()> {
    let staff: Vec<EmailAddress> = app.config.staff.iter().map(|s| s.email.clone()).collect();
    if staff.is_empty() {
        return Ok(());
    }
    app.ingestor
        .mailer
        .queue(tx, MailRequest::notice(kind, template, data, staff), now_ms)
        .await?;
    Ok(())
}

/// Why a notice could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Queue(#[from] crate::mail::outgoing::QueueError),
}

/// A notice to some of a client's contacts, without a link to a page.
pub struct Notice<'a> {
    pub kind: &'a str,
    pub template: &'a str,
    /// Template data; `name` is added (and `branding`, by the mailer).
    pub data: Value,
    /// Which contacts it is for, by type.
    pub wanted: fn(&ContactTypes) -> bool,
    /// Optional mail of this kind (the service report): not for contacts
    /// who declined it, and it carries the unsubscribe headers.
    pub optional: Option<OptionalMail>,
    pub attachments: &'a [OutgoingAttachment],
}

/// Queues `notice` to each active contact of `client_id` it is for whose
/// address is not suppressed, each their own copy. Returns their addresses.
pub async fn mail_contacts(
    mailer: &Mailer,
    config: &Config,
    tx: &mut Conn,
    client_id: i64,
    notice: &Notice<'_>,
    now_ms: i64,
) -> Result<Vec<String>, NoticeError> {
    let mut to = Vec::new();
    for person in contacts::client_contacts(tx, client_id).await? {
        if !(notice.wanted)(&person.types) || !person.active {
            continue;
        }
        if notice.optional.is_some_and(|kind| !person.wants(kind)) {
            continue;
        }
        if inbound::is_suppressed(tx, &person.email).await? {
            continue;
        }
        let Ok(address) = EmailAddress::parse(&person.email) else {
            continue;
        };
        let mut data = notice.data.clone();
        if let Value::Object(map) = &mut data {
            map.insert("name".into(), json!(person.name));
        }
        let personal = personal_parts(config, &person, notice.optional, now_ms)
            .map_err(crate::mail::outgoing::QueueError::from)?;
        let queued = queue_copy(
            mailer,
            tx,
            address,
            (notice.kind, notice.template),
            data,
            notice.attachments,
            &personal,
            now_ms,
        )
        .await?;
        if queued {
            to.push(person.email.clone());
        }
    }
    Ok(to)
}

/// What one person's copy carries for them alone: the footer with their
/// links and, on optional mail, their one-click unsubscribe URL.
fn personal_parts(
    config: &Config,
    person: &Contact,
    optional: Option<OptionalMail>,
    now_ms: i64,
) -> Result<PersonalParts, crate::links::LinkError> {
    let now_secs = now_ms / 1000;
    Ok(PersonalParts {
        unsubscribe: optional
            .map(|kind| unsubscribe_links(config, person, kind, now_secs))
            .transpose()?,
        footer: Some(ContactLinks::of(config, person, now_secs)?),
        ..PersonalParts::default()
    })
}

/// One person's own copy of a notice to a client (no ticket, no thread).
/// False when the mailer held it back (a suppressed address).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per kind of notice; a struct would only rename them"
)]
async fn queue_copy(
    mailer: &Mailer,
    tx: &mut Conn,
    to: EmailAddress,
    (kind, template): (&str, &str),
    data: Value,
    attachments: &[OutgoingAttachment],
    personal: &PersonalParts,
    now_ms: i64,
) -> Result<bool, crate::mail::outgoing::QueueError> {
    let queued = mailer
        .queue_personal(
            tx,
            MailRequest {
                attachments,
                ..MailRequest::notice(kind, template, data, vec![to])
            },
            personal,
            now_ms,
        )
        .await?;
    Ok(queued.is_some())
}
