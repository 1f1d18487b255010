//! The bounce corpus through the whole ingest (issue 3): every file of
//! `bounce/` and `auto-reply/` opens no ticket and sends no mail — not even to
//! the staff, since none of them is about a mail of ours; `not-bounce/` opens
//! tickets like any mail. (Classification and parsing figures are in
//! `bounce_corpus.rs`.)

mod common;

use std::path::Path;

use common::*;
use postdesk::db::{outbox, tickets};
use postdesk::mail::ingest::Outcome;

/// A bounce forwarded by a person: mail a person wrote, see bounce_corpus.rs.
const FORWARDED_BY_A_PERSON: &str = "lhost-sendmail-14.eml";

fn files(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/corpus/bounces")
        .join(folder);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}", dir.display());
    out
}

#[tokio::test]
async fn bounces_and_auto_replies_open_nothing_and_send_nothing() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut count = 0;
    for folder in ["bounce", "auto-reply"] {
        for (name, raw) in files(folder) {
            if name == FORWARDED_BY_A_PERSON {
                continue;
            }
            count += 1;
            let outcome = ingest(&app, &raw).await;
            if matches!(outcome, Outcome::TicketCreated { .. }) {
                outcomes.push((name, outcome));
            }
        }
    }
    assert!(count >= 620, "the whole corpus ran: {count}");
    assert!(outcomes.is_empty(), "tickets opened by: {outcomes:?}");
    let mut conn = app.db.conn().await.unwrap();
    assert!(tickets::list_tickets(&mut conn).await.unwrap().is_empty());
    let queued = outbox::list(&mut conn).await.unwrap();
    assert!(
        queued.is_empty(),
        "mail queued: {:?}",
        queued
            .iter()
            .map(|m| (&m.kind, &m.subject))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn ordinary_mail_of_the_corpus_opens_tickets() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    let not_bounces = files("not-bounce");
    for (name, raw) in &not_bounces {
        assert!(
            matches!(ingest(&app, raw).await, Outcome::TicketCreated { .. }),
            "{name}"
        );
    }
    let mut conn = app.db.conn().await.unwrap();
    assert_eq!(
        tickets::list_tickets(&mut conn).await.unwrap().len(),
        not_bounces.len()
    );
}
