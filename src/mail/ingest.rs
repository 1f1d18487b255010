//! Ingest: one inbound message → stored raw bytes, then in one database
//! transaction the ticket, its message and attachments, the acknowledgement in
//! the outbox and the de-duplication records (SPEC §2 steps 1, 2, 4, 7, 8).
//!
//! The decision about a message is a [`Plan`], made by the same code for
//! `ingest` and for `explain` (which writes nothing). A message that cannot be
//! processed goes to the quarantine with its reason; only a temporary failure
//! (database unreachable, disk full) is returned as an error, so the message
//! stays at its source and is tried again.

use std::sync::Arc;

use lettre::message::Mailbox;
use rand::RngCore;
use serde::Serialize;
use sqlx::AnyConnection;
use tokio::sync::Notify;

use super::classify::{classify, Classification};
use super::compose::{self, Outgoing};
use super::parse::{self, InboundMail};
use super::sanitize::{sanitize_filename, sanitize_html};
use super::templates::Templates;
use crate::clock::SharedClock;
use crate::config::{Config, MailboxConfig, UnknownSenderPolicy};
use crate::db::contacts::{self, ContactOrigin};
use crate::db::inbound::{self, MailboxUid, NewQuarantine};
use crate::db::tickets::{self, Direction, NewAttachment, NewMessage, NewTicket};
use crate::db::{self, Db, DbError};
use crate::domain::{ContactTypes, EmailAddress, Priority, TicketNumber};
use crate::storage::{BlobKind, BlobStore, StorageError};

/// Where a message came from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Mailbox {
        mailbox: &'a MailboxConfig,
        at: MailboxUid,
    },
    /// `postdesk ingest` (MTA pipe): the first configured mailbox's defaults.
    Pipe,
}

impl Source<'_> {
    fn label(&self) -> String {
        match self {
            Source::Mailbox { mailbox, .. } => format!("mailbox:{}", mailbox.name),
            Source::Pipe => "ingest".into(),
        }
    }
}

/// One message handed to ingest.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub source: Source<'a>,
    /// The raw message; only its header section when `oversized_bytes` is set.
    pub raw: &'a [u8],
    /// The real size of a message too large to download whole.
    pub oversized_bytes: Option<u64>,
}

/// What ingest did with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    TicketCreated { ticket: String },
    Duplicate,
    Quarantined { reason: String },
    Rejected,
    Ignored { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Try again later; the message must stay where it is.
    #[error("temporary failure: {0}")]
    Temporary(String),
}

impl From<StorageError> for IngestError {
    fn from(e: StorageError) -> Self {
        IngestError::Temporary(e.to_string())
    }
}

/// Who sent a message, as far as Postdesk knows them.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SenderPlan {
    Staff,
    Contact {
        contact_id: i64,
        client_id: Option<i64>,
        client: Option<String>,
    },
    /// Unknown address of a client's domain: becomes a Standard contact.
    NewClientContact {
        client_id: i64,
        client: String,
    },
    Unknown {
        policy: &'static str,
    },
    Missing,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ActionPlan {
    NewTicket,
    Quarantine { reason: String },
    Reject,
    Ignore { reason: String },
    Duplicate,
}

/// The decision about one message: what `explain` prints and `ingest` applies.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: String,
    pub classification: Classification,
    pub classification_reason: &'static str,
    pub sender: SenderPlan,
    pub action: ActionPlan,
    pub priority: Priority,
    pub category: Option<String>,
    pub participants: Vec<String>,
    pub attachments: usize,
    pub acknowledge: bool,
}

/// Shared context of ingest.
#[derive(Clone)]
pub struct Ingestor {
    pub config: Arc<Config>,
    pub db: Db,
    pub store: BlobStore,
    pub templates: Arc<Templates>,
    pub clock: SharedClock,
    /// Woken after a commit that queued mail, so the sender does not wait for
    /// its next poll.
    pub outbox_ready: Arc<Notify>,
}

/// The de-duplication key: the Message-ID, or the raw bytes' hash without one.
pub fn dedupe_key(mail: Option<&InboundMail>, raw_sha256: &str) -> String {
    match mail.and_then(|m| m.message_id.as_deref()) {
        Some(id) if !id.trim().is_empty() => format!("mid:{}", id.trim()),
        _ => format!("sha256:{raw_sha256}"),
    }
}

impl Ingestor {
    fn mailbox_of<'a>(&'a self, source: &Source<'a>) -> Option<&'a MailboxConfig> {
        match source {
            Source::Mailbox { mailbox, .. } => Some(mailbox),
            Source::Pipe => self.config.mailboxes.first(),
        }
    }

    /// Keeps the raw bytes; `sync` flushes them to disk first (a caller that
    /// stores a batch passes false and calls [`BlobStore::sync_all`] once).
    pub fn keep_raw(&self, raw: &[u8], sync: bool) -> Result<String, IngestError> {
        Ok(self.store.put(BlobKind::RawMail, raw, sync)?)
    }

    /// Ingests one message whose raw bytes are already kept under `raw_sha256`.
    pub async fn ingest_kept(
        &self,
        delivery: Delivery<'_>,
        raw_sha256: &str,
    ) -> Result<Outcome, IngestError> {
        match self.try_apply(&delivery, raw_sha256).await {
            Ok(outcome) => Ok(outcome),
            Err(ApplyError::Db(e)) if e.is_transient() => {
                Err(IngestError::Temporary(e.to_string()))
            }
            Err(ApplyError::Temporary(e)) => Err(IngestError::Temporary(e)),
            Err(e) => {
                // Anything else is about this message: quarantine it, so it
                // never blocks the messages behind it.
                let reason = format!("processing failed: {e}");
                self.quarantine_alone(&delivery, raw_sha256, &reason)
                    .await
                    .map_err(|e| IngestError::Temporary(e.to_string()))?;
                Ok(Outcome::Quarantined { reason })
            }
        }
    }

    /// Keeps the raw bytes durably, then ingests.
    pub async fn ingest(&self, delivery: Delivery<'_>) -> Result<Outcome, IngestError> {
        let sha = self.keep_raw(delivery.raw, true)?;
        self.ingest_kept(delivery, &sha).await
    }

    /// What ingest would do with `raw`, writing nothing.
    pub async fn explain(&self, raw: &[u8], source: Source<'_>) -> Result<Plan, DbError> {
        let sha = crate::storage::sha256_hex(raw);
        let parsed = parse::parse(raw).ok();
        let mut conn = self.db.conn().await?;
        let key = dedupe_key(parsed.as_ref(), &sha);
        let mut plan = self.plan(&mut conn, parsed.as_ref(), &key, &source).await?;
        if inbound::receipt_outcome(&mut conn, &key).await?.is_some() {
            plan.action = ActionPlan::Duplicate;
            plan.acknowledge = false;
        }
        Ok(plan)
    }

    async fn plan(
        &self,
        conn: &mut AnyConnection,
        mail: Option<&InboundMail>,
        dedupe_key: &str,
        source: &Source<'_>,
    ) -> Result<Plan, DbError> {
        let mailbox = self.mailbox_of(source);
        let priority = mailbox
            .map(|m| m.default_priority)
            .unwrap_or(Priority::Medium);
        let category = mailbox.and_then(|m| m.default_category.clone());
        let Some(mail) = mail else {
            return Ok(Plan {
                dedupe_key: dedupe_key.to_string(),
                message_id: None,
                from: None,
                subject: String::new(),
                classification: Classification::Human,
                classification_reason: "unparseable",
                sender: SenderPlan::Missing,
                action: ActionPlan::Quarantine {
                    reason: "not a mail message: no header could be parsed".into(),
                },
                priority,
                category,
                participants: Vec::new(),
                attachments: 0,
                acknowledge: false,
            });
        };
        let (classification, classification_reason) = classify(mail);
        let sender = match &mail.from {
            None => SenderPlan::Missing,
            Some(from) if self.config.is_staff(&from.address) => SenderPlan::Staff,
            Some(from) => match contacts::find_contact_by_email(conn, &from.address).await? {
                Some(c) => SenderPlan::Contact {
                    contact_id: c.id,
                    client_id: c.client_id,
                    client: match c.client_id {
                        Some(id) => contacts::client_name(conn, id).await?,
                        None => None,
                    },
                },
                None => match contacts::find_client_by_domain(conn, from.address.domain()).await? {
                    Some(client_id) => SenderPlan::NewClientContact {
                        client_id,
                        client: contacts::client_name(conn, client_id)
                            .await?
                            .unwrap_or_default(),
                    },
                    None => SenderPlan::Unknown {
                        policy: match self.config.tickets.unknown_senders {
                            UnknownSenderPolicy::Create => "create",
                            UnknownSenderPolicy::Quarantine => "quarantine",
                            UnknownSenderPolicy::Reject => "reject",
                        },
                    },
                },
            },
        };
        let has_content = !mail.subject.trim().is_empty()
            || !mail.text.trim().is_empty()
            || !mail.attachments.is_empty();
        let action = match classification {
            Classification::OwnMail => ActionPlan::Ignore {
                reason: "our own mail came back".into(),
            },
            Classification::Bounce => ActionPlan::Ignore {
                reason: "bounce or delivery report".into(),
            },
            Classification::Automated => ActionPlan::Ignore {
                reason: format!("automated mail ({classification_reason})"),
            },
            Classification::Spam => ActionPlan::Quarantine {
                reason: "flagged as spam by the upstream filter".into(),
            },
            Classification::Human => match &sender {
                SenderPlan::Missing => ActionPlan::Quarantine {
                    reason: "no sender address could be recovered".into(),
                },
                _ if !has_content => ActionPlan::Quarantine {
                    reason: "no content: no subject, no text and no attachment".into(),
                },
                SenderPlan::Unknown {
                    policy: "quarantine",
                } => ActionPlan::Quarantine {
                    reason: "unknown sender (tickets.unknown_senders = quarantine)".into(),
                },
                SenderPlan::Unknown { policy: "reject" } => ActionPlan::Reject,
                _ => ActionPlan::NewTicket,
            },
        };
        let participants = self.participants(mail);
        let acknowledge = matches!(action, ActionPlan::NewTicket | ActionPlan::Reject);
        Ok(Plan {
            dedupe_key: dedupe_key.to_string(),
            message_id: mail.message_id.clone(),
            from: mail.from.as_ref().map(|f| f.address.to_string()),
            subject: mail.subject.clone(),
            classification,
            classification_reason,
            sender,
            action,
            priority,
            category,
            participants: participants.iter().map(ToString::to_string).collect(),
            attachments: mail.attachments.len(),
            acknowledge,
        })
    }

    /// CC'd addresses (and further To: addresses) that join the ticket: not
    /// the sender, not our own addresses, not staff.
    fn participants(&self, mail: &InboundMail) -> Vec<EmailAddress> {
        let from = mail.from.as_ref().map(|f| &f.address);
        let mut out: Vec<EmailAddress> = Vec::new();
        for a in mail.to.iter().chain(mail.cc.iter()) {
            if Some(a) == from
                || self.config.is_own_address(a)
                || self.config.is_staff(a)
                || out.contains(a)
            {
                continue;
            }
            out.push(a.clone());
        }
        out
    }

    async fn try_apply(&self, d: &Delivery<'_>, raw_sha256: &str) -> Result<Outcome, ApplyError> {
        let now = self.clock.now_millis();
        let source_label = d.source.label();
        let mailbox_at = match d.source {
            Source::Mailbox { mailbox, at } => Some((mailbox.name.as_str(), at)),
            Source::Pipe => None,
        };
        if let Some((name, at)) = mailbox_at {
            let mut conn = self.db.conn().await?;
            if inbound::uid_applied(&mut conn, name, at).await? {
                return Ok(Outcome::Duplicate);
            }
        }
        let parsed = parse::parse(d.raw);
        let key = dedupe_key(parsed.as_ref().ok(), raw_sha256);

        let mut tx = self.db.begin().await?;
        if !inbound::claim_receipt(&mut tx, &key, raw_sha256, "pending", now).await? {
            if let Some((name, at)) = mailbox_at {
                inbound::record_uid(&mut tx, name, at, now).await?;
            }
            tx.commit().await.map_err(DbError::from)?;
            return Ok(Outcome::Duplicate);
        }
        let plan = self
            .plan(&mut tx, parsed.as_ref().ok(), &key, &d.source)
            .await?;
        let (outcome, ticket_id, queued_mail) = match (&plan.action, parsed.as_ref()) {
            (ActionPlan::NewTicket, Ok(mail)) => {
                let (ticket_id, number, queued) = self
                    .open_ticket(&mut tx, d, &plan, mail, raw_sha256, now)
                    .await?;
                (
                    Outcome::TicketCreated {
                        ticket: number.to_string(),
                    },
                    Some(ticket_id),
                    queued,
                )
            }
            (ActionPlan::Reject, Ok(mail)) => {
                let queued = self.reject(&mut tx, d, mail, now).await?;
                (Outcome::Rejected, None, queued)
            }
            (ActionPlan::Ignore { reason }, _) => (
                Outcome::Ignored {
                    reason: reason.clone(),
                },
                None,
                false,
            ),
            (ActionPlan::Quarantine { reason }, _) => {
                inbound::insert_quarantine(
                    &mut tx,
                    &NewQuarantine {
                        raw_sha256,
                        source: &source_label,
                        reason,
                        subject: parsed.as_ref().ok().map(|m| m.subject.as_str()),
                        now,
                    },
                )
                .await?;
                (
                    Outcome::Quarantined {
                        reason: reason.clone(),
                    },
                    None,
                    false,
                )
            }
            // `plan` quarantines every message that did not parse.
            (ActionPlan::NewTicket | ActionPlan::Reject, Err(_)) => {
                return Err(ApplyError::Invalid(
                    "a reply was planned for an unparseable message",
                ));
            }
            (ActionPlan::Duplicate, _) => (Outcome::Duplicate, None, false),
        };
        let outcome_label = match &outcome {
            Outcome::TicketCreated { .. } => "ticket",
            Outcome::Duplicate => "duplicate",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::Rejected => "rejected",
            Outcome::Ignored { .. } => "ignored",
        };
        inbound::set_receipt_outcome(&mut tx, &key, outcome_label, ticket_id).await?;
        if let Some((name, at)) = mailbox_at {
            inbound::record_uid(&mut tx, name, at, now).await?;
        }
        tx.commit().await.map_err(DbError::from)?;
        if queued_mail {
            self.outbox_ready.notify_one();
        }
        Ok(outcome)
    }

    async fn open_ticket(
        &self,
        tx: &mut AnyConnection,
        d: &Delivery<'_>,
        plan: &Plan,
        mail: &InboundMail,
        raw_sha256: &str,
        now: i64,
    ) -> Result<(i64, TicketNumber, bool), ApplyError> {
        let from = mail.from.as_ref().ok_or(ApplyError::Invalid("no sender"))?;
        let (client_id, contact_id) = match &plan.sender {
            SenderPlan::Contact {
                contact_id,
                client_id,
                ..
            } => (*client_id, Some(*contact_id)),
            SenderPlan::NewClientContact { client_id, .. } => {
                let id = contacts::insert_contact(
                    tx,
                    Some(*client_id),
                    &from.address,
                    from.name.as_deref(),
                    ContactTypes::default(),
                    ContactOrigin::ClientDomain,
                    now,
                )
                .await?;
                (Some(*client_id), Some(id))
            }
            SenderPlan::Unknown { .. } => {
                let id = contacts::insert_contact(
                    tx,
                    None,
                    &from.address,
                    from.name.as_deref(),
                    ContactTypes::default(),
                    ContactOrigin::UnknownSender,
                    now,
                )
                .await?;
                (None, Some(id))
            }
            SenderPlan::Staff | SenderPlan::Missing => (None, None),
        };

        let cfg = &self.config;
        let sequence = db::next_counter(tx, "ticket_number", cfg.tickets.first_number).await?;
        let number = TicketNumber::new(&cfg.tickets.prefix, sequence);
        let subject = if mail.subject.is_empty() {
            "(no subject)".to_string()
        } else {
            mail.subject.clone()
        };
        let reply_token = new_reply_token();
        let sla = cfg.sla.first_response(plan.priority);
        let mailbox_name = self.mailbox_of(&d.source).map(|m| m.name.clone());
        let ticket_id = tickets::insert_ticket(
            tx,
            &NewTicket {
                number: &number,
                subject: &subject,
                priority: plan.priority,
                category: plan.category.as_deref(),
                client_id,
                requester_contact_id: contact_id,
                requester_email: &from.address,
                mailbox: mailbox_name.as_deref(),
                reply_token: &reply_token,
                first_response_due_at: now + sla.as_millis() as i64,
                now,
            },
        )
        .await?;
        let participants = self.participants(mail);
        for p in &participants {
            tickets::add_participant(tx, ticket_id, p).await?;
        }

        let html = mail.html.as_deref().map(sanitize_html);
        let body_text = match d.oversized_bytes {
            Some(size) => format!(
                "(This message was {} and over the limit of {}; it was not downloaded.)\n\n{}",
                human_size(size),
                human_size(cfg.limits.max_message_bytes),
                mail.text
            ),
            None => mail.text.clone(),
        };
        let join = |v: &[EmailAddress]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
        let message_row = tickets::insert_message(
            tx,
            &NewMessage {
                ticket_id,
                direction: Direction::In,
                kind: "request",
                message_id: mail.message_id.as_deref(),
                from_email: Some(from.address.as_str()),
                from_name: from.name.as_deref(),
                to_list: &join(&mail.to),
                cc_list: &join(&mail.cc),
                subject: &mail.subject,
                body_text: &body_text,
                body_html: html.as_deref(),
                raw_sha256: Some(raw_sha256),
                size_bytes: d.oversized_bytes.unwrap_or(d.raw.len() as u64) as i64,
                truncated: d.oversized_bytes.is_some(),
                now,
            },
        )
        .await?;
        for (i, a) in mail.attachments.iter().enumerate() {
            let sha = self
                .store
                .put(BlobKind::Attachment, &a.bytes, false)
                .map_err(|e| ApplyError::Temporary(e.to_string()))?;
            let filename = sanitize_filename(a.filename.as_deref(), &a.content_type, i + 1);
            tickets::insert_attachment(
                tx,
                &NewAttachment {
                    message_id: message_row,
                    filename: &filename,
                    content_type: &a.content_type,
                    size_bytes: a.bytes.len() as i64,
                    sha256: &sha,
                    content_id: a.content_id.as_deref(),
                    inline: a.inline,
                },
            )
            .await?;
        }

        let queued = self
            .queue_acknowledgement(
                tx,
                d,
                ticket_id,
                &reply_token,
                &number,
                &subject,
                plan,
                mail,
                &participants,
                now,
            )
            .await?;
        Ok((ticket_id, number, queued))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    async fn queue_acknowledgement(
        &self,
        tx: &mut AnyConnection,
        d: &Delivery<'_>,
        ticket_id: i64,
        reply_token: &str,
        number: &TicketNumber,
        subject: &str,
        plan: &Plan,
        mail: &InboundMail,
        participants: &[EmailAddress],
        now: i64,
    ) -> Result<bool, ApplyError> {
        let Some(from) = mail.from.as_ref() else {
            return Ok(false);
        };
        if inbound::is_suppressed(tx, from.address.as_str()).await? {
            return Ok(false);
        }
        let mut cc = Vec::new();
        for p in participants {
            if !inbound::is_suppressed(tx, p.as_str()).await? {
                cc.push(p.clone());
            }
        }
        let cfg = &self.config;
        let data = serde_json::json!({
            "branding": cfg.branding,
            "recipient_name": from.name.clone().unwrap_or_else(|| from.address.to_string()),
            "ticket": {
                "number": number.as_str(),
                "subject": subject,
                "priority": plan.priority.as_str(),
                "priority_label": plan.priority.label(),
            },
            "expected_response": describe_duration(cfg.sla.first_response(plan.priority)),
            "truncated": d.oversized_bytes.map(human_size),
        });
        let rendered = self
            .templates
            .render("acknowledgement", &data)
            .map_err(|e| ApplyError::Template(e.to_string()))?;
        let reply_to = self.reply_address(d, reply_token);
        let mut references = mail.references.clone();
        if let Some(id) = &mail.message_id {
            references.push(id.clone());
        }
        self.enqueue(
            tx,
            "acknowledgement",
            Some(ticket_id),
            std::slice::from_ref(&from.address),
            &cc,
            reply_to,
            mail.message_id.as_deref(),
            &references,
            &rendered,
            now,
        )
        .await?;
        Ok(true)
    }

    /// `support+<token>@…` of the mailbox the ticket came in through.
    fn reply_address(&self, d: &Delivery<'_>, reply_token: &str) -> Option<Mailbox> {
        let mailbox = self.mailbox_of(&d.source)?;
        let address = mailbox
            .address
            .with_detail(reply_token)
            .as_str()
            .parse()
            .ok()?;
        Some(Mailbox::new(
            Some(self.config.branding.company_name.clone()),
            address,
        ))
    }

    async fn reject(
        &self,
        tx: &mut AnyConnection,
        _d: &Delivery<'_>,
        mail: &InboundMail,
        now: i64,
    ) -> Result<bool, ApplyError> {
        let Some(from) = mail.from.as_ref() else {
            return Ok(false);
        };
        if inbound::is_suppressed(tx, from.address.as_str()).await? {
            return Ok(false);
        }
        let data = serde_json::json!({
            "branding": self.config.branding,
            "original_subject": if mail.subject.is_empty() { "your message" } else { mail.subject.as_str() },
        });
        let rendered = self
            .templates
            .render("unknown_sender_rejected", &data)
            .map_err(|e| ApplyError::Template(e.to_string()))?;
        let mut references = mail.references.clone();
        if let Some(id) = &mail.message_id {
            references.push(id.clone());
        }
        self.enqueue(
            tx,
            "unknown-sender-rejected",
            None,
            std::slice::from_ref(&from.address),
            &[],
            None,
            mail.message_id.as_deref(),
            &references,
            &rendered,
            now,
        )
        .await?;
        Ok(true)
    }

    #[expect(clippy::too_many_arguments, reason = "the fields of one outgoing mail")]
    async fn enqueue(
        &self,
        tx: &mut AnyConnection,
        kind: &str,
        ticket_id: Option<i64>,
        to: &[EmailAddress],
        cc: &[EmailAddress],
        reply_to: Option<Mailbox>,
        in_reply_to: Option<&str>,
        references: &[String],
        rendered: &super::templates::RenderedMail,
        now: i64,
    ) -> Result<(), ApplyError> {
        let cfg = &self.config;
        let from = &cfg.smtp.from;
        let domain = from.email.domain().to_string();
        let key = cfg
            .link_keys
            .first()
            .ok_or(ApplyError::Invalid("no link key to sign with"))?;
        let message_id = super::message_id::generate(key, &domain);
        let as_mailboxes = |v: &[EmailAddress]| -> Vec<Mailbox> {
            v.iter()
                .filter_map(|a| a.as_str().parse().ok())
                .map(|a| Mailbox::new(None, a))
                .collect()
        };
        let to_boxes = as_mailboxes(to);
        let cc_boxes = as_mailboxes(cc);
        let raw = compose::build(&Outgoing {
            from,
            to: &to_boxes,
            cc: &cc_boxes,
            reply_to,
            message_id: &message_id,
            in_reply_to,
            references,
            automated: true,
            loop_token: &domain,
            content: rendered,
        })
        .map_err(|e| ApplyError::Template(e.to_string()))?;
        let recipients: Vec<&str> = to.iter().chain(cc.iter()).map(|a| a.as_str()).collect();
        db::outbox::enqueue(
            tx,
            &db::outbox::NewOutgoing {
                kind,
                ticket_id,
                message_id: &message_id,
                envelope_from: from.email.as_ref(),
                recipients: &recipients.join(","),
                subject: &rendered.subject,
                raw: &raw,
                now,
            },
        )
        .await?;
        if let Some(ticket_id) = ticket_id {
            let text = rendered.text.clone();
            tickets::insert_message(
                tx,
                &NewMessage {
                    ticket_id,
                    direction: Direction::Out,
                    kind,
                    message_id: Some(&message_id),
                    from_email: Some(from.email.as_ref()),
                    from_name: from.name.as_deref(),
                    to_list: &to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
                    cc_list: &cc.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
                    subject: &rendered.subject,
                    body_text: &text,
                    body_html: None,
                    raw_sha256: None,
                    size_bytes: raw.len() as i64,
                    truncated: false,
                    now,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Quarantines a message in a transaction of its own (after the main one
    /// failed), recording its UID so it is not fetched again.
    async fn quarantine_alone(
        &self,
        d: &Delivery<'_>,
        raw_sha256: &str,
        reason: &str,
    ) -> Result<(), DbError> {
        let now = self.clock.now_millis();
        let mut tx = self.db.begin().await?;
        inbound::insert_quarantine(
            &mut tx,
            &NewQuarantine {
                raw_sha256,
                source: &d.source.label(),
                reason,
                subject: None,
                now,
            },
        )
        .await?;
        if let Source::Mailbox { mailbox, at } = d.source {
            inbound::record_uid(&mut tx, &mailbox.name, at, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Invalid(&'static str),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Db(DbError::from(e))
    }
}

fn new_reply_token() -> String {
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    // Lower-case hex: survives every mail system's case folding of local parts.
    hex::encode(bytes)
}

/// "30 minutes", "2 hours", "1 business day".
pub fn describe_duration(d: std::time::Duration) -> String {
    let minutes = d.as_secs() / 60;
    match minutes {
        m if m >= 480 && m % 480 == 0 => {
            let days = m / 480;
            format!("{days} business day{}", if days == 1 { "" } else { "s" })
        }
        m if m >= 60 && m % 60 == 0 => {
            let h = m / 60;
            format!("{h} hour{}", if h == 1 { "" } else { "s" })
        }
        m => format!("{m} minute{}", if m == 1 { "" } else { "s" }),
    }
}

pub fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        use std::time::Duration;
        assert_eq!(
            describe_duration(Duration::from_secs(30 * 60)),
            "30 minutes"
        );
        assert_eq!(describe_duration(Duration::from_secs(2 * 3600)), "2 hours");
        assert_eq!(
            describe_duration(Duration::from_secs(8 * 3600)),
            "1 business day"
        );
    }

    #[test]
    fn dedupe_key_prefers_message_id() {
        let m = parse::parse(b"From: a@b.test\r\nMessage-ID: <x@y>\r\n\r\nhi").unwrap();
        assert_eq!(dedupe_key(Some(&m), "abc"), "mid:x@y");
        let m = parse::parse(b"From: a@b.test\r\n\r\nhi").unwrap();
        assert_eq!(dedupe_key(Some(&m), "abc"), "sha256:abc");
    }
}
