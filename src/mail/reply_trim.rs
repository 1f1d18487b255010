//! Reply trimming: recover what a person actually wrote in an email reply.
//!
//! Replies to ticket notifications arrive with the conversation attached: an
//! attribution ("On …, John wrote:"), the previous message quoted with `>` or
//! pasted below an Outlook `From:`/`Sent:` block, forwarded messages, and the
//! sender's signature ("-- ", "Sent from my iPhone"). A ticket should only
//! grow by the new text, so this module cuts the rest away. It works on plain
//! text (an HTML-only body has to be converted first) and depends on nothing
//! but `regex`.
//!
//! The approach is line based:
//!
//! 1. Everything from our own `-- Reply above this line --` marker on is
//!    dropped. We put that marker into every notification, so it is the one
//!    signal that needs no guessing.
//! 2. Each remaining line is classified (blank, text, `>` quote, signature)
//!    and quote headers are located as spans of lines: attributions in the
//!    languages mail clients write them in (possibly wrapped over several
//!    lines), `-----Original Message-----` separators, `From:`/`Sent:`/`To:`
//!    header blocks and forward markers.
//! 3. The reply is the text before the first signature or quote header, minus
//!    a trailing `>` quote. Two layouts keep more: a message that *starts*
//!    with a quote header (bottom posting, a forward with a comment below it)
//!    keeps what follows that header, and a header followed by a quote and
//!    then more text is an inline (interleaved) reply whose quotes are the
//!    context being answered, so only the header line goes.
//!
//! The rules are heuristics, checked against a corpus of real replies in
//! `tests/reply_trimming_corpus.rs`. When they would leave nothing,
//! [`trim_reply`] falls back to the body up to its quoted history and then to
//! the whole body: a reply is never silently lost.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// The part of a reply the person wrote, and why the rest was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimmedReply {
    /// The reply text, without leading or trailing blank lines. Empty only
    /// when the body was empty or whitespace.
    pub text: String,
    /// Why text was removed; `None` when the body was returned as is.
    ///
    /// When several rules removed text, this is the one that decided where
    /// the reply ends (our marker, if present, always wins); a reason for
    /// removed *leading* text is only given when nothing was cut at the end.
    pub cut: Option<CutReason>,
}

/// The rule that cut a reply short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Our own `-- Reply above this line --` marker.
    OurMarker,
    /// An attribution ("On … wrote:"), an `-----Original Message-----`
    /// separator or a `From:`/`Sent:` header block.
    QuoteHeader,
    /// A block of `>`-quoted lines after the last thing the person wrote.
    QuotedLines,
    /// A signature: a `-- ` delimiter line or a "Sent from my …" line.
    Signature,
    /// A forwarded-message marker.
    Forward,
}

impl CutReason {
    /// A stable snake_case name, for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            CutReason::OurMarker => "our_marker",
            CutReason::QuoteHeader => "quote_header",
            CutReason::QuotedLines => "quoted_lines",
            CutReason::Signature => "signature",
            CutReason::Forward => "forward",
        }
    }
}

/// Separate the text a person wrote from the quoted history and signature in
/// the plain-text body of an inbound reply.
pub fn trim_reply(body: &str) -> TrimmedReply {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    let all_lines: Vec<&str> = body.split('\n').collect();

    let marker = all_lines.iter().position(|line| OUR_MARKER.is_match(line));
    let lines = &all_lines[..marker.unwrap_or(all_lines.len())];
    let message = Message::classify(lines);
    let selection = message.select();
    let text = render(lines, selection.kept_lines());
    if !text.is_empty() {
        let cut = match marker {
            Some(_) => Some(CutReason::OurMarker),
            None => selection.reason,
        };
        return TrimmedReply { text, cut };
    }
    never_empty(&all_lines)
}

/// Fallback for when the rules leave nothing, e.g. a reply that consists of
/// a signature, or a forward without a comment: keep what precedes the quoted
/// history, or failing that the whole body.
fn never_empty(lines: &[&str]) -> TrimmedReply {
    let message = Message::classify(lines);
    if let Some((history, reason)) = message.history_start() {
        let text = render(lines, 0..history);
        if !text.is_empty() {
            return TrimmedReply {
                text,
                cut: Some(reason),
            };
        }
    }
    TrimmedReply {
        text: render(lines, 0..lines.len()),
        cut: None,
    }
}

/// Join the given lines, dropping blank lines at both ends and trailing
/// whitespace (but keeping the first line's indentation: it may be code).
fn render(lines: &[&str], kept: impl IntoIterator<Item = usize>) -> String {
    let kept: Vec<&str> = kept.into_iter().map(|i| lines[i]).collect();
    let first = kept.iter().position(|line| !is_blank(line));
    let last = kept.iter().rposition(|line| !is_blank(line));
    match (first, last) {
        (Some(first), Some(last)) => kept[first..=last].join("\n").trim_end().to_owned(),
        _ => String::new(),
    }
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

// ---------------------------------------------------------------------------
// Patterns. All are compiled once; each is matched against a single line, or
// against a few lines joined with spaces (attributions, see `Message`).
// ---------------------------------------------------------------------------

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in reply-trimming pattern must compile")
}

/// Our own marker, placed at the top of every notification we send. Mail
/// clients and HTML-to-text conversion mangle its decoration, so any run of
/// two or more dashes, hashes or equals signs before it is accepted (a word
/// or two may come between, as in "-- Please reply above this line --"), as
/// is the phrase alone on a line with any decoration. It is looked for in
/// quoted lines too: below it is our own notification, however deeply quoted.
static OUR_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?:(?:-{2,}|#{2,}|={2,})\s*(?:\p{L}+\s+){0,2}reply\s+above\s+this\s+line|^[\W_]*reply\s+above\s+this\s+line[\W_]*$)",
    )
});

/// A quoted line: `>` (any depth, with or without a following space), or a
/// Supercite-style initials prefix ("C> ", "JD> ") still produced by Emacs
/// and Usenet-era clients. Only initials count, followed by a space, another
/// `>` or the end of the line: a word before `>` is as likely prose or a UI
/// path ("Settings> Accounts") as a quote.
static QUOTE_LINE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[ \t]*(?:>|\p{Lu}{1,3}>(?:[ \t>]|$))"));

/// The quote prefix itself, to look at what a quoted line says.
static QUOTE_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:[ \t]*(?:\p{Lu}{1,3}>|>))+[ \t]*"));

/// A line made of one repeated rule character: the `-- ` signature delimiter
/// (most clients strip its trailing space), the `____` rule Outlook puts above
/// a quoted message, and the `***`, `===`, `~~~`, `+++`, `###` rules people
/// draw above a signature. `ᐧ` alone on a line is the marker inserted by
/// Gmail tracking extensions (Streak, Mixmax) at the start of the signature.
static SIGNATURE_DELIMITER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[ \t]*(?:-{2,}|_{2,}|\*{3,}|#{3,}|~{3,}|={3,}|\+{3,}|ᐧ)[ \t]*$"));

/// Signatures added by mobile and desktop mail apps: "Sent from my iPhone",
/// "Envoyé de mon iPad", "Von meinem iPhone gesendet", "Get Outlook for iOS"…
/// "Sent from/with/via …" lines are prose as often as signatures, so they
/// count only when they name the sender's own device ("my …" in the
/// language's words) or a device or mail app.
static MOBILE_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    let sent = "sent|envoyé|enviado|enviada|inviato|verzonden|verstuurd|gesendet|skickat|\
                sendt|wysłane|wysłano|odesláno|отправлено|lähetetty";
    let via = "from|with|via|using|by|on|de|depuis|desde|do|da|dal|vanaf|van|met|von|mit|\
               från|fra|z|ze|с|из";
    let my = "my|mon|ma|mein|meinem|meiner|mi|meu|minha|mio|mia|mijn|min|mitt|mój|mojego|\
              mého|моего|мого";
    let device = "iphone|ipad|ipod|android|mobile|mobil|mobilgerät|handy|phone|smartphone|\
                  cell|tablet|device|blackberry|samsung|galaxy|pixel|huawei|xiaomi|windows|\
                  mail|outlook|yahoo|gmail|airmail|mailbox|móvil|celular|telefon|telefone|\
                  telefoon|telefono|dispositivo|appareil|apparaat|gerät";
    regex(&format!(
        r"(?i)^[\s(<\[]*(?:(?:{sent})\s+(?:{via})\s+(?:(?:{my})\b|.*\b(?:{device})\b).*|from\s+my\s+(?:{device})\b.*|(?:diese\s+nachricht\s+wurde\s+)?von\s+meinem\s+.+\s+gesendet\W*|get\s+\[?outlook\s+for\s+(?:ios|android)\b.*|(?:发自|發自|来自|來自|从|從)我的.*|\S.*から送信)$"
    ))
});

/// A "Sent from my …" signature is a short line; a long one is prose.
const MAX_MOBILE_SIGNATURE_LEN: usize = 150;

/// `-----Original Message-----` and its translations (Outlook, Thunderbird,
/// Samsung and other mobile clients), in any decoration of dashes, stars
/// (bold in HTML-to-text conversions) and underscores.
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^[\s*_]*-{2,}\s*(?:original message|original nachricht|ursprüngliche nachricht|mensaje original|message d'origine|message original|messaggio originale|mensagem original|oorspronkelijk bericht|origineel bericht|ursprungligt meddelande|oprindelig meddelelse|opprinnelig melding|původní zpráva|wiadomość oryginalna|oryginalna wiadomość|исходное сообщение|оригинальное сообщение|alkuperäinen viesti|eredeti üzenet|orijinal mesaj|原始邮件|原始郵件|元のメッセージ)\s*-{2,}[\s*_]*$",
    )
});

/// Forwarded-message markers: Gmail and Thunderbird wrap theirs in dashes,
/// Apple Mail ends its with a colon.
static FORWARD_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^[\s*_]*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|mensagem encaminhada|mensagem reencaminhada|doorgestuurd bericht|vidarebefordrat meddelande|videresendt meddelelse|videresendt melding|přeposlaná zpráva|przekazana wiadomość|wiadomość przekazana|пересылаемое сообщение|välitetty viesti|továbbított üzenet|転送されたメッセージ|转发的邮件|轉寄的郵件)\s*-{2,}|(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié|début du message transféré|inicio del mensaje reenviado|comienzo del mensaje reenviado|inizio messaggio inoltrato|início da mensagem reencaminhada|início da mensagem encaminhada|begin doorgestuurd bericht|vidarebefordrat brev|videresendt besked|videresendt e-post|начало пересылаемого сообщения)\s*[:：])[\s*_]*$",
    )
});

/// The start of a header field line (`From:`, `*Sent:*`, `De :`, `件名：`),
/// capturing the field name; `field_kind` decides whether it is one.
static HEADER_FIELD: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^\s*[*_]{0,2}(\p{L}[\p{L}\- ]*?)\s*[*_]{0,2}\s*[:：]"));

/// "wrote" as attributions say it, in the languages we have seen.
/// `napisał(a)` / `napsal(a)` / `написал(а)` are how Polish, Czech and
/// Russian clients avoid choosing a grammatical gender.
const WROTE: &str = r"(?:\b(?:wrote|writes|schrieb|a\s+écrit|escribió|escribio|escreveu|schreef|geschreven|ha\s+scritto|scrisse|skrev|napisał|napisała|napsal|napsala|написал|написала|написав|пише|kirjoitti|yazdı|írta|έγραψε|a\s+scris)(?:\(a\)|\(а\))?|写道|寫道)";

/// What may follow "wrote": German "schrieb am Fr., 28. Apr. 2017 um 11:53
/// Uhr:" and "schrieb Name <addr>:", Dutch "schreef … het volgende
/// geschreven:". The attribution then ends in a colon (full-width in CJK), or
/// in dashes for Zoho's "---- On … wrote ----".
const WROTE_TAIL: &str = r"(?:\s.*?)?\s*(?:[:：]|-{2,})\s*$";

/// An address in angle brackets, as wrapped mail clients leave it: spaces
/// inside the brackets (a line break was there) and `mailto:` are tolerated.
const ADDRESS: &str = r"<\s*(?:mailto:)?[^<>\s]+@[^<>\s]+\s*>";

/// "On <date>, <name> wrote:" and its translations, introduced by a
/// preposition: Gmail, Apple Mail, Thunderbird and most webmails ("On …
/// wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:", "Op …
/// schreef …:", "Il giorno … ha scritto:", "Em … escreveu:", "Den … skrev
/// …:", "Dnia … napisał(a):", Eudora's "At 6/16/2016, you wrote:"). A digit
/// (the date) is required so that prose like "On reflection I wrote:" is not
/// taken.
static LEAD_IN_ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)^-*\s*(?:on|am|le|el|op|il|em|den|dnia|w\s+dniu|dne|at|en|в|у|在)\s.*?\d.*{WROTE}{WROTE_TAIL}"
    ))
});

/// Attributions that open with the date, optionally after a weekday:
/// Russian, Ukrainian and Polish clients ("20 окт. 2016 г. 19:37
/// пользователь … написал:", "23 mar 2017 21:25 "Neil" <…> napisał(a):").
static DATE_FIRST_ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)^(?:\p{{L}}+,?\s+)?\d{{1,4}}[.\s/-].*{WROTE}{WROTE_TAIL}"
    ))
});

/// "Name <address> wrote:" (K-9, older Gmail, Google Inbox's "Name <addr>
/// schrieb am …:"). The address is what tells it from prose.
static NAME_FIRST_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)^[^<>]+{ADDRESS}\s*{WROTE}{WROTE_TAIL}")));

/// "Name wrote:" alone (Thunderbird's and many list clients' default); only
/// taken as an attribution on a line of its own, after a blank line (else it
/// may be the wrapped end of a longer one) and before a quote.
static SHORT_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)^[\p{{L}}\p{{M}}'’.\- ]+\s{WROTE}\s*[:：]$")));

/// A name is short: a longer "… wrote:" line is prose.
const MAX_SHORT_ATTRIBUTION_LEN: usize = 80;

/// Gmail's numeric-date attribution, used in many locales and by CJK clients,
/// which has no verb at all: "2016-03-03 17:21 GMT+01:00 Name <addr>:",
/// "2013/7/20 Name <addr>", "2024年1月1日(月) 10:00 Name <addr>:". Either the
/// GMT offset or the address must be there; the name may not contain `=`,
/// `:`, `;` or brackets so that pasted log lines are not mistaken for it.
static NUMERIC_DATE_ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    let date = r"\d{4}(?:[-/.]\d{1,2}[-/.]\d{1,2}|年\d{1,2}月\d{1,2}日(?:\s*[(（]\p{L}[)）])?)";
    let time = r"\d{1,2}:\d{2}(?::\d{2})?";
    let name = r"[^<>=:;\[\]{}]+";
    regex(&format!(
        r"(?i)^{date}(?:\s+{time}\s+GMT[+-]\d{{1,2}}:?\d{{2}}\s+{name}(?:{ADDRESS})?|(?:\s+{time})?\s+{name}{ADDRESS})\s*[:：]?$"
    ))
});

/// Where `NUMERIC_DATE_ATTRIBUTION` can start: the prefilter for it.
static STARTS_WITH_NUMERIC_DATE: LazyLock<Regex> = LazyLock::new(|| regex(r"^\s*\d{4}[-/.年]"));

/// An attribution is at most this many lines (Gmail wraps long ones inside
/// the name and the address, e.g. `Name\n\n<\nmailto:addr\n> wrote:`)…
const MAX_ATTRIBUTION_LINES: usize = 5;
/// … and at most this many bytes once joined.
const MAX_ATTRIBUTION_LEN: usize = 500;

/// Non-field lines tolerated inside a header block (a wrapped `Subject:`).
const MAX_FIELD_CONTINUATION_LINES: usize = 2;
/// Header blocks are short; the bound keeps pathological input linear.
const MAX_FIELD_BLOCK_LINES: usize = 30;

fn is_attribution_text(text: &str) -> bool {
    LEAD_IN_ATTRIBUTION.is_match(text)
        || DATE_FIRST_ATTRIBUTION.is_match(text)
        || NAME_FIRST_ATTRIBUTION.is_match(text)
        || NUMERIC_DATE_ATTRIBUTION.is_match(text)
}

/// Why a quote starting with `line` was cut: it may open with a quoted
/// attribution or forward marker.
fn quoted_reason(line: &str) -> CutReason {
    let text = match QUOTE_PREFIX.find(line) {
        Some(prefix) => &line[prefix.end()..],
        None => line,
    };
    if FORWARD_MARKER.is_match(text) {
        CutReason::Forward
    } else if ORIGINAL_MESSAGE.is_match(text) || is_attribution_text(text.trim()) {
        CutReason::QuoteHeader
    } else {
        CutReason::QuotedLines
    }
}

fn is_mobile_signature(line: &str) -> bool {
    line.len() <= MAX_MOBILE_SIGNATURE_LEN && MOBILE_SIGNATURE.is_match(line)
}

/// Header fields, as bits so that a block can count the distinct ones.
mod field {
    pub const FROM: u8 = 1;
    pub const DATE: u8 = 1 << 1;
    pub const TO: u8 = 1 << 2;
    pub const CC: u8 = 1 << 3;
    pub const SUBJECT: u8 = 1 << 4;
    pub const REPLY_TO: u8 = 1 << 5;
}

/// Header field names as Outlook and other clients localise them, `|`
/// separated and lower case.
const FIELD_NAMES: [(u8, &str); 6] = [
    (
        field::FROM,
        "from|von|de|da|van|från|fra|od|от|lähettäjä|feladó|expéditeur|remitente|kimden|\
         差出人|发件人|寄件者",
    ),
    (
        field::DATE,
        "sent|date|gesendet|datum|envoyé|enviado|enviada|fecha|data|inviato|verzonden|skickat|\
         sendt|dato|wysłano|odesláno|отправлено|дата|lähetetty|päivämäärä|elküldve|dátum|\
         tarih|送信日時|日付|发送时间|日期|寄件日期",
    ),
    (
        field::TO,
        "to|an|à|a|para|aan|till|til|do|komu|кому|vastaanottaja|címzett|kime|宛先|收件人|收件者",
    ),
    (
        field::CC,
        "cc|kopie|copie|cópia|copia|kopia|копия|kopio|másolat|抄送|副本",
    ),
    (
        field::SUBJECT,
        "subject|betreff|objet|asunto|assunto|oggetto|onderwerp|ämne|emne|temat|předmět|тема|\
         aihe|tárgy|konu|件名|主题|主旨",
    ),
    (
        field::REPLY_TO,
        "reply-to|antwort an|répondre à|responder a|rispondi a|risposta|antwoord aan|\
         svara till|svar til|odpowiedz do",
    ),
];

/// The header field a line starts with, if any.
fn field_kind(line: &str) -> Option<u8> {
    let name = HEADER_FIELD.captures(line)?.get(1)?.as_str().to_lowercase();
    FIELD_NAMES
        .iter()
        .find(|(_, names)| names.split('|').any(|candidate| candidate == name))
        .map(|&(kind, _)| kind)
}

// ---------------------------------------------------------------------------
// Line classification and selection.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    Text,
    Quote,
    /// A signature delimiter or a mobile signature.
    Signature,
    /// Part of a quote header (see `Message::headers`).
    Header,
}

/// A quote header: lines `start..end`.
#[derive(Debug, Clone, Copy)]
struct Header {
    start: usize,
    end: usize,
    reason: CutReason,
}

/// The body's lines, classified.
struct Message<'a> {
    lines: &'a [&'a str],
    kinds: Vec<Kind>,
    /// Lines of fenced code blocks (```), which are never quotes, signatures
    /// or headers: `#` comments and `> ` prompts are code there.
    in_code: Vec<bool>,
    /// The header field each text line starts with, if any.
    fields: Vec<Option<u8>>,
    /// Quote headers, in order and disjoint.
    headers: Vec<Header>,
}

/// Which lines of the message are the reply.
struct Selection {
    start: usize,
    end: usize,
    /// Inline-reply headers within `start..end`, in order, left out.
    dropped: Vec<Range<usize>>,
    reason: Option<CutReason>,
}

impl Selection {
    fn kept_lines(&self) -> Vec<usize> {
        let mut kept = Vec::new();
        let mut next = self.start;
        for range in &self.dropped {
            kept.extend(next..range.start.min(self.end));
            next = next.max(range.end);
        }
        kept.extend(next..self.end);
        kept
    }
}

impl<'a> Message<'a> {
    fn classify(lines: &'a [&'a str]) -> Self {
        let in_code = fenced_code_lines(lines);
        let kinds: Vec<Kind> = lines
            .iter()
            .zip(&in_code)
            .map(|(line, &code)| classify_line(line, code))
            .collect();
        let fields = lines
            .iter()
            .zip(&kinds)
            .map(|(line, &kind)| match kind {
                Kind::Text => field_kind(line),
                _ => None,
            })
            .collect();
        let mut message = Message {
            lines,
            kinds,
            in_code,
            fields,
            headers: Vec::new(),
        };
        message.find_headers();
        message
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    /// The first non-blank line in `from..to`.
    fn next_non_blank(&self, from: usize, to: usize) -> Option<usize> {
        (from..to).find(|&i| self.kinds[i] != Kind::Blank)
    }

    /// The end of the `>` quote starting at `first`: blank lines between
    /// quoted paragraphs belong to it, blank lines after it do not.
    fn quote_block_end(&self, first: usize, to: usize) -> usize {
        let mut end = first;
        for i in first..to {
            match self.kinds[i] {
                Kind::Quote => end = i + 1,
                Kind::Blank => {}
                _ => break,
            }
        }
        end
    }

    fn find_headers(&mut self) {
        let mut floor = 0;
        let mut line = 0;
        while line < self.len() {
            let header = self
                .attribution_ending_at(line, floor)
                .or_else(|| self.block_header_at(line));
            match header {
                Some(header) => {
                    self.kinds[header.start..header.end].fill(Kind::Header);
                    self.headers.push(header);
                    floor = header.end;
                    line = header.end;
                }
                None => line += 1,
            }
        }
    }

    /// An attribution whose last line is `end`. Attributions are wrapped by
    /// clients at arbitrary points, so lines before `end` are joined one at a
    /// time; the shortest window that reads as an attribution wins, which
    /// keeps the user's last sentence before it out of the header.
    fn attribution_ending_at(&self, end: usize, floor: usize) -> Option<Header> {
        if self.in_code[end] || self.kinds[end] == Kind::Blank {
            return None;
        }
        // Cheap prefilter before joining lines: attributions end in a colon
        // or dashes, except the numeric-date form, recognised by its start.
        let ends_like_attribution = self.lines[end].trim_end().ends_with([':', '：', '-']);
        let earliest = (end + 1).saturating_sub(MAX_ATTRIBUTION_LINES).max(floor);
        (earliest..=end)
            .rev()
            .filter(|&start| {
                ends_like_attribution || STARTS_WITH_NUMERIC_DATE.is_match(self.lines[start])
            })
            .find(|&start| self.is_attribution(start, end))
            .map(|start| Header {
                start,
                end: end + 1,
                reason: CutReason::QuoteHeader,
            })
    }

    fn is_attribution(&self, start: usize, end: usize) -> bool {
        if self.kinds[start] != Kind::Text {
            return false;
        }
        let mut joined = String::new();
        for i in start..=end {
            if self.in_code[i] {
                return false;
            }
            match self.kinds[i] {
                Kind::Blank => continue,
                Kind::Text => {}
                // Wrapping inside `<address>` leaves a line starting with the
                // closing `>` (`> wrote:`), which is not a quote.
                Kind::Quote if joined.matches('<').count() > joined.matches('>').count() => {}
                _ => return false,
            }
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(self.lines[i].trim());
            if joined.len() > MAX_ATTRIBUTION_LEN {
                return false;
            }
        }
        is_attribution_text(&joined)
            || (start == end
                && (start == 0 || self.kinds[start - 1] == Kind::Blank)
                && joined.len() <= MAX_SHORT_ATTRIBUTION_LEN
                && SHORT_ATTRIBUTION.is_match(&joined)
                && self
                    .next_non_blank(end + 1, self.len())
                    .is_some_and(|next| self.kinds[next] == Kind::Quote))
    }

    /// A header that starts at `line`: a forward or original-message marker
    /// (with the header block that usually follows it), a rule followed by a
    /// header block, or a header block alone.
    fn block_header_at(&self, line: usize) -> Option<Header> {
        if self.in_code[line] {
            return None;
        }
        let text = self.lines[line];
        let header = |end, reason| Header {
            start: line,
            end,
            reason,
        };
        match self.kinds[line] {
            Kind::Text if FORWARD_MARKER.is_match(text) => Some(header(
                self.field_block_after(line + 1).unwrap_or(line + 1),
                CutReason::Forward,
            )),
            Kind::Text if ORIGINAL_MESSAGE.is_match(text) => Some(header(
                self.field_block_after(line + 1).unwrap_or(line + 1),
                CutReason::QuoteHeader,
            )),
            Kind::Text => self
                .field_block_at(line)
                .map(|end| header(end, CutReason::QuoteHeader)),
            // Outlook draws a rule (`____`, `----`) above its header block;
            // without a block after it, the rule is a signature delimiter.
            Kind::Signature if SIGNATURE_DELIMITER.is_match(text) => self
                .field_block_after(line + 1)
                .map(|end| header(end, CutReason::QuoteHeader)),
            _ => None,
        }
    }

    fn field_block_after(&self, from: usize) -> Option<usize> {
        self.field_block_at(self.next_non_blank(from, self.len())?)
    }

    /// The end of a `From:`/`Sent:`/`To:`/`Subject:` block starting at
    /// `first`. At least three distinct fields including the sender are
    /// required: two field-like lines ("From: Monday / To: Friday") are
    /// something a person may write.
    fn field_block_at(&self, first: usize) -> Option<usize> {
        let mut seen = 0u8;
        let mut last_field = None;
        for i in first..self.len().min(first + MAX_FIELD_BLOCK_LINES) {
            if self.kinds[i] != Kind::Text || self.in_code[i] {
                break;
            }
            match (self.fields[i], last_field) {
                (Some(kind), _) => {
                    seen |= kind;
                    last_field = Some(i);
                }
                (None, None) => return None,
                (None, Some(last)) if i - last > MAX_FIELD_CONTINUATION_LINES => break,
                (None, Some(_)) => {}
            }
        }
        let enough = seen & field::FROM != 0 && seen.count_ones() >= 3;
        // The block ends at its last field: a line after it, without a blank
        // line between, is more likely the message than a wrapped subject.
        last_field.filter(|_| enough).map(|last| last + 1)
    }

    /// Decide which lines are the reply.
    fn select(&self) -> Selection {
        let total = self.len();

        // Nothing after a signature is part of the reply.
        let mut end = total;
        let mut end_reason = None;
        if let Some(signature) = self.kinds.iter().position(|&k| k == Kind::Signature) {
            end = signature;
            end_reason = Some(CutReason::Signature);
        }

        // A message that starts with a quote header is a bottom-posted reply
        // or a forward: the reply is what comes after the header, and after
        // the quote directly below it, if any.
        let mut start = 0;
        let mut lead_reason = None;
        let first_line = self.next_non_blank(0, end);
        if let Some(leading) = self.headers.first().filter(|h| Some(h.start) == first_line) {
            start = leading.end;
            lead_reason = Some(leading.reason);
            if let Some(next) = self.next_non_blank(start, end) {
                if self.kinds[next] == Kind::Quote {
                    start = self.quote_block_end(next, end);
                }
            }
        }

        // Any other header ends the reply, unless it introduces a quote that
        // the author then answers below (an inline reply).
        let mut dropped = Vec::new();
        for header in self.headers.iter().filter(|h| h.start >= start) {
            if header.start >= end {
                break;
            }
            if let Some(quote) = self.inline_reply_quote(header, end) {
                // The blank lines between header and quote go with it.
                dropped.push(header.start..quote);
            } else {
                end = header.start;
                end_reason = Some(header.reason);
                break;
            }
        }

        // A quote after the last text the author wrote is history (quotes
        // before or between their text are context and stay).
        let last_text = (start..end).rev().find(|&i| self.kinds[i] == Kind::Text);
        let tail_from = last_text.map_or(start, |i| i + 1);
        if let Some(quote) = (tail_from..end).find(|&i| self.kinds[i] == Kind::Quote) {
            end = quote;
            end_reason = Some(quoted_reason(self.lines[quote]));
        }

        let reason = if end < total {
            end_reason
        } else if start > 0 {
            lead_reason
        } else if !dropped.is_empty() {
            Some(CutReason::QuoteHeader)
        } else {
            None
        };
        Selection {
            start,
            end: end.max(start),
            dropped,
            reason,
        }
    }

    /// If `header` introduces a quote that the author answers below it (an
    /// inline reply), the first line of that quote.
    fn inline_reply_quote(&self, header: &Header, end: usize) -> Option<usize> {
        let quote = self
            .next_non_blank(header.end, end)
            .filter(|&line| self.kinds[line] == Kind::Quote)?;
        let after = self.quote_block_end(quote, end);
        self.next_non_blank(after, end)
            .is_some_and(|next| self.kinds[next] == Kind::Text)
            .then_some(quote)
    }

    /// Where the quoted history starts, ignoring signatures and inline
    /// replies: the first quote header or the trailing quote.
    fn history_start(&self) -> Option<(usize, CutReason)> {
        let last_text = self.kinds.iter().rposition(|&k| k == Kind::Text);
        let tail_from = last_text.map_or(0, |i| i + 1);
        let trailing_quote = (tail_from..self.len())
            .find(|&i| self.kinds[i] == Kind::Quote)
            .map(|i| (i, quoted_reason(self.lines[i])));
        let first_header = self.headers.first().map(|h| (h.start, h.reason));
        [first_header, trailing_quote]
            .into_iter()
            .flatten()
            .min_by_key(|&(line, _)| line)
    }
}

fn classify_line(line: &str, in_code: bool) -> Kind {
    if is_blank(line) {
        Kind::Blank
    } else if in_code {
        Kind::Text
    } else if QUOTE_LINE.is_match(line) {
        Kind::Quote
    } else if SIGNATURE_DELIMITER.is_match(line) || is_mobile_signature(line) {
        Kind::Signature
    } else {
        Kind::Text
    }
}

/// Mark the lines of closed ``` fences. An unclosed fence is ignored, so that
/// a stray ``` cannot hide the quoted history from trimming.
fn fenced_code_lines(lines: &[&str]) -> Vec<bool> {
    let mut in_code = vec![false; lines.len()];
    let mut open = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            match open.take() {
                Some(start) => in_code[start..=i].fill(true),
                None => open = Some(i),
            }
        }
    }
    in_code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trim(body: &str) -> (String, Option<CutReason>) {
        let reply = trim_reply(body);
        (reply.text, reply.cut)
    }

    fn assert_trims(body: &str, expected: &str, reason: CutReason) {
        assert_eq!(
            trim(body),
            (expected.to_owned(), Some(reason)),
            "body:\n{body}"
        );
    }

    #[test]
    fn all_patterns_compile() {
        for pattern in [
            &OUR_MARKER,
            &QUOTE_LINE,
            &QUOTE_PREFIX,
            &SIGNATURE_DELIMITER,
            &MOBILE_SIGNATURE,
            &ORIGINAL_MESSAGE,
            &FORWARD_MARKER,
            &HEADER_FIELD,
            &LEAD_IN_ATTRIBUTION,
            &DATE_FIRST_ATTRIBUTION,
            &NAME_FIRST_ATTRIBUTION,
            &SHORT_ATTRIBUTION,
            &NUMERIC_DATE_ATTRIBUTION,
            &STARTS_WITH_NUMERIC_DATE,
        ] {
            LazyLock::force(pattern);
        }
    }

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(
            trim("Just text.\n\nTwo paragraphs."),
            ("Just text.\n\nTwo paragraphs.".into(), None)
        );
    }

    #[test]
    fn empty_and_blank_bodies_give_empty_text() {
        assert_eq!(trim(""), (String::new(), None));
        assert_eq!(trim(" \n\t\r\n"), (String::new(), None));
    }

    #[test]
    fn crlf_line_endings_are_normalised() {
        assert_trims(
            "Fixed, thanks.\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM John <j@x.com> wrote:\r\n> Broken.\r\n",
            "Fixed, thanks.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn our_marker_cuts_everything_below() {
        assert_trims(
            "Works now.\n\n-- Reply above this line --\nTicket #12 updated",
            "Works now.",
            CutReason::OurMarker,
        );
        assert_trims(
            "Works now.\n## REPLY ABOVE THIS LINE ##\nTicket #12",
            "Works now.",
            CutReason::OurMarker,
        );
        assert_trims(
            "Works now.\n\n- Reply above this line -\nTicket #12",
            "Works now.",
            CutReason::OurMarker,
        );
        assert_trims(
            "Works now.\n-- Please reply above this line --\nTicket #12",
            "Works now.",
            CutReason::OurMarker,
        );
        assert_trims(
            "Works now.\n---------reply above this line------\n",
            "Works now.",
            CutReason::OurMarker,
        );
    }

    #[test]
    fn the_marker_phrase_in_prose_is_not_our_marker() {
        let body = "I tried - reply above this line - but it bounced.\n\nThanks";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn our_marker_inside_a_quote_takes_the_attribution_with_it() {
        assert_trims(
            "Works now.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Postdesk <help@example.com> wrote:\n\n> -- Reply above this line --\n> Ticket #12",
            "Works now.",
            CutReason::OurMarker,
        );
    }

    #[test]
    fn gmail_attribution() {
        assert_trims(
            "Yes, please.\n\nOn Mon, Jan 1, 2024 at 10:00 AM John Doe <john@example.com> wrote:\n\n> Shall I reset it?\n",
            "Yes, please.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn gmail_attribution_wrapped_over_lines() {
        assert_trims(
            "Yes, please.\n\nOn Mon, Jan 1, 2024 at 10:00 AM John Doe via Support <\nsupport@example.com> wrote:\n\n> Shall I?",
            "Yes, please.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Yes, please.\nOn Thu, 31 Mar 2016 at 11:16 John\n\n<\nmailto:John <john@example.com>\n> wrote:\n\nShall I?",
            "Yes, please.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn gmail_numeric_date_attribution() {
        assert_trims(
            "Done.\n\n2016-10-24 15:36 GMT+02:00 John Doe <\njohn@example.com>:\n\n> Please do.",
            "Done.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Done.\n\n2013/7/20 John Doe <john@example.com>\n\n| old",
            "Done.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "了解です。\n\n2024年1月1日(月) 10:00 John Doe <john@example.com>:\n\n> Hello",
            "了解です。",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn pasted_log_lines_are_not_attributions() {
        let body = "Here is the log:\n\n2024-01-05 10:00:01 postfix/smtp[123]: to=<a@example.com>\nstatus=bounced";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn apple_mail_attribution() {
        assert_trims(
            "Thanks!\n\nOn 1 Jan 2024, at 10:00, John Doe <john@example.com> wrote:\n\n> Done.",
            "Thanks!",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn thunderbird_attributions() {
        assert_trims(
            "Thanks!\n\nOn 01/01/2024 10:00, John Doe wrote:\n> Done.",
            "Thanks!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Thanks!\n\nJohn Doe wrote:\n> Done.",
            "Thanks!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Thanks!\n\n-------- Original Message --------\nSubject: Printer\nDate: Mon, 1 Jan 2024\nFrom: John <j@x.com>\nTo: help@example.com\n\nDone.",
            "Thanks!",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn name_wrote_without_a_quote_is_prose() {
        let body = "My colleague wrote:\nthe printer is fixed.";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn prose_starting_with_on_is_not_an_attribution() {
        let body = "On this day\n\nI wrote something\n\nwhich was very interesting.";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn outlook_original_message() {
        assert_trims(
            "See attached.\n\n-----Original Message-----\nFrom: John\nSent: Monday\nTo: Help\nSubject: Printer\n\nIt is broken.",
            "See attached.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn outlook_header_block() {
        assert_trims(
            "See attached.\n\nFrom: John Doe <john@example.com>\nSent: Monday, January 1, 2024 10:00 AM\nTo: Help <help@example.com>\nSubject: RE: Printer\n\nIt is broken.",
            "See attached.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "See attached.\n\n *From:* John\n*Sent:* 2024-01-01\n*To:* Help\n*Subject:* Printer\n\nIt is broken.",
            "See attached.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn outlook_rule_then_header_block() {
        assert_trims(
            "See attached.\n________________________________\nFrom: John Doe <john@example.com>\nSent: Monday\nTo: Help\nSubject: Printer\n\nIt is broken.",
            "See attached.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn two_field_lines_are_prose() {
        let body = "I am away\nFrom: Monday\nTo: Friday\nRegards";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn german_clients() {
        assert_trims(
            "Danke!\n\nAm 03.02.2024 um 15:35 schrieb Max Mustermann <max@example.com>:\n\n> Hallo",
            "Danke!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Danke!\n\nMax Mustermann <max@example.com> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:\n\n> Hallo",
            "Danke!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: Max\nGesendet: Montag\nAn: Hilfe\nBetreff: Drucker\n\nHallo",
            "Danke!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Danke!\n\nVon: Max <max@example.com>\nGesendet: Montag, 1. Januar 2024 10:00\nAn: Hilfe\nBetreff: Drucker\n\nHallo",
            "Danke!",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn french_clients() {
        assert_trims(
            "Merci !\nLe 4 janv. 2016 19:03, \"Neil\"\n<neil@example.com>\na écrit :\n\n> Bonjour",
            "Merci !",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Merci !\n\nDe : Jean <jean@example.com>\nEnvoyé : lundi 1 janvier 2024 10:00\nÀ : Support\nObjet : Imprimante\n\nBonjour",
            "Merci !",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn spanish_portuguese_italian_dutch_clients() {
        for attribution in [
            "El jueves, 21 de noviembre de 2013, Juan escribió:",
            "Em 2 de fevereiro de 2015 10:58, João <joao@example.com> escreveu:",
            "Il giorno 26 marzo 2016 alle 13.16 Sam <sam@example.com> ha scritto:",
            "Il 26 marzo 2016 alle 13.16 Sam <sam@example.com> ha scritto:",
            "Op 2 feb. 2015 om 05:28 heeft Jan <jan@example.com> het volgende geschreven:",
            "Op 16 aug. 2014 05:13 schreef \"Jan\" <jan@example.com> het\nvolgende geschreven:",
        ] {
            assert_trims(
                &format!("Gracias.\n\n{attribution}\n\n> Hola"),
                "Gracias.",
                CutReason::QuoteHeader,
            );
        }
        assert_trims(
            "Gracias.\n\n-----Mensaje original-----\nDe: \"Miguel\" <m@example.com>\nEnviado: 16/02/2016 14:53\nPara: Soporte\nAsunto: Impresora\n\nHola",
            "Gracias.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Grazie.\n\nDa: Sally\nRisposta: Test\nData: giovedì, 8 ottobre 2015 15:26\nA: Testy\nOggetto: Test\n\nCiao",
            "Grazie.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn scandinavian_clients() {
        assert_trims(
            "Takk!\n\nDen 15. jun. 2016 kl. 20.42 skrev Jeff <jeff@example.com>:\n\n> Hei",
            "Takk!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Tack!\n\nFrån: Foo Bar [mailto:noreply@example.com]\nSkickat: den 5 juni 2017 12:22\nTill: someone@example.com\nÄmne: Bilder\n\nHej",
            "Tack!",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Tak!\n\nFra: Foo\nSendt: 5. juni 2017 12:22\nTil: Bar\nEmne: Billeder\n\nHej",
            "Tak!",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn polish_czech_russian_ukrainian_clients() {
        for attribution in [
            "Dnia 14 lip 2015 o godz. 00:25 Michael <m@example.com> napisał(a):",
            "23 mar 2017 21:25 \"Neil\" <neil@example.com> napisał(a):",
            "Dne 1. 1. 2024 10:00 napsal(a) Jan <jan@example.com>:",
            "понедельник, 6 октября 2014 г. пользователь lidel написал:",
            "20 окт. 2016 г. 19:37 пользователь \"Rafael\" <\nrafael@example.com> написал:",
            "30 серп. 2016 р. 20:45 \"Arpit\" <arpit@example.com> пише:",
        ] {
            assert_trims(
                &format!("Ok.\n\n{attribution}\n\n> Hi"),
                "Ok.",
                CutReason::QuoteHeader,
            );
        }
    }

    #[test]
    fn chinese_and_japanese_clients() {
        assert_trims(
            "谢谢。\n\n在 2016年12月12日，下午8:45，Erlend <e@example.com> 写道：\n\n> 你好",
            "谢谢。",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "了解です。\n\n差出人: John <j@example.com>\n送信日時: 2024年1月1日 10:00\n宛先: support\n件名: プリンター\n\nこんにちは",
            "了解です。",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn webmail_and_mobile_clients() {
        // Yahoo Mail
        assert_trims(
            "Ok.\n\nOn Monday, January 1, 2024, 10:00:00 AM GMT+1, John <j@x.com> wrote:\n\n> Hi",
            "Ok.",
            CutReason::QuoteHeader,
        );
        // Samsung Email and other Android clients
        assert_trims(
            "Ok.\n\n-------- Original message --------\nFrom: John <j@x.com>\nDate: 1/1/24 10:00 (GMT+01:00)\nTo: help@x.com\nSubject: Printer\n\nHi",
            "Ok.",
            CutReason::QuoteHeader,
        );
        // Outlook for iOS: signature, then the header block
        assert_trims(
            "Ok.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n________________________________\nFrom: John <j@x.com>\nSent: Monday, January 1, 2024 10:00:00 AM\nTo: help@x.com\nSubject: Printer\n\nHi",
            "Ok.",
            CutReason::Signature,
        );
    }

    #[test]
    fn zoho_attribution_in_dashes() {
        assert_trims(
            "Best Regards\n\n---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam&lt;sam@example.com&gt; wrote ----\n\nHello",
            "Best Regards",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn trailing_quote_without_attribution() {
        assert_trims(
            "Agreed.\n\n> Shall we?\n> Yes",
            "Agreed.",
            CutReason::QuotedLines,
        );
        assert_trims(
            "Agreed.\n\n> On Mon, Jan 1, 2024 at 10:00 AM John <j@x.com> wrote:\n>> Shall we?",
            "Agreed.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn supercite_quotes() {
        assert_trims(
            "Agreed.\n\nJD> Shall we?\nJD>",
            "Agreed.",
            CutReason::QuotedLines,
        );
    }

    #[test]
    fn inline_reply_keeps_quotes_and_drops_the_attribution() {
        let (text, cut) = trim(
            "See below.\nOn Mon, Jan 1, 2024 at 10:00 AM John <j@x.com> wrote:\n\n> Is it fixed?\n\nYes.\n\n> And the printer?\n\nAlso yes.\n\n> Thanks\n",
        );
        assert_eq!(
            text,
            "See below.\n> Is it fixed?\n\nYes.\n\n> And the printer?\n\nAlso yes."
        );
        assert_eq!(cut, Some(CutReason::QuotedLines));
    }

    #[test]
    fn leading_quote_answered_below_is_kept() {
        let body = "> Is it fixed?\n\nYes.";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn bottom_posted_reply_keeps_text_below_the_quote() {
        assert_trims(
            "On Mon, Jan 1, 2024 at 10:00 AM John <\nj@x.com> wrote:\n\n> Is it fixed?\n>\n\nYes, since this morning.",
            "Yes, since this morning.",
            CutReason::QuoteHeader,
        );
        assert_trims(
            "Le 2016-11-16 02:22, Erlend a écrit\u{a0}:\n> Bonjour\n\nMerci.",
            "Merci.",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn signature_delimiter() {
        assert_trims(
            "Fixed.\n\n-- \nJohn Doe\nACME IT",
            "Fixed.",
            CutReason::Signature,
        );
        assert_trims("Fixed.\n--\nJohn Doe", "Fixed.", CutReason::Signature);
        assert_trims(
            "Fixed.\n\n___________\nJohn Doe",
            "Fixed.",
            CutReason::Signature,
        );
    }

    #[test]
    fn dashes_inside_text_are_not_a_delimiter() {
        let body = "This is not a ---------- delimiter.\n-\nStill text.";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn mobile_signatures() {
        for signature in [
            "Sent from my iPhone",
            "Sent from my Samsung Galaxy smartphone.",
            "Sent from Outlook Mobile<https://aka.ms/x>",
            "Sent from Yahoo Mail on Android",
            "Sent with Airmail",
            "Get Outlook for iOS<https://aka.ms/o0ukef>",
            "Get [Outlook for Android](https://aka.ms/ghei36)",
            "Von meinem iPhone gesendet",
            "Von meinem Mobilgerät gesendet",
            "Envoyé de mon iPhone",
            "Envoyé depuis mon iPad",
            "Enviado desde mi iPhone",
            "Enviado do meu iPhone",
            "Inviato da iPhone",
            "Verzonden vanaf mijn iPhone",
            "Skickat från min iPhone",
            "Sendt fra min iPad",
            "Wysłane z iPhone'a",
            "Отправлено с iPhone",
            "從我的 iPhone 傳送",
            "iPhoneから送信",
            "(Sent from mobile device)",
        ] {
            assert_trims(
                &format!("Will do.\n\n{signature}"),
                "Will do.",
                CutReason::Signature,
            );
        }
    }

    #[test]
    fn sent_from_in_prose_is_not_a_signature() {
        let body = "Sent from the office yesterday, the report is attached.";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn forwards() {
        assert_trims(
            "FYI\n\n---------- Forwarded message ---------\nFrom: John <j@x.com>\nDate: Tue, Jan 1, 2019\nSubject: Printer\nTo: <b@x.com>\n\nBroken.",
            "FYI",
            CutReason::Forward,
        );
        assert_trims(
            "FYI\n\nBegin forwarded message:\n\nFrom: John <j@x.com>\nSubject: Printer\nDate: 1 January 2019\nTo: b@x.com\n\nBroken.",
            "FYI",
            CutReason::Forward,
        );
        assert_trims(
            "FYI\n\n> Begin forwarded message:\n>\n> From: John <j@x.com>",
            "FYI",
            CutReason::Forward,
        );
    }

    #[test]
    fn forward_without_a_comment_keeps_the_forwarded_text() {
        assert_trims(
            "---------- Forwarded message ----------\nFrom: John <j@x.com>\nDate: Thu, Jan 28, 2016\nSubject: Printer\nTo: help@x.com\n\nThe printer is broken.",
            "The printer is broken.",
            CutReason::Forward,
        );
    }

    #[test]
    fn fenced_code_is_never_trimmed() {
        let body = "Config:\n\n```\n# comment\n####\n> prompt\n--\n```\n\nThanks";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn never_empty_when_only_a_signature_precedes_the_quote() {
        assert_trims(
            "Sent from my iPhone\n\nOn Mon, Jan 1, 2024 at 10:00 AM John <j@x.com> wrote:\n> Hi",
            "Sent from my iPhone",
            CutReason::QuoteHeader,
        );
    }

    #[test]
    fn never_empty_when_the_body_is_only_a_signature() {
        assert_eq!(
            trim("Sent from my iPhone"),
            ("Sent from my iPhone".into(), None)
        );
    }

    #[test]
    fn never_empty_for_a_quote_only_body() {
        let body = "> On Mon, Jan 1, 2024 at 10:00 AM John <j@x.com> wrote:\n>> Hi";
        assert_eq!(trim(body), (body.to_owned(), None));
    }

    #[test]
    fn cut_reason_names() {
        assert_eq!(CutReason::OurMarker.as_str(), "our_marker");
        assert_eq!(CutReason::QuoteHeader.as_str(), "quote_header");
        assert_eq!(CutReason::QuotedLines.as_str(), "quoted_lines");
        assert_eq!(CutReason::Signature.as_str(), "signature");
        assert_eq!(CutReason::Forward.as_str(), "forward");
    }
}
