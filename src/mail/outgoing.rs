//! Queueing the mail Postdesk sends: render a template, drop suppressed
//! recipients, apply the per-recipient rate limits, give it a signed
//! Message-ID and the ticket's thread headers, write the outbox row and record
//! it on the ticket — all on the caller's transaction, so a mail exists
//! exactly when the change that caused it does. Sending is the outbox
//! sender's job (`jobs::outbox_sender`).

use std::sync::Arc;

use lettre::message::Mailbox;
use sqlx::AnyConnection;

use super::compose::{self, Outgoing};
use super::templates::Templates;
use crate::clock::Millis;
use crate::config::Config;
use crate::db::contacts::Contact;
use crate::db::conversation::{self, TicketRef};
use crate::db::tickets::{self, Direction, NewMessage, Visibility};
use crate::db::{self, DbError};
use crate::domain::EmailAddress;
use crate::links::issue::{ContactLinks, UnsubscribeLinks};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("mail template: {0}")]
    Template(String),
    #[error("no link key to sign Message-IDs with")]
    NoKey,
    /// A link for the recipient (footer, unsubscribe) could not be signed.
    #[error(transparent)]
    Link(#[from] crate::links::LinkError),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Db(DbError::from(e))
    }
}

/// `References` keeps the thread's first message and its latest ones: enough
/// for every client to thread, short enough for every server to accept.
const MAX_REFERENCES: usize = 12;

/// Where an outgoing mail comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A person wrote it (a technician's reply): no `Auto-Submitted`; over a
    /// rate limit it waits, it is never dropped.
    Person,
    /// The system reacting to a mail that came in (acknowledgement, staff
    /// notification, status change): `Auto-Submitted: auto-replied`, counted
    /// by the per-recipient limits and dropped over them — the loop brake.
    Reaction,
    /// A notice the system sends on its own (invoices, receipts, reminders,
    /// alerts): `Auto-Submitted: auto-generated`; planned once, so nothing
    /// loops: over a rate limit it waits, it is never dropped.
    Notice,
}

impl Origin {
    /// The `Auto-Submitted` value (RFC 3834), if any.
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            Self::Person => None,
            Self::Reaction => Some("auto-replied"),
            Self::Notice => Some("auto-generated"),
        }
    }
}

/// A file attached to an outgoing mail (a report's CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub filename: String,
    /// e.g. `text/csv; charset=utf-8`
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One mail to queue.
pub struct MailRequest<'a> {
    /// What the mail is (`acknowledgement`, `public-reply`, …): outbox kind
    /// and message kind on the ticket.
    pub kind: &'a str,
    pub template: &'a str,
    pub data: serde_json::Value,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    /// The ticket it is about: thread headers, reply token, and the record of
    /// the mail on the ticket.
    pub ticket: Option<&'a TicketRef>,
    /// How the mail is recorded on the ticket.
    pub visibility: Visibility,
    /// Who or what it comes from: decides `Auto-Submitted` and what a
    /// per-recipient rate limit does to it.
    pub origin: Origin,
    /// Display name of the From: (a technician's name), else the company's.
    pub from_name: Option<String>,
    /// The message this one answers, when it is not simply the thread's last.
    pub in_reply_to: Option<&'a str>,
    /// Message-IDs the thread headers must carry besides the ticket's own
    /// (the inbound mail being answered and its references).
    pub extra_references: &'a [String],
    /// Files to attach (the mail becomes multipart/mixed).
    pub attachments: &'a [OutgoingAttachment],
    /// The ticket's public Message-IDs, oldest first, when the caller knows
    /// them (a ticket opened in this transaction); else they are read.
    pub thread_known: Option<&'a [String]>,
}

impl<'a> MailRequest<'a> {
    /// A notice about no ticket (a confirmation, a fresh link, an alert to
    /// the operators): to `to` alone, automatic (`Origin::Notice`), no
    /// thread, no attachments. Set the other fields with struct update.
    pub fn notice(
        kind: &'a str,
        template: &'a str,
        data: serde_json::Value,
        to: Vec<EmailAddress>,
    ) -> Self {
        MailRequest {
            kind,
            template,
            data,
            to,
            cc: Vec::new(),
            ticket: None,
            // Without a ticket the mail is recorded nowhere but the outbox.
            visibility: Visibility::System,
            origin: Origin::Notice,
            from_name: None,
            in_reply_to: None,
            extra_references: &[],
            attachments: &[],
            thread_known: None,
        }
    }
}

/// What a mail to one person carries besides its template: the one-click
/// unsubscribe of optional mail and the footer with that person's links.
/// Only per-person mails have these (a link names its contact).
#[derive(Debug, Clone, Default)]
pub struct PersonalParts {
    /// How to leave an optional mail: `List-Unsubscribe` (RFC 8058).
    pub unsubscribe: Option<UnsubscribeLinks>,
    /// Links appended to the mail's text and HTML as a footer.
    pub footer: Option<ContactLinks>,
    /// Without `footer`: when the mail goes to one address only (after
    /// suppression and rate limits) and that address is an active client
    /// contact's, the footer with that contact's links. A mail to several
    /// people gets none: one copy cannot carry one person's links to others.
    pub footer_for_sole_contact: bool,
    /// The contact of one recipient, when the caller has it at hand: for
    /// `footer_for_sole_contact`, not looked up again.
    pub known_contact: Option<Contact>,
}

/// What was queued.
#[derive(Debug, Clone)]
pub struct Queued {
    pub outbox_id: i64,
    pub message_id: String,
    /// Recipients the mail goes to.
    pub recipients: Vec<EmailAddress>,
    /// Recipients left out, with why (`suppressed`, `rate-limited`).
    pub withheld: Vec<(EmailAddress, &'static str)>,
}

#[derive(Clone)]
pub struct Mailer {
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    /// Signs every mail when `[dkim]` is configured.
    pub dkim: Option<Arc<lettre::message::dkim::DkimConfig>>,
}

impl Mailer {
    /// The address replies about `ticket` go to: `support+<token>@…` of the
    /// mailbox it came in through.
    pub fn reply_address(&self, ticket: &TicketRef) -> Option<EmailAddress> {
        let mailboxes = &self.config.mailboxes;
        let mailbox = ticket
            .mailbox
            .as_deref()
            .and_then(|name| mailboxes.iter().find(|m| m.name == name))
            .or_else(|| mailboxes.first())?;
        Some(mailbox.address.with_detail(&ticket.reply_token))
    }

    /// Queues `req` on `tx`. Returns `None` when nobody is left to send to
    /// (every recipient suppressed); an automatic mail over a rate limit for
    /// every recipient is kept as a `rate-limited` outbox row, never sent.
    pub async fn queue(
        &self,
        tx: &mut AnyConnection,
        req: MailRequest<'_>,
        now: Millis,
    ) -> Result<Option<Queued>, QueueError> {
        self.queue_personal(tx, req, &PersonalParts::default(), now)
            .await
    }

    /// [`Mailer::queue`] for a mail about a client's ticket: when it goes to
    /// one known contact only, it carries the footer with their links
    /// (tickets, statement, preferences).
    /// `known_contact` is a recipient's contact the caller already has.
    pub async fn queue_to_client(
        &self,
        tx: &mut AnyConnection,
        req: MailRequest<'_>,
        known_contact: Option<&Contact>,
        now: Millis,
    ) -> Result<Option<Queued>, QueueError> {
        let personal = PersonalParts {
            footer_for_sole_contact: true,
            known_contact: known_contact.cloned(),
            ..PersonalParts::default()
        };
        self.queue_personal(tx, req, &personal, now).await
    }

    /// The links of the active client contact with address `to`, if any. A
    /// contact made from an unknown sender's mail (no client) gets none.
    async fn contact_links(
        &self,
        tx: &mut AnyConnection,
        to: &EmailAddress,
        known: Option<&Contact>,
        now: Millis,
    ) -> Result<Option<ContactLinks>, QueueError> {
        let looked_up;
        let contact = match known {
            Some(c) if c.email == to.as_str() => Some(c),
            _ => {
                looked_up = db::contacts::find_contact_by_email(tx, to).await?;
                looked_up.as_ref()
            }
        };
        match contact {
            Some(contact) if contact.active && contact.client_id.is_some() => {
                Ok(Some(ContactLinks::of(&self.config, contact, now / 1000)?))
            }
            _ => Ok(None),
        }
    }

    /// [`Mailer::queue`] for a mail to one person, with their unsubscribe
    /// header and links footer.
    pub async fn queue_personal(
        &self,
        tx: &mut AnyConnection,
        req: MailRequest<'_>,
        personal: &PersonalParts,
        now: Millis,
    ) -> Result<Option<Queued>, QueueError> {
        let cfg = &self.config;
        let limits = &cfg.limits;
        let since = now - limits.auto_mail_window.as_millis() as i64;
        let ticket_id = req.ticket.map(|t| t.id);
        let mut withheld = Vec::new();
        let mut to = Vec::new();
        let mut cc = Vec::new();
        let mut seen: Vec<EmailAddress> = Vec::new();
        let mut over_limit = Vec::new();
        for (list, out) in [(&req.to, &mut to), (&req.cc, &mut cc)] {
            for a in list.iter() {
                if seen.iter().any(|s| s.same_mailbox(a)) || cfg.is_own_address(a) {
                    continue;
                }
                seen.push(a.clone());
                let standing =
                    db::outbox::recipient_standing(tx, a.as_str(), ticket_id, since).await?;
                if standing.suppressed {
                    withheld.push((a.clone(), "suppressed"));
                    continue;
                }
                out.push(a.clone());
                // Per-recipient limits on automatic mail (SPEC §4): the loop
                // brake. Not for our own people: loops through them are
                // stopped by classification (their auto-replies answer
                // nothing), and a busy hour must not silence their
                // notifications.
                if !cfg.is_staff(a)
                    && (standing.about_ticket >= i64::from(limits.auto_mail_per_ticket)
                        || standing.overall >= i64::from(limits.auto_mail_per_address))
                {
                    over_limit.push(a.clone());
                }
            }
        }
        if to.is_empty() && cc.is_empty() {
            return Ok(None);
        }

        let mut status = "pending";
        let dropped_over_limit = req.origin == Origin::Reaction;
        let mut not_before = now;
        if !over_limit.is_empty() {
            if dropped_over_limit {
                let keep = |v: &mut Vec<EmailAddress>| v.retain(|a| !over_limit.contains(a));
                keep(&mut to);
                keep(&mut cc);
                if to.is_empty() && cc.is_empty() {
                    // Recorded, not sent: `outbox list` shows what the brake held.
                    status = "rate-limited";
                    to = over_limit.clone();
                } else {
                    withheld.extend(over_limit.iter().map(|a| (a.clone(), "rate-limited")));
                }
            } else {
                // A person wrote it: it waits for the window, it is not lost.
                not_before = now + limits.auto_mail_window.as_millis() as i64;
            }
        }

        // The branding is the config's, for every mail: callers need not
        // (and cannot) pass their own.
        let mut data = req.data;
        if let serde_json::Value::Object(map) = &mut data {
            map.insert("branding".into(), serde_json::json!(cfg.branding));
        }
        let mut rendered = self
            .templates
            .render(req.template, &data)
            .map_err(|e| QueueError::Template(e.to_string()))?;
        let sole_contact = match (to.as_slice(), cc.as_slice()) {
            ([only], []) | ([], [only])
                if personal.footer.is_none()
                    && personal.footer_for_sole_contact
                    && status == "pending" =>
            {
                self.contact_links(tx, only, personal.known_contact.as_ref(), now)
                    .await?
            }
            _ => None,
        };
        // The ticket records the mail without the footer: the links are
        // the recipient's alone, and others may read the ticket.
        let mut recorded_text = None;
        if let Some(links) = personal.footer.as_ref().or(sole_contact.as_ref()) {
            recorded_text = Some(rendered.text.clone());
            self.templates
                .append_links_footer(&mut rendered, links)
                .map_err(|e| QueueError::Template(e.to_string()))?;
        }
        let (in_reply_to, references) = match req.ticket {
            Some(t) => {
                let mut thread = match req.thread_known {
                    Some(known) => known.to_vec(),
                    None => conversation::thread_message_ids(tx, t.id).await?,
                };
                for r in req.extra_references {
                    if !thread.contains(r) {
                        thread.push(r.clone());
                    }
                }
                let in_reply_to = req
                    .in_reply_to
                    .map(str::to_string)
                    .or_else(|| thread.last().cloned());
                (in_reply_to, cap_references(thread))
            }
            None => (
                req.in_reply_to.map(str::to_string),
                cap_references(req.extra_references.to_vec()),
            ),
        };
        let reply_to = req
            .ticket
            .and_then(|t| self.reply_address(t))
            .and_then(|a| a.as_str().parse().ok())
            .map(|a| Mailbox::new(Some(cfg.branding.company_name.clone()), a));

        let key = cfg.link_keys.first().ok_or(QueueError::NoKey)?;
        let domain = cfg.smtp.from.email.domain().to_string();
        let message_id = super::message_id::generate(key, &domain);
        let from = match &req.from_name {
            Some(name) => Mailbox::new(Some(name.clone()), cfg.smtp.from.email.clone()),
            // Without a display name in `[smtp] from`, the company's.
            None => Mailbox::new(
                cfg.smtp
                    .from
                    .name
                    .clone()
                    .or_else(|| Some(cfg.branding.company_name.clone())),
                cfg.smtp.from.email.clone(),
            ),
        };
        let as_mailboxes = |v: &[EmailAddress]| -> Vec<Mailbox> {
            v.iter()
                .filter_map(|a| a.as_str().parse().ok())
                .map(|a| Mailbox::new(None, a))
                .collect()
        };
        let raw = compose::build(&Outgoing {
            from: &from,
            to: &as_mailboxes(&to),
            cc: &as_mailboxes(&cc),
            reply_to,
            message_id: &message_id,
            in_reply_to: in_reply_to.as_deref(),
            references: &references,
            auto_submitted: req.origin.auto_submitted(),
            attachments: req.attachments,
            dkim: self.dkim.as_deref(),
            loop_token: &domain,
            unsubscribe: personal.unsubscribe.as_ref(),
            content: &rendered,
        })
        .map_err(|e| QueueError::Template(e.to_string()))?;
        let recipients: Vec<&str> = to.iter().chain(cc.iter()).map(|a| a.as_str()).collect();
        let outbox_id = db::outbox::enqueue(
            tx,
            &db::outbox::NewOutgoing {
                kind: req.kind,
                ticket_id,
                message_id: &message_id,
                envelope_from: cfg.smtp.from.email.as_ref(),
                recipients: &recipients,
                subject: &rendered.subject,
                raw: &raw,
                // Only reactions count towards the loop brake.
                automated: req.origin == Origin::Reaction,
                status,
                not_before,
                now,
            },
        )
        .await?;
        if let Some(ticket_id) = ticket_id {
            let join =
                |v: &[EmailAddress]| v.iter().map(|a| a.as_str().to_string()).collect::<Vec<_>>();
            tickets::insert_message(
                tx,
                &NewMessage {
                    ticket_id,
                    direction: Direction::Out,
                    kind: req.kind,
                    message_id: Some(&message_id),
                    from_email: Some(cfg.smtp.from.email.as_ref()),
                    from_name: from.name.as_deref(),
                    to_list: &join(&to).join(","),
                    cc_list: &join(&cc).join(","),
                    subject: &rendered.subject,
                    visibility: if status == "pending" {
                        req.visibility
                    } else {
                        Visibility::System
                    },
                    body_text: recorded_text.as_deref().unwrap_or(&rendered.text),
                    body_trimmed: None,
                    body_html: None,
                    raw_sha256: None,
                    size_bytes: raw.len() as i64,
                    truncated: false,
                    now,
                },
            )
            .await?;
        }
        if status == "rate-limited" {
            withheld.extend(to.drain(..).map(|a| (a, "rate-limited")));
            cc.clear();
        }
        Ok(Some(Queued {
            outbox_id,
            message_id,
            recipients: to.into_iter().chain(cc).collect(),
            withheld,
        }))
    }
}

fn cap_references(mut ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_the_first_and_the_latest() {
        let ids: Vec<String> = (0..30).map(|i| format!("m{i}@x")).collect();
        let capped = cap_references(ids);
        assert_eq!(capped.len(), MAX_REFERENCES);
        assert_eq!(capped[0], "m0@x");
        assert_eq!(capped.last().unwrap(), "m29@x");
        assert_eq!(capped[1], "m19@x");
        let short: Vec<String> = vec!["a@x".into(), "b@x".into()];
        assert_eq!(cap_references(short.clone()), short);
    }
}
