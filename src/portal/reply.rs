//! A reply (text and files) posted on the ticket page becomes the mail the
//! contact would have sent — From the contact, To the ticket's reply
//! address, In-Reply-To the ticket's last message, the files as MIME parts —
//! and is ingested like one ([`Source::Portal`]): the same threading, the
//! same reopen rule, the same staff notification, the raw message kept. The
//! page can do nothing an email reply could not.

use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::audit::AuditEvent;
use crate::db::contacts::Contact;
use crate::db::{conversation, DbError};
use crate::mail::ingest::{Delivery, IngestError, Ingestor, Outcome, Source};

/// A file the contact uploaded.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// As the browser named it; ingest sanitizes it like any attachment's.
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the contact posted.
#[derive(Debug, Clone)]
pub struct PortalReply {
    pub text: String,
    pub files: Vec<UploadedFile>,
    /// Makes the Message-ID: the same form posted twice (a double click, a
    /// reload) is the same mail, which ingest applies once.
    pub idempotency_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("Write a message or attach a file.")]
    Empty,
    #[error(
        "The reply with its files is larger than {limit_mb} MB; attach fewer or smaller files."
    )]
    TooLarge { limit_mb: u64 },
    #[error("no ticket has that number")]
    UnknownTicket,
    #[error("no mailbox is configured to reply through")]
    NoMailbox,
    #[error("the reply cannot be written as a mail: {0}")]
    Compose(String),
    #[error("the reply was not applied: {0}")]
    NotApplied(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Writes `reply` as `contact`'s mail on ticket `number` and ingests it,
/// with `audit` (the post) in the same transaction unless the mail was
/// already applied (a repeated post: `Outcome::Duplicate`). The caller has
/// checked that the contact may see the ticket.
pub async fn post_reply(
    ingestor: &Ingestor,
    contact: &Contact,
    number: &str,
    reply: &PortalReply,
    audit: &AuditEvent,
) -> Result<Outcome, ReplyError> {
    if reply.text.trim().is_empty() && reply.files.is_empty() {
        return Err(ReplyError::Empty);
    }
    let limit = ingestor.config.limits.max_message_bytes;
    let (ticket, thread) = {
        let mut conn = ingestor.db.conn().await?;
        let ticket = conversation::ticket_by_number(&mut conn, number)
            .await?
            .ok_or(ReplyError::UnknownTicket)?;
        let thread = conversation::thread_message_ids(&mut conn, ticket.id).await?;
        (ticket, thread)
    };
    let to = ingestor
        .mailer
        .reply_address(&ticket)
        .ok_or(ReplyError::NoMailbox)?;
    let compose = |e: &dyn std::fmt::Display| ReplyError::Compose(e.to_string());
    let from = Mailbox::new(
        contact.name.clone(),
        contact.email.parse().map_err(|e| compose(&e))?,
    );
    let message_id = {
        let mut h = Sha256::new();
        h.update(b"postdesk-portal-reply\n");
        h.update(contact.id.to_be_bytes());
        h.update(ticket.id.to_be_bytes());
        h.update(reply.idempotency_key.as_bytes());
        format!(
            "<portal.{}@{}>",
            &hex::encode(h.finalize())[..32],
            to.domain()
        )
    };
    let sent_at = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(ingestor.clock.now_millis()).unwrap_or(0));
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(Mailbox::new(
            None,
            to.as_str().parse().map_err(|e| compose(&e))?,
        ))
        .subject(format!("Re: [{}] {}", ticket.number, ticket.subject))
        .message_id(Some(message_id))
        .date(sent_at);
    if let Some(last) = thread.last() {
        builder = builder.in_reply_to(format!("<{last}>")).references(
            thread
                .iter()
                .map(|id| format!("<{id}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let text = SinglePart::plain(reply.text.replace("\r\n", "\n"));
    let message = if reply.files.is_empty() {
        builder.singlepart(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(text);
        for file in &reply.files {
            let content_type = ContentType::parse(&file.content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
            parts = parts.singlepart(
                Attachment::new(file.filename.clone()).body(file.bytes.clone(), content_type),
            );
        }
        builder.multipart(parts)
    }
    .map_err(|e| compose(&e))?;
    let raw = message.formatted();
    if raw.len() as u64 > limit {
        return Err(ReplyError::TooLarge {
            limit_mb: limit / (1024 * 1024),
        });
    }
    let outcome = ingestor
        .ingest(Delivery {
            source: Source::Portal { audit: Some(audit) },
            raw: &raw,
            oversized_bytes: None,
        })
        .await?;
    match outcome {
        Outcome::Added { .. } | Outcome::TicketCreated { .. } | Outcome::Duplicate => Ok(outcome),
        other => Err(ReplyError::NotApplied(other.label().to_string())),
    }
}
