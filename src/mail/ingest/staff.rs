//! A technician's mail on a ticket (SPEC §3): the commands at its top change
//! the ticket, the rest is the public reply mailed to the requester and the
//! participants (or an internal note with `#note`). Commands are checked in
//! `plan`; a mail with a wrong one is answered with what was wrong and
//! nothing of it is applied.

use sqlx::AnyConnection;

use super::{Applied, ApplyContext, ApplyError, Ingestor, Outcome};
use crate::audit::{Actor, AuditEvent, AuditKind, Outcome as AuditOutcome};
use crate::config::Config;
use crate::db::tickets::Visibility;
use crate::db::{audit, conversation};
use crate::domain::{EmailAddress, TicketStatus};
use crate::mail::outgoing::{MailRequest, Origin};
use crate::mail::parse::InboundMail;
use crate::mail::staff_commands::Command;

impl Ingestor {
    pub(super) async fn staff_reply(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
    ) -> Result<Applied, ApplyError> {
        let cfg = &self.config;
        let now = ctx.now;
        let ticket = ctx
            .plan
            .ticket
            .as_ref()
            .ok_or(ApplyError::Invalid("no ticket planned"))?;
        let from = mail.from.as_ref().ok_or(ApplyError::Invalid("no sender"))?;
        let staff = cfg.staff_member(&from.address);
        let mut note = false;
        let mut new_status = None;
        for c in &ctx.plan.staff_commands {
            match c {
                Command::Status(s) => new_status = Some(*s),
                Command::Close => new_status = Some(TicketStatus::Closed),
                Command::Priority(p) => {
                    conversation::set_priority(tx, ticket.id, *p, now).await?;
                    // Unanswered: the first response is now due by the new
                    // priority's target, counted from when it was opened.
                    if ticket.first_response_at.is_none() {
                        if let Some(opened) = conversation::opened_at(tx, ticket.id).await? {
                            let due =
                                cfg.sla
                                    .first_response_due(*p, opened, &cfg.company.business_hours);
                            conversation::set_first_response_due(tx, ticket.id, due).await?;
                        }
                    }
                }
                Command::Category(name) => {
                    conversation::set_category(tx, ticket.id, name, now).await?
                }
                Command::Assign(who) => {
                    let member = cfg
                        .find_staff(who)
                        .ok_or(ApplyError::Invalid("#assign to unknown staff passed plan"))?;
                    conversation::set_assignee(tx, ticket.id, &member.email, now).await?
                }
                Command::Time { minutes } => {
                    self.record_time_worked(tx, ticket.id, ticket.client_id, *minutes, now)
                        .await?
                }
                Command::Note => note = true,
                Command::Requester(_) | Command::Forward => {
                    return Err(ApplyError::Invalid("#requester in a reply passed plan"))
                }
            }
        }
        let body = ctx.plan.staff_body.trim();
        let visibility = if note || body.is_empty() {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        let kind = if visibility == Visibility::Public {
            "staff-reply"
        } else {
            "note"
        };
        self.store_inbound_message(tx, ctx, mail, ticket.id, kind, visibility)
            .await?;
        let status_changed = new_status.is_some_and(|s| s.as_str() != ticket.status);
        if let Some(s) = new_status {
            conversation::set_status(tx, ticket.id, s, now).await?;
        }
        let ticket = conversation::ticket_by_id(tx, ticket.id)
            .await?
            .ok_or(ApplyError::Invalid("the ticket vanished"))?;
        self.record_staff_commands(tx, ctx, mail, ticket.client_id, &ticket.number, None)
            .await?;

        let recipients: Vec<EmailAddress> = EmailAddress::parse(&ticket.requester_email)
            .into_iter()
            .collect();
        let participants = conversation::participants(tx, ticket.id).await?;
        let mut queued = false;
        let company = &cfg.branding.company_name;
        let author = staff
            .map(|s| s.name.clone())
            .or_else(|| from.name.clone())
            .unwrap_or_else(|| company.clone());
        if visibility == Visibility::Public {
            conversation::staff_responded(tx, ticket.id, now).await?;
            let data = serde_json::json!({
                "author": author,
                "text": body,
                "ticket": self.ticket_data(tx, &ticket).await?,
            });
            queued |= self
                .mailer
                .queue_to_client(
                    tx,
                    MailRequest {
                        kind: "public-reply",
                        template: "public_reply",
                        data,
                        to: recipients,
                        cc: participants,
                        ticket: Some(&ticket),
                        visibility: Visibility::Public,
                        origin: Origin::Person,
                        from_name: Some(format!("{author} ({company})")),
                        in_reply_to: None,
                        extra_references: &[],
                        attachments: &[],
                        thread_known: None,
                    },
                    None,
                    now,
                )
                .await?
                .is_some();
        } else if status_changed {
            // No reply to carry the news: the status change is its own mail.
            let data = serde_json::json!({
                "closed": ticket.is_closed(),
                "reopen_days": cfg.tickets.reopen_days,
                "ticket": self.ticket_data(tx, &ticket).await?,
            });
            queued |= self
                .mailer
                .queue_to_client(
                    tx,
                    MailRequest {
                        kind: "status-changed",
                        template: "status_changed",
                        data,
                        to: recipients,
                        cc: participants,
                        ticket: Some(&ticket),
                        visibility: Visibility::Public,
                        origin: Origin::Reaction,
                        from_name: None,
                        in_reply_to: None,
                        extra_references: &[],
                        attachments: &[],
                        thread_known: None,
                    },
                    None,
                    now,
                )
                .await?
                .is_some();
        }
        Ok(Applied {
            outcome: Outcome::Added {
                ticket: ticket.number.clone(),
                kind: kind.into(),
            },
            ticket_id: Some(ticket.id),
            queued,
        })
    }

    /// `#time`: the minutes on the ticket and against the client's hours.
    pub(super) async fn record_time_worked(
        &self,
        tx: &mut AnyConnection,
        ticket_id: i64,
        client_id: Option<i64>,
        minutes: u32,
        now: i64,
    ) -> Result<(), ApplyError> {
        conversation::add_time_worked(tx, ticket_id, minutes, now).await?;
        crate::billing::hours::record_time(
            &self.mailer,
            &self.config,
            tx,
            ticket_id,
            client_id,
            i64::from(minutes),
            now,
        )
        .await?;
        Ok(())
    }

    /// Each of the plan's commands in the audit log, committed with what it
    /// changed on ticket `number`. `requester` is the contact a `#requester`
    /// or `#fwd` opened the ticket for.
    pub(super) async fn record_staff_commands(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        client_id: Option<i64>,
        number: &str,
        requester: Option<i64>,
    ) -> Result<(), ApplyError> {
        let staff = mail
            .from
            .as_ref()
            .and_then(|from| self.config.staff_member(&from.address));
        let actor = Actor::Staff(staff.map_or_else(|| "unknown".into(), |s| s.name.clone()));
        for c in &ctx.plan.staff_commands {
            let event = AuditEvent::new(
                AuditKind::StaffCommand,
                format!("command.{}", c.keyword()),
                ctx.now,
            )
            .actor(actor.clone())
            .client(client_id)
            .resource("ticket", number)
            .detail(command_detail(&self.config, c, requester));
            audit::record(tx, &event).await?;
        }
        Ok(())
    }

    /// Answers a technician whose commands were wrong, with every error.
    pub(super) async fn reject_commands(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        errors: &[String],
    ) -> Result<Applied, ApplyError> {
        let from = mail.from.as_ref().ok_or(ApplyError::Invalid("no sender"))?;
        let ticket = ctx.plan.ticket.as_ref();
        // Refused commands too (their count, not their text: it may hold an
        // address).
        let staff = self.config.staff_member(&from.address);
        let mut event = AuditEvent::new(AuditKind::StaffCommand, "command.rejected", ctx.now)
            .actor(Actor::Staff(
                staff.map_or_else(|| "unknown".into(), |s| s.name.clone()),
            ))
            .outcome(AuditOutcome::Denied)
            .detail(serde_json::json!({ "errors": errors.len() }));
        if let Some(t) = ticket {
            event = event.client(t.client_id).resource("ticket", &t.number);
        }
        audit::record(tx, &event).await?;
        let data = serde_json::json!({
            "errors": errors,
            "ticket_number": ticket.map(|t| t.number.as_str()).unwrap_or("new"),
            "original_subject": mail.subject,
        });
        let references = mail.thread_ids();
        let queued = self
            .mailer
            .queue(
                tx,
                MailRequest {
                    kind: "command-rejected",
                    template: "command_rejected",
                    data,
                    to: vec![from.address.clone()],
                    cc: Vec::new(),
                    // Not recorded on the ticket: nothing of it was applied.
                    ticket: None,
                    visibility: Visibility::Internal,
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
            outcome: Outcome::CommandRejected {
                ticket: ticket.map(|t| t.number.clone()),
            },
            ticket_id: None,
            queued: queued.is_some(),
        })
    }
}

/// What a command set, for the audit log: words and numbers, never the
/// address of `#requester` or of an assignee (the staff member's name and
/// the requester's contact id are kept instead).
fn command_detail(cfg: &Config, command: &Command, requester: Option<i64>) -> serde_json::Value {
    use serde_json::json;
    match command {
        Command::Status(s) => json!({ "status": s.as_str() }),
        Command::Close => json!({ "status": TicketStatus::Closed.as_str() }),
        Command::Priority(p) => json!({ "priority": p.as_str() }),
        Command::Category(name) => json!({ "category": name.chars().take(60).collect::<String>() }),
        Command::Assign(who) => {
            json!({ "assignee": cfg.find_staff(who).map(|m| m.name.clone()) })
        }
        Command::Time { minutes } => json!({ "minutes": minutes }),
        Command::Requester(_) | Command::Forward => json!({ "contact": requester }),
        Command::Note => json!({}),
    }
}
