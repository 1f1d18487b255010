//! Ingest decisions, driven through the library without a mailbox: who the
//! sender is, the unknown-sender policies, de-duplication, the MIME corpus,
//! import idempotence and `explain`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use postdesk::db::{inbound, outbox, tickets};
use postdesk::domain::TicketNumber;
use postdesk::mail::ingest::{ActionPlan, Outcome, Source};

/// Acknowledgements queued (staff notifications are queued beside them).
async fn acks(conn: &mut postdesk::db::Conn) -> usize {
    outbox::list(conn)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.kind == "acknowledgement")
        .count()
}

#[tokio::test]
async fn unknown_address_of_a_client_domain_becomes_a_standard_contact() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let bob = t.addr("bob", "customer.test");
    let out = ingest(
        &app,
        &simple_mail(
            &format!("Bob <{bob}>"),
            &t.support,
            "VPN",
            "b1@x.test",
            "down",
        ),
    )
    .await;
    assert_eq!(
        out,
        Outcome::TicketCreated {
            ticket: "T-1001".into()
        }
    );
    let mut conn = app.db.conn().await.unwrap();
    let email = postdesk::domain::EmailAddress::parse(&bob).unwrap();
    let contact = postdesk::db::contacts::find_contact_by_email(&mut conn, &email)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.client_id.is_some());
    assert_eq!(contact.types, postdesk::domain::ContactTypes::default());
    let ticket = tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", "1001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.ticket.client, Some(format!("Customer {}", t.tag)));
}

#[tokio::test]
async fn unknown_sender_policy_create() {
    let t = TestEnv::new().await;
    let app = t.app("[tickets]\nunknown_senders = \"create\"\n").await;
    let stranger = t.addr("someone", "sink.test");
    let out = ingest(
        &app,
        &simple_mail(&stranger, &t.support, "Hello", "s1@x.test", "hi"),
    )
    .await;
    assert_eq!(
        out,
        Outcome::TicketCreated {
            ticket: "T-1001".into()
        }
    );
    let mut conn = app.db.conn().await.unwrap();
    let ticket = tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", "1001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.ticket.client, None);
    assert_eq!(acks(&mut conn).await, 1, "acknowledged");
}

#[tokio::test]
async fn unknown_sender_policy_quarantine() {
    let t = TestEnv::new().await;
    let app = t.app("[tickets]\nunknown_senders = \"quarantine\"\n").await;
    let stranger = t.addr("someone", "sink.test");
    let out = ingest(
        &app,
        &simple_mail(&stranger, &t.support, "Hello", "s2@x.test", "hi"),
    )
    .await;
    assert!(
        matches!(&out, Outcome::Quarantined { reason } if reason.contains("unknown sender")),
        "{out:?}"
    );
    let mut conn = app.db.conn().await.unwrap();
    assert!(tickets::list_tickets(&mut conn).await.unwrap().is_empty());
    assert!(
        outbox::list(&mut conn).await.unwrap().is_empty(),
        "nothing sent"
    );
    let q = inbound::list_quarantine(&mut conn).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].subject.as_deref(), Some("Hello"));
    // The raw message is kept for the operator.
    assert!(app
        .ingestor
        .store
        .get(postdesk::storage::BlobKind::RawMail, &q[0].raw_sha256)
        .is_ok());
}

#[tokio::test]
async fn unknown_sender_policy_reject_answers_once_politely() {
    let t = TestEnv::new().await;
    let app = t.app("[tickets]\nunknown_senders = \"reject\"\n").await;
    let stranger = t.addr("someone", "sink.test");
    let raw = simple_mail(&stranger, &t.support, "Hello", "s3@x.test", "hi");
    assert_eq!(ingest(&app, &raw).await, Outcome::Rejected);
    assert_eq!(ingest(&app, &raw).await, Outcome::Duplicate);
    let mut conn = app.db.conn().await.unwrap();
    assert!(tickets::list_tickets(&mut conn).await.unwrap().is_empty());
    let sent = outbox::list(&mut conn).await.unwrap();
    assert_eq!(sent.len(), 1, "one polite reply");
    assert_eq!(sent[0].recipients, vec![stranger]);
    assert_eq!(sent[0].kind, "unknown-sender-rejected");
}

#[tokio::test]
async fn automated_mail_opens_no_ticket_and_gets_no_reply() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let raw = format!(
        "From: {alice}\r\nTo: {}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@x.test>\r\n\r\nI am away.\r\n",
        t.support
    );
    let out = ingest(&app, raw.as_bytes()).await;
    assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
    let mut conn = app.db.conn().await.unwrap();
    assert!(tickets::list_tickets(&mut conn).await.unwrap().is_empty());
    assert!(outbox::list(&mut conn).await.unwrap().is_empty());
}

#[tokio::test]
async fn same_message_id_twice_is_applied_once_and_no_message_id_dedupes_by_hash() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let raw = simple_mail(&alice, &t.support, "One", "dup@x.test", "a");
    assert!(matches!(
        ingest(&app, &raw).await,
        Outcome::TicketCreated { .. }
    ));
    assert_eq!(ingest(&app, &raw).await, Outcome::Duplicate);
    let no_id = format!("From: {alice}\r\nSubject: No id\r\n\r\nbody\r\n");
    assert!(matches!(
        ingest(&app, no_id.as_bytes()).await,
        Outcome::TicketCreated { .. }
    ));
    assert_eq!(ingest(&app, no_id.as_bytes()).await, Outcome::Duplicate);
    let mut conn = app.db.conn().await.unwrap();
    assert_eq!(tickets::list_tickets(&mut conn).await.unwrap().len(), 2);
    assert_eq!(acks(&mut conn).await, 2);
}

#[tokio::test]
async fn explain_tells_the_decision_and_writes_nothing() {
    let t = TestEnv::new().await;
    let app = t.app("[[mailbox]]\nname = \"urgent\"\naddress = \"urgent-x@example.test\"\nimap_host = \"127.0.0.1\"\nusername = \"u\"\npassword = \"p\"\nimap_tls = \"none\"\n").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let raw = simple_mail(&alice, &t.support, "Explain me", "ex@x.test", "hi");
    let plan = app.ingestor.explain(&raw, Source::Pipe).await.unwrap();
    assert!(matches!(
        plan.action,
        ActionPlan::NewTicket { continues: None }
    ));
    assert!(plan.acknowledge);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["sender"]["kind"], "contact");
    assert_eq!(json["classification"], "human");
    let mut conn = app.db.conn().await.unwrap();
    assert!(
        tickets::list_tickets(&mut conn).await.unwrap().is_empty(),
        "explain wrote nothing"
    );
    // A mailbox whose default priority is High (urgent@) decides the priority.
    let urgent = postdesk::config::MailboxConfig {
        default_priority: postdesk::domain::Priority::High,
        ..app.config.mailboxes[1].clone()
    };
    let at = postdesk::db::inbound::MailboxUid {
        uidvalidity: 1,
        uid: 1,
    };
    let plan = app
        .ingestor
        .explain(
            &raw,
            Source::Mailbox {
                mailbox: &urgent,
                at,
            },
        )
        .await
        .unwrap();
    assert_eq!(plan.priority, postdesk::domain::Priority::High);
}

/// Every row of the tables an import writes, for comparing whole databases.
async fn dump(app: &postdesk::app::App) -> Vec<String> {
    let mut conn = app.db.conn().await.unwrap();
    let clients: Vec<(i64, String, Option<String>, i64)> =
        sqlx::query_as("SELECT id, name, timezone, created_at FROM clients ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let domains: Vec<(String, i64)> =
        sqlx::query_as("SELECT domain, client_id FROM client_domains ORDER BY domain")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    type ContactRow = (
        i64,
        Option<i64>,
        String,
        Option<String>,
        i64,
        i64,
        i64,
        i64,
        i64,
        String,
        i64,
    );
    let contacts: Vec<ContactRow> = sqlx::query_as(
        "SELECT id, client_id, email, name, is_primary, is_billing, is_technical, active, \
         link_generation, origin, created_at FROM contacts ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out: Vec<String> = clients.iter().map(|r| format!("client {r:?}")).collect();
    out.extend(domains.iter().map(|r| format!("domain {r:?}")));
    out.extend(contacts.iter().map(|r| format!("contact {r:?}")));
    out
}

#[tokio::test]
async fn reimporting_the_same_file_leaves_an_identical_database() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import/clients.json"),
    )
    .unwrap();
    let data = postdesk::import::parse(&text, "clients.json").unwrap();
    let first = postdesk::import::import(&app.db, &data, "clients.json", 1_000)
        .await
        .unwrap();
    assert_eq!(first.clients, 2);
    let before = dump(&app).await;
    postdesk::import::import(&app.db, &data, "clients.json", 2_000)
        .await
        .unwrap();
    let after = dump(&app).await;
    assert_eq!(before, after);
    assert_eq!(
        before.iter().filter(|r| r.starts_with("contact")).count(),
        3
    );

    let bad = r#"{"clients":[{"name":"X","contacts":[{"email":"not an address","types":[]}]}]}"#;
    let err = postdesk::import::import(
        &app.db,
        &postdesk::import::parse(bad, "bad.json").unwrap(),
        "bad.json",
        0,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bad.json") && err.contains("clients[0].contacts[0].email"),
        "{err}"
    );
}

/// The expected result of one corpus sample.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Expected {
    outcome: String,
    subject: String,
    /// The first 60 characters of the text, whitespace collapsed.
    text_start: String,
    attachments: usize,
}

#[tokio::test]
async fn every_mime_sample_becomes_a_ticket_or_a_quarantine_entry() {
    let t = TestEnv::new().await;
    let app = t.app("[tickets]\nunknown_senders = \"create\"\n").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus/mime");
    let expected_path = root.join("expected.json");
    let mut files: Vec<_> = ["rfc", "malformed", "thirdparty"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "corpus present");

    let mut actual: BTreeMap<String, Expected> = BTreeMap::new();
    for path in &files {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let raw = std::fs::read(path).unwrap();
        let outcome = ingest(&app, &raw).await;
        let mut conn = app.db.conn().await.unwrap();
        let result = match &outcome {
            Outcome::TicketCreated { ticket } => {
                let number = TicketNumber::parse("T-", ticket).unwrap();
                let t = tickets::show_ticket(&mut conn, &number)
                    .await
                    .unwrap()
                    .unwrap();
                let text: String = t.messages[0]
                    .text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                Expected {
                    outcome: "ticket".into(),
                    subject: t.ticket.subject,
                    text_start: text.chars().take(60).collect(),
                    attachments: t.messages[0].attachments.len(),
                }
            }
            Outcome::Quarantined { reason } => {
                assert!(
                    reason.contains("no sender")
                        || reason.contains("no content")
                        || reason.contains("not a mail"),
                    "{name}: quarantined only without sender or content, got {reason}"
                );
                Expected {
                    outcome: format!("quarantined: {reason}"),
                    subject: String::new(),
                    text_start: String::new(),
                    attachments: 0,
                }
            }
            Outcome::Duplicate => Expected {
                outcome: "duplicate".into(),
                subject: String::new(),
                text_start: String::new(),
                attachments: 0,
            },
            other => Expected {
                outcome: format!("{other:?}"),
                subject: String::new(),
                text_start: String::new(),
                attachments: 0,
            },
        };
        actual.insert(name, result);
    }
    if std::env::var("POSTDESK_BLESS").is_ok() {
        std::fs::write(
            &expected_path,
            serde_json::to_string_pretty(&actual).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let expected: BTreeMap<String, Expected> = serde_json::from_str(
        &std::fs::read_to_string(&expected_path)
            .expect("expected.json (POSTDESK_BLESS=1 writes it)"),
    )
    .unwrap();
    let mut mismatches = Vec::new();
    for (name, want) in &expected {
        match actual.get(name) {
            Some(got) if got == want => {}
            got => mismatches.push(format!("{name}: expected {want:?}, got {got:?}")),
        }
    }
    assert_eq!(
        expected.len(),
        actual.len(),
        "every sample has an expectation"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A mail from `from` as the trusted MTA (`mx.msp.test`) stamped it.
fn stamped(from: &str, to: &str, subject: &str, id: &str, body: &str, dmarc: &str) -> Vec<u8> {
    let mut raw =
        format!("Authentication-Results: mx.msp.test; spf=pass; dmarc={dmarc} header.from=x\r\n")
            .into_bytes();
    raw.extend(simple_mail(from, to, subject, id, body));
    raw
}

#[tokio::test]
async fn a_sender_failing_dmarc_is_never_taken_for_the_contact_or_technician() {
    let t = TestEnv::new().await;
    let app = t
        .app("[mail_auth]\ntrusted_authserv_id = \"mx.msp.test\"\n")
        .await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");

    // A new request "from Alice" that failed DMARC: kept for review, no ticket.
    let spoofed = stamped(
        &alice,
        &t.support,
        "Change the bank account",
        "s1@x.test",
        "Pay to …",
        "fail",
    );
    match ingest(&app, &spoofed).await {
        Outcome::Quarantined { reason } => assert!(reason.contains("DMARC"), "{reason}"),
        other => panic!("expected quarantine, got {other:?}"),
    }
    // A header with another authserv-id is the sender's own claim: ignored.
    let forged_pass = format!(
        "Authentication-Results: evil.test; dmarc=pass\r\n{}",
        String::from_utf8(stamped(
            &alice,
            &t.support,
            "Printer",
            "s2@x.test",
            "jammed",
            "pass"
        ))
        .unwrap()
    );
    let number = match ingest(&app, forged_pass.as_bytes()).await {
        Outcome::TicketCreated { ticket } => ticket,
        other => panic!("expected a ticket, got {other:?}"),
    };
    let mut conn = app.db.conn().await.unwrap();
    let ticket = postdesk::db::conversation::ticket_by_number(&mut conn, &number)
        .await
        .unwrap()
        .unwrap();
    let token = t.support.replace('@', &format!("+{}@", ticket.reply_token));

    // A technician's #close from a spoofed staff address: a note, not a command.
    let spoofed_staff = stamped(
        &t.staff,
        &token,
        &format!("Re: [#{number}] Printer"),
        "s3@x.test",
        "#status closed\r\n\r\nDone.",
        "fail",
    );
    assert_eq!(
        ingest(&app, &spoofed_staff).await,
        Outcome::Added {
            ticket: number.clone(),
            kind: "internal-note".into()
        }
    );
    // A client "reply" that failed DMARC: kept as an internal note too.
    let spoofed_reply = stamped(
        &alice,
        &token,
        &format!("Re: [#{number}] Printer"),
        "s4@x.test",
        "Ignore the ticket.",
        "fail",
    );
    assert_eq!(
        ingest(&app, &spoofed_reply).await,
        Outcome::Added {
            ticket: number.clone(),
            kind: "internal-note".into()
        }
    );
    let detail = tickets::show_ticket(
        &mut conn,
        &TicketNumber::parse("T-", number.trim_start_matches("T-")).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_ne!(
        detail.ticket.status, "closed",
        "the spoofed command did nothing"
    );
    // And a genuine reply (DMARC pass) is public as always.
    let genuine = stamped(
        &alice,
        &token,
        &format!("Re: [#{number}] Printer"),
        "s5@x.test",
        "Still jammed.",
        "pass",
    );
    assert_eq!(
        ingest(&app, &genuine).await,
        Outcome::Added {
            ticket: number,
            kind: "reply".into()
        }
    );
}
