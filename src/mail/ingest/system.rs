//! Mail no person wrote, on the ticket it threads to: auto-replies and
//! out-of-office answers are recorded and answered by nothing; a bounce of our
//! mail becomes a system note, a permanent failure suppresses the address,
//! and the staff are told (a client who gets no mail is theirs to fix).

use sqlx::AnyConnection;

use super::{Applied, ApplyContext, ApplyError, Ingestor, Outcome};
use crate::db::inbound;
use crate::db::tickets::Visibility;
use crate::mail::parse::InboundMail;

impl Ingestor {
    pub(super) async fn record_automated(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
    ) -> Result<Applied, ApplyError> {
        let ticket = ctx
            .plan
            .ticket
            .as_ref()
            .ok_or(ApplyError::Invalid("no ticket planned"))?;
        self.store_inbound_message(tx, ctx, mail, ticket.id, "auto-reply", Visibility::Internal)
            .await?;
        Ok(Applied {
            outcome: Outcome::Added {
                ticket: ticket.number.clone(),
                kind: "auto-reply".into(),
            },
            ticket_id: Some(ticket.id),
            queued: false,
        })
    }

    pub(super) async fn record_bounce(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        mail: &InboundMail,
        suppress: &[String],
    ) -> Result<Applied, ApplyError> {
        let mut newly_suppressed = Vec::new();
        for address in suppress {
            if inbound::suppress(tx, address, "hard bounce", ctx.now).await? {
                newly_suppressed.push(address.as_str());
            }
        }
        let Some(ticket) = ctx.plan.ticket.as_ref() else {
            return Ok(Applied {
                outcome: Outcome::Ignored {
                    reason: format!(
                        "bounce of a mail of ours not on a ticket; {} address(es) suppressed",
                        newly_suppressed.len()
                    ),
                },
                ticket_id: None,
                queued: false,
            });
        };
        self.store_inbound_message(tx, ctx, mail, ticket.id, "bounce", Visibility::System)
            .await?;
        let failures: Vec<String> = ctx
            .plan
            .bounce
            .iter()
            .flat_map(|b| b.recipients.iter())
            .map(|r| {
                format!(
                    "{}: {}{}",
                    r.address,
                    r.status.as_deref().unwrap_or("no status"),
                    r.diagnostic
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let notice = format!(
            "Mail about this ticket could not be delivered.\n{}\n{}",
            if failures.is_empty() {
                "The delivery report names no recipient.".to_string()
            } else {
                failures.join("\n")
            },
            if suppress.is_empty() {
                "The failure is temporary or unclear; nothing was suppressed.".to_string()
            } else {
                format!(
                    "Permanent failure: Postdesk sends nothing more to {} until the address is fixed.",
                    suppress.join(", ")
                )
            }
        );
        let queued = self
            .notify_staff(tx, ctx, ticket, "Mail bounced", Some(notice), None)
            .await?;
        Ok(Applied {
            outcome: Outcome::Added {
                ticket: ticket.number.clone(),
                kind: "bounce".into(),
            },
            ticket_id: Some(ticket.id),
            queued,
        })
    }
}
