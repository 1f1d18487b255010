//! Mail from clients on an existing ticket: a reply from someone on the
//! ticket joins the public thread (reopening a recently closed ticket) and
//! the staff are told; mail from someone who is not on the ticket is kept as
//! an internal note — never published — and the staff are told.

use sqlx::AnyConnection;

use super::{Applied, ApplyContext, ApplyError, Ingestor, Outcome};
use crate::db::conversation::{self, TicketRef};
use crate::db::tickets::{self, Visibility};
use crate::domain::EmailAddress;
use crate::mail::parse::InboundMail;

impl Ingestor {
    fn planned_ticket<'a>(&self, ctx: &'a ApplyContext<'_>) -> Result<&'a TicketRef, ApplyError> {
        ctx.plan
            .ticket
            .as_ref()
            .ok_or(ApplyError::Invalid("no ticket planned"))
    }

    pub(super) async fn client_reply(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        reopen: bool,
    ) -> Result<Applied, ApplyError> {
        let ticket = self.planned_ticket(ctx)?;
        self.store_inbound_message(tx, ctx, mail, ticket.id, "reply", Visibility::Public)
            .await?;
        // People the client copies in join the conversation (reply-all keeps
        // everyone; a newly copied colleague is added).
        let requester = EmailAddress::parse(&ticket.requester_email).ok();
        for p in self.participants(mail) {
            if !requester.as_ref().is_some_and(|r| r.same_mailbox(&p)) {
                tickets::add_participant(tx, ticket.id, &p).await?;
            }
        }
        conversation::client_replied(tx, ticket.id, reopen, ctx.now).await?;
        let ticket = conversation::ticket_by_id(tx, ticket.id)
            .await?
            .ok_or(ApplyError::Invalid("the ticket vanished"))?;
        let headline = if reopen {
            "Client reply (ticket reopened)"
        } else {
            "Client reply"
        };
        let queued = self
            .notify_staff(tx, ctx, &ticket, headline, None, Some(mail))
            .await?;
        Ok(Applied {
            outcome: Outcome::Added {
                ticket: ticket.number.clone(),
                kind: if reopen { "reply-reopened" } else { "reply" }.into(),
            },
            ticket_id: Some(ticket.id),
            queued,
        })
    }

    pub(super) async fn stranger_note(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
    ) -> Result<Applied, ApplyError> {
        let ticket = self.planned_ticket(ctx)?;
        self.store_inbound_message(tx, ctx, mail, ticket.id, "note", Visibility::Internal)
            .await?;
        let notice = "The sender is not on this ticket (not the requester, a participant or a \
                      contact of the client). Their mail is kept as an internal note and was not \
                      shown to the client; add them as a participant if they belong here."
            .to_string();
        let queued = self
            .notify_staff(
                tx,
                ctx,
                ticket,
                "Mail from someone not on the ticket",
                Some(notice),
                Some(mail),
            )
            .await?;
        Ok(Applied {
            outcome: Outcome::Added {
                ticket: ticket.number.clone(),
                kind: "internal-note".into(),
            },
            ticket_id: Some(ticket.id),
            queued,
        })
    }
}
