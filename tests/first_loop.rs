//! The first loop against the real servers: a mail to the support address
//! opens a ticket and the sender gets an acknowledgement; re-delivery and
//! restarts make no duplicates; attachments survive byte for byte.

mod common;

use std::time::Duration;

use common::*;
use postdesk::db::{inbound, outbox, tickets};
use postdesk::domain::TicketNumber;
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);

async fn ticket_count(app: &postdesk::app::App) -> usize {
    let mut conn = app.db.conn().await.unwrap();
    tickets::list_tickets(&mut conn).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_request_opens_ticket_and_sender_gets_acknowledgement() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let daemon = RunningDaemon::start(app.clone());

    let request_id = format!("req-{}@customer.test", t.tag);
    let raw = simple_mail(
        &format!("Alice Example <{alice}>"),
        &t.support,
        "Printer on 2nd floor is offline",
        &request_id,
        "Hi,\r\nthe printer shows error E42 since this morning.\r\nAlice",
    );
    send_mail(&t.mail, &alice, &[&t.support], &raw).await;

    let acks = wait_for(
        "the acknowledgement in the sender's mailbox",
        WAIT,
        || async {
            let msgs = read_folder(&t.mail, &alice, "INBOX").await;
            (!msgs.is_empty()).then_some(msgs)
        },
    )
    .await;
    assert_eq!(acks.len(), 1, "exactly one acknowledgement");
    let ack = &acks[0];
    assert_eq!(
        header(ack, "Subject").as_deref(),
        Some("[#T-1001] Printer on 2nd floor is offline")
    );
    assert_eq!(header(ack, "In-Reply-To"), Some(format!("<{request_id}>")));
    assert!(header(ack, "References").unwrap().contains(&request_id));
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(ack, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    let message_id = header(ack, "Message-ID").unwrap();
    let keys = app.config.link_keys.clone();
    assert!(
        postdesk::mail::message_id::verify(&keys, &message_id),
        "our signed Message-ID: {message_id}"
    );
    let reply_to = header(ack, "Reply-To").unwrap();
    let support_local = t.support.split('@').next().unwrap();
    assert!(
        reply_to.contains(&format!("{support_local}+")),
        "reply token in Reply-To: {reply_to}"
    );

    let parsed = mail_parser::MessageParser::default()
        .parse(ack.as_slice())
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains("T-1001") && text.contains("Medium") && text.contains("2 hours"),
        "{text}"
    );
    assert!(parsed.html_body_count() > 0 && parsed.body_html(0).unwrap().contains("T-1001"));

    // The ticket holds the request and the acknowledgement.
    let mut conn = app.db.conn().await.unwrap();
    let ticket = tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", "T-1001").unwrap())
        .await
        .unwrap()
        .expect("ticket T-1001");
    assert_eq!(
        ticket.ticket.client.as_deref(),
        Some(format!("Customer {}", t.tag).as_str())
    );
    assert_eq!(ticket.ticket.priority, "medium");
    assert_eq!(ticket.messages.len(), 3);
    assert_eq!(ticket.messages[0].direction, "in");
    assert!(ticket.messages[0].text.contains("error E42"));
    assert_eq!(ticket.messages[1].kind, "acknowledgement");
    assert_eq!(ticket.messages[2].kind, "staff-notification");
    assert_eq!(ticket.messages[2].visibility, "internal");
    assert_eq!(ticket.messages[2].to, vec![t.staff.clone()]);

    // The request left the inbox for the processed folder, flagged \Seen.
    let inbox = read_folder(&t.mail, &t.support, "INBOX").await;
    assert!(inbox.is_empty(), "INBOX emptied");
    let processed = read_folder(&t.mail, &t.support, "Processed").await;
    assert_eq!(processed.len(), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_redelivery_make_no_duplicates() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let daemon = RunningDaemon::start(app.clone());
    for i in 0..3 {
        let raw = simple_mail(
            &alice,
            &t.support,
            &format!("Request {i}"),
            &format!("r{i}-{}@customer.test", t.tag),
            "help",
        );
        send_mail(&t.mail, &alice, &[&t.support], &raw).await;
    }
    wait_for("three acknowledgements", WAIT, || async {
        (read_folder(&t.mail, &alice, "INBOX").await.len() == 3).then_some(())
    })
    .await;
    daemon.stop().await;

    // The same three messages arrive again (a re-delivery: new UIDs, same
    // Message-IDs), and the daemon restarts.
    let copies = read_folder(&t.mail, &t.support, "Processed").await;
    assert_eq!(copies.len(), 3);
    for raw in &copies {
        send_mail(&t.mail, &alice, &[&t.support], raw).await;
    }
    let app = t.app("").await;
    let daemon = RunningDaemon::start(app.clone());
    wait_for("the re-delivered copies to be processed", WAIT, || async {
        (read_folder(&t.mail, &t.support, "Processed").await.len() == 6).then_some(())
    })
    .await;
    daemon.stop().await;

    assert_eq!(ticket_count(&app).await, 3, "no ticket twice");
    let mut conn = app.db.conn().await.unwrap();
    let sent: Vec<_> = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "acknowledgement")
        .collect();
    assert_eq!(sent.len(), 3, "one acknowledgement each");
    assert!(sent.iter().all(|m| m.status == "sent"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        read_folder(&t.mail, &alice, "INBOX").await.len(),
        3,
        "no acknowledgement twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_round_trip_byte_for_byte() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");

    // A large "photo" (incompressible bytes), a small inline image and a PDF
    // whose name is RFC 2231 encoded.
    let mut photo = vec![0u8; 6 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut photo);
    photo[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    let inline_png: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    let pdf = b"%PDF-1.4\n% test document\n".repeat(100);
    use base64::Engine;
    let b64 = |b: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(b);
        s.as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let raw = format!(
        "From: {alice}\r\nTo: {support}\r\nSubject: Photos of the broken screen\r\nMessage-ID: <att-{tag}@customer.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
--outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See <img src=\"cid:shot1@customer.test\"></p>\r\n\
--rel\r\nContent-Type: image/png\r\nContent-ID: <shot1@customer.test>\r\nContent-Disposition: inline; filename=\"shot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n\
--rel--\r\n\
--outer\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; filename=\"IMG_0001.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{photo}\r\n\
--outer\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz%202026.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n\
--outer--\r\n",
        support = t.support,
        tag = t.tag,
        png = b64(&inline_png),
        photo = b64(&photo),
        pdf = b64(&pdf),
    );
    let daemon = RunningDaemon::start(app.clone());
    send_mail(&t.mail, &alice, &[&t.support], raw.as_bytes()).await;
    wait_for("the ticket", WAIT, || async {
        (ticket_count(&app).await == 1).then_some(())
    })
    .await;
    daemon.stop().await;

    let mut conn = app.db.conn().await.unwrap();
    let ticket = tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", "T-1001").unwrap())
        .await
        .unwrap()
        .unwrap();
    let atts = &ticket.messages[0].attachments;
    assert_eq!(atts.len(), 3, "{atts:?}");
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
    let by_name = |n: &str| {
        atts.iter()
            .find(|a| a.filename == n)
            .unwrap_or_else(|| panic!("{n} in {atts:?}"))
    };
    let jpg = by_name("IMG_0001.jpg");
    assert_eq!(jpg.sha256, sha(&photo));
    assert_eq!(jpg.size as usize, photo.len());
    let pdf_att = by_name("Rechnung März 2026.pdf");
    assert_eq!(pdf_att.sha256, sha(&pdf));
    let png = by_name("shot.png");
    assert_eq!(png.sha256, sha(&inline_png));
    assert_eq!(png.content_id.as_deref(), Some("shot1@customer.test"));
    assert!(png.inline);
    // The stored blob is the same bytes.
    let stored = app
        .ingestor
        .store
        .get(postdesk::storage::BlobKind::Attachment, &jpg.sha256)
        .unwrap();
    assert_eq!(sha(&stored), sha(&photo));
    // The sanitized HTML keeps the cid: reference to the inline image.
    assert!(ticket.messages[0]
        .html
        .as_deref()
        .unwrap()
        .contains("cid:shot1@customer.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_recorded_not_downloaded_and_sender_told() {
    let t = TestEnv::new().await;
    let app = t.app("[limits]\nmax_message_mb = 1\n").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let big = "x".repeat(76);
    let body = std::iter::repeat_n(big.as_str(), 30_000)
        .collect::<Vec<_>>()
        .join("\r\n");
    let raw = simple_mail(
        &alice,
        &t.support,
        "Huge log file",
        &format!("big-{}@customer.test", t.tag),
        &body,
    );
    let daemon = RunningDaemon::start(app.clone());
    send_mail(&t.mail, &alice, &[&t.support], &raw).await;
    let acks = wait_for("the acknowledgement", WAIT, || async {
        let m = read_folder(&t.mail, &alice, "INBOX").await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    daemon.stop().await;
    let text = String::from_utf8_lossy(&acks[0]).to_string();
    assert!(text.contains("larger than we accept"), "{text}");
    let mut conn = app.db.conn().await.unwrap();
    let ticket = tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", "T-1001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(ticket.messages[0].truncated);
    assert!(ticket.messages[0].text.contains("not downloaded"));
    assert_eq!(ticket.ticket.subject, "Huge log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_already_read_in_a_mail_client_still_counts() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let raw = simple_mail(
        &alice,
        &t.support,
        "Seen already",
        &format!("seen-{}@customer.test", t.tag),
        "x",
    );
    send_mail(&t.mail, &alice, &[&t.support], &raw).await;
    // Someone opens the support mailbox and reads the message first.
    wait_for("delivery", WAIT, || async {
        (read_folder(&t.mail, &t.support, "INBOX").await.len() == 1).then_some(())
    })
    .await;
    let mailbox = app.config.mailboxes[0].clone();
    let mut s = postdesk::mail::imap::connect(&mailbox).await.unwrap();
    s.select("INBOX").await.unwrap();
    use futures::TryStreamExt;
    let _: Vec<_> = s
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    s.logout().await.unwrap();

    let daemon = RunningDaemon::start(app.clone());
    wait_for("the ticket", WAIT, || async {
        (ticket_count(&app).await == 1).then_some(())
    })
    .await;
    daemon.stop().await;
    let mut conn = app.db.conn().await.unwrap();
    assert!(inbound::list_quarantine(&mut conn)
        .await
        .unwrap()
        .is_empty());
}
