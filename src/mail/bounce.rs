//! Bounces → [`BounceReport`]: which recipients of one of our messages could
//! not be reached, whether for good, and which message it was.
//!
//! Pure: bytes in, report out, no I/O. MIME is mail-parser's; this module only
//! reads what a delivery report says. Sources, most trusted first:
//! 1. an RFC 3464 report (`multipart/report; report-type=delivery-status`):
//!    the `message/delivery-status` part gives one block per recipient, the
//!    returned `message/rfc822` or `text/rfc822-headers` part the Message-ID;
//! 2. the text of a non-standard bounce (qmail, Exim, Sendmail, Exchange,
//!    Gmail …): addresses, enhanced status codes (`5.1.1`) or SMTP replies
//!    (`550`) found in the explanation, and a `Message-ID:` line in the
//!    quoted original.
//!
//! Complaint reports (ARF, `report-type=feedback-report`) and success
//! notifications are not bounces and give `None`.

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
    if report_type.as_deref() == Some("feedback-report") {
        return None;
    }

    let original_message_id = original_message_id(&msg);
    if let Some(statuses) = delivery_status_recipients(&msg) {
        if statuses.any_recipient_block && statuses.failed.is_empty() {
            // Every recipient was delivered, relayed or expanded.
            return None;
        }
        if !statuses.failed.is_empty() {
            return Some(BounceReport {
                original_message_id,
                recipients: statuses.failed,
            });
        }
    }

    let explanation = explanation_text(&msg);
    let is_delivery_report = report_type.as_deref() == Some("delivery-status");
    if !is_delivery_report && !looks_like_bounce(&msg, &explanation) {
        return None;
    }
    Some(BounceReport {
        original_message_id,
        recipients: recipients_from_text(&msg, &explanation),
    })
}

// ---------------------------------------------------------------------------
// RFC 3464 delivery-status parts

/// The recipients found in `message/delivery-status` parts.
struct DeliveryStatuses {
    failed: Vec<FailedRecipient>,
    /// True when at least one per-recipient block was read, failed or not.
    any_recipient_block: bool,
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
    let mut found = None;
    for part in msg.parts.iter().filter(|p| {
        part_type_is(
            p,
            "message",
            &["delivery-status", "global-delivery-status"],
        )
    }) {
        let statuses = found.get_or_insert(DeliveryStatuses {
            failed: Vec::new(),
            any_recipient_block: false,
        });
        let text = String::from_utf8_lossy(part.contents());
        for block in field_blocks(&text) {
            let Some(fields) = DsnRecipientFields::parse(&block) else {
                continue;
            };
            statuses.any_recipient_block = true;
            if let Some(recipient) = fields.into_failed_recipient() {
                if !statuses
                    .failed
                    .iter()
                    .any(|r| r.address == recipient.address)
                {
                    statuses.failed.push(recipient);
                }
            }
        }
    }
    found
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
                "final-recipient" | "x-actual-recipient" => &mut fields.final_recipient,
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

    fn into_failed_recipient(self) -> Option<FailedRecipient> {
        let action = self
            .action
            .as_deref()
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_ascii_lowercase());
        if action
            .as_deref()
            .is_some_and(|a| matches!(a, "delivered" | "relayed" | "expanded"))
        {
            return None;
        }
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
        let status = match (self.status.as_deref().and_then(first_enhanced_code), diagnostic_code) {
            // A generic `5.0.0` is refined by the server's own code of the same class.
            (Some(generic), Some(specific))
                if generic.ends_with(".0.0") && specific.enhanced && specific.class() == &generic[..1] =>
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
// The returned message

/// The Message-ID of the returned message: from an attached `message/rfc822`,
/// else a `text/rfc822-headers` part, else a `Message-ID:` line quoted in text.
fn original_message_id(msg: &Message<'_>) -> Option<String> {
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
    let from_quoted_text = || {
        msg.parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.message().is_none() && p.sub_parts().is_none())
            .filter_map(|(i, p)| {
                if i == 0 && msg.parts.len() == 1 {
                    // A single-part bounce: its own body, not its headers.
                    return p.text_contents().map(str::to_string);
                }
                if p.is_text_html() {
                    return None;
                }
                Some(String::from_utf8_lossy(p.contents()).into_owned())
            })
            .find_map(|text| quoted_message_id(&text))
    };
    from_attached
        .or_else(from_headers_part)
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

/// The human-readable part of the bounce: its text bodies, up to where the
/// returned original message starts.
fn explanation_text(msg: &Message<'_>) -> String {
    let mut text = String::new();
    let mut i = 0;
    while let Some(body) = msg.body_text(i) {
        text.push_str(&body);
        text.push('\n');
        i += 1;
    }
    let mut explanation = String::new();
    for line in text.lines() {
        if starts_returned_message(line) {
            break;
        }
        explanation.push_str(line);
        explanation.push('\n');
    }
    explanation
}

/// True for the line where a text bounce starts quoting the original message.
fn starts_returned_message(line: &str) -> bool {
    let trimmed = line.trim();
    let lower = trimmed.to_ascii_lowercase();
    let is_rule = ["--", "==", "**", "__", "##"]
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

fn local_part_is_daemon(address: &EmailAddress) -> bool {
    matches!(
        address.base_local_part(),
        "mailer-daemon" | "mail-daemon" | "mailerdaemon" | "postmaster" | "double-bounce"
    )
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
    for name in ["Return-Path", "Delivered-To", "X-Original-To"] {
        for value in msg.header_values(name) {
            if let Some(text) = value.as_text() {
                own.extend(ADDRESS.find_iter(text).filter_map(|m| EmailAddress::parse(m.as_str()).ok()));
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

const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered mail",
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
    "bounce",
    "rejected",
    "delayed mail",
    "warning: could not send message",
];

const BOUNCE_PHRASES: &[&str] = &[
    "this is the qmail-send program",
    "created automatically by mail delivery software",
    "could not be delivered to one or more",
    "delivery to the following recipient",
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    "did not reach the following recipient",
    "did not reach some or all of the intended recipients",
    "i'm afraid i wasn't able to deliver",
    "delivery has failed to these recipients",
    "your message could not be delivered",
    "message could not be delivered",
    "was not delivered to",
    "could not be delivered",
    "undeliverable",
    "undelivered mail",
    "permanent error",
    "permanent failure",
    "failed permanently",
    "unable to deliver",
    "delivery failed",
    "user unknown",
    "mailbox unavailable",
    "mailbox full",
    "no such user",
    "has not yet been delivered",
    "delivery attempts will continue",
    "message was rejected",
    "email you sent was rejected",
];

/// For mail without a delivery-status part: does it read like a bounce?
fn looks_like_bounce(msg: &Message<'_>, explanation: &str) -> bool {
    if msg.header_raw("X-Failed-Recipients").is_some() {
        return true;
    }
    let from_daemon = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| EmailAddress::parse(a.address()?).ok())
        .is_some_and(|a| local_part_is_daemon(&a));
    let empty_return_path = msg
        .header_raw("Return-Path")
        .is_some_and(|r| r.trim().trim_matches(['<', '>', ' ']).is_empty());
    let subject = msg.subject().unwrap_or_default().to_lowercase();
    let subject_says_so = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    let lower = explanation.to_lowercase();
    let body_says_so = BOUNCE_PHRASES.iter().any(|p| lower.contains(p));
    let automated = from_daemon
        || empty_return_path
        || !header_text(msg, "Auto-Submitted").is_empty()
            && !header_text(msg, "Auto-Submitted").starts_with("no");
    (automated && (subject_says_so || body_says_so)) || (subject_says_so && body_says_so)
}

/// The failed recipients named in a text bounce: the `X-Failed-Recipients`
/// header when there is one, else the addresses in the explanation that are
/// not the bounce's own.
fn recipients_from_text(msg: &Message<'_>, explanation: &str) -> Vec<FailedRecipient> {
    let own = own_addresses(msg);
    let from_header: Vec<EmailAddress> = msg
        .header_values("X-Failed-Recipients")
        .filter_map(|v| v.as_text())
        .flat_map(|t| ADDRESS.find_iter(t).map(|m| m.as_str().to_string()))
        .chain(
            msg.header_raw("X-Failed-Recipients")
                .into_iter()
                .flat_map(|t| ADDRESS.find_iter(t).map(|m| m.as_str().to_string())),
        )
        .filter_map(|a| EmailAddress::parse(&a).ok())
        .collect();

    // Every mention of a candidate, in text order.
    let mut mentions: Vec<(usize, usize, EmailAddress)> = Vec::new();
    for m in ADDRESS.find_iter(explanation) {
        let Ok(address) = EmailAddress::parse(m.as_str()) else {
            continue;
        };
        let candidate = if from_header.is_empty() {
            !own.contains(&address) && !local_part_is_daemon(&address)
        } else {
            from_header.contains(&address)
        };
        if candidate && !is_in_header_line(explanation, m.start()) {
            mentions.push((m.start(), m.end(), address));
        }
    }
    let mut addresses: Vec<EmailAddress> = Vec::new();
    for address in from_header.iter().chain(mentions.iter().map(|(_, _, a)| a)) {
        if !addresses.contains(address) {
            addresses.push(address.clone());
        }
    }

    let whole = first_status_code_at(explanation);
    let delayed = reads_as_delay(explanation);
    addresses
        .into_iter()
        .map(|address| {
            // From the first mention of this address to the first mention of
            // another one: the part of the text about this recipient.
            let section = mentions
                .iter()
                .position(|(_, _, a)| *a == address)
                .map(|first| {
                    let start = mentions[first].1;
                    let end = mentions[first..]
                        .iter()
                        .find(|(_, _, a)| *a != address)
                        .map_or(explanation.len(), |(s, _, _)| *s);
                    &explanation[start..end.max(start)]
                })
                .unwrap_or_default();
            let (status, diagnostic) = match first_status_code_at(section) {
                Some((at, code)) => (Some(code), Some(line_around(section, at))),
                None => match &whole {
                    Some((at, _)) => (
                        first_status_code(explanation),
                        Some(line_around(explanation, *at)),
                    ),
                    None => (None, first_nonempty_line(section)),
                },
            };
            let status = status.map(|s| s.code);
            let permanent = match status.as_deref() {
                Some(code) => code.starts_with('5'),
                None => !delayed,
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

/// True when the text at `at` lies on a `From:` / `To:`-style header line,
/// which names the sender or repeats the original headers.
fn is_in_header_line(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..at].trim_start().to_ascii_lowercase();
    ["from:", "sender:", "reply-to:", "return-path:", "message-id:", "references:", "in-reply-to:"]
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
fn line_around(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    collapse_whitespace(&text[start..end])
}

fn first_nonempty_line(text: &str) -> Option<String> {
    text.lines()
        .map(|l| collapse_whitespace(l.trim_start_matches([':', '>'])))
        .find(|l| !l.is_empty())
}

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
    rejected: User unknown\r\n\
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
