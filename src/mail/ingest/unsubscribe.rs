//! A mail sent by the `mailto:` of `List-Unsubscribe` (SPEC §4): it opts
//! its contact out of that kind of optional mail, with an audit entry, in
//! the ingest transaction; no ticket, no answer. Recognising it and whose
//! token it holds is `portal::unsubscribe`.

use serde_json::json;
use sqlx::AnyConnection;

use super::{Applied, ApplyContext, ApplyError, Ingestor, Outcome};
use crate::audit::{Actor, AuditEvent, AuditKind};
use crate::db::{audit, preferences};
use crate::domain::OptionalMail;

impl Ingestor {
    pub(super) async fn unsubscribe_by_mail(
        &self,
        tx: &mut AnyConnection,
        ctx: &ApplyContext<'_>,
        kind: OptionalMail,
        contact_id: i64,
        client_id: Option<i64>,
    ) -> Result<Applied, ApplyError> {
        let changed = preferences::unsubscribe(tx, contact_id, kind).await?;
        let event = AuditEvent::new(AuditKind::FormPost, "preferences.unsubscribe", ctx.now)
            .actor(Actor::Contact(contact_id))
            .client(client_id)
            .resource("preferences", kind.as_str())
            .detail(json!({ "via": "mail", "changed": changed }));
        audit::record(tx, &event).await?;
        if changed {
            tracing::info!(
                contact = contact_id,
                list = kind.as_str(),
                "unsubscribed by mail"
            );
        }
        Ok(Applied {
            outcome: Outcome::Unsubscribed {
                list: kind.as_str().to_string(),
            },
            ticket_id: None,
            queued: false,
        })
    }
}
