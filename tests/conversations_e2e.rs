//! Conversations through the real servers (issue 3): mail goes in over SMTP
//! to Postfix, Dovecot delivers it, the running daemon reads it over IMAP and
//! its answers come back the same way. Each case counts every message that
//! reached each mailbox, so a loop or a lost mail fails the test.

mod common;

use std::time::Duration;

use common::*;
use postdesk::app::App;
use postdesk::db::{outbox, tickets};
use postdesk::domain::TicketNumber;
use postdesk::mail::ingest::Source;
use postdesk::mail::threading::ThreadRule;

const WAIT: Duration = Duration::from_secs(40);
/// How long a mailbox must stay unchanged to count as settled.
const SETTLE: Duration = Duration::from_secs(4);

async fn ticket(app: &App, number: &str) -> tickets::TicketDetail {
    let mut conn = app.db.conn().await.unwrap();
    tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", number).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("ticket {number}"))
}

async fn ticket_count(app: &App) -> usize {
    let mut conn = app.db.conn().await.unwrap();
    tickets::list_tickets(&mut conn).await.unwrap().len()
}

/// Waits until `user`'s `folder` holds at least `n` messages; returns them.
async fn wait_for_messages(t: &TestEnv, user: &str, folder: &str, n: usize) -> Vec<Vec<u8>> {
    wait_for(
        &format!("{n} message(s) in {user}'s {folder}"),
        WAIT,
        || async {
            let msgs = read_folder(&t.mail, user, folder).await;
            (msgs.len() >= n).then_some(msgs)
        },
    )
    .await
}

/// Waits until the message counts of `users`' INBOXes and the support
/// mailbox's Processed folder stop changing for [`SETTLE`]; returns the
/// INBOX counts in the order of `users`.
async fn settled_counts(t: &TestEnv, users: &[&str]) -> Vec<usize> {
    let mut last = Vec::new();
    let mut stable_since = std::time::Instant::now();
    let deadline = std::time::Instant::now() + WAIT + SETTLE;
    loop {
        let mut now = Vec::new();
        for u in users {
            now.push(read_folder(&t.mail, u, "INBOX").await.len());
        }
        now.push(read_folder(&t.mail, &t.support, "Processed").await.len());
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        } else if stable_since.elapsed() >= SETTLE {
            last.pop();
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mailboxes never settled: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A reply from a mail client: threading headers of `to_msg`, sent to its
/// Reply-To, with the original quoted below.
fn reply_to(from: &str, to_msg: &[u8], message_id: &str, body: &str) -> (String, Vec<u8>) {
    let reply_address = header(to_msg, "Reply-To").expect("our mail has a Reply-To");
    let reply_address = reply_address
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>').to_string())
        .unwrap_or(reply_address);
    let parent = header(to_msg, "Message-ID").unwrap();
    let references = match header(to_msg, "References") {
        Some(r) => format!("{r} {parent}"),
        None => parent.clone(),
    };
    let subject = header(to_msg, "Subject").unwrap();
    let quoted: String = mail_text(to_msg)
        .lines()
        .map(|l| format!("> {l}\r\n"))
        .collect();
    let raw = format!(
        "From: {from}\r\nTo: {reply_address}\r\nSubject: Re: {subject}\r\nMessage-ID: <{message_id}>\r\n\
In-Reply-To: {parent}\r\nReferences: {references}\r\nDate: Mon, 23 Nov 2026 11:00:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Example IT wrote:\r\n{quoted}"
    );
    (reply_address, raw.into_bytes())
}

/// The threading rule `explain` reports for a message the daemon processed.
async fn rule_of(app: &App, raw: &[u8]) -> Option<ThreadRule> {
    app.ingestor
        .explain(raw, Source::Pipe)
        .await
        .unwrap()
        .thread
        .rule
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_technician_talk_through_real_mail_and_every_mail_threads() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let bob = t.addr("bob", "customer.test");
    let daemon = RunningDaemon::start(app.clone());

    let request_id = format!("req-{}@customer.test", t.tag);
    let raw = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nCc: Bob <{bob}>\r\nSubject: VPN drops every hour\r\n\
Message-ID: <{request_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nThe VPN disconnects every hour.\r\n",
        support = t.support
    );
    send_mail(&t.mail, &alice, &[&t.support], raw.as_bytes()).await;

    // The acknowledgement reaches Alice and Bob; the technician is told.
    let ack = wait_for_messages(&t, &alice, "INBOX", 1).await.remove(0);
    wait_for_messages(&t, &bob, "INBOX", 1).await;
    let notification = wait_for_messages(&t, &t.staff, "INBOX", 1).await.remove(0);
    assert!(header(&notification, "Subject")
        .unwrap()
        .contains("[#T-1001]"));

    // The technician answers from their mailbox, quoting the notification.
    let (to, staff_reply) = reply_to(
        &format!("Tess Tech <{}>", t.staff),
        &notification,
        &format!("tech-{}@msp.test", t.tag),
        "Please restart the router and tell us if it helps.",
    );
    assert!(
        to.contains('+'),
        "the notification's Reply-To carries the token"
    );
    send_mail(&t.mail, &t.staff, &[&to], &staff_reply).await;

    // Alice and Bob get the public reply, threaded under the request.
    let public = wait_for_messages(&t, &alice, "INBOX", 2).await.remove(1);
    let bob_copy = wait_for_messages(&t, &bob, "INBOX", 2).await.remove(1);
    assert_eq!(
        header(&public, "Message-ID"),
        header(&bob_copy, "Message-ID"),
        "one mail to both"
    );
    assert_eq!(
        header(&public, "Subject").as_deref(),
        Some("Re: [#T-1001] VPN drops every hour")
    );
    let references = header(&public, "References").unwrap();
    assert!(references.contains(&request_id), "{references}");
    assert!(
        references.contains(header(&ack, "Message-ID").unwrap().trim_matches(['<', '>'])),
        "{references}"
    );
    let public_text = mail_text(&public);
    assert!(
        public_text.contains("Please restart the router"),
        "{public_text}"
    );
    assert!(
        !public_text.contains("New ticket"),
        "the quoted notification is trimmed away: {public_text}"
    );

    // Alice answers the public reply from her mail client.
    let (_, alice_reply) = reply_to(
        &alice,
        &public,
        &format!("alice-r1-{}@customer.test", t.tag),
        "Restarted it, still the same.",
    );
    send_mail(&t.mail, &alice, &[&t.support], &alice_reply).await;
    wait_for_messages(&t, &t.staff, "INBOX", 2).await;

    let counts = settled_counts(&t, &[&alice, &bob, &t.staff]).await;
    assert_eq!(
        counts,
        vec![2, 2, 2],
        "Alice and Bob: ack + reply; staff: two notifications"
    );
    let processed = read_folder(&t.mail, &t.support, "Processed").await;
    assert_eq!(processed.len(), 3, "request, staff reply, client reply");
    assert_eq!(
        rule_of(&app, &processed[1]).await,
        Some(ThreadRule::ReplyToken)
    );
    assert_eq!(
        rule_of(&app, &processed[2]).await,
        Some(ThreadRule::ReplyToken)
    );

    let t1001 = ticket(&app, "1001").await;
    let inbound: Vec<_> = t1001
        .messages
        .iter()
        .filter(|m| m.direction == "in")
        .collect();
    assert_eq!(inbound.len(), 3);
    assert_eq!(
        inbound[2].trimmed.as_deref(),
        Some("Restarted it, still the same.")
    );
    assert_eq!(ticket_count(&app).await, 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sieve_vacation_responder_gets_one_answer_and_never_loops() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    // Alice is away: Dovecot's Pigeonhole answers mail for her.
    let (user, domain) = alice.split_once('@').unwrap();
    let home = t.mail.dir.join("mail").join(domain).join(user);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".dovecot.sieve"),
        "require [\"vacation\"];\nvacation :days 1 :subject \"Out of office\" \"I am away until Monday.\";\n",
    )
    .unwrap();
    let daemon = RunningDaemon::start(app.clone());

    let raw = simple_mail(
        &alice,
        &t.support,
        "Mailbox full",
        &format!("req-{}@customer.test", t.tag),
        "My mailbox says it is full.",
    );
    send_mail(&t.mail, &alice, &[&t.support], &raw).await;
    // The acknowledgement is Auto-Submitted: the vacation script ignores it.
    let notification = wait_for_messages(&t, &t.staff, "INBOX", 1).await.remove(0);
    wait_for_messages(&t, &alice, "INBOX", 1).await;

    // Two replies by a person: the responder answers the first one only.
    for n in 1..=2 {
        let (to, reply) = reply_to(
            &t.staff,
            &notification,
            &format!("tech-{n}-{}@msp.test", t.tag),
            &format!("Answer number {n}: we enlarged your mailbox."),
        );
        send_mail(&t.mail, &t.staff, &[&to], &reply).await;
        wait_for_messages(&t, &alice, "INBOX", 1 + n).await;
    }

    let counts = settled_counts(&t, &[&alice, &t.staff]).await;
    assert_eq!(
        counts,
        vec![3, 1],
        "Alice: one ack and two replies; staff: the new-ticket notification only"
    );
    let processed = read_folder(&t.mail, &t.support, "Processed").await;
    let vacation: Vec<_> = processed
        .iter()
        .filter(|m| header(m, "Subject").as_deref() == Some("Out of office"))
        .collect();
    assert_eq!(vacation.len(), 1, "one vacation reply in all");
    assert!(header(vacation[0], "Auto-Submitted")
        .unwrap()
        .starts_with("auto-replied"));
    assert_eq!(
        rule_of(&app, vacation[0]).await,
        Some(ThreadRule::SignedMessageId)
    );
    assert_eq!(processed.len(), 4, "request, two staff replies, vacation");

    let t1001 = ticket(&app, "1001").await;
    let auto: Vec<_> = t1001
        .messages
        .iter()
        .filter(|m| m.kind == "auto-reply")
        .collect();
    assert_eq!(
        auto.len(),
        1,
        "the vacation reply is recorded on the ticket"
    );
    assert_eq!(auto[0].visibility, "internal");
    assert_eq!(ticket_count(&app).await, 1, "it opened no ticket");
    let mut conn = app.db.conn().await.unwrap();
    let acks = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "acknowledgement")
        .count();
    assert_eq!(acks, 1);
    drop(conn);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_auto_responders_facing_each_other_stay_bounded_by_the_rate_limit() {
    let t = TestEnv::new().await;
    // A low limit keeps the test short; the mechanism is the default one.
    let app = t.app("[limits]\nauto_mail_per_address = 4\n").await;
    t.import_customer(&app).await;
    let robot = t.addr("robot", "customer.test");
    let daemon = RunningDaemon::start(app.clone());

    // A careless responder: it answers every mail it gets with a new mail
    // that carries no Auto-Submitted header and no threading headers.
    let cancel = tokio_util::sync::CancellationToken::new();
    let responder = {
        let t_mail = t.mail.clone();
        let robot = robot.clone();
        let support = t.support.clone();
        let tag = t.tag.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let inbox = read_folder(&t_mail, &robot, "INBOX").await;
                while answered < inbox.len() {
                    answered += 1;
                    let raw = simple_mail(
                        &robot,
                        &support,
                        "Thank you for your message",
                        &format!("robot-{answered}-{tag}@customer.test"),
                        "We have received your message and will answer soon.",
                    );
                    send_mail(&t_mail, &robot, &[&support], &raw).await;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return answered,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        })
    };
    let first = simple_mail(
        &robot,
        &t.support,
        "Thank you for your message",
        &format!("robot-0-{}@customer.test", t.tag),
        "We have received your message and will answer soon.",
    );
    send_mail(&t.mail, &robot, &[&t.support], &first).await;

    wait_for_messages(&t, &robot, "INBOX", 4).await;
    let counts = settled_counts(&t, &[&robot]).await;
    cancel.cancel();
    let answered = responder.await.unwrap();
    assert_eq!(
        counts,
        vec![4],
        "four acknowledgements, then the limit holds"
    );
    assert_eq!(answered, 4);
    // Five mails from the robot: five tickets, the fifth acknowledgement
    // kept back as rate-limited.
    assert_eq!(ticket_count(&app).await, 5);
    let mut conn = app.db.conn().await.unwrap();
    let acks: Vec<_> = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "acknowledgement")
        .collect();
    drop(conn);
    assert_eq!(acks.len(), 5);
    assert_eq!(
        acks.iter().filter(|m| m.status == "sent").count(),
        4,
        "{acks:?}"
    );
    assert_eq!(
        acks.iter().filter(|m| m.status == "rate-limited").count(),
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postfix_bounce_lands_on_the_ticket_and_suppresses_the_address() {
    let t = TestEnv::new().await;
    let app = t.app("").await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    // A colleague whose address no longer exists: dead.test is accepted by
    // Postfix, then refused at delivery, and Postfix sends a real DSN.
    let ghost = t.addr("ghost", "dead.test");
    let daemon = RunningDaemon::start(app.clone());

    let raw = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nCc: {ghost}\r\nSubject: Scanner offline\r\n\
Message-ID: <req-{tag}@customer.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nThe scanner is offline.\r\n",
        support = t.support,
        tag = t.tag
    );
    send_mail(&t.mail, &alice, &[&t.support], raw.as_bytes()).await;
    wait_for_messages(&t, &alice, "INBOX", 1).await;

    // The acknowledgement to the dead address comes back as a DSN.
    let bounce = wait_for("the bounce on the ticket", WAIT, || async {
        let t1001 = ticket(&app, "1001").await;
        t1001.messages.into_iter().find(|m| m.kind == "bounce")
    })
    .await;
    assert_eq!(bounce.visibility, "system");
    let processed = wait_for_messages(&t, &t.support, "Processed", 2).await;
    let dsn = processed
        .iter()
        .find(|m| {
            header(m, "Content-Type").is_some_and(|c| c.contains("report-type=delivery-status"))
        })
        .expect("Postfix's DSN was processed");
    assert_eq!(rule_of(&app, dsn).await, Some(ThreadRule::SignedMessageId));
    // The staff hear of it: the new-ticket notification, then the bounce.
    let staff_inbox = wait_for_messages(&t, &t.staff, "INBOX", 2).await;
    assert!(
        mail_text(&staff_inbox[1]).contains(&ghost),
        "the technician is told which address failed"
    );

    // The next reply goes to Alice only.
    let (to, reply) = reply_to(
        &t.staff,
        &staff_inbox[0],
        &format!("tech-{}@msp.test", t.tag),
        "We restarted the scanner.",
    );
    send_mail(&t.mail, &t.staff, &[&to], &reply).await;
    wait_for_messages(&t, &alice, "INBOX", 2).await;
    let mut conn = app.db.conn().await.unwrap();
    let replies: Vec<_> = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "public-reply")
        .collect();
    drop(conn);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].recipients, vec![alice.clone()]);
    let counts = settled_counts(&t, &[&alice, &t.staff]).await;
    assert_eq!(counts, vec![2, 2], "no further mail, no second bounce");
    assert_eq!(ticket_count(&app).await, 1, "the bounce opened no ticket");
    daemon.stop().await;
}
