//! Outgoing mail → RFC 5322 bytes (lettre's builder), with the headers every
//! Postdesk mail carries: our signed Message-ID, thread headers, the loop
//! header, and for automated mail `Auto-Submitted` and
//! `X-Auto-Response-Suppress` so auto-responders stay quiet, on optional
//! mail `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058); DKIM-signed
//! when the operator configured a key.

use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};

use super::parse::LOOP_HEADER;
use super::templates::RenderedMail;
use crate::links::issue::UnsubscribeLinks;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot build mail: {0}")]
    Build(#[from] lettre::error::Error),
}

pub struct Outgoing<'a> {
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub reply_to: Option<Mailbox>,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// Message-ID (without brackets) this mail answers.
    pub in_reply_to: Option<&'a str>,
    /// The thread so far, oldest first, without brackets.
    pub references: &'a [String],
    /// `Auto-Submitted` (RFC 3834) when the system sent it, not a person.
    pub auto_submitted: Option<&'static str>,
    pub attachments: &'a [super::outgoing::OutgoingAttachment],
    /// DKIM-signs the finished mail.
    pub dkim: Option<&'a lettre::message::dkim::DkimConfig>,
    /// Identifies this installation in the loop header.
    pub loop_token: &'a str,
    /// Optional mail: the one-click unsubscribe URL (RFC 8058) and the
    /// `mailto:`, sent as `List-Unsubscribe` with `List-Unsubscribe-Post`.
    pub unsubscribe: Option<&'a UnsubscribeLinks>,
    pub content: &'a RenderedMail,
}

pub fn build(o: &Outgoing<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut builder = lettre::Message::builder()
        .from(o.from.clone())
        .subject(o.content.subject.clone())
        .message_id(Some(format!("<{}>", o.message_id)));
    for to in o.to {
        builder = builder.to(to.clone());
    }
    for cc in o.cc {
        builder = builder.cc(cc.clone());
    }
    if let Some(reply_to) = &o.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(parent) = o.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !o.references.is_empty() {
        let refs: Vec<String> = o.references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.references(refs.join(" "));
    }
    let body = MultiPart::alternative_plain_html(o.content.text.clone(), o.content.html.clone());
    let body = if o.attachments.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in o.attachments {
            let content_type =
                ContentType::parse(&a.content_type).unwrap_or(ContentType::TEXT_PLAIN);
            mixed = mixed.singlepart(
                Attachment::new(a.filename.clone()).body(a.bytes.clone(), content_type),
            );
        }
        mixed
    };
    let mut message = builder.multipart(body)?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str(LOOP_HEADER),
        o.loop_token.to_string(),
    ));
    if let Some(value) = o.auto_submitted {
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            value.into(),
        ));
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".into(),
        ));
    }
    if let Some(links) = o.unsubscribe {
        // RFC 8058: exactly one HTTPS URI, which the POST header refers to;
        // the mailto: is for clients that only send mail.
        let value = match &links.mailto {
            Some(mailto) => format!("<{}>, <{mailto}>", links.url),
            None => format!("<{}>", links.url),
        };
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            value,
        ));
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".into(),
        ));
    }
    if let Some(dkim) = o.dkim {
        // Last: the signature covers the headers as they go out.
        message.sign(dkim);
    }
    Ok(message.formatted())
}
