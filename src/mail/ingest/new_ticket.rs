//! Opening a ticket: the requester's contact, the ticket, its first message,
//! participants, the acknowledgement and the staff notification — and the
//! polite answer to an unknown sender under the `reject` policy.

use sqlx::AnyConnection;

use super::ticket_numbers::next_from_database;
use super::{
    describe_duration, human_size, new_reply_token, ActionPlan, Applied, ApplyContext, ApplyError,
    Ingestor, Outcome, SenderPlan,
};
use crate::db::contacts::{self, Contact, ContactOrigin};
use crate::db::conversation::{self, TicketRef};
use crate::db::tickets::{self, NewTicket, Visibility};
use crate::domain::{ContactTypes, EmailAddress, TicketNumber, TicketStatus};
use crate::mail::outgoing::{MailRequest, Origin};
use crate::mail::parse::{InboundMail, Sender};
use crate::mail::staff_commands::Command;
use crate::mail::subject::strip_reply_prefixes;

impl Ingestor {
    /// Opens a ticket for `mail`. `for_client` is the requester a technician
    /// named (`#requester`, `#fwd`); otherwise the sender is the requester.
    pub(super) async fn open_ticket(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        for_client: Option<EmailAddress>,
    ) -> Result<Applied, ApplyError> {
        let plan = ctx.plan;
        let now = ctx.now;
        let from = mail.from.as_ref().ok_or(ApplyError::Invalid("no sender"))?;
        let (requester, requester_name) = match &for_client {
            Some(r) => (r.clone(), None),
            None => (from.address.clone(), from.name.clone()),
        };
        let (client_id, contact_id) = match (&for_client, &plan.sender) {
            (Some(r), _) => self.contact_for(tx, r, None, now).await?,
            (
                None,
                SenderPlan::Contact {
                    contact_id,
                    client_id,
                    ..
                },
            ) => (*client_id, Some(*contact_id)),
            // The plan looked the sender up in this same transaction.
            (None, SenderPlan::NewClientContact { client_id, .. }) => {
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
            (None, SenderPlan::Unknown { .. }) => {
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
            (None, SenderPlan::Staff | SenderPlan::Missing) => (None, None),
        };

        let cfg = &self.config;
        let sequence = match ctx.numbers {
            Some(numbers) => numbers.next(tx, cfg.tickets.first_number).await?,
            None => next_from_database(tx, cfg.tickets.first_number).await?,
        };
        let number = TicketNumber::new(&cfg.tickets.prefix, sequence);
        let subject = match strip_reply_prefixes(&mail.subject).trim() {
            "" => "(no subject)".to_string(),
            s => s.to_string(),
        };
        // A technician's commands (only staff mail has any) set up the
        // ticket they open as they would change one they answer: a phoned-in
        // problem fixed on the call is `#requester …`, `#time 20m`, `#close`.
        let mut priority = plan.priority;
        let mut category = plan.category.clone();
        let mut assignee = None;
        let mut opening_status = None;
        let mut minutes_worked = 0u32;
        let mut note = false;
        for c in &plan.staff_commands {
            match c {
                Command::Priority(p) => priority = *p,
                Command::Category(name) => category = Some(name.clone()),
                Command::Assign(who) => assignee = cfg.find_staff(who).map(|s| s.email.clone()),
                Command::Status(s) => opening_status = Some(*s),
                Command::Close => opening_status = Some(TicketStatus::Closed),
                Command::Time { minutes } => minutes_worked += *minutes,
                Command::Note => note = true,
                Command::Requester(_) | Command::Forward => {}
            }
        }
        let reply_token = new_reply_token();
        let mailbox_name = self
            .mailbox_of(&ctx.delivery.source)
            .map(|m| m.name.clone());
        let ticket_id = tickets::insert_ticket(
            tx,
            &NewTicket {
                number: &number,
                subject: &subject,
                priority,
                category: category.as_deref(),
                client_id,
                requester_contact_id: contact_id,
                requester_email: &requester,
                mailbox: mailbox_name.as_deref(),
                reply_token: &reply_token,
                first_response_due_at: cfg.sla.first_response_due(
                    priority,
                    now,
                    &cfg.company.business_hours,
                ),
                now,
            },
        )
        .await?;
        if let Some(a) = &assignee {
            conversation::set_assignee(tx, ticket_id, a, now).await?;
        }
        if let Some(status) = opening_status {
            conversation::set_status(tx, ticket_id, status, now).await?;
        }
        if minutes_worked > 0 {
            self.record_time_worked(tx, ticket_id, client_id, minutes_worked, now)
                .await?;
        }
        // A late reply to a closed ticket: the new one continues it.
        let continues = match &plan.action {
            ActionPlan::NewTicket { continues } => continues.as_deref(),
            _ => None,
        };
        if let Some(earlier) = continues {
            if let Some(earlier) = conversation::ticket_by_number(tx, earlier).await? {
                conversation::link_to(tx, ticket_id, earlier.id).await?;
            }
        }
        // A technician's own CCs are not the client's; the client's are.
        let participants = if for_client.is_some() {
            Vec::new()
        } else {
            self.participants(mail)
        };
        for p in &participants {
            tickets::add_participant(tx, ticket_id, p).await?;
        }
        let kind = if for_client.is_some() {
            "opened-by-staff"
        } else {
            "request"
        };
        // `#note`: what the technician wrote stays with the staff.
        let visibility = if note {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        self.store_inbound_message(tx, ctx, mail, ticket_id, kind, visibility)
            .await?;
        if !plan.staff_commands.is_empty() {
            self.record_staff_commands(tx, ctx, mail, client_id, number.as_str(), contact_id)
                .await?;
        }
        let status = opening_status.unwrap_or(TicketStatus::Open);
        // The row just written, as the rest of this transaction sees it.
        let ticket = TicketRef {
            id: ticket_id,
            number: number.to_string(),
            subject,
            status: status.as_str().to_string(),
            priority: priority.as_str().to_string(),
            category,
            client_id,
            requester_email: requester.to_string(),
            assignee_email: assignee.map(|a| a.to_string()),
            mailbox: mailbox_name,
            reply_token,
            closed_at: (status == TicketStatus::Closed).then_some(now),
            first_response_at: None,
        };
        // The client's name, when the plan already knows it.
        let client_name = match (&for_client, &plan.sender) {
            (None, SenderPlan::Contact { client, .. }) => Some(client.clone()),
            (None, SenderPlan::NewClientContact { client, .. }) => Some(Some(client.clone())),
            (None, SenderPlan::Unknown { .. }) => Some(None),
            _ => None,
        };

        let mut queued = self
            .queue_acknowledgement(
                tx,
                ctx,
                &ticket,
                client_name,
                &AckRecipients {
                    requester: Sender {
                        address: requester.clone(),
                        name: requester_name,
                    },
                    cc: &participants,
                    requester_of_a_client: client_id.is_some(),
                    requester_contact: match for_client {
                        None => plan.sender_contact.as_ref(),
                        Some(_) => None,
                    },
                },
                mail,
            )
            .await?;
        if for_client.is_none() {
            let (headline, notice) = match continues {
                Some(earlier) => (
                    "New ticket (continues a closed one)",
                    Some(format!(
                        "This reply came after {earlier} was closed for more than {} days, so it opened a new ticket linked to it.",
                        cfg.tickets.reopen_days
                    )),
                ),
                None => ("New ticket", None),
            };
            queued |= self
                .notify_staff(tx, ctx, &ticket, headline, notice, Some(mail))
                .await?;
        }
        Ok(Applied {
            outcome: Outcome::TicketCreated {
                ticket: number.to_string(),
            },
            ticket_id: Some(ticket_id),
            queued,
        })
    }

    /// The contact (and client) of `address`, created when unknown: as a
    /// Standard contact of the client whose domain it is, else without one.
    async fn contact_for(
        &self,
        tx: &mut AnyConnection,
        address: &EmailAddress,
        name: Option<&str>,
        now: i64,
    ) -> Result<(Option<i64>, Option<i64>), ApplyError> {
        if let Some(c) = contacts::find_contact_by_email(tx, address).await? {
            return Ok((c.client_id, Some(c.id)));
        }
        let client_id = contacts::find_client_by_domain(tx, address.domain()).await?;
        let origin = if client_id.is_some() {
            ContactOrigin::ClientDomain
        } else {
            ContactOrigin::UnknownSender
        };
        let id = contacts::insert_contact(
            tx,
            client_id,
            address,
            name,
            ContactTypes::default(),
            origin,
            now,
        )
        .await?;
        Ok((client_id, Some(id)))
    }

    /// Queues the acknowledgement. `client_name` is the client's name when
    /// the caller knows it (`Some(None)`: no client), else it is read.
    async fn queue_acknowledgement(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        ticket: &TicketRef,
        client_name: Option<Option<String>>,
        recipients: &AckRecipients<'_>,
        mail: &InboundMail,
    ) -> Result<bool, ApplyError> {
        let requester = &recipients.requester;
        let participants = recipients.cc;
        let cfg = &self.config;
        let ticket_data = match client_name {
            Some(client) => crate::mail::ticket_data::ticket_data_of(ticket, client),
            None => self.ticket_data(tx, ticket).await?,
        };
        let priority = crate::domain::Priority::parse(&ticket.priority)
            .unwrap_or(crate::domain::Priority::Medium);
        let data = serde_json::json!({
            "recipient_name": requester.name.clone().unwrap_or_else(|| requester.address.to_string()),
            // Opened already closed (a technician's `#close`): no response
            // to expect, and how to open it again instead.
            "closed": ticket.is_closed(),
            "reopen_days": cfg.tickets.reopen_days,
            "ticket": ticket_data,
            "expected_response": match cfg.sla.first_response(priority) {
                Some(d) => format!("{} (working hours)", describe_duration(d)),
                None => "by the end of the working day".to_string(),
            },
            "truncated": ctx.delivery.oversized_bytes.map(human_size),
        });
        let references = mail.thread_ids();
        // The ticket is new: its thread is the request alone.
        let thread: Vec<String> = mail.message_id.iter().cloned().collect();
        let request = MailRequest {
            thread_known: Some(&thread),
            kind: "acknowledgement",
            template: "acknowledgement",
            data,
            to: vec![requester.address.clone()],
            cc: participants.to_vec(),
            ticket: Some(ticket),
            visibility: Visibility::Public,
            origin: Origin::Reaction,
            from_name: None,
            in_reply_to: mail.message_id.as_deref(),
            extra_references: &references,
            attachments: &[],
        };
        // A requester of no client, alone on the mail, gets no links: the
        // mailer need not look them up again (one query less per ticket
        // from an unknown sender).
        let queued = if recipients.requester_of_a_client || !participants.is_empty() {
            let known = recipients.requester_contact;
            self.mailer
                .queue_to_client(tx, request, known, ctx.now)
                .await?
        } else {
            self.mailer.queue(tx, request, ctx.now).await?
        };
        Ok(queued.is_some())
    }

    /// `tickets.unknown_senders = reject`: one polite answer, no ticket.
    pub(super) async fn reject(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
    ) -> Result<Applied, ApplyError> {
        let from = mail.from.as_ref().ok_or(ApplyError::Invalid("no sender"))?;
        let data = serde_json::json!({
            "original_subject": if mail.subject.is_empty() { "your message" } else { mail.subject.as_str() },
        });
        let references = mail.thread_ids();
        let queued = self
            .mailer
            .queue(
                tx,
                MailRequest {
                    kind: "unknown-sender-rejected",
                    template: "unknown_sender_rejected",
                    data,
                    to: vec![from.address.clone()],
                    cc: Vec::new(),
                    ticket: None,
                    visibility: Visibility::Public,
                    origin: Origin::Reaction,
                    from_name: None,
                    in_reply_to: mail.message_id.as_deref(),
                    extra_references: &references,
                    attachments: &[],
                    thread_known: None,
                },
                ctx.now,
            )
            .await?;
        Ok(Applied {
            outcome: Outcome::Rejected,
            ticket_id: None,
            queued: queued.is_some(),
        })
    }
}

/// Who an acknowledgement goes to: the requester, with the request's CCs.
struct AckRecipients<'a> {
    requester: Sender,
    cc: &'a [EmailAddress],
    /// The requester is a contact of a client (the ticket's): only then can
    /// the mail to them alone carry their links.
    requester_of_a_client: bool,
    /// The requester's contact, when the plan found it.
    requester_contact: Option<&'a Contact>,
}
