//! Bounces → [`BounceReport`]: which recipients of one of our messages could
//! not be reached, whether for good, and which message it was.
//!
//! Pure: bytes in, report out, no I/O, no panics. MIME is mail-parser's; this
//! module only reads what a bounce says. Sources, most trusted first:
//! 1. RFC 3464 `message/delivery-status` parts: one field block per recipient
//!    (`Final-Recipient`, `Original-Recipient`, `Action`, `Status`,
//!    `Diagnostic-Code`), each block read with mail-parser's header parser;
//! 2. Amazon SES notifications mailed by SNS (a JSON body);
//! 3. the text of a non-standard bounce (qmail, Exim, Sendmail, Postfix,
//!    Exchange, Gmail …): the addresses it names that are not the bounce's
//!    own, with the enhanced status code (`5.1.1`) or SMTP reply (`550`) on
//!    the address's line or in the text about it.
//!
//! The original Message-ID comes from the returned message: an attached
//! `message/rfc822`, a `text/rfc822-headers` part, or headers quoted in text.
//!
//! Complaint reports (ARF), read receipts and success notifications are not
//! bounces and give `None`. The `is_*` and `*_reads_as_bounce` functions are
//! the checks `classify` shares.

use std::sync::LazyLock;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};
use regex::Regex;

use crate::domain::EmailAddress;

/// What a bounce says about one message we sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BounceReport {
    /// The Message-ID (without angle brackets) of the mail that bounced, when
    /// the bounce returned its headers.
    pub original_message_id: Option<String>,
    /// The recipients that failed or are delayed; may be empty when the mail
    /// is clearly a bounce but names nobody we can parse.
    pub recipients: Vec<FailedRecipient>,
}

/// One recipient the bounce reports as failed or delayed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailedRecipient {
    pub address: EmailAddress,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`. A bare SMTP reply
    /// code is given by its class only: `550` → `5.0.0`.
    pub status: Option<String>,
    /// True when retrying is pointless (status class 5); false for a delay or
    /// a temporary (class 4) failure.
    pub permanent: bool,
    /// What the remote server said, whitespace collapsed, at most
    /// [`DIAGNOSTIC_MAX_CHARS`] characters.
    pub diagnostic: Option<String>,
}

/// Longest diagnostic text kept per recipient.
pub const DIAGNOSTIC_MAX_CHARS: usize = 500;

/// Reads `raw` as a bounce. `None` when it does not look like a bounce at all.
/// Never panics, whatever the input.
pub fn parse_bounce(raw: &[u8]) -> Option<BounceReport> {
    let msg = MessageParser::default().parse(raw)?;
    if msg.headers().is_empty() {
        return None;
    }
    let report_type = report_type(&msg);
    if matches!(
        report_type.as_deref(),
        Some("feedback-report" | "disposition-notification")
    ) {
        // A complaint or a read receipt.
        return None;
    }

    let text = BounceText::of(&msg);
    let original_message_id = original_message_id(&msg, &text);
    if let Some(statuses) = delivery_status_recipients(&msg) {
        if statuses.all_succeeded {
            // A success notification: delivered, relayed, expanded, verified.
            return None;
        }
        if !statuses.failed.is_empty() {
            return Some(BounceReport {
                original_message_id,
                recipients: statuses.failed,
            });
        }
    }

    if let Some(notification) = msg.body_text(0).and_then(|t| SesNotification::parse(&t)) {
        return notification.into_report();
    }

    let explanation = &text.explanation;
    // A `multipart/report` that is not a complaint is a delivery report,
    // whatever its (sometimes missing) report-type says.
    if report_type.is_none() && !looks_like_bounce(&msg, explanation) {
        return None;
    }
    // A report whose MIME structure is broken still carries its fields as text.
    let failed_in_text = DeliveryStatuses::read(explanation);
    if !failed_in_text.failed.is_empty() {
        return Some(BounceReport {
            original_message_id,
            recipients: failed_in_text.failed,
        });
    }
    let mut recipients = recipients_from_text(&msg, explanation);
    if recipients.is_empty() {
        recipients.extend(sole_recipient_of_returned_message(&msg, &text));
    }
    Some(BounceReport {
        original_message_id,
        recipients,
    })
}

// ---------------------------------------------------------------------------
// RFC 3464 delivery-status parts

/// The recipients found in `message/delivery-status` parts.
struct DeliveryStatuses {
    failed: Vec<FailedRecipient>,
    /// True when there were recipient blocks and every one reports success.
    all_succeeded: bool,
}

fn report_type(msg: &Message<'_>) -> Option<String> {
    let ct = msg.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    if !is_report {
        return None;
    }
    Some(
        ct.attribute("report-type")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn part_type_is(part: &MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|want| s.eq_ignore_ascii_case(want)))
    })
}

/// `None` when the message has no delivery-status part.
fn delivery_status_recipients(msg: &Message<'_>) -> Option<DeliveryStatuses> {
    let mut text = String::new();
    let mut found = false;
    for part in msg
        .parts
        .iter()
        .filter(|p| part_type_is(p, "message", &["delivery-status", "global-delivery-status"]))
    {
        found = true;
        text.push_str(&String::from_utf8_lossy(part.contents()));
        text.push_str("\n\n");
    }
    found.then(|| DeliveryStatuses::read(&text))
}

/// Most field blocks read from delivery-status parts; real reports have one
/// per recipient, and a cap keeps hostile input cheap.
const MAX_DSN_BLOCKS: usize = 1000;

impl DeliveryStatuses {
    /// Reads the per-recipient blocks in `text`.
    fn read(text: &str) -> Self {
        let mut failed: Vec<FailedRecipient> = Vec::new();
        let mut successes = 0;
        let mut others = 0;
        for block in field_blocks(text).into_iter().take(MAX_DSN_BLOCKS) {
            let Some(fields) = DsnRecipientFields::parse(&block) else {
                continue;
            };
            if fields.succeeded() {
                successes += 1;
                continue;
            }
            others += 1;
            if let Some(recipient) = fields.into_failed_recipient() {
                if !failed.iter().any(|r| r.address == recipient.address) {
                    failed.push(recipient);
                }
            }
        }
        Self {
            all_succeeded: successes > 0 && others == 0,
            failed,
        }
    }
}

/// Splits a delivery-status body into its field blocks (separated by blank
/// lines), each ready for mail-parser's header parser.
fn field_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                current.push_str("\r\n");
                blocks.push(std::mem::take(&mut current));
            }
        } else {
            current.push_str(line);
            current.push_str("\r\n");
        }
    }
    if !current.is_empty() {
        current.push_str("\r\n");
        blocks.push(current);
    }
    blocks
}

/// The fields of one per-recipient block that matter here.
#[derive(Default)]
struct DsnRecipientFields {
    final_recipient: Option<String>,
    original_recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

impl DsnRecipientFields {
    /// `None` when `block` names no recipient (the per-message block).
    fn parse(block: &str) -> Option<Self> {
        let parsed = MessageParser::new().parse_headers(block.as_bytes())?;
        let mut fields = Self::default();
        for (name, value) in parsed.headers_raw() {
            let value = collapse_whitespace(value);
            if value.is_empty() {
                continue;
            }
            let slot = match name.to_ascii_lowercase().as_str() {
                "final-recipient" => &mut fields.final_recipient,
                "original-recipient" => &mut fields.original_recipient,
                "action" => &mut fields.action,
                "status" => &mut fields.status,
                "diagnostic-code" => &mut fields.diagnostic,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        if fields.final_recipient.is_none() && fields.original_recipient.is_none() {
            return None;
        }
        Some(fields)
    }

    /// The first word of `Action`, lower case.
    fn action(&self) -> Option<String> {
        self.action.as_deref().map(|a| {
            a.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
    }

    /// Delivered, relayed, expanded or verified (`deliverable`, Postfix's
    /// address verification), or a class 2 status.
    fn succeeded(&self) -> bool {
        let action_says_so = self.action().is_some_and(|a| {
            matches!(
                a.as_str(),
                "delivered" | "relayed" | "expanded" | "deliverable"
            )
        });
        let status_says_so = self
            .status
            .as_deref()
            .is_some_and(|s| s.trim_start().starts_with("2."));
        action_says_so || status_says_so
    }

    /// `None` when no recipient address parses.
    fn into_failed_recipient(self) -> Option<FailedRecipient> {
        let action = self.action();
        // Original-Recipient is the address we wrote; Final-Recipient may be
        // one an alias or forward turned it into.
        let address = [&self.original_recipient, &self.final_recipient]
            .into_iter()
            .flatten()
            .find_map(|value| dsn_address(value))?;
        let diagnostic = self
            .diagnostic
            .map(|d| strip_type_prefix(&d).to_string())
            .filter(|d| !d.is_empty());
        let diagnostic_code = diagnostic.as_deref().and_then(first_status_code);
        let status = match (
            self.status.as_deref().and_then(first_enhanced_code),
            diagnostic_code,
        ) {
            // A generic `5.0.0` is refined by the server's own code of the same class.
            (Some(generic), Some(specific))
                if generic.ends_with(".0.0")
                    && specific.enhanced
                    && specific.class() == &generic[..1] =>
            {
                Some(specific.code)
            }
            (Some(status), _) => Some(status),
            (None, Some(from_diagnostic)) => Some(from_diagnostic.code),
            (None, None) => None,
        };
        let permanent = match status.as_deref() {
            Some(code) => code.starts_with('5'),
            None => action.as_deref().is_none_or(|a| a == "failed"),
        };
        Some(FailedRecipient {
            address,
            status,
            permanent,
            diagnostic: diagnostic.map(|d| truncate_chars(&d, DIAGNOSTIC_MAX_CHARS)),
        })
    }
}

/// The address in a `Final-Recipient: rfc822; user@example.com` value.
fn dsn_address(value: &str) -> Option<EmailAddress> {
    let value = strip_type_prefix(value);
    EmailAddress::parse(value).ok().or_else(|| {
        ADDRESS
            .find_iter(value)
            .find_map(|m| EmailAddress::parse(m.as_str()).ok())
    })
}

/// `smtp; 550 …` → `550 …`, `rfc822;a@b` → `a@b`.
fn strip_type_prefix(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(char::is_whitespace) && kind.len() <= 16 => {
            rest.trim()
        }
        _ => value.trim(),
    }
}

// ---------------------------------------------------------------------------
// Amazon SES notifications

/// An Amazon SES notification mailed by SNS: a JSON body, bare or inside
/// SNS's own envelope (`"Type": "Notification"`, the JSON as `"Message"`).
struct SesNotification(serde_json::Value);

impl SesNotification {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim_start();
        if !text.starts_with('{') || !text.contains("notificationType") {
            return None;
        }
        // Sendmail splits lines over its length limit with `!`, newline, space.
        let text = text.replace("!\r\n ", "").replace("!\n ", "");
        // The JSON is followed by SNS's unsubscribe footer.
        let value: serde_json::Value = serde_json::Deserializer::from_str(&text)
            .into_iter()
            .next()?
            .ok()?;
        let value = match value.get("Message").and_then(|m| m.as_str()) {
            Some(inner) => serde_json::from_str(inner).ok()?,
            None => value,
        };
        value
            .get("notificationType")
            .and_then(|t| t.as_str())
            .is_some()
            .then_some(Self(value))
    }

    fn kind(&self) -> &str {
        self.0
            .get("notificationType")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
    }

    /// `None` for complaint and delivery notifications.
    fn into_report(self) -> Option<BounceReport> {
        if !self.kind().eq_ignore_ascii_case("bounce") {
            return None;
        }
        let text = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(|s| s.as_str())
                .map(collapse_whitespace)
                .filter(|s| !s.is_empty())
        };
        let bounce = self.0.get("bounce");
        let permanent_type = bounce
            .and_then(|b| text(b, "bounceType"))
            .is_some_and(|t| t.eq_ignore_ascii_case("permanent"));
        let recipients = bounce
            .and_then(|b| b.get("bouncedRecipients"))
            .and_then(|r| r.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|r| {
                        let address = EmailAddress::parse(&text(r, "emailAddress")?).ok()?;
                        let diagnostic =
                            text(r, "diagnosticCode").map(|d| strip_type_prefix(&d).to_string());
                        let status = text(r, "status")
                            .as_deref()
                            .and_then(first_enhanced_code)
                            .or_else(|| {
                                diagnostic
                                    .as_deref()
                                    .and_then(first_status_code)
                                    .map(|c| c.code)
                            });
                        let permanent = match status.as_deref() {
                            Some(code) => code.starts_with('5'),
                            None => permanent_type,
                        };
                        Some(FailedRecipient {
                            address,
                            status,
                            permanent,
                            diagnostic: diagnostic
                                .map(|d| truncate_chars(&d, DIAGNOSTIC_MAX_CHARS)),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mail = self.0.get("mail");
        let original_message_id = mail
            .and_then(|m| m.get("commonHeaders"))
            .and_then(|h| text(h, "messageId"))
            .or_else(|| {
                mail.and_then(|m| m.get("headers"))
                    .and_then(|h| h.as_array())?
                    .iter()
                    .find(|h| text(h, "name").is_some_and(|n| n.eq_ignore_ascii_case("message-id")))
                    .and_then(|h| text(h, "value"))
            })
            .map(|id| id.trim().trim_matches(['<', '>']).to_string())
            .filter(|id| !id.is_empty());
        Some(BounceReport {
            original_message_id,
            recipients,
        })
    }
}

/// True when `text` is an Amazon SES bounce, complaint or delivery
/// notification mailed by SNS.
pub fn is_ses_notification(text: &str) -> bool {
    SesNotification::parse(text).is_some_and(|n| {
        ["bounce", "complaint", "delivery"]
            .iter()
            .any(|kind| n.kind().eq_ignore_ascii_case(kind))
    })
}

// ---------------------------------------------------------------------------
// The returned message

/// The Message-ID of the returned message, most reliable source first: an
/// attached `message/rfc822`, a `text/rfc822-headers` part, a part whose MIME
/// headers are the original's headers, an attached message that failed to
/// parse, the headers quoted after the explanation, any `Message-ID:` line.
fn original_message_id(msg: &Message<'_>, text: &BounceText) -> Option<String> {
    let from_attached = msg
        .parts
        .iter()
        .filter_map(|p| p.message())
        .find_map(|m| m.message_id().map(str::to_string));
    let from_headers_part = || {
        msg.parts
            .iter()
            .filter(|p| {
                part_type_is(p, "text", &["rfc822-headers"])
                    || part_type_is(p, "message", &["rfc822-headers", "global-headers"])
            })
            .find_map(|p| {
                MessageParser::default()
                    .parse_headers(p.contents())?
                    .message_id()
                    .map(str::to_string)
            })
    };
    // Any text leaf (its body, never its own headers) quoting the original.
    let from_quoted_text = || {
        msg.parts
            .iter()
            .filter(|p| p.message().is_none() && p.sub_parts().is_none() && !p.is_text_html())
            .find_map(|p| quoted_message_id(&String::from_utf8_lossy(p.contents())))
    };
    let from_quoted_headers = || text.returned_headers()?.message_id().map(str::to_string);
    // A part whose "MIME headers" are the returned message's own headers.
    let from_part_headers = || {
        msg.parts.iter().skip(1).find_map(|p| {
            p.headers()
                .iter()
                .find(|h| h.name().eq_ignore_ascii_case("message-id"))
                .and_then(|h| h.value().as_text())
                .map(|id| id.trim().trim_matches(['<', '>']).to_string())
        })
    };
    // An attached message whose headers did not parse (a blank line first).
    let from_attached_text = || {
        msg.parts
            .iter()
            .filter(|p| p.message().is_some_and(|m| m.message_id().is_none()))
            .find_map(|p| quoted_message_id(&String::from_utf8_lossy(p.contents())))
    };
    from_attached
        .or_else(from_headers_part)
        .or_else(from_part_headers)
        .or_else(from_attached_text)
        .or_else(from_quoted_headers)
        .or_else(from_quoted_text)
        .filter(|id| !id.is_empty())
}

/// The first `Message-ID:` line in `text`, the line possibly quoted or
/// indented, the value possibly on the next line.
fn quoted_message_id(text: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim_end().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let value = if value.trim().is_empty() {
            lines.next().unwrap_or_default()
        } else {
            value
        };
        let value = value.trim();
        let id = match (value.find('<'), value.find('>')) {
            (Some(open), Some(close)) if open < close => &value[open + 1..close],
            _ => value.split_whitespace().next().unwrap_or_default(),
        };
        let id = id.trim();
        if !id.is_empty() && !id.contains(char::is_whitespace) {
            return Some(id.to_string());
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Non-standard bounces

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
    )
    .expect("the address pattern is valid")
});

/// Runs of digits and dots: every candidate status code is one of these.
static NUMBER_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9][0-9.]*").expect("the number pattern is valid"));

/// SMTP reply codes that report a failure (RFC 5321 §4.2.3 and common use).
const SMTP_FAILURE_CODES: &[&str] = &[
    "421", "450", "451", "452", "454", "455", "500", "501", "502", "503", "504", "521", "523",
    "530", "534", "535", "541", "550", "551", "552", "553", "554", "556",
];

/// A status code found in text.
struct StatusCode {
    /// Enhanced form, `5.1.1`; a bare SMTP reply becomes `5.0.0`.
    code: String,
    /// False when derived from a bare SMTP reply code.
    enhanced: bool,
}

impl StatusCode {
    fn class(&self) -> &str {
        &self.code[..1]
    }
}

/// Whether `token` (digits and dots) is an enhanced status code.
fn is_enhanced_code(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(class, "2" | "4" | "5")
        && (1..=3).contains(&subject.len())
        && (1..=3).contains(&detail.len())
}

fn number_tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    NUMBER_RUN.find_iter(text).filter_map(|m| {
        // A run glued to letters is part of a word or a host name (`a550`, `5.1.1a`).
        let before = text[..m.start()].chars().next_back();
        let token = m.as_str().trim_end_matches('.');
        let after = text[m.start() + token.len()..].chars().next();
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        (!glued(before) && !glued(after)).then_some((m.start(), token))
    })
}

fn first_enhanced_code(text: &str) -> Option<String> {
    number_tokens(text)
        .map(|(_, t)| t)
        .find(|t| is_enhanced_code(t) && !t.starts_with('2'))
        .map(str::to_string)
}

/// The first failure code in `text`, preferring an enhanced one, with the
/// byte offset where it was found.
fn first_status_code_at(text: &str) -> Option<(usize, StatusCode)> {
    let tokens: Vec<(usize, &str)> = number_tokens(text).collect();
    let enhanced = tokens
        .iter()
        .find(|(_, t)| is_enhanced_code(t) && !t.starts_with('2'))
        .map(|&(at, t)| {
            (
                at,
                StatusCode {
                    code: t.to_string(),
                    enhanced: true,
                },
            )
        });
    enhanced.or_else(|| {
        tokens
            .iter()
            .find(|(_, t)| SMTP_FAILURE_CODES.contains(t))
            .map(|&(at, t)| {
                (
                    at,
                    StatusCode {
                        code: format!("{}.0.0", &t[..1]),
                        enhanced: false,
                    },
                )
            })
    })
}

fn first_status_code(text: &str) -> Option<StatusCode> {
    first_status_code_at(text).map(|(_, code)| code)
}

/// How much of a bounce's text is read: explanations are short, and a cap
/// keeps hostile input cheap.
const MAX_BOUNCE_TEXT_BYTES: usize = 64 * 1024;

/// The text of a bounce, split where it starts quoting the returned message.
struct BounceText {
    /// What the mail system says: the text bodies up to the returned message.
    explanation: String,
    /// The returned message quoted in the text, if any (headers first).
    returned: String,
}

impl BounceText {
    fn of(msg: &Message<'_>) -> Self {
        let mut text = String::new();
        let mut i = 0;
        while let Some(body) = msg.body_text(i) {
            text.push_str(&body);
            text.push('\n');
            i += 1;
        }
        if text.trim().is_empty() {
            // A multipart without a usable boundary leaves no text body; its
            // leaf parts still hold the text, MIME headers and all.
            for part in &msg.parts {
                let is_leaf = part.sub_parts().is_none() && part.message().is_none();
                let is_returned =
                    part_type_is(part, "message", &["rfc822", "global", "rfc822-headers"])
                        || part_type_is(part, "text", &["rfc822-headers", "html"]);
                if let Some(leaf) = part.text_contents().filter(|_| is_leaf && !is_returned) {
                    text.push_str(leaf);
                    text.push('\n');
                }
            }
        }
        let mut explanation = String::new();
        let mut returned = String::new();
        let mut in_returned = false;
        let mut end = text.len().min(MAX_BOUNCE_TEXT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        for line in text[..end].lines() {
            if !in_returned {
                in_returned = starts_returned_message(line);
                // The marker may itself be the first header (`Received: from …`).
                let target = match (in_returned, header_line(line)) {
                    (false, _) => &mut explanation,
                    (true, true) => &mut returned,
                    (true, false) => continue,
                };
                target.push_str(line);
                target.push_str("\r\n");
            } else if !returned.is_empty() || header_line(line) {
                // Blank and prose lines between the marker and the headers are skipped.
                returned.push_str(line);
                returned.push_str("\r\n");
            }
        }
        Self {
            explanation,
            returned,
        }
    }

    /// The headers of the returned message quoted in the text.
    fn returned_headers(&self) -> Option<Message<'_>> {
        if self.returned.is_empty() {
            return None;
        }
        MessageParser::default().parse_headers(self.returned.as_bytes())
    }
}

/// True for a line shaped like a mail header: `Name: value`.
fn header_line(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// True for the line where a text bounce starts quoting the original message.
fn starts_returned_message(line: &str) -> bool {
    let trimmed = line.trim();
    let lower = trimmed.to_ascii_lowercase();
    let is_rule = ["--", "==", "**", "__", "##", "|-"]
        .iter()
        .any(|rule| lower.starts_with(rule));
    if is_rule {
        let names_original = [
            "original message",
            "copy of the message",
            "copy of your message",
            "message follows",
            "message text follows",
            "returned message",
            "undelivered message",
            "header of the original",
            "headers of the original",
            "original header",
            "message header",
            "original mail",
            "rfc822",
        ]
        .iter()
        .any(|marker| lower.contains(marker));
        let names_errors = ["transcript", "error", "recipient", "address"]
            .iter()
            .any(|word| lower.contains(word));
        return names_original && !names_errors;
    }
    [
        "original message headers",
        "original message follows",
        "original message:",
        "original mail follows",
        "message headers follow",
        "your original message",
        "the header of the original message",
        "below this line is a copy of the message",
        "bounced e-mail:",
        "the original message headers",
        "return-path:",
        "received: from",
        "dkim-signature:",
    ]
    .iter()
    .any(|marker| lower.starts_with(marker))
        || line.starts_with("Received: ")
}

/// True for the local parts mail systems send bounces from
/// (`MAILER-DAEMON`, `postmaster` …), in any case.
pub fn is_daemon_local_part(local: &str) -> bool {
    [
        "mailer-daemon",
        "mail-daemon",
        "mailerdaemon",
        "postmaster",
        "post_master",
        "double-bounce",
    ]
    .iter()
    .any(|daemon| local.eq_ignore_ascii_case(daemon))
}

/// True for the local parts of addresses nobody reads (`no-reply` …).
pub fn is_no_reply_local_part(local: &str) -> bool {
    [
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
    ]
    .iter()
    .any(|no_reply| local.eq_ignore_ascii_case(no_reply))
}

/// Addresses of the bounce itself (its sender, the original sender it is
/// returned to): never a failed recipient.
fn own_addresses(msg: &Message<'_>) -> Vec<EmailAddress> {
    let mut own: Vec<EmailAddress> = [msg.from(), msg.to(), msg.cc(), msg.reply_to(), msg.sender()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| EmailAddress::parse(a.address()?).ok())
        .collect();
    for name in ["Return-Path", "Delivered-To"] {
        for value in msg.header_values(name) {
            if let Some(text) = value.as_text() {
                own.extend(
                    ADDRESS
                        .find_iter(text)
                        .filter_map(|m| EmailAddress::parse(m.as_str()).ok()),
                );
            }
            if let Some(addresses) = value.as_address() {
                own.extend(
                    addresses
                        .iter()
                        .filter_map(|a| EmailAddress::parse(a.address()?).ok()),
                );
            }
        }
    }
    own
}

fn header_text(msg: &Message<'_>, name: &str) -> String {
    msg.header_raw(name)
        .map(collapse_whitespace)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Subjects mail systems give bounces (lower case, matched anywhere).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undeliverable mail",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery problem",
    "failure notice",
    "failed delivery",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery system",
    "returned mail",
    "return mail",
    "non-delivery",
    "nondeliverable",
    "non delivery",
    "could not be delivered",
    "not delivered",
    "delivery notification",
    "mail system error",
    "bounce notification",
    "delayed mail",
    "could not send",
    "mail failure",
    "mail failed",
];

/// Phrases only a mail system writes at the top of a bounce (lower case).
const BOUNCE_OPENINGS: &[&str] = &[
    "this is the qmail-send program",
    "created automatically by mail delivery software",
    "this is the mail delivery agent",
    "this is the mailer-daemon",
    "this is the mail system at host",
    "this is the postfix program",
    "automatically generated delivery status notification",
    "could not be delivered to one or more",
    "delivery to the following recipient",
    "delivery to the following recipients failed",
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    "the following addresses had delivery problems",
    "did not reach the following recipient",
    "did not reach some or all of the intended recipients",
    "i'm afraid i wasn't able to deliver",
    "delivery has failed to these recipients",
    "there was an error delivering your mail",
    "could not be delivered to:",
    "your message could not be delivered",
    "your message was not delivered",
    "message delivery has failed",
    "unable to deliver your message",
];

/// Wording that says "delivery failed" in a bounce, but might be in a
/// person's mail too: only counts when the mail is otherwise automated.
const BOUNCE_PHRASES: &[&str] = &[
    "could not be delivered",
    "was not delivered to",
    "undeliverable",
    "undelivered mail",
    "permanent error",
    "permanent failure",
    "failed permanently",
    "unable to deliver",
    "delivery failed",
    "user unknown",
    "unknown user",
    "mailbox unavailable",
    "mailbox full",
    "mailbox is full",
    "no such user",
    "has not yet been delivered",
    "delivery attempts will continue",
    "message was rejected",
    "email you sent was rejected",
];

/// Lines at the top of a text looked at by [`text_reads_as_bounce`].
const OPENING_LINES: usize = 20;

/// True when `subject` is one mail systems give bounces, and not a person's
/// reply to or forward of one.
pub fn subject_reads_as_bounce(subject: &str) -> bool {
    let subject = subject.trim_start().to_lowercase();
    let answered = [
        "re:", "re :", "fw:", "fwd:", "aw:", "wg:", "tr:", "sv:", "vs:",
    ]
    .iter()
    .any(|prefix| subject.starts_with(prefix));
    !answered && BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// True when the opening lines of `text` (quoted lines aside) carry wording
/// only mail systems write in bounces.
pub fn text_reads_as_bounce(text: &str) -> bool {
    let opening = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        .take(OPENING_LINES)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let opening = collapse_whitespace(&opening);
    BOUNCE_OPENINGS.iter().any(|p| opening.contains(p))
}

/// For mail without a delivery-status part: does it read like a bounce?
fn looks_like_bounce(msg: &Message<'_>, explanation: &str) -> bool {
    if msg.header_raw("X-Failed-Recipients").is_some() {
        return true;
    }
    let sender_is_machine = match msg.from().and_then(|a| a.first()) {
        // `MAILER-DAEMON` without a domain does not parse as an address.
        Some(from) => {
            let address = from.address().unwrap_or_default();
            let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
            local.is_empty() || is_daemon_local_part(local) || is_no_reply_local_part(local)
        }
        None => true,
    };
    let machine_return_path = msg.header_raw("Return-Path").is_some_and(|r| {
        let r = r.trim().trim_matches(['<', '>', ' ']);
        r.is_empty() || is_daemon_local_part(r.split('@').next().unwrap_or_default())
    });
    let auto_submitted = header_text(msg, "Auto-Submitted");
    let automated = sender_is_machine
        || machine_return_path
        || !auto_submitted.is_empty() && !auto_submitted.starts_with("no");

    let subject_says_so = subject_reads_as_bounce(msg.subject().unwrap_or_default());
    let opening_says_so = text_reads_as_bounce(explanation);
    let lower = explanation.to_lowercase();
    let wording_says_so = BOUNCE_PHRASES.iter().any(|p| lower.contains(p));
    (automated && (subject_says_so || opening_says_so || wording_says_so))
        || (subject_says_so && opening_says_so)
}

/// Most recipients read from a text bounce; real ones name a handful.
const MAX_TEXT_RECIPIENTS: usize = 100;

/// The failed recipients named in a text bounce: the `X-Failed-Recipients`
/// header when there is one, else the addresses in the explanation that are
/// not the bounce's own.
fn recipients_from_text(msg: &Message<'_>, explanation: &str) -> Vec<FailedRecipient> {
    let own = own_addresses(msg);
    let from_header: Vec<EmailAddress> = msg
        .header_values("X-Failed-Recipients")
        .filter_map(|v| v.as_text())
        .flat_map(|t| ADDRESS.find_iter(t))
        .filter_map(|m| EmailAddress::parse(m.as_str()).ok())
        .collect();

    // Every mention of a candidate, in text order. An address the text asks
    // the reader to contact is nobody's failure, wherever it appears.
    let mut mentions: Vec<(usize, usize, EmailAddress)> = Vec::new();
    let mut contacts: Vec<EmailAddress> = Vec::new();
    for m in ADDRESS.find_iter(explanation) {
        let Ok(address) = EmailAddress::parse(m.as_str()) else {
            continue;
        };
        if is_contact_line(explanation, m.start()) {
            contacts.push(address);
            continue;
        }
        let candidate = if from_header.is_empty() {
            !own.contains(&address) && !is_daemon_local_part(address.base_local_part())
        } else {
            from_header.contains(&address)
        };
        if candidate && !is_in_header_line(explanation, m.start()) {
            mentions.push((m.start(), m.end(), address));
        }
    }
    if from_header.is_empty() {
        mentions.retain(|(_, _, a)| !contacts.contains(a));
    }
    let mut addresses: Vec<EmailAddress> = Vec::new();
    for address in from_header.iter().chain(mentions.iter().map(|(_, _, a)| a)) {
        if addresses.len() == MAX_TEXT_RECIPIENTS {
            break;
        }
        if !addresses.contains(address) {
            addresses.push(address.clone());
        }
    }

    let delayed = reads_as_delay(explanation);
    addresses
        .into_iter()
        .map(|address| {
            // The text about this recipient: from its first mention to the
            // first mention of another one. Named only in X-Failed-Recipients,
            // the whole text is about it.
            let first = mentions.iter().position(|(_, _, a)| *a == address);
            let (start, end) = first.map_or((0, explanation.len()), |first| {
                let start = mentions[first].1;
                let end = mentions[first..]
                    .iter()
                    .find(|(_, _, a)| *a != address)
                    .map_or(explanation.len(), |(s, _, _)| *s);
                (start, end.max(start))
            });
            let section = &explanation[start..end];
            // A code on the address's own line (`554 <a@b>... error`) first,
            // then the first one after it, then the first one anywhere.
            let own_line = first.map(|first| mentions[first].0);
            let found = own_line
                .and_then(|at| {
                    let line = line_around(explanation, at);
                    first_status_code(&line).map(|code| (code, line))
                })
                .or_else(|| {
                    first_status_code_at(section)
                        .map(|(at, code)| (code, line_around(explanation, start + at)))
                })
                .or_else(|| {
                    first_status_code_at(explanation)
                        .map(|(at, code)| (code, line_around(explanation, at)))
                });
            let (status, diagnostic) = match found {
                Some((code, line)) => (Some(code.code), Some(line)),
                None => (None, describe_section(section)),
            };
            let permanent = match status.as_deref() {
                Some(code) => code.starts_with('5'),
                None => !delayed && !reads_as_temporary(section),
            };
            FailedRecipient {
                address,
                status,
                permanent,
                diagnostic: diagnostic
                    .filter(|d| !d.is_empty())
                    .map(|d| truncate_chars(&d, DIAGNOSTIC_MAX_CHARS)),
            }
        })
        .collect()
}

/// When the bounce names nobody: the one recipient of the returned message,
/// if it had exactly one, with the first status code of the explanation.
fn sole_recipient_of_returned_message(
    msg: &Message<'_>,
    text: &BounceText,
) -> Option<FailedRecipient> {
    let explanation = text.explanation.as_str();
    let own = own_addresses(msg);
    let recipients_of = |m: &Message<'_>| -> Vec<EmailAddress> {
        let mut found: Vec<EmailAddress> = Vec::new();
        for address in [m.to(), m.cc()]
            .into_iter()
            .flatten()
            .flat_map(|a| a.iter())
            .filter_map(|a| EmailAddress::parse(a.address()?).ok())
        {
            if !own.contains(&address) && !found.contains(&address) {
                found.push(address);
            }
        }
        found
    };
    let attached = msg
        .parts
        .iter()
        .find_map(|p| p.message())
        .map(recipients_of);
    let headers_part = || {
        msg.parts
            .iter()
            .filter(|p| {
                part_type_is(p, "text", &["rfc822-headers"])
                    || part_type_is(p, "message", &["rfc822-headers", "global-headers"])
            })
            .find_map(|p| MessageParser::default().parse_headers(p.contents()))
            .map(|m| recipients_of(&m))
    };
    let quoted = || text.returned_headers().map(|m| recipients_of(&m));
    let recipients = attached.or_else(headers_part).or_else(quoted)?;
    let [address] = <[EmailAddress; 1]>::try_from(recipients).ok()?;
    let found = first_status_code_at(explanation);
    let status = found.as_ref().map(|(_, code)| code.code.clone());
    let permanent = match status.as_deref() {
        Some(code) => code.starts_with('5'),
        None => !reads_as_delay(explanation),
    };
    Some(FailedRecipient {
        address,
        status,
        permanent,
        diagnostic: found
            .map(|(at, _)| line_around(explanation, at))
            .filter(|d| !d.is_empty())
            .map(|d| truncate_chars(&d, DIAGNOSTIC_MAX_CHARS)),
    })
}

/// True when the text at `at` lies on a `From:` / `To:`-style header line,
/// which names the sender or repeats the original headers.
fn is_in_header_line(text: &str, at: usize) -> bool {
    let line = line_before(text, at).trim_start().to_ascii_lowercase();
    [
        "from:",
        "sender:",
        "reply-to:",
        "return-path:",
        "to:",
        "cc:",
        "subject:",
        "message-id:",
        "references:",
        "in-reply-to:",
        "original-envelope-id:",
        "envelope-id:",
        "x-",
    ]
    .iter()
    .any(|h| line.starts_with(h))
}

fn reads_as_delay(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "delayed",
        "has not yet been delivered",
        "will continue",
        "will retry",
        "still trying",
        "not been delivered yet",
        "transient non-fatal",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// The line of `text` containing byte offset `at`, whitespace collapsed.
/// At most [`LINE_LOOKBACK`] bytes either side of `at`.
fn line_around(text: &str, at: usize) -> String {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = line_before(text, at);
    let mut end = text.len().min(at + LINE_LOOKBACK);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let after = &text[at..end];
    let after = after.find('\n').map_or(after, |i| &after[..i]);
    collapse_whitespace(&format!("{before}{after}"))
}

/// What the text after a recipient's address says about it: the rest of the
/// address's line, or else the next line (`addr on <date>` lines skipped).
fn describe_section(section: &str) -> Option<String> {
    section
        .lines()
        .map(|l| collapse_whitespace(l.trim_start_matches(['>', ':', ']', ')', '"', ' ', '\t'])))
        .find(|l| l.chars().any(char::is_alphanumeric) && !l.starts_with("on "))
}

/// True when the text about one recipient says the failure is temporary or
/// the message merely expired in the queue.
fn reads_as_temporary(section: &str) -> bool {
    let lower = section.to_lowercase();
    [
        "retry timeout exceeded",
        "failing for a long time",
        "expired",
        "try again later",
        "temporar",
        "delayed",
        "will retry",
        "will be retried",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// True when the text at `at` lies on a line asking the reader to contact
/// someone (`please contact <postmaster@…>`), not naming a recipient.
fn is_contact_line(text: &str, at: usize) -> bool {
    line_before(text, at).to_lowercase().contains("contact")
}

/// The start of the line holding byte offset `at`, up to `at`: at most
/// [`LINE_LOOKBACK`] bytes, so a huge single-line text stays cheap.
/// `at` must be a char boundary.
fn line_before(text: &str, at: usize) -> &str {
    let mut from = at.saturating_sub(LINE_LOOKBACK);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let window = &text[from..at];
    window.rfind('\n').map_or(window, |i| &window[i + 1..])
}

/// How far [`line_before`] and [`line_around`] look for a line's ends.
const LINE_LOOKBACK: usize = 512;

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX_DSN: &str = "Return-Path: <>\r\n\
From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\n\
To: support@helpdesk.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not\r\n\
be delivered to one or more recipients.\r\n\
\r\n\
<alice@customer.test>: host mx.customer.test said: 550 5.1.1 User unknown\r\n\
--B1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.test\r\n\
Arrival-Date: Mon,  1 Jan 2024 10:00:00 +0000\r\n\
\r\n\
Final-Recipient: rfc822; Alice@Customer.test\r\n\
Original-Recipient: rfc822;alice@customer.test\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; mx.customer.test\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <alice@customer.test>: Recipient address\r\n\
\x20   rejected: User unknown\r\n\
\r\n\
Final-Recipient: rfc822; bob@customer.test\r\n\
Action: delivered\r\n\
Status: 2.0.0\r\n\
\r\n\
--B1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: support@helpdesk.test\r\n\
To: alice@customer.test\r\n\
Subject: Your ticket\r\n\
Message-ID: <pd.1.abc@helpdesk.test>\r\n\
\r\n\
Hello\r\n\
--B1--\r\n";

    #[test]
    fn reads_an_rfc3464_report() {
        let report = parse_bounce(POSTFIX_DSN.as_bytes()).unwrap();
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("pd.1.abc@helpdesk.test")
        );
        assert_eq!(report.recipients.len(), 1, "the delivered one is left out");
        let alice = &report.recipients[0];
        assert_eq!(alice.address.as_str(), "alice@customer.test");
        assert_eq!(alice.status.as_deref(), Some("5.1.1"));
        assert!(alice.permanent);
        assert_eq!(
            alice.diagnostic.as_deref(),
            Some("550 5.1.1 <alice@customer.test>: Recipient address rejected: User unknown")
        );
    }

    #[test]
    fn reads_a_qmail_bounce() {
        let raw = "Return-Path: <>\r\n\
From: MAILER-DAEMON@mx.example.test\r\n\
To: support@helpdesk.test\r\n\
Subject: failure notice\r\n\
\r\n\
Hi. This is the qmail-send program at mx.example.test.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
This is a permanent error; I've given up. Sorry it didn't work out.\r\n\
\r\n\
<carol@customer.test>:\r\n\
192.0.2.1 does not like recipient.\r\n\
Remote host said: 550 5.1.1 <carol@customer.test>... User unknown\r\n\
Giving up on 192.0.2.1.\r\n\
\r\n\
--- Below this line is a copy of the message.\r\n\
\r\n\
Return-Path: <support@helpdesk.test>\r\n\
From: support@helpdesk.test\r\n\
To: carol@customer.test\r\n\
Message-ID: <pd.1.qmail@helpdesk.test>\r\n\
Subject: Your ticket\r\n\
\r\n\
Hello dave@customer.test\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("pd.1.qmail@helpdesk.test")
        );
        assert_eq!(report.recipients.len(), 1, "{report:?}");
        let carol = &report.recipients[0];
        assert_eq!(carol.address.as_str(), "carol@customer.test");
        assert_eq!(carol.status.as_deref(), Some("5.1.1"));
        assert!(carol.permanent);
        assert_eq!(
            carol.diagnostic.as_deref(),
            Some("Remote host said: 550 5.1.1 <carol@customer.test>... User unknown")
        );
    }

    #[test]
    fn a_delay_is_not_permanent() {
        let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n\
To: support@helpdesk.test\r\n\
Subject: Delayed Mail (still being retried)\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"D\"\r\n\
\r\n\
--D\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is a warning only; delivery attempts will continue.\r\n\
--D\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.test\r\n\
\r\n\
Final-Recipient: rfc822; erin@customer.test\r\n\
Action: delayed\r\n\
Status: 4.4.1\r\n\
Diagnostic-Code: X-Postfix; connect to mx.customer.test[192.0.2.9]:25: Connection timed out\r\n\
Will-Retry-Until: Fri, 5 Jan 2024 10:00:00 +0000\r\n\
\r\n\
--D\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: support@helpdesk.test\r\n\
Message-ID: <pd.1.delay@helpdesk.test>\r\n\
\r\n\
--D--\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("pd.1.delay@helpdesk.test")
        );
        let erin = &report.recipients[0];
        assert_eq!(erin.address.as_str(), "erin@customer.test");
        assert_eq!(erin.status.as_deref(), Some("4.4.1"));
        assert!(!erin.permanent);
    }

    #[test]
    fn a_bare_smtp_code_gives_its_class() {
        let raw = "From: postmaster@mx.example.test\r\nTo: support@helpdesk.test\r\n\
Subject: Undeliverable: Your ticket\r\n\r\n\
Delivery has failed to these recipients or groups:\r\n\r\n\
frank@customer.test\r\n\
Remote server returned 552 mailbox full\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        let frank = &report.recipients[0];
        assert_eq!(frank.address.as_str(), "frank@customer.test");
        assert_eq!(frank.status.as_deref(), Some("5.0.0"));
        assert!(frank.permanent);
        assert_eq!(report.original_message_id, None);
    }

    #[test]
    fn ordinary_mail_and_garbage_are_not_bounces() {
        let person = b"From: alice@customer.test\r\nTo: support@helpdesk.test\r\n\
Subject: Printer\r\nMessage-ID: <a@customer.test>\r\n\r\nIt says 550 5.1.1 user unknown.\r\n";
        assert_eq!(parse_bounce(person), None);
        for garbage in [
            &b""[..],
            b"\0\0\0\xff\xfe",
            b"not a mail at all",
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\nStatus: 5.\r\n--x",
            b"Message-ID:\r\n\r\n",
        ] {
            let _ = parse_bounce(garbage);
        }
        assert_eq!(parse_bounce(b"not a mail at all"), None);
        assert_eq!(parse_bounce(b"\0\0\0\xff\xfe"), None);
    }

    #[test]
    fn reads_an_exim_bounce_and_skips_contact_addresses() {
        let raw = "Return-path: <>\r\n\
X-Failed-Recipients: grace@customer.test\r\n\
Auto-Submitted: auto-replied\r\n\
From: Mail Delivery System <Mailer-Daemon@mx.example.test>\r\n\
To: support@helpdesk.test\r\n\
Subject: Mail delivery failed: returning message to sender\r\n\
\r\n\
This message was created automatically by mail delivery software.\r\n\
For help, please contact admin@mx.example.test.\r\n\
\r\n\
A message that you sent could not be delivered to one or more of its\r\n\
recipients. This is a permanent error. The following address(es) failed:\r\n\
\r\n\
  grace@customer.test\r\n\
    host mx.customer.test [192.0.2.7]\r\n\
    SMTP error from remote mail server after RCPT TO:<grace@customer.test>:\r\n\
    550 5.2.1 Mailbox disabled\r\n\
\r\n\
------ This is a copy of the message, including all the headers. ------\r\n\
\r\n\
Return-path: <support@helpdesk.test>\r\n\
To: grace@customer.test\r\n\
Message-Id: <pd.1.exim@helpdesk.test>\r\n\
\r\n\
Hello\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("pd.1.exim@helpdesk.test")
        );
        assert_eq!(report.recipients.len(), 1, "{report:?}");
        let grace = &report.recipients[0];
        assert_eq!(grace.address.as_str(), "grace@customer.test");
        assert_eq!(grace.status.as_deref(), Some("5.2.1"));
        assert_eq!(
            grace.diagnostic.as_deref(),
            Some("550 5.2.1 Mailbox disabled")
        );
    }

    #[test]
    fn a_report_with_a_broken_boundary_is_read_from_its_text() {
        let raw = "From: MAILER-DAEMON@mx.example.test\r\nTo: support@helpdesk.test\r\n\
Subject: Returned mail: see transcript for details\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"gone\"\r\n\r\n\
The original message was received at Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n\
Reporting-MTA: dns; mx.example.test\r\n\r\n\
Final-Recipient: RFC822; heidi@customer.test\r\n\
Action: failed\r\n\
Status: 5.1.2\r\n\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(report.recipients[0].address.as_str(), "heidi@customer.test");
        assert_eq!(report.recipients[0].status.as_deref(), Some("5.1.2"));
    }

    #[test]
    fn reads_an_amazon_ses_notification() {
        let raw = "From: no-reply@sns.amazonaws.com\r\nTo: support@helpdesk.test\r\n\
Subject: AWS Notification Message\r\n\r\n\
{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\
\"bouncedRecipients\":[{\"emailAddress\":\"ivan@customer.test\",\"action\":\"failed\",\
\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}]},\
\"mail\":{\"commonHeaders\":{\"messageId\":\"<pd.1.ses@helpdesk.test>\"}}}\r\n\r\n\
--\r\nIf you wish to stop receiving notifications from this topic, click below.\r\n";
        let report = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("pd.1.ses@helpdesk.test")
        );
        let ivan = &report.recipients[0];
        assert_eq!(ivan.address.as_str(), "ivan@customer.test");
        assert_eq!(ivan.status.as_deref(), Some("5.1.1"));
        assert_eq!(ivan.diagnostic.as_deref(), Some("550 5.1.1 user unknown"));
        assert!(is_ses_notification(&raw[raw.find('{').unwrap()..]));
    }

    #[test]
    fn complaints_receipts_and_successes_are_not_bounces() {
        let report = |report_type: &str, fields: &str| {
            format!(
                "From: MAILER-DAEMON@mx.example.test\r\nTo: support@helpdesk.test\r\n\
Subject: Report\r\n\
Content-Type: multipart/report; report-type={report_type}; boundary=\"R\"\r\n\r\n\
--R\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
--R\r\nContent-Type: message/{report_type}\r\n\r\n{fields}\r\n--R--\r\n"
            )
        };
        let complaint = report("feedback-report", "Feedback-Type: abuse\r\n");
        let receipt = report(
            "disposition-notification",
            "Disposition: manual-action/MDN-sent-manually; displayed\r\n",
        );
        let success = report(
            "delivery-status",
            "Reporting-MTA: dns; mx.example.test\r\n\r\n\
Final-Recipient: rfc822; judy@customer.test\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
        );
        for raw in [complaint, receipt, success] {
            assert_eq!(parse_bounce(raw.as_bytes()), None, "{raw}");
        }
    }

    #[test]
    fn bounce_wording() {
        assert!(subject_reads_as_bounce("Undeliverable: Your ticket"));
        assert!(subject_reads_as_bounce("Mail delivery failed"));
        assert!(!subject_reads_as_bounce("Fwd: Undeliverable: Your ticket"));
        assert!(!subject_reads_as_bounce("Re: Mail delivery failed"));
        assert!(!subject_reads_as_bounce("Printer broken"));
        assert!(text_reads_as_bounce(
            "Hi. This is the qmail-send program at mx.example.test.\n"
        ));
        assert!(!text_reads_as_bounce(
            "Hi,\n\nmy printer is broken, can you help?\n"
        ));
        let quoted = "Hi,\n> This message was created automatically by mail delivery software.\n";
        assert!(!text_reads_as_bounce(quoted), "quoted lines do not count");
    }

    #[test]
    fn status_codes_are_not_taken_from_ip_addresses_or_versions() {
        assert_eq!(first_enhanced_code("host 10.5.1.1 said"), None);
        assert_eq!(first_enhanced_code("Postfix 2.11.3 here"), None);
        assert_eq!(
            first_enhanced_code("said: 550-5.1.1 user unknown (#5.5.0)").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            first_status_code("said: 550 no such user").map(|s| s.code),
            Some("5.0.0".to_string())
        );
    }
}
