//! Raw inbound bytes → [`InboundMail`], the typed view the rest of ingest uses.
//! All MIME work is mail-parser's; this module only picks what Postdesk needs
//! and turns untrusted header text into domain types once.

use mail_parser::{MessageParser, MimeHeaders};

use crate::domain::EmailAddress;

/// A parsed inbound message. Addresses that do not parse are dropped here, so
/// nothing downstream re-validates strings.
#[derive(Debug, Clone)]
pub struct InboundMail {
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Sender>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    /// Envelope recipients the delivering MTA recorded (`Delivered-To`,
    /// `X-Original-To`, `Envelope-To`): where a reply token survives a Bcc.
    pub delivered_to: Vec<EmailAddress>,
    pub subject: String,
    /// The plain-text body (converted from HTML when there is no text part).
    pub text: String,
    /// The HTML body as sent (unsanitized: sanitize before storing or showing).
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    pub headers: AutomationHeaders,
}

impl InboundMail {
    /// The thread this mail continues, itself included: what the
    /// `References` of an answer to it carry.
    pub fn thread_ids(&self) -> Vec<String> {
        self.references
            .iter()
            .chain(self.message_id.iter())
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Sender {
    pub address: EmailAddress,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InboundAttachment {
    /// The name the sender gave, decoded (RFC 2047 / 2231), not yet sanitized.
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub bytes: Vec<u8>,
}

/// The headers that tell automated mail from mail a person wrote.
#[derive(Debug, Clone, Default)]
pub struct AutomationHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub x_autoreply: bool,
    pub x_auto_response_suppress: bool,
    pub list_id: bool,
    pub empty_return_path: bool,
    pub multipart_report: bool,
    pub spam_flag: bool,
    pub our_loop_header: bool,
}

/// Header we put on every mail we send; seeing it inbound means our own mail
/// came back.
pub const LOOP_HEADER: &str = "X-Postdesk-Loop";

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a mail message: no header could be parsed")]
    NotMail,
}

pub fn parse(raw: &[u8]) -> Result<InboundMail, ParseError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotMail)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NotMail);
    }

    let first_address = |a: Option<&mail_parser::Address<'_>>| -> Option<Sender> {
        a?.iter().find_map(|addr| {
            let address = EmailAddress::parse(addr.address()?).ok()?;
            Some(Sender {
                address,
                name: addr
                    .name()
                    .map(str::to_string)
                    .filter(|n| !n.trim().is_empty()),
            })
        })
    };
    let all_addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<EmailAddress> {
        a.map(|a| {
            a.iter()
                .filter_map(|addr| EmailAddress::parse(addr.address()?).ok())
                .collect()
        })
        .unwrap_or_default()
    };
    // The person to answer: From, else Sender, else Reply-To, else Return-Path.
    let from = first_address(msg.from())
        .or_else(|| first_address(msg.sender()))
        .or_else(|| first_address(msg.reply_to()))
        .or_else(|| {
            msg.return_address().and_then(|a| {
                Some(Sender {
                    address: EmailAddress::parse(a).ok()?,
                    name: None,
                })
            })
        });

    let id_list = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match v {
            mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
            mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        }
    };

    let has_html_part = msg.html_bodies().any(|p| p.is_text_html());
    let html = if has_html_part {
        msg.body_html(0).map(|h| h.into_owned())
    } else {
        None
    };
    // An HTML-only mail: our own conversion keeps blockquotes as `> ` quotes
    // (the parser's flattens them), so the trimmer can cut the history.
    let html_only = msg.text_bodies().next().is_some_and(|p| p.is_text_html());
    let text = match (&html, html_only) {
        (Some(h), true) => super::html_text::html_to_text(h),
        _ => None,
    }
    .or_else(|| msg.body_text(0).map(|t| t.into_owned()))
    .unwrap_or_default();

    let mut attachments = Vec::new();
    for part in msg.attachments() {
        let bytes = match part.message() {
            // An attached mail keeps its own raw bytes (`.eml`).
            Some(inner) => inner.raw_message().to_vec(),
            None => part.contents().to_vec(),
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| {
                if part.is_message() {
                    "message/rfc822".into()
                } else {
                    "application/octet-stream".into()
                }
            })
            .to_ascii_lowercase();
        let content_id = part
            .content_id()
            .map(|c| c.trim().trim_matches(['<', '>']).to_string())
            .filter(|c| !c.is_empty());
        let inline = part
            .content_disposition()
            .map(|d| d.is_inline())
            .unwrap_or(content_id.is_some());
        attachments.push(InboundAttachment {
            filename: part.attachment_name().map(str::to_string),
            content_type,
            content_id,
            inline,
            bytes,
        });
    }

    let header_text = |name: &str| -> Option<String> {
        msg.header_raw(name).map(|v| v.trim().to_ascii_lowercase())
    };
    let headers = AutomationHeaders {
        auto_submitted: header_text("Auto-Submitted"),
        precedence: header_text("Precedence"),
        x_autoreply: header_text("X-Autoreply").is_some() || header_text("X-Autorespond").is_some(),
        x_auto_response_suppress: header_text("X-Auto-Response-Suppress").is_some(),
        // List mail: RFC 2369/2919 headers, and the fml/majordomo-style
        // list servers that send only their own.
        list_id: [
            "List-Id",
            "List-Subscribe",
            "List-Unsubscribe",
            "X-MLServer",
            "X-ML-Name",
        ]
        .iter()
        .any(|h| header_text(h).is_some()),
        empty_return_path: header_text("Return-Path")
            .map(|r| r.trim_matches(['<', '>', ' ']).is_empty())
            .unwrap_or(false),
        multipart_report: msg
            .content_type()
            .map(|ct| {
                ct.ctype().eq_ignore_ascii_case("multipart")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            })
            .unwrap_or(false),
        spam_flag: header_text("X-Spam-Flag").is_some_and(|v| v.starts_with("yes"))
            || header_text("X-Spam-Status").is_some_and(|v| v.starts_with("yes")),
        our_loop_header: header_text(LOOP_HEADER).is_some(),
    };

    let delivered_to = ["Delivered-To", "X-Original-To", "Envelope-To"]
        .iter()
        .flat_map(|name| msg.header_values(*name))
        .filter_map(|v| match v {
            mail_parser::HeaderValue::Text(t) => Some(t.to_string()),
            mail_parser::HeaderValue::Address(a) => {
                a.first().and_then(|a| a.address()).map(str::to_string)
            }
            _ => None,
        })
        .filter_map(|t| EmailAddress::parse(t.trim().trim_matches(['<', '>'])).ok())
        .collect();

    Ok(InboundMail {
        message_id: msg.message_id().map(str::to_string),
        delivered_to,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        from,
        to: all_addresses(msg.to()),
        cc: all_addresses(msg.cc()),
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        text,
        html,
        attachments,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_simple_mail() {
        let raw = b"From: Alice <Alice@Customer.test>\r\nTo: support@example.test\r\n\
Cc: bob@customer.test, not an address\r\nSubject: Printer\r\nMessage-ID: <a@b>\r\n\r\nIt is broken.\r\n";
        let m = parse(raw).unwrap();
        let from = m.from.unwrap();
        assert_eq!(from.address.as_str(), "alice@customer.test");
        assert_eq!(from.name.as_deref(), Some("Alice"));
        assert_eq!(m.cc.len(), 1);
        assert_eq!(m.message_id.as_deref(), Some("a@b"));
        assert_eq!(m.text.trim(), "It is broken.");
        assert!(m.html.is_none());
    }

    #[test]
    fn envelope_recipients_come_from_delivery_headers() {
        let raw = b"Delivered-To: support+abc123@example.test\r\nX-Original-To: <support+abc123@example.test>\r\n\
From: a@customer.test\r\nSubject: x\r\n\r\nbody\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.delivered_to.len(), 2);
        assert_eq!(m.delivered_to[0].detail(), Some("abc123"));
    }

    #[test]
    fn sender_falls_back_to_return_path() {
        let raw = b"Return-Path: <carol@customer.test>\r\nSubject: x\r\n\r\nbody\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.from.unwrap().address.as_str(), "carol@customer.test");
    }
}
