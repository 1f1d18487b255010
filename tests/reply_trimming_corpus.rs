//! Measures `trim_reply` against the reply-trimming corpus in
//! `fixtures/corpus/reply-trimming/`: `emails/NAME` is a reply as received,
//! `trimmed/NAME` what a person would keep of it. The corpus comes from
//! Discourse's email reply trimmer (MIT, see the LICENSE file beside it).
//!
//! Outputs are compared with whitespace runs collapsed to one space and the
//! ends trimmed, so only the choice of text counts, not its layout.

use std::fs;
use std::path::{Path, PathBuf};

use postdesk::mail::reply_trim::trim_reply;

/// The share of corpus replies that must be trimmed exactly as expected.
const MIN_EXACT_MATCH_RATE: f64 = 0.95;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus/reply-trimming")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn reply_trimming_corpus() {
    let dir = corpus_dir();
    let emails = dir.join("emails");
    let mut names: Vec<String> = fs::read_dir(&emails)
        .unwrap_or_else(|err| panic!("listing {}: {err}", emails.display()))
        .map(|entry| {
            let entry = entry.expect("reading corpus directory entry");
            entry.file_name().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no corpus files in {}", emails.display());

    let mut mismatches = Vec::new();
    let mut emptied = Vec::new();
    for name in &names {
        let email = read(&emails.join(name));
        let expected = read(&dir.join("trimmed").join(name));
        let trimmed = trim_reply(&email).text;
        if !email.trim().is_empty() && trimmed.trim().is_empty() {
            emptied.push(name.as_str());
        }
        if normalise(&trimmed) != normalise(&expected) {
            println!("mismatch: {name}");
            mismatches.push(name.as_str());
        }
    }

    let matched = names.len() - mismatches.len();
    let rate = matched as f64 / names.len() as f64;
    println!(
        "reply trimming: {matched}/{} exact matches ({:.1}%)",
        names.len(),
        rate * 100.0
    );
    assert!(
        emptied.is_empty(),
        "trimming emptied non-empty replies: {emptied:?}"
    );
    assert!(
        rate >= MIN_EXACT_MATCH_RATE,
        "exact-match rate {matched}/{} is below {MIN_EXACT_MATCH_RATE}; mismatches: {mismatches:?}",
        names.len()
    );
}
