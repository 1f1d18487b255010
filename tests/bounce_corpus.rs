//! Runs classification and `parse_bounce` over the bounce corpus in
//! `fixtures/corpus/bounces/` (sisimai's set-of-emails, BSD-2-Clause, see the
//! LICENSE file beside it):
//! * `bounce/` — real bounces and complaint reports: never classified Human,
//!   and `parse_bounce` must keep finding recipients, status codes and the
//!   original Message-ID in at least as many files as it does today;
//! * `auto-reply/` — automatic replies: classified Automated (or Bounce);
//! * `not-bounce/` — ordinary mail: classified Human.
//!
//! Set `BOUNCE_CORPUS_VERBOSE=1` to print what was found in every file, or
//! `BOUNCE_CORPUS_VERBOSE=exim` for the files whose name contains `exim`.

use std::fs;
use std::path::{Path, PathBuf};

use postdesk::mail::bounce::parse_bounce;
use postdesk::mail::classify::{classify, Classification};
use postdesk::mail::parse::parse;

/// Floors for the `bounce/` folder, a little below what `parse_bounce`
/// achieves (595, 508 and 538 of 623), so a regression fails the test.
const MIN_WITH_RECIPIENT: usize = 590;
const MIN_WITH_STATUS: usize = 500;
const MIN_WITH_MESSAGE_ID: usize = 530;

fn corpus_dir(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/corpus/bounces")
        .join(folder)
}

/// The files of one corpus folder, sorted by name, with their bytes.
fn corpus(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(folder);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("listing {}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.expect("reading corpus directory entry").path();
            let bytes =
                fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

fn class_of(name: &str, raw: &[u8]) -> Classification {
    let mail = parse(raw).unwrap_or_else(|err| panic!("{name}: does not parse: {err}"));
    classify(&mail).0
}

fn verbose(name: &str) -> bool {
    std::env::var("BOUNCE_CORPUS_VERBOSE").is_ok_and(|v| v == "1" || name.contains(&v))
}

/// Corpus files that are a bounce *forwarded by a person* ("Fwd: Returned
/// mail", a named sender, no automation header): mail a person wrote, which
/// must reach a technician like any other.
const FORWARDED_BY_A_PERSON: &[&str] = &["lhost-sendmail-14.eml"];

#[test]
fn bounces_are_never_human() {
    let mut human = Vec::new();
    let mut counts: Vec<(Classification, usize)> = Vec::new();
    for (name, raw) in corpus("bounce") {
        let class = class_of(&name, &raw);
        match counts.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += 1,
            None => counts.push((class, 1)),
        }
        if FORWARDED_BY_A_PERSON.contains(&name.as_str()) {
            assert_eq!(
                class,
                Classification::Human,
                "{name}: forwarded by a person"
            );
        } else if class == Classification::Human {
            human.push(name);
        }
    }
    println!("bounce corpus classified as: {counts:?}");
    assert!(
        human.is_empty(),
        "{} bounces classified Human: {human:?}",
        human.len()
    );
}

#[test]
fn auto_replies_are_automated() {
    let wrong: Vec<String> = corpus("auto-reply")
        .into_iter()
        .filter(|(name, raw)| {
            !matches!(
                class_of(name, raw),
                Classification::Automated | Classification::Bounce
            )
        })
        .map(|(name, _)| name)
        .collect();
    assert!(wrong.is_empty(), "auto-replies not automated: {wrong:?}");
}

#[test]
fn ordinary_mail_is_human() {
    let wrong: Vec<(String, Classification)> = corpus("not-bounce")
        .into_iter()
        .map(|(name, raw)| {
            let class = class_of(&name, &raw);
            (name, class)
        })
        .filter(|(_, class)| *class != Classification::Human)
        .collect();
    assert!(wrong.is_empty(), "ordinary mail not Human: {wrong:?}");
}

#[test]
fn parse_bounce_finds_recipients_statuses_and_message_ids() {
    let files = corpus("bounce");
    let mut not_a_bounce = Vec::new();
    let mut without_recipient = Vec::new();
    let mut without_status = Vec::new();
    let mut without_message_id = Vec::new();
    let mut own_message_id = Vec::new();
    for (name, raw) in &files {
        let Some(report) = parse_bounce(raw) else {
            not_a_bounce.push(name.as_str());
            continue;
        };
        if verbose(name) {
            println!("{name}: {report:?}");
        }
        if report.recipients.is_empty() {
            without_recipient.push(name.as_str());
        }
        if !report.recipients.iter().any(|r| r.status.is_some()) {
            without_status.push(name.as_str());
        }
        if report.original_message_id.is_none() {
            without_message_id.push(name.as_str());
        }
        // Some samples were anonymised into returning a copy with the bounce's
        // own Message-ID: it must then appear a second time, in the copy.
        let bounce_id = parse(raw).ok().and_then(|m| m.message_id);
        if let Some(id) = report.original_message_id.as_deref() {
            let mentions = String::from_utf8_lossy(raw).matches(id).count();
            if bounce_id.as_deref() == Some(id) && mentions < 2 {
                own_message_id.push(name.as_str());
            }
        }
    }
    let total = files.len();
    let with_recipient = total - not_a_bounce.len() - without_recipient.len();
    let with_status = total - not_a_bounce.len() - without_status.len();
    let with_message_id = total - not_a_bounce.len() - without_message_id.len();
    println!("bounce corpus: {total} files");
    println!(
        "  not read as a bounce:  {} {not_a_bounce:?}",
        not_a_bounce.len()
    );
    println!("  with a recipient:      {with_recipient} (missing: {without_recipient:?})");
    println!("  with a status:         {with_status} (missing: {without_status:?})");
    println!("  with the Message-ID:   {with_message_id} (missing: {without_message_id:?})");

    assert!(
        own_message_id.is_empty(),
        "the bounce's own Message-ID taken for the original's: {own_message_id:?}"
    );
    assert!(
        with_recipient >= MIN_WITH_RECIPIENT,
        "only {with_recipient} of {total} bounces yield a recipient (floor {MIN_WITH_RECIPIENT}); \
         not bounces: {not_a_bounce:?}; no recipient: {without_recipient:?}"
    );
    assert!(
        with_status >= MIN_WITH_STATUS,
        "only {with_status} of {total} bounces yield a status (floor {MIN_WITH_STATUS}); \
         no status: {without_status:?}"
    );
    assert!(
        with_message_id >= MIN_WITH_MESSAGE_ID,
        "only {with_message_id} of {total} bounces yield the original Message-ID \
         (floor {MIN_WITH_MESSAGE_ID}); no Message-ID: {without_message_id:?}"
    );
}

#[test]
fn parse_bounce_ignores_ordinary_mail() {
    for (name, raw) in corpus("not-bounce") {
        assert_eq!(parse_bounce(&raw), None, "{name} read as a bounce");
    }
}

#[test]
fn parse_bounce_ignores_auto_replies() {
    for (name, raw) in corpus("auto-reply") {
        let report = parse_bounce(&raw);
        if name == "rb-issue-368-bug.eml" {
            // A postmaster's "mailbox full" notice: a bounce in all but headers.
            let report = report.unwrap_or_else(|| panic!("{name} not read as a bounce"));
            assert_eq!(report.recipients.len(), 1, "{name}: {report:?}");
        } else {
            assert_eq!(report, None, "{name} read as a bounce");
        }
    }
}
