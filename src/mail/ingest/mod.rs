//! Ingest: one inbound message → stored raw bytes, then in one database
//! transaction everything it causes — a new ticket or a message on the ticket
//! it threads to, staff commands, the mail it triggers in the outbox — and the
//! de-duplication records (SPEC §2, §3).
//!
//! `mod.rs` decides (the [`Plan`]) and orchestrates; `new_ticket`, `reply`,
//! `staff` and `system` apply each kind of decision.
//!
//! The decision about a message is a [`Plan`], made by the same code for
//! `ingest` and for `explain` (which writes nothing). A message that cannot be
//! processed goes to the quarantine with its reason; only a temporary failure
//! (database unreachable, disk full) is returned as an error, so the message
//! stays at its source and is tried again.

use std::collections::HashSet;
use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;
use sqlx::AnyConnection;
use tokio::sync::Notify;

mod new_ticket;
mod reply;
mod sender_lookups;
mod staff;
mod system;
mod ticket_numbers;
mod unsubscribe;

use super::authentication_results::{dmarc_verdict, Dmarc};
use super::bounce::{parse_bounce, BounceReport};
use super::classify::{classify, Classification};
use super::outgoing::{MailRequest, Mailer, Origin, QueueError};
use super::parse::{self, InboundMail, ParseError};
use super::sanitize::{sanitize_filename, sanitize_html};
use super::staff_commands::{parse_staff_reply, Command};
use super::threading::{find_thread, ThreadRule};
use crate::audit::AuditEvent;
use crate::clock::SharedClock;
use crate::config::{Config, MailboxConfig, UnknownSenderPolicy};
use crate::db::contacts;
use crate::db::conversation::TicketRef;
use crate::db::inbound::{self, MailboxUid, NewQuarantine};
use crate::db::tickets::{self, Direction, NewAttachment, NewMessage, Visibility};
use crate::db::{Db, DbError, Tx};
use crate::domain::{EmailAddress, OptionalMail, Priority};
use crate::portal::unsubscribe as unsubscribe_request;
use crate::storage::{BlobKind, BlobStore, StorageError};
use sender_lookups::{Known, SenderLookups};
use ticket_numbers::TicketNumbers;

/// Where a message came from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Mailbox {
        mailbox: &'a MailboxConfig,
        at: MailboxUid,
    },
    /// `postdesk ingest` (MTA pipe): the first configured mailbox's defaults.
    Pipe,
    /// A technician's action through the admin API, written as the mail they
    /// would have sent, so it takes the same path (and the same checks).
    AdminApi,
    /// A client's reply or files posted on their ticket page, written as the
    /// mail they would have sent, like [`Source::AdminApi`]. `audit` (the
    /// form post) is appended in the transaction that applies the mail.
    Portal { audit: Option<&'a AuditEvent> },
}

impl Source<'_> {
    /// The mailbox and position a message was taken from, if any.
    fn mailbox_at(&self) -> Option<(&str, MailboxUid)> {
        match self {
            Source::Mailbox { mailbox, at } => Some((mailbox.name.as_str(), *at)),
            Source::Pipe | Source::AdminApi | Source::Portal { .. } => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Source::Mailbox { mailbox, .. } => format!("mailbox:{}", mailbox.name),
            Source::Pipe => "ingest".into(),
            Source::AdminApi => "admin-api".into(),
            Source::Portal { .. } => "portal".into(),
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

/// A message parsed, or why it could not be.
pub type Parsed = Result<InboundMail, ParseError>;

/// A message ready to apply: its raw bytes kept under `raw_sha256`, parsed.
#[derive(Debug, Clone, Copy)]
pub struct Kept<'a> {
    pub delivery: Delivery<'a>,
    pub raw_sha256: &'a str,
    pub parsed: &'a Parsed,
}

/// What ingest did with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    TicketCreated {
        ticket: String,
    },
    /// Added to an existing ticket (a reply, a note, an auto-reply, a bounce).
    Added {
        ticket: String,
        kind: String,
    },
    /// A staff mail whose commands were wrong: nothing applied, they were told.
    CommandRejected {
        ticket: Option<String>,
    },
    Duplicate,
    Quarantined {
        reason: String,
    },
    Rejected,
    Ignored {
        reason: String,
    },
    /// A mail from the `mailto:` of `List-Unsubscribe`: that kind of
    /// optional mail switched off for its contact.
    Unsubscribed {
        list: String,
    },
}

impl Outcome {
    /// The outcome as its de-duplication receipt records it.
    fn receipt_label(&self) -> &'static str {
        match self {
            Self::TicketCreated { .. } => "ticket",
            Self::Added { .. } => "added",
            Self::CommandRejected { .. } => "command-rejected",
            Self::Duplicate => "duplicate",
            Self::Quarantined { .. } => "quarantined",
            Self::Rejected => "rejected",
            Self::Ignored { .. } => "ignored",
            Self::Unsubscribed { .. } => "unsubscribed",
        }
    }

    /// The outcome's name, as in its JSON (`ticket-created`, `duplicate`…).
    pub fn label(&self) -> &'static str {
        match self {
            Self::TicketCreated { .. } => "ticket-created",
            Self::Added { .. } => "added",
            Self::CommandRejected { .. } => "command-rejected",
            Self::Duplicate => "duplicate",
            Self::Quarantined { .. } => "quarantined",
            Self::Rejected => "rejected",
            Self::Ignored { .. } => "ignored",
            Self::Unsubscribed { .. } => "unsubscribed",
        }
    }
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
    /// Open a ticket; `continues` is the closed ticket a late reply was to.
    NewTicket {
        continues: Option<String>,
    },
    /// A reply by someone on the ticket: public, and the staff are told.
    Reply {
        ticket: String,
        reopen: bool,
    },
    /// A technician's answer: commands applied, the rest mailed to the client.
    StaffReply {
        ticket: String,
    },
    /// A technician opens a ticket for a client (`#requester`, `#fwd`).
    StaffOpensTicket {
        requester: String,
    },
    /// Someone not on the ticket: an internal note, and the staff are told.
    InternalNote {
        ticket: String,
    },
    /// Auto-reply / out-of-office recorded where it threads; nothing answered.
    RecordAutomated {
        ticket: String,
    },
    /// A bounce of our mail: a system note, suppression of hard failures.
    RecordBounce {
        ticket: Option<String>,
        suppress: Vec<String>,
    },
    /// A staff mail whose commands are wrong: they get the list, nothing else.
    RejectCommands {
        errors: Vec<String>,
    },
    Quarantine {
        reason: String,
    },
    Reject,
    Ignore {
        reason: String,
    },
    /// A mail from the `mailto:` of `List-Unsubscribe` with a genuine
    /// preferences token: switch `list` off for that contact.
    Unsubscribe {
        list: OptionalMail,
        contact_id: i64,
        client_id: Option<i64>,
    },
    Duplicate,
}

/// How the mail was threaded, for `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadPlan {
    pub rule: Option<ThreadRule>,
    pub ticket: Option<String>,
    pub sender_on_ticket: bool,
    /// A rule that pointed somewhere but was not accepted, and why.
    pub declined: Option<String>,
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
    pub thread: ThreadPlan,
    /// What the person wrote, without quoted history and signature.
    pub trimmed_text: String,
    /// Staff commands found at the top (as written).
    pub commands: Vec<String>,
    /// What a bounce said, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce: Option<BounceReport>,
    /// The trusted MTA's DMARC verdict (`pass`, `fail`, `other`), when
    /// `[mail_auth]` names it and it wrote one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dmarc: Option<&'static str>,
    /// Internal: the ticket the action is about.
    #[serde(skip)]
    ticket: Option<TicketRef>,
    #[serde(skip)]
    staff_commands: Vec<Command>,
    #[serde(skip)]
    staff_body: String,
    /// Internal: the sender's contact, when they have one already (the
    /// acknowledgement's footer needs it; not looked up twice).
    #[serde(skip)]
    sender_contact: Option<contacts::Contact>,
}

/// Shared context of ingest.
#[derive(Clone)]
pub struct Ingestor {
    pub config: Arc<Config>,
    pub db: Db,
    pub store: BlobStore,
    pub mailer: Mailer,
    pub clock: SharedClock,
    /// Woken after a commit that queued mail, so the sender does not wait for
    /// its next poll.
    pub outbox_ready: Arc<Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
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
            Source::Pipe | Source::AdminApi | Source::Portal { .. } => {
                self.config.mailboxes.first()
            }
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
        let parsed = parse::parse(delivery.raw);
        let kept = Kept {
            delivery,
            raw_sha256,
            parsed: &parsed,
        };
        // A batch of one: the same savepoint, quarantine and error rules.
        let (mut outcomes, error) = self.ingest_kept_batch(&[kept]).await;
        match (outcomes.pop(), error) {
            (Some(outcome), None) => Ok(outcome),
            (_, Some(e)) => Err(e),
            (None, None) => Err(IngestError::Temporary("the message was not applied".into())),
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
        let mut plan = self
            .plan(&mut conn, raw, parsed.as_ref(), &key, &source, None)
            .await?;
        if inbound::receipt_outcome(&mut conn, &key).await?.is_some() {
            plan.action = ActionPlan::Duplicate;
            plan.acknowledge = false;
        }
        Ok(plan)
    }

    async fn plan(
        &self,
        conn: &mut AnyConnection,
        raw: &[u8],
        mail: Option<&InboundMail>,
        dedupe_key: &str,
        source: &Source<'_>,
        lookups: Option<&SenderLookups>,
    ) -> Result<Plan, DbError> {
        let mailbox = self.mailbox_of(source);
        let priority = mailbox
            .map(|m| m.default_priority)
            .unwrap_or(Priority::Medium);
        let category = mailbox.and_then(|m| m.default_category.clone());
        let mut plan = Plan {
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
            thread: ThreadPlan {
                rule: None,
                ticket: None,
                sender_on_ticket: false,
                declined: None,
            },
            trimmed_text: String::new(),
            commands: Vec::new(),
            bounce: None,
            dmarc: None,
            ticket: None,
            staff_commands: Vec::new(),
            staff_body: String::new(),
            sender_contact: None,
        };
        let Some(mail) = mail else {
            return Ok(plan);
        };
        plan.message_id = mail.message_id.clone();
        plan.from = mail.from.as_ref().map(|f| f.address.to_string());
        plan.subject = mail.subject.clone();
        plan.attachments = mail.attachments.len();
        plan.participants = self
            .participants(mail)
            .iter()
            .map(ToString::to_string)
            .collect();
        plan.trimmed_text = super::reply_trim::trim_reply(&mail.text).text;

        let (mut classification, mut reason) = classify(mail);
        if classification == Classification::Human
            && mail
                .message_id
                .as_deref()
                .is_some_and(|id| super::message_id::verify(&self.config.link_keys, id))
        {
            (classification, reason) = (Classification::OwnMail, "our signed Message-ID");
        }
        plan.classification = classification;
        plan.classification_reason = reason;
        (plan.sender, plan.sender_contact) = self.identify_sender(conn, mail, lookups).await?;
        if matches!(
            classification,
            Classification::Human | Classification::Automated
        ) {
            if let Some(action) = self.plan_unsubscribe(conn, mail).await? {
                plan.action = action;
                return Ok(plan);
            }
        }
        let dmarc = self
            .config
            .trusted_authserv_id
            .as_deref()
            .and_then(|id| dmarc_verdict(raw, id));
        plan.dmarc = dmarc.map(|d| match d {
            Dmarc::Pass => "pass",
            Dmarc::Fail => "fail",
            Dmarc::Other => "other",
        });
        // A sender whose domain failed DMARC may not be who the From: says:
        // never acted on as that contact or technician.
        let unverified = dmarc == Some(Dmarc::Fail);

        let sender_client = match &plan.sender {
            SenderPlan::Contact { client_id, .. } => *client_id,
            SenderPlan::NewClientContact { client_id, .. } => Some(*client_id),
            _ => None,
        };
        let threading = if classification == Classification::Bounce {
            plan.bounce = parse_bounce(raw);
            self.thread_bounce(conn, mail, plan.bounce.as_ref()).await?
        } else {
            find_thread(conn, &self.config, mail, sender_client).await?
        };
        plan.thread = ThreadPlan {
            rule: threading.found.as_ref().map(|m| m.rule),
            ticket: threading.found.as_ref().map(|m| m.ticket.number.clone()),
            sender_on_ticket: threading.found.as_ref().is_some_and(|m| m.sender_on_ticket),
            declined: threading.declined,
        };
        let thread = threading.found;
        plan.ticket = thread.as_ref().map(|m| m.ticket.clone());
        let ticket_number = thread.as_ref().map(|m| m.ticket.number.clone());

        let has_content = !mail.subject.trim().is_empty()
            || !mail.text.trim().is_empty()
            || !mail.attachments.is_empty();
        plan.action = match classification {
            Classification::OwnMail => ActionPlan::Ignore {
                reason: "our own mail came back".into(),
            },
            Classification::Bounce => {
                let suppress = self.hard_failures(plan.bounce.as_ref(), thread.is_some());
                if thread.is_none() && suppress.is_empty() {
                    ActionPlan::Ignore {
                        reason: "bounce or delivery report not matched to a mail of ours".into(),
                    }
                } else {
                    ActionPlan::RecordBounce {
                        ticket: ticket_number,
                        suppress,
                    }
                }
            }
            Classification::Automated => match ticket_number {
                Some(ticket) => ActionPlan::RecordAutomated { ticket },
                None => ActionPlan::Ignore {
                    reason: format!("automated mail ({reason})"),
                },
            },
            Classification::Spam => ActionPlan::Quarantine {
                reason: "flagged as spam by the upstream filter".into(),
            },
            Classification::Human if unverified => match thread {
                Some(m) => ActionPlan::InternalNote {
                    ticket: m.ticket.number,
                },
                None => ActionPlan::Quarantine {
                    reason: "the sender's domain failed DMARC at the trusted MTA: \
                             not taken as the address it claims"
                        .into(),
                },
            },
            Classification::Human => match (&plan.sender, thread) {
                (SenderPlan::Missing, _) => ActionPlan::Quarantine {
                    reason: "no sender address could be recovered".into(),
                },
                (_, None) if !has_content => ActionPlan::Quarantine {
                    reason: "no content: no subject, no text and no attachment".into(),
                },
                (SenderPlan::Staff, thread) => {
                    self.plan_staff(&mut plan, mail, thread.map(|m| m.ticket))
                }
                (_, Some(m)) if !m.sender_on_ticket => ActionPlan::InternalNote {
                    ticket: m.ticket.number,
                },
                (_, Some(m)) if m.ticket.is_closed() => {
                    let window = i64::from(self.config.tickets.reopen_days) * 86_400_000;
                    let closed_at = m.ticket.closed_at.unwrap_or(0);
                    if self.clock.now_millis() - closed_at <= window {
                        ActionPlan::Reply {
                            ticket: m.ticket.number,
                            reopen: true,
                        }
                    } else {
                        self.plan_new_ticket(&plan.sender, Some(m.ticket.number))
                    }
                }
                (_, Some(m)) => ActionPlan::Reply {
                    ticket: m.ticket.number,
                    reopen: false,
                },
                (sender, None) => self.plan_new_ticket(sender, None),
            },
        };
        plan.acknowledge = matches!(
            plan.action,
            ActionPlan::NewTicket { .. } | ActionPlan::Reject | ActionPlan::StaffOpensTicket { .. }
        );
        Ok(plan)
    }

    /// A mail to `support+unsubscribe@` whose subject is what our `mailto:`
    /// wrote. A genuine token unsubscribes (whoever sent it: the token is
    /// the authority, as for the one-click POST); a refused one is ignored
    /// with the reason. Any other mail to that address is ordinary mail: a
    /// person's own words there still reach a technician.
    async fn plan_unsubscribe(
        &self,
        conn: &mut AnyConnection,
        mail: &InboundMail,
    ) -> Result<Option<ActionPlan>, DbError> {
        let recipients = mail.to.iter().chain(mail.cc.iter());
        if !unsubscribe_request::is_unsubscribe_address(&self.config, recipients) {
            return Ok(None);
        }
        let Some(request) = unsubscribe_request::request_in_subject(&mail.subject) else {
            return Ok(None);
        };
        let now_secs = self.clock.now_millis() / 1000;
        let holder =
            unsubscribe_request::token_holder(&self.config, conn, request.token, now_secs).await?;
        Ok(Some(match holder {
            Ok(contact) => ActionPlan::Unsubscribe {
                list: request.kind,
                contact_id: contact.id,
                client_id: contact.client_id,
            },
            Err(refused) => ActionPlan::Ignore {
                reason: format!("unsubscribe mail refused: {refused}"),
            },
        }))
    }

    fn plan_new_ticket(&self, sender: &SenderPlan, continues: Option<String>) -> ActionPlan {
        match sender {
            SenderPlan::Unknown {
                policy: "quarantine",
            } => ActionPlan::Quarantine {
                reason: "unknown sender (tickets.unknown_senders = quarantine)".into(),
            },
            SenderPlan::Unknown { policy: "reject" } => ActionPlan::Reject,
            _ => ActionPlan::NewTicket { continues },
        }
    }

    /// A technician's mail: commands at the top of what they wrote.
    fn plan_staff(
        &self,
        plan: &mut Plan,
        mail: &InboundMail,
        ticket: Option<TicketRef>,
    ) -> ActionPlan {
        let parsed = match parse_staff_reply(&plan.trimmed_text) {
            Ok(p) => p,
            Err(errors) => {
                return ActionPlan::RejectCommands {
                    errors: errors.iter().map(ToString::to_string).collect(),
                }
            }
        };
        plan.commands = parsed.commands.iter().map(|c| format!("{c:?}")).collect();
        let mut errors = Vec::new();
        for c in &parsed.commands {
            match c {
                Command::Assign(who) if self.config.find_staff(who).is_none() => errors.push(
                    format!("#assign: nobody on the staff list is called `{who}`"),
                ),
                Command::Requester(_) | Command::Forward if ticket.is_some() => errors.push(
                    "#requester and #fwd open a ticket: send them to the support address, \
                     not in a reply"
                        .into(),
                ),
                _ => {}
            }
        }
        let requester = parsed.commands.iter().find_map(|c| match c {
            Command::Requester(a) => Some(a.clone()),
            _ => None,
        });
        let forwarded = parsed.commands.contains(&Command::Forward);
        let action = match (&ticket, requester) {
            _ if !errors.is_empty() => ActionPlan::RejectCommands { errors },
            (Some(t), _) => ActionPlan::StaffReply {
                ticket: t.number.clone(),
            },
            (None, Some(requester)) => ActionPlan::StaffOpensTicket {
                requester: requester.to_string(),
            },
            (None, None) if forwarded => match forwarded_sender(mail) {
                Some(requester) => ActionPlan::StaffOpensTicket {
                    requester: requester.to_string(),
                },
                None => ActionPlan::RejectCommands {
                    errors: vec![
                        "#fwd: no forwarded message with a sender address was found; \
                         forward the client's mail inline or as an attachment, or use \
                         #requester ADDRESS"
                            .into(),
                    ],
                },
            },
            (None, None) => ActionPlan::NewTicket { continues: None },
        };
        plan.staff_commands = parsed.commands;
        plan.staff_body = parsed.body;
        action
    }

    /// Who sent `mail`, and their contact when they have one.
    async fn identify_sender(
        &self,
        conn: &mut AnyConnection,
        mail: &InboundMail,
        lookups: Option<&SenderLookups>,
    ) -> Result<(SenderPlan, Option<contacts::Contact>), DbError> {
        let Some(from) = &mail.from else {
            return Ok((SenderPlan::Missing, None));
        };
        if self.config.is_staff(&from.address) {
            return Ok((SenderPlan::Staff, None));
        }
        let known = lookups.map_or(Known::Ask, |l| l.contact(&from.address));
        let contact = match known {
            Known::Answer(c) => c.cloned(),
            Known::Ask => contacts::find_contact_by_email(conn, &from.address).await?,
        };
        if let Some(c) = contact {
            let sender = SenderPlan::Contact {
                contact_id: c.id,
                client_id: c.client_id,
                client: match c.client_id {
                    Some(id) => client_name(conn, lookups, id).await?,
                    None => None,
                },
            };
            return Ok((sender, Some(c)));
        }
        let domain = from.address.domain();
        let known = lookups.map_or(Known::Ask, |l| l.client_of_domain(domain));
        let client = match known {
            Known::Answer(c) => c,
            Known::Ask => contacts::find_client_by_domain(conn, domain).await?,
        };
        let sender = match client {
            Some(client_id) => SenderPlan::NewClientContact {
                client_id,
                client: client_name(conn, lookups, client_id)
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
        };
        Ok((sender, None))
    }

    /// CC'd addresses (and further To: addresses) that join the ticket: not
    /// the sender, not our own addresses, not staff.
    fn participants(&self, mail: &InboundMail) -> Vec<EmailAddress> {
        let from = mail.from.as_ref().map(|f| &f.address);
        let mut out: Vec<EmailAddress> = Vec::new();
        for a in mail.to.iter().chain(mail.cc.iter()) {
            if from.is_some_and(|f| f.same_mailbox(a))
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

    /// Applies a batch of kept messages in one transaction: a backlog costs
    /// one commit per batch instead of one per message. Returns the outcomes
    /// of the messages applied, in order; on a temporary failure, those
    /// before it are committed and the error says the rest must stay where
    /// they are.
    ///
    /// The batch is first applied straight through, without a savepoint per
    /// message (two statements fewer each). Only when a message fails is that
    /// attempt rolled back and the batch applied again with a savepoint per
    /// message, so the failing one is rolled back alone and quarantined.
    pub async fn ingest_kept_batch(
        &self,
        batch: &[Kept<'_>],
    ) -> (Vec<Outcome>, Option<IngestError>) {
        let started = std::time::Instant::now();
        let result = match batch.len() {
            0 | 1 => None,
            _ => self.apply_straight_through(batch).await,
        };
        if result.is_none() && batch.len() > 1 {
            self.metrics.ingest_batches_redone.inc();
        }
        let (outcomes, queued, failure) = match result {
            Some((outcomes, queued)) => (outcomes, queued, None),
            None => match self.apply_with_savepoints(batch).await {
                Ok(done) => done,
                Err(e) => return (Vec::new(), Some(e)),
            },
        };
        if queued {
            self.outbox_ready.notify_one();
        }
        let seconds = started.elapsed().as_secs_f64();
        for outcome in &outcomes {
            self.metrics
                .ingested
                .get_or_create(&crate::metrics::OutcomeLabel {
                    outcome: outcome.label().to_string(),
                })
                .inc();
            self.metrics.ingest_seconds.observe(seconds);
        }
        (outcomes, failure)
    }

    /// The whole batch in one transaction, no savepoints; `None` (and
    /// nothing written) when any message failed, another process claimed
    /// one of its messages meanwhile, or the commit failed.
    ///
    /// The books are kept for the batch as a whole: one query for the
    /// mailbox UIDs already applied, one for the receipts already known,
    /// and after the messages one insert each for their receipts and UIDs.
    async fn apply_straight_through(&self, batch: &[Kept<'_>]) -> Option<(Vec<Outcome>, bool)> {
        let keys: Vec<String> = batch
            .iter()
            .map(|k| dedupe_key(k.parsed.as_ref().ok(), k.raw_sha256))
            .collect();
        let mut tx = self.db.begin().await.ok()?;
        let result = self.apply_books_per_batch(&mut tx, batch, &keys).await;
        match result {
            Ok(done) => {
                tx.commit().await.ok()?;
                Some(done)
            }
            Err(_) => {
                // Told, with its reason, by the careful pass that follows.
                let _ = tx.rollback().await;
                None
            }
        }
    }

    async fn apply_books_per_batch(
        &self,
        tx: &mut AnyConnection,
        batch: &[Kept<'_>],
        keys: &[String],
    ) -> Result<(Vec<Outcome>, bool), ApplyError> {
        let mut already: HashSet<(&str, MailboxUid)> = HashSet::new();
        let mut folders: Vec<(&str, u32)> = batch
            .iter()
            .filter_map(|k| k.delivery.source.mailbox_at())
            .map(|(name, at)| (name, at.uidvalidity))
            .collect();
        folders.sort_unstable();
        folders.dedup();
        for (name, uidvalidity) in &folders {
            let uids: Vec<u32> = batch
                .iter()
                .filter_map(|k| k.delivery.source.mailbox_at())
                .filter(|(n, at)| n == name && at.uidvalidity == *uidvalidity)
                .map(|(_, at)| at.uid)
                .collect();
            for uid in inbound::applied_uids(&mut *tx, name, *uidvalidity, &uids).await? {
                already.insert((
                    name,
                    MailboxUid {
                        uidvalidity: *uidvalidity,
                        uid,
                    },
                ));
            }
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut known: HashSet<String> = inbound::known_receipts(&mut *tx, &key_refs)
            .await?
            .into_iter()
            .collect();

        let senders: Vec<&EmailAddress> = batch
            .iter()
            .filter_map(|k| k.parsed.as_ref().ok()?.from.as_ref())
            .map(|f| &f.address)
            .collect();
        let mut lookups = SenderLookups::fetch(&mut *tx, &senders).await?;
        let numbers = TicketNumbers::default();

        let mut outcomes = Vec::with_capacity(batch.len());
        let mut queued = false;
        let mut receipts: Vec<(usize, &'static str, Option<i64>)> = Vec::new();
        let mut applied_at: Vec<(&str, MailboxUid)> = Vec::new();
        for (i, (kept, key)) in batch.iter().zip(keys).enumerate() {
            let at = kept.delivery.source.mailbox_at();
            if at.is_some_and(|at| already.contains(&at)) {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            applied_at.extend(at);
            // Known before, or earlier in this batch: a duplicate.
            if !known.insert(key.clone()) {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            let now = self.clock.now_millis();
            let shared = BatchShared {
                senders: &lookups,
                numbers: &numbers,
            };
            let applied = self.act(tx, kept, key, now, Some(shared)).await?;
            if let Some(from) = kept.parsed.as_ref().ok().and_then(|m| m.from.as_ref()) {
                lookups.applied_from(&from.address);
            }
            queued |= applied.queued;
            receipts.push((i, applied.outcome.receipt_label(), applied.ticket_id));
            outcomes.push(applied.outcome);
        }

        numbers.write_back(&mut *tx).await?;
        let now = self.clock.now_millis();
        let new_receipts: Vec<inbound::NewReceipt<'_>> = receipts
            .iter()
            .map(|(i, outcome, ticket_id)| inbound::NewReceipt {
                dedupe_key: &keys[*i],
                raw_sha256: batch[*i].raw_sha256,
                outcome,
                ticket_id: *ticket_id,
            })
            .collect();
        if inbound::insert_receipts(&mut *tx, &new_receipts, now).await? != new_receipts.len() {
            return Err(ApplyError::Invalid(
                "another process applied a message of this batch meanwhile",
            ));
        }
        for (name, uidvalidity) in &folders {
            let uids: Vec<u32> = applied_at
                .iter()
                .filter(|(n, at)| n == name && at.uidvalidity == *uidvalidity)
                .map(|(_, at)| at.uid)
                .collect();
            inbound::record_uids(&mut *tx, name, *uidvalidity, &uids, now).await?;
        }
        Ok((outcomes, queued))
    }

    /// The batch in one transaction with a savepoint per message: returns
    /// the outcomes applied, whether mail was queued, and the temporary
    /// failure that stopped the batch, if any (what came before it is
    /// committed).
    async fn apply_with_savepoints(
        &self,
        batch: &[Kept<'_>],
    ) -> Result<(Vec<Outcome>, bool, Option<IngestError>), IngestError> {
        let temporary = |e: DbError| IngestError::Temporary(e.to_string());
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut tx = self.db.begin().await.map_err(temporary)?;
        let mut queued = false;
        let mut failure = None;
        for kept in batch {
            let now = self.clock.now_millis();
            match self.apply_in_savepoint(&mut tx, kept, now).await {
                Ok(applied) => {
                    queued |= applied.queued;
                    outcomes.push(applied.outcome);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        tx.commit().await.map_err(|e| temporary(e.into()))?;
        Ok((outcomes, queued, failure))
    }

    /// One message of a batch: applied under a savepoint; a failure of its
    /// own rolls the savepoint back and quarantines the message instead.
    async fn apply_in_savepoint(
        &self,
        tx: &mut Tx,
        kept: &Kept<'_>,
        now: i64,
    ) -> Result<Applied, IngestError> {
        let temporary = |e: DbError| IngestError::Temporary(e.to_string());
        let mut savepoint = sqlx::Connection::begin(&mut **tx)
            .await
            .map_err(|e| temporary(e.into()))?;
        match self.apply_in(&mut savepoint, kept, now).await {
            Ok(applied) => {
                savepoint.commit().await.map_err(|e| temporary(e.into()))?;
                Ok(applied)
            }
            Err(e) => {
                savepoint
                    .rollback()
                    .await
                    .map_err(|e| temporary(e.into()))?;
                match e {
                    ApplyError::Db(e) | ApplyError::Queue(QueueError::Db(e))
                        if e.is_transient() =>
                    {
                        Err(temporary(e))
                    }
                    ApplyError::Temporary(e) => Err(IngestError::Temporary(e)),
                    e => {
                        let reason = format!("processing failed: {e}");
                        self.quarantine_in(tx, &kept.delivery, kept.raw_sha256, &reason, now)
                            .await
                            .map_err(temporary)?;
                        Ok(Applied {
                            outcome: Outcome::Quarantined { reason },
                            ticket_id: None,
                            queued: false,
                        })
                    }
                }
            }
        }
    }

    /// Applies one message inside the caller's transaction: dedupe, plan,
    /// act, record the outcome (and the mailbox UID it came from).
    async fn apply_in(
        &self,
        tx: &mut AnyConnection,
        kept: &Kept<'_>,
        now: i64,
    ) -> Result<Applied, ApplyError> {
        let duplicate = Applied {
            outcome: Outcome::Duplicate,
            ticket_id: None,
            queued: false,
        };
        let mailbox_at = kept.delivery.source.mailbox_at();
        if let Some((name, at)) = mailbox_at {
            if inbound::uid_applied(&mut *tx, name, at).await? {
                return Ok(duplicate);
            }
        }
        let key = dedupe_key(kept.parsed.as_ref().ok(), kept.raw_sha256);
        if !inbound::claim_receipt(&mut *tx, &key, kept.raw_sha256, "pending", now).await? {
            if let Some((name, at)) = mailbox_at {
                inbound::record_uid(&mut *tx, name, at, now).await?;
            }
            return Ok(duplicate);
        }
        let applied = self.act(tx, kept, &key, now, None).await?;
        inbound::set_receipt_outcome(
            &mut *tx,
            &key,
            applied.outcome.receipt_label(),
            applied.ticket_id,
        )
        .await?;
        if let Some((name, at)) = mailbox_at {
            inbound::record_uid(&mut *tx, name, at, now).await?;
        }
        Ok(applied)
    }

    /// Plans a message that is not a duplicate and carries the plan out;
    /// the caller keeps the books (receipt, mailbox UID).
    async fn act(
        &self,
        tx: &mut AnyConnection,
        kept: &Kept<'_>,
        key: &str,
        now: i64,
        batch: Option<BatchShared<'_>>,
    ) -> Result<Applied, ApplyError> {
        let d = &kept.delivery;
        let raw_sha256 = kept.raw_sha256;
        let parsed = kept.parsed;
        let source_label = d.source.label();
        let plan = self
            .plan(
                tx,
                d.raw,
                parsed.as_ref().ok(),
                key,
                &d.source,
                batch.map(|b| b.senders),
            )
            .await?;
        let ctx = ApplyContext {
            delivery: d,
            plan: &plan,
            raw_sha256,
            now,
            numbers: batch.map(|b| b.numbers),
        };
        let applied = match (&plan.action, parsed.as_ref()) {
            (ActionPlan::NewTicket { .. }, Ok(mail)) => {
                self.open_ticket(tx, &ctx, mail, None).await?
            }
            (ActionPlan::StaffOpensTicket { requester }, Ok(mail)) => {
                let requester = EmailAddress::parse(requester)
                    .map_err(|_| ApplyError::Invalid("planned requester does not parse"))?;
                self.open_ticket(tx, &ctx, mail, Some(requester)).await?
            }
            (ActionPlan::Reply { reopen, .. }, Ok(mail)) => {
                self.client_reply(tx, &ctx, mail, *reopen).await?
            }
            (ActionPlan::InternalNote { .. }, Ok(mail)) => {
                self.stranger_note(tx, &ctx, mail).await?
            }
            (ActionPlan::StaffReply { .. }, Ok(mail)) => self.staff_reply(tx, &ctx, mail).await?,
            (ActionPlan::RejectCommands { errors }, Ok(mail)) => {
                self.reject_commands(tx, &ctx, mail, errors).await?
            }
            (ActionPlan::RecordAutomated { .. }, Ok(mail)) => {
                self.record_automated(tx, &ctx, mail).await?
            }
            (ActionPlan::RecordBounce { suppress, .. }, Ok(mail)) => {
                self.record_bounce(tx, &ctx, mail, suppress).await?
            }
            (ActionPlan::Reject, Ok(mail)) => self.reject(tx, &ctx, mail).await?,
            (
                ActionPlan::Unsubscribe {
                    list,
                    contact_id,
                    client_id,
                },
                Ok(_),
            ) => {
                self.unsubscribe_by_mail(tx, &ctx, *list, *contact_id, *client_id)
                    .await?
            }
            (ActionPlan::Ignore { reason }, _) => Applied {
                outcome: Outcome::Ignored {
                    reason: reason.clone(),
                },
                ticket_id: None,
                queued: false,
            },
            (ActionPlan::Quarantine { reason }, _) => {
                inbound::insert_quarantine(
                    tx,
                    &NewQuarantine {
                        raw_sha256,
                        source: &source_label,
                        reason,
                        subject: parsed.as_ref().ok().map(|m| m.subject.as_str()),
                        now,
                    },
                )
                .await?;
                Applied {
                    outcome: Outcome::Quarantined {
                        reason: reason.clone(),
                    },
                    ticket_id: None,
                    queued: false,
                }
            }
            (ActionPlan::Duplicate, _) => Applied {
                outcome: Outcome::Duplicate,
                ticket_id: None,
                queued: false,
            },
            // `plan` quarantines every message that did not parse.
            (_, Err(_)) => {
                return Err(ApplyError::Invalid(
                    "an action was planned for an unparseable message",
                ));
            }
        };
        if let Source::Portal { audit: Some(event) } = d.source {
            // The page's post and what it did commit together.
            let event = event
                .clone()
                .detail(serde_json::json!({ "outcome": applied.outcome.label() }));
            crate::db::audit::record(tx, &event).await?;
        }
        Ok(applied)
    }

    /// A bounce threads by the Message-ID of the mail that bounced.
    async fn thread_bounce(
        &self,
        conn: &mut AnyConnection,
        mail: &InboundMail,
        bounce: Option<&BounceReport>,
    ) -> Result<super::threading::Threading, DbError> {
        let mut ids: Vec<String> = mail.references.clone();
        ids.extend(mail.in_reply_to.iter().cloned());
        if let Some(id) = bounce.and_then(|b| b.original_message_id.clone()) {
            ids.push(id);
        }
        let found = crate::db::conversation::ticket_by_message_ids(conn, &ids).await?;
        Ok(super::threading::Threading {
            found: found.map(|(ticket, id)| super::threading::ThreadMatch {
                rule: if super::message_id::verify(&self.config.link_keys, &id) {
                    ThreadRule::SignedMessageId
                } else {
                    ThreadRule::StoredMessageId
                },
                ticket,
                sender_on_ticket: false,
            }),
            declined: None,
        })
    }

    /// Addresses a bounce says are permanently undeliverable — believed only
    /// when the bounce is about a mail of ours (a matched ticket or a signed
    /// Message-ID), so nobody can silence an address with a forged bounce.
    fn hard_failures(&self, bounce: Option<&BounceReport>, matched: bool) -> Vec<String> {
        let Some(b) = bounce else { return Vec::new() };
        let ours = matched
            || b.original_message_id
                .as_deref()
                .is_some_and(|id| super::message_id::verify(&self.config.link_keys, id));
        if !ours {
            return Vec::new();
        }
        let mut out: Vec<String> = b
            .recipients
            .iter()
            .filter(|r| r.permanent && !self.config.is_own_address(&r.address))
            .map(|r| r.address.to_string())
            .collect();
        out.dedup();
        out
    }

    /// Stores an inbound mail as a message of `ticket_id`, with its
    /// attachments; returns the message row id.
    async fn store_inbound_message(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        ticket_id: i64,
        kind: &str,
        visibility: Visibility,
    ) -> Result<i64, ApplyError> {
        let cfg = &self.config;
        let d = ctx.delivery;
        let from = mail.from.as_ref();
        let html = mail.html.as_deref().map(sanitize_html);
        let body_text = match d.oversized_bytes {
            Some(size) => format!(
                "(This message was {} and over the limit of {}; it was not downloaded.)\n\n{}",
                human_size(size),
                human_size(cfg.limits.max_message_bytes),
                mail.text
            ),
            // A technician's command lines are instructions, not conversation:
            // kept in the raw mail, not in the text the client may be shown.
            None if !ctx.plan.staff_commands.is_empty() => parse_staff_reply(&mail.text)
                .map(|r| r.body)
                .unwrap_or_else(|_| mail.text.clone()),
            None => mail.text.clone(),
        };
        // Without its commands, a technician's text may be nothing but a
        // forwarded mail (`#fwd`): then that mail is the text.
        let trimmed = match ctx.plan.staff_body.trim() {
            "" if !ctx.plan.staff_commands.is_empty() => body_text.trim(),
            _ if !ctx.plan.staff_commands.is_empty() => ctx.plan.staff_body.trim(),
            _ => ctx.plan.trimmed_text.as_str(),
        };
        let join = |v: &[EmailAddress]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
        let message_row = tickets::insert_message(
            tx,
            &NewMessage {
                ticket_id,
                direction: Direction::In,
                kind,
                message_id: mail.message_id.as_deref(),
                from_email: from.map(|f| f.address.as_str()),
                from_name: from.and_then(|f| f.name.as_deref()),
                to_list: &join(&mail.to),
                cc_list: &join(&mail.cc),
                subject: &mail.subject,
                visibility,
                body_text: &body_text,
                body_trimmed: Some(trimmed),
                body_html: html.as_deref(),
                raw_sha256: Some(ctx.raw_sha256),
                size_bytes: d.oversized_bytes.unwrap_or(d.raw.len() as u64) as i64,
                truncated: d.oversized_bytes.is_some(),
                now: ctx.now,
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
        Ok(message_row)
    }

    /// The ticket as templates see it.
    async fn ticket_data(
        &self,
        tx: &mut AnyConnection,
        ticket: &TicketRef,
    ) -> Result<serde_json::Value, ApplyError> {
        Ok(crate::mail::ticket_data::ticket_data(tx, ticket).await?)
    }

    /// Tells the staff about something on `ticket`: the assignee if there is
    /// one, else everyone on the staff list (never the person who caused it).
    async fn notify_staff(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        ticket: &TicketRef,
        headline: &str,
        notice: Option<String>,
        mail: Option<&InboundMail>,
    ) -> Result<bool, ApplyError> {
        let author = mail.and_then(|m| m.from.as_ref());
        let to: Vec<EmailAddress> = match ticket
            .assignee_email
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok())
        {
            Some(assignee) => vec![assignee],
            None => self.config.staff.iter().map(|s| s.email.clone()).collect(),
        }
        .into_iter()
        .filter(|a| author.is_none_or(|f| !f.address.same_mailbox(a)))
        .collect();
        if to.is_empty() {
            return Ok(false);
        }
        let data = serde_json::json!({
            "headline": headline,
            "notice": notice,
            "author": author.map(|f| match &f.name {
                Some(n) => format!("{n} <{}>", f.address),
                None => f.address.to_string(),
            }).unwrap_or_else(|| "Postdesk".into()),
            "text": if mail.is_some() { ctx.plan.trimmed_text.as_str() } else { "" },
            "ticket": self.ticket_data(tx, ticket).await?,
        });
        let references = mail.map(InboundMail::thread_ids).unwrap_or_default();
        let queued = self
            .mailer
            .queue(
                tx,
                MailRequest {
                    kind: "staff-notification",
                    template: "staff_notification",
                    data,
                    to,
                    cc: Vec::new(),
                    ticket: Some(ticket),
                    visibility: Visibility::Internal,
                    origin: Origin::Reaction,
                    from_name: None,
                    in_reply_to: mail.and_then(|m| m.message_id.as_deref()),
                    extra_references: &references,
                    attachments: &[],
                    thread_known: None,
                },
                ctx.now,
            )
            .await?;
        Ok(queued.is_some())
    }

    /// Quarantines a message inside the caller's transaction, recording its
    /// UID so it is not fetched again.
    async fn quarantine_in(
        &self,
        tx: &mut AnyConnection,
        d: &Delivery<'_>,
        raw_sha256: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), DbError> {
        inbound::insert_quarantine(
            &mut *tx,
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
            inbound::record_uid(&mut *tx, &mailbox.name, at, now).await?;
        }
        Ok(())
    }
}

/// The name of client `id`, from the batch's lookups when they know it.
async fn client_name(
    conn: &mut AnyConnection,
    lookups: Option<&SenderLookups>,
    id: i64,
) -> Result<Option<String>, DbError> {
    match lookups.map_or(Known::Ask, |l| l.client_name(id)) {
        Known::Answer(name) => Ok(name),
        Known::Ask => contacts::client_name(conn, id).await,
    }
}

/// What every apply step gets: the delivery, the decision, the stored raw
/// bytes, and one `now` for the whole transaction.
struct ApplyContext<'a> {
    delivery: &'a Delivery<'a>,
    plan: &'a Plan,
    raw_sha256: &'a str,
    now: i64,
    /// The batch's ticket numbers, when it is applied straight through.
    numbers: Option<&'a TicketNumbers>,
}

/// What a batch applied straight through shares between its messages.
#[derive(Clone, Copy)]
struct BatchShared<'a> {
    senders: &'a SenderLookups,
    numbers: &'a TicketNumbers,
}

/// What an apply step did.
struct Applied {
    outcome: Outcome,
    ticket_id: Option<i64>,
    /// Mail was queued: wake the sender after the commit.
    queued: bool,
}

/// The original sender of a mail a technician forwarded (`#fwd`): an attached
/// message, else the `From:` line of an inline forward.
fn forwarded_sender(mail: &InboundMail) -> Option<EmailAddress> {
    for a in &mail.attachments {
        if a.content_type == "message/rfc822" {
            if let Some(from) = parse::parse(&a.bytes).ok().and_then(|m| m.from) {
                return Some(from.address);
            }
        }
    }
    static FROM_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?im)^\s*(?:from|von|de|van|da)\s*:\s*(.*)$").expect("valid regex")
    });
    static ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("valid regex")
    });
    FROM_LINE
        .captures_iter(&mail.text)
        .filter_map(|c| ADDRESS.find(c.get(1)?.as_str()))
        .find_map(|m| EmailAddress::parse(m.as_str()).ok())
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Invalid(&'static str),
}

impl From<crate::billing::notify::NoticeError> for ApplyError {
    fn from(e: crate::billing::notify::NoticeError) -> Self {
        match e {
            crate::billing::notify::NoticeError::Db(e) => ApplyError::Db(e),
            crate::billing::notify::NoticeError::Queue(e) => ApplyError::Queue(e),
        }
    }
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
