//! Which ticket an inbound mail belongs to (SPEC §2.5), first match wins:
//! the reply token in a recipient address, one of our signed Message-IDs in
//! `In-Reply-To`/`References`, any stored Message-ID of a ticket's messages,
//! the subject tag — the tag only from someone on the ticket, because anyone
//! can type one. Also whether the sender is on the ticket at all: a mail from
//! someone who is not becomes an internal note, never a public message.
//! Deciding what to do with the match is ingest's job, not this module's.

use serde::Serialize;
use sqlx::AnyConnection;

use super::parse::InboundMail;
use super::subject::find_ticket_tag;
use crate::config::Config;
use crate::db::conversation::{self, TicketRef};
use crate::db::{contacts, DbError};
use crate::domain::EmailAddress;

/// The rule of SPEC §2.5 that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadRule {
    ReplyToken,
    SignedMessageId,
    StoredMessageId,
    SubjectTag,
}

impl ThreadRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadRule::ReplyToken => "reply-token",
            ThreadRule::SignedMessageId => "signed-message-id",
            ThreadRule::StoredMessageId => "stored-message-id",
            ThreadRule::SubjectTag => "subject-tag",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ThreadMatch {
    pub ticket: TicketRef,
    pub rule: ThreadRule,
    /// The sender is the requester, a participant, a contact of the ticket's
    /// client, or staff.
    pub sender_on_ticket: bool,
}

/// The outcome of threading, with what `explain` shows.
#[derive(Debug, Clone, Default)]
pub struct Threading {
    pub found: Option<ThreadMatch>,
    /// A rule that pointed at a ticket but was not accepted, and why.
    pub declined: Option<String>,
}

/// Finds the ticket `mail` continues. `sender_client` is the client of the
/// sender's contact, if they are one.
pub async fn find_thread(
    conn: &mut AnyConnection,
    config: &Config,
    mail: &InboundMail,
    sender_client: Option<i64>,
) -> Result<Threading, DbError> {
    let sender = mail.from.as_ref().map(|f| &f.address);
    let found = |ticket: TicketRef, rule: ThreadRule, on: bool| Threading {
        found: Some(ThreadMatch {
            ticket,
            rule,
            sender_on_ticket: on,
        }),
        declined: None,
    };

    // 1. The reply token of one of our addresses.
    for address in mail
        .to
        .iter()
        .chain(mail.cc.iter())
        .chain(mail.delivered_to.iter())
    {
        let Some(token) = address.detail() else {
            continue;
        };
        if !config.is_own_address(address) {
            continue;
        }
        if let Some(t) = conversation::ticket_by_reply_token(conn, token).await? {
            let on = is_on_ticket(conn, config, &t, sender, sender_client).await?;
            return Ok(found(t, ThreadRule::ReplyToken, on));
        }
    }

    // 2. and 3. Message-IDs: ours (signed, so they cannot be forged) first.
    let mut ids: Vec<String> = mail.references.clone();
    for id in &mail.in_reply_to {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let signed: Vec<String> = ids
        .iter()
        .filter(|id| super::message_id::verify(&config.link_keys, id))
        .cloned()
        .collect();
    if let Some((t, _)) = conversation::ticket_by_message_ids(conn, &signed).await? {
        let on = is_on_ticket(conn, config, &t, sender, sender_client).await?;
        return Ok(found(t, ThreadRule::SignedMessageId, on));
    }
    if let Some((t, _)) = conversation::ticket_by_message_ids(conn, &ids).await? {
        let on = is_on_ticket(conn, config, &t, sender, sender_client).await?;
        return Ok(found(t, ThreadRule::StoredMessageId, on));
    }

    // 4. The subject tag, only from someone on the ticket.
    if let Some(number) = find_ticket_tag(&mail.subject, &config.tickets.prefix) {
        if let Some(t) = conversation::ticket_by_number(conn, number.as_str()).await? {
            if is_on_ticket(conn, config, &t, sender, sender_client).await? {
                return Ok(found(t, ThreadRule::SubjectTag, true));
            }
            return Ok(Threading {
                found: None,
                declined: Some(format!(
                    "subject tag [#{number}] ignored: the sender is not on that ticket"
                )),
            });
        }
    }
    Ok(Threading::default())
}

/// Requester, participant, contact of the ticket's client, or staff.
pub async fn is_on_ticket(
    conn: &mut AnyConnection,
    config: &Config,
    ticket: &TicketRef,
    sender: Option<&EmailAddress>,
    sender_client: Option<i64>,
) -> Result<bool, DbError> {
    let Some(sender) = sender else {
        return Ok(false);
    };
    if config.is_staff(sender) {
        return Ok(true);
    }
    if EmailAddress::parse(&ticket.requester_email).is_ok_and(|r| r.same_mailbox(sender)) {
        return Ok(true);
    }
    if ticket.client_id.is_some() && sender_client == ticket.client_id {
        return Ok(true);
    }
    if conversation::participants(conn, ticket.id)
        .await?
        .iter()
        .any(|p| p.same_mailbox(sender))
    {
        return Ok(true);
    }
    // A contact of the client the sender's plan did not resolve (e.g. a new
    // address of the client's domain, not yet a contact).
    if let Some(client) = ticket.client_id {
        if contacts::find_client_by_domain(conn, sender.domain()).await? == Some(client) {
            return Ok(true);
        }
    }
    Ok(false)
}
