//! Subject lines: the reply and forward prefixes mail clients put in front of
//! them, the ticket tag `[#T-1042]` we put into them (SPEC §2.5, rule 4), and
//! the normalised form two subjects are compared in.
//!
//! Pure string work on an already decoded subject: no I/O, no configuration
//! lookups (the ticket prefix is passed in), and no decision about which
//! ticket a mail belongs to — that is `threading`'s job, which also checks
//! that the sender may use the tag at all.
//!
//! Leading tags other than ours, such as `[EXT]` or `[External]` added by a
//! customer's gateway, are left alone: they are part of the subject as the
//! client's mail system wrote it.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::TicketNumber;

/// One leading reply or forward prefix, with its colon and the spaces after
/// it. Covers the abbreviations the common mail clients write in English,
/// German, Dutch, the Nordic languages, French, Spanish, Italian, Portuguese,
/// Polish, Croatian, Turkish, Hungarian, Greek and Chinese, with an optional
/// counter (`Re[2]:`, `Re(3):`), spaces before the colon (`RE :`) and the
/// full-width colon (`回复：`). A single `R` counts only as exactly `R:`,
/// because with a counter or a space it is too likely an ordinary word.
static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        ^\s*
        (?:
            (?:
                re | fwd | fw | aw | wg | sv | vs | vb | vl | antw | doorst
              | tr | rv | rif | enc | res | odp | pd | ynt | ilt | İlt
              | vá | továbbítás | ΑΠ | ΣΧΕΤ | ΠΡΘ
              | 回复 | 答复 | 转发 | 回覆 | 轉寄
            )
            \s*
            (?: \[ \s* [0-9]+ \s* \] | \( \s* [0-9]+ \s* \) )?
            \s*
          | r
        )
        [:：]
        \s*",
    )
    .expect("the reply prefix pattern is valid")
});

/// The contents of one bracketed part of a subject, `[…]` without nesting.
static BRACKETED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[([^\[\]]*)\]").expect("the bracket pattern is valid"));

/// A bracketed part that starts with `#`: our ticket tag, whatever the prefix.
static HASH_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\s*#[^\[\]]*\]").expect("the hash tag pattern is valid"));

/// The subject without any number of leading reply and forward prefixes
/// (`Re: Fwd: AW: Hello` → `Hello`), trimmed. A word that merely starts like
/// a prefix stays: `Ready: the new printer` is returned as it is.
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject;
    while let Some(prefix) = REPLY_PREFIX.find(rest) {
        rest = &rest[prefix.end()..];
    }
    rest.trim()
}

/// The ticket number in the first tag of `subject` that carries the
/// configured `prefix`: `[#T-1042]`, also written `[T-1042]`, `[# T-1042 ]`
/// or `[#t-1042]`. The tag may stand anywhere in the subject. Bracketed
/// numbers without the prefix (`[1042]`, a reply counter `[2]`) are not
/// tags; with an empty prefix the `#` is required (`[#1042]`).
pub fn find_ticket_tag(subject: &str, prefix: &str) -> Option<TicketNumber> {
    BRACKETED.captures_iter(subject).find_map(|caps| {
        let inside = caps.get(1)?.as_str().trim();
        let (hashed, after_hash) = match inside.strip_prefix('#') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, inside),
        };
        if prefix.is_empty() && !hashed {
            return None;
        }
        let digits = strip_prefix_ignoring_case(after_hash, prefix)?.trim_start();
        let plausible =
            (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !plausible {
            return None;
        }
        TicketNumber::parse(prefix, digits).ok()
    })
}

/// The subject as two mails of one conversation share it: reply prefixes
/// and `[#…]` ticket tags removed, runs of whitespace made one space, lower
/// case. `Re: [#T-1042]  Printer   DOWN` → `printer down`.
pub fn normalized_for_matching(subject: &str) -> String {
    // Prefixes and tags can alternate at the front (`Re: [#T-1] Fwd: …`), so
    // peel both until neither is left, then drop tags elsewhere.
    let mut rest = subject;
    loop {
        rest = strip_reply_prefixes(rest);
        match HASH_TAG.find(rest) {
            Some(tag) if tag.start() == 0 => rest = &rest[tag.end()..],
            _ => break,
        }
    }
    let without_tags = HASH_TAG.replace_all(rest, " ");
    without_tags
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `text` without a leading `prefix`, compared case-insensitively character
/// by character (the prefix comes from configuration and need not be ASCII).
fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let mut rest = text.char_indices();
    for wanted in prefix.chars() {
        let (_, found) = rest.next()?;
        if !found.to_lowercase().eq(wanted.to_lowercase()) {
            return None;
        }
    }
    let consumed = rest.next().map_or(text.len(), |(index, _)| index);
    Some(&text[consumed..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> Option<String> {
        find_ticket_tag(s, "T-").map(|n| n.as_str().to_string())
    }

    #[test]
    fn strips_english_prefixes_in_any_case() {
        for subject in [
            "Re: Printer down",
            "RE: Printer down",
            "re: Printer down",
            "Fwd: Printer down",
            "FWD: Printer down",
            "Fw: Printer down",
            "FW: Printer down",
        ] {
            assert_eq!(strip_reply_prefixes(subject), "Printer down", "{subject:?}");
        }
    }

    #[test]
    fn strips_non_english_prefixes() {
        for subject in [
            "AW: Drucker",
            "WG: Drucker",
            "SV: Drucker",
            "VS: Drucker",
            "VB: Drucker",
            "VL: Drucker",
            "Antw: Drucker",
            "Doorst: Drucker",
            "TR: Drucker",
            "RV: Drucker",
            "RIF: Drucker",
            "R: Drucker",
            "Enc: Drucker",
            "Res: Drucker",
            "Odp: Drucker",
            "PD: Drucker",
            "YNT: Drucker",
            "ILT: Drucker",
            "İLT: Drucker",
            "Vá: Drucker",
            "VÁ: Drucker",
            "Továbbítás: Drucker",
            "ΑΠ: Drucker",
            "ΣΧΕΤ: Drucker",
            "回复: Drucker",
            "回复：Drucker",
            "答复: Drucker",
            "转发: Drucker",
            "回覆: Drucker",
            "轉寄: Drucker",
        ] {
            assert_eq!(strip_reply_prefixes(subject), "Drucker", "{subject:?}");
        }
    }

    #[test]
    fn strips_counters_and_spacing_variants() {
        for subject in [
            "Re[2]: Backup failed",
            "Re(3): Backup failed",
            "RE [12] : Backup failed",
            "Re( 4 ):Backup failed",
            "RE : Backup failed",
            "Re:Backup failed",
            "  Re:   Backup failed  ",
            "AW[2]: Backup failed",
        ] {
            assert_eq!(
                strip_reply_prefixes(subject),
                "Backup failed",
                "{subject:?}"
            );
        }
    }

    #[test]
    fn strips_nested_prefixes() {
        assert_eq!(strip_reply_prefixes("Re: Re: Fwd: Backup"), "Backup");
        assert_eq!(strip_reply_prefixes("AW: WG: RE: Backup"), "Backup");
        assert_eq!(strip_reply_prefixes("Re:Fwd:RE[2]:SV: Backup"), "Backup");
        assert_eq!(strip_reply_prefixes("回复: Re: 转发: Backup"), "Backup");
    }

    #[test]
    fn leaves_words_that_merely_look_like_prefixes() {
        for subject in [
            "Ready: the new printer",
            "Resolved: VPN",
            "Result: ok",
            "Fwdx: hello",
            "Review: laptop order",
            "Trouble: mail",
            "Re- install Office",
            "Regarding the invoice",
            "Hello Re: world",
            "R : not a prefix",
            "R[2]: not a prefix",
            "Rr: not a prefix",
        ] {
            assert_eq!(strip_reply_prefixes(subject), subject, "{subject:?}");
        }
    }

    #[test]
    fn leaves_other_bracket_tags_alone() {
        assert_eq!(
            strip_reply_prefixes("[EXT] Re: Printer"),
            "[EXT] Re: Printer"
        );
        assert_eq!(
            strip_reply_prefixes("Re: [External] Re: Printer"),
            "[External] Re: Printer"
        );
    }

    #[test]
    fn prefix_only_or_empty_subject_becomes_empty() {
        assert_eq!(strip_reply_prefixes(""), "");
        assert_eq!(strip_reply_prefixes("Re:"), "");
        assert_eq!(strip_reply_prefixes("Re: Fwd:  "), "");
    }

    #[test]
    fn finds_tag_in_usual_forms() {
        assert_eq!(number("[#T-1042] Printer down").as_deref(), Some("T-1042"));
        assert_eq!(number("[T-1042] Printer down").as_deref(), Some("T-1042"));
        assert_eq!(
            number("[# T-1042 ] Printer down").as_deref(),
            Some("T-1042")
        );
        assert_eq!(number("[ #T-1042] Printer down").as_deref(), Some("T-1042"));
        assert_eq!(number("[#t-1042] Printer down").as_deref(), Some("T-1042"));
    }

    #[test]
    fn finds_tag_in_the_middle_or_end() {
        assert_eq!(number("Re: Printer [#T-7] down").as_deref(), Some("T-7"));
        assert_eq!(
            number("AW: WG: Printer down [#T-1042]").as_deref(),
            Some("T-1042")
        );
        assert_eq!(number("[EXT] Re: [#T-55] Printer").as_deref(), Some("T-55"));
    }

    #[test]
    fn first_of_several_tags_wins() {
        assert_eq!(number("[#T-1] merged into [#T-2]").as_deref(), Some("T-1"));
        assert_eq!(number("[#X-9] and [#T-2]").as_deref(), Some("T-2"));
    }

    #[test]
    fn ignores_brackets_that_are_not_our_tag() {
        for subject in [
            "Printer down",
            "Re[2]: Printer down",
            "[1042] Printer down",
            "[#1042] Printer down",
            "[#X-1042] Printer down",
            "[#T-] Printer down",
            "[#T-10x] Printer down",
            "[#T-1042 extra] Printer down",
            "#T-1042 Printer down",
            "[#T-12345678901234567890] Printer down",
            "[#T-١٢٣] Printer down",
        ] {
            assert_eq!(number(subject), None, "{subject:?}");
        }
    }

    #[test]
    fn tag_prefix_is_taken_literally_and_case_insensitively() {
        let found = |s: &str, p: &str| find_ticket_tag(s, p).map(|n| n.as_str().to_string());
        assert_eq!(found("[#HD.77] x", "HD.").as_deref(), Some("HD.77"));
        assert_eq!(found("[#HDX77] x", "HD.").as_deref(), None);
        assert_eq!(found("[#hd.77] x", "HD.").as_deref(), Some("HD.77"));
        assert_eq!(
            found("[#Ärende-5] x", "ärende-").as_deref(),
            Some("ärende-5")
        );
        assert_eq!(found("[#2024-15] x", "2024-").as_deref(), Some("2024-15"));
    }

    #[test]
    fn empty_prefix_requires_the_hash() {
        let found = |s: &str| find_ticket_tag(s, "").map(|n| n.as_str().to_string());
        assert_eq!(found("[#1042] Printer").as_deref(), Some("1042"));
        assert_eq!(found("[1042] Printer").as_deref(), None);
        assert_eq!(found("Re[2]: Printer").as_deref(), None);
    }

    #[test]
    fn normalizes_prefixes_tags_space_and_case() {
        assert_eq!(
            normalized_for_matching("Re: [#T-1042]  Printer   DOWN"),
            "printer down"
        );
        assert_eq!(normalized_for_matching("Printer down"), "printer down");
        assert_eq!(
            normalized_for_matching("AW: WG: Printer\tdown "),
            "printer down"
        );
    }

    #[test]
    fn normalizes_alternating_prefixes_and_tags() {
        assert_eq!(
            normalized_for_matching("Re: [#T-1] Fwd: Printer down"),
            "printer down"
        );
        assert_eq!(
            normalized_for_matching("[#T-1] Re: [# T-1 ] Printer down"),
            "printer down"
        );
    }

    #[test]
    fn normalizes_tags_in_the_middle() {
        assert_eq!(
            normalized_for_matching("Printer [#T-9] down"),
            "printer down"
        );
        assert_eq!(
            normalized_for_matching("Printer down [#T-9]"),
            "printer down"
        );
    }

    #[test]
    fn normalizing_keeps_other_brackets_and_non_ascii_text() {
        assert_eq!(
            normalized_for_matching("Re: [EXT] Drucker KAPUTT"),
            "[ext] drucker kaputt"
        );
        assert_eq!(normalized_for_matching("SV: ÅRSBOKSLUT"), "årsbokslut");
        assert_eq!(normalized_for_matching("Re[2]: [1042] x"), "[1042] x");
    }

    #[test]
    fn normalizing_a_prefix_only_subject_gives_empty() {
        assert_eq!(normalized_for_matching("Re: [#T-1]"), "");
        assert_eq!(normalized_for_matching("   "), "");
    }
}
