//! Conversations by email (issue 3), one case each: every mail goes through
//! Postfix and Dovecot to the support mailbox, is read back over IMAP and is
//! ingested as delivered (with the servers' Return-Path, Delivered-To and
//! Received headers). Each case asserts the threading rule that matched
//! (`explain`), the trimmed text kept on the ticket, and the exact recipients
//! of what was queued. (`conversations_e2e.rs` runs the whole daemon.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use postdesk::app::App;
use postdesk::clock::{ManualClock, SharedClock};
use postdesk::db::{conversation, outbox, tickets};
use postdesk::domain::TicketNumber;
use postdesk::mail::ingest::{ActionPlan, Outcome, Source};
use postdesk::mail::threading::ThreadRule;

/// A test world: a customer with Alice, a clock we move, ticket T-1001
/// opened by Alice with Bob in CC.
struct World {
    t: TestEnv,
    app: App,
    clock: ManualClock,
    alice: String,
    bob: String,
    /// Message-ID of the acknowledgement of T-1001.
    ack_id: String,
    /// `support+<token>@…` of T-1001.
    token_address: String,
}

const START: i64 = 1_795_000_000_000;

/// Sends `raw` over SMTP from its From address to its first To address (the
/// support address, or a token address that Dovecot delivers to it), waits
/// for it in the support INBOX, and ingests the delivered bytes.
async fn deliver(t: &TestEnv, app: &App, raw: &[u8]) -> Outcome {
    let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
    let first_address = |v: Option<&mail_parser::Address<'_>>| {
        v.and_then(|a| a.first())
            .and_then(|a| a.address())
            .expect("an address")
            .to_string()
    };
    let from = first_address(parsed.from());
    let to = first_address(parsed.to());
    let marker = header(raw, "Message-ID").expect("test mails have a Message-ID");
    send_mail(&t.mail, &from, &[&to], raw).await;
    let delivered = wait_for(
        "the mail in the support INBOX",
        Duration::from_secs(30),
        || async {
            read_folder(&t.mail, &t.support, "INBOX")
                .await
                .into_iter()
                .find(|m| header(m, "Message-ID").as_deref() == Some(marker.as_str()))
        },
    )
    .await;
    assert!(
        header(&delivered, "Delivered-To").is_some(),
        "delivered by Dovecot"
    );
    ingest(app, &delivered).await
}

async fn world() -> World {
    world_with(|_| String::new()).await
}

/// [`world`] with config lines added (given the test's environment).
async fn world_with(extra: impl FnOnce(&TestEnv) -> String) -> World {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(START);
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::open(t.config(&extra(&t)), shared).await.unwrap();
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    let bob = t.addr("bob", "customer.test");
    let first = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nCc: {bob}\r\nSubject: VPN drops every hour\r\n\
Message-ID: <first-{tag}@customer.test>\r\n\r\nThe VPN disconnects every hour since Monday.\r\n",
        support = t.support,
        tag = t.tag
    );
    assert_eq!(
        deliver(&t, &app, first.as_bytes()).await,
        Outcome::TicketCreated {
            ticket: "T-1001".into()
        }
    );
    let mut conn = app.db.conn().await.unwrap();
    let ack = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "acknowledgement")
        .unwrap();
    assert_eq!(ack.recipients, vec![alice.clone(), bob.clone()]);
    let ticket = conversation::ticket_by_number(&mut conn, "T-1001")
        .await
        .unwrap()
        .unwrap();
    let token_address = t.support.replace('@', &format!("+{}@", ticket.reply_token));
    World {
        ack_id: ack.message_id,
        token_address,
        t,
        app,
        clock,
        alice,
        bob,
    }
}

impl World {
    async fn deliver(&self, raw: &[u8]) -> Outcome {
        deliver(&self.t, &self.app, raw).await
    }

    async fn ticket(&self, number: &str) -> tickets::TicketDetail {
        let mut conn = self.app.db.conn().await.unwrap();
        tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", number).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// Outbox rows queued after the first `skip`, as (kind, recipients).
    async fn queued_since(&self, skip: usize) -> Vec<(String, Vec<String>)> {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .skip(skip)
            .map(|m| (m.kind, m.recipients))
            .collect()
    }

    /// The latest inbound message of ticket `number`.
    async fn last_inbound(&self, number: &str) -> tickets::MessageView {
        let ticket = self.ticket(number).await;
        ticket
            .messages
            .into_iter()
            .rev()
            .find(|m| m.direction == "in")
            .expect("an inbound message")
    }

    /// A technician's mail to the support address (not a reply): `body` is
    /// the command lines, a blank line and the text. Ingested as delivered.
    async fn staff_to_support(&self, subject: &str, body: &str) -> Outcome {
        let raw = format!(
            "From: {staff}\r\nTo: {support}\r\nSubject: {subject}\r\nMessage-ID: <{id}@msp.test>\r\n\r\n{body}",
            staff = self.t.staff,
            support = self.t.support,
            id = random_tag(),
        );
        self.deliver(raw.as_bytes()).await
    }

    async fn queued_count(&self) -> usize {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::list(&mut conn).await.unwrap().len()
    }

    async fn rule_of(&self, raw: &[u8]) -> Option<ThreadRule> {
        self.app
            .ingestor
            .explain(raw, Source::Pipe)
            .await
            .unwrap()
            .thread
            .rule
    }
}

#[tokio::test]
async fn gmail_style_reply_threads_by_our_signed_message_id_and_is_trimmed() {
    let w = world().await;
    let before = w.queued_count().await;
    let reply = format!(
        "From: Alice <{alice}>\r\nTo: Example IT <{support}>\r\nSubject: Re: [#T-1001] VPN drops every hour\r\n\
Message-ID: <r1-{tag}@mail.gmail.test>\r\nIn-Reply-To: <{ack}>\r\nReferences: <first-{tag}@customer.test> <{ack}>\r\n\r\n\
It happened again at 10:00.\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Example IT <{support}> wrote:\r\n> We have opened ticket T-1001\r\n",
        alice = w.alice,
        support = w.t.support,
        tag = w.t.tag,
        ack = w.ack_id
    );
    assert_eq!(
        w.rule_of(reply.as_bytes()).await,
        Some(ThreadRule::SignedMessageId)
    );
    assert_eq!(
        w.deliver(reply.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "reply".into()
        }
    );
    let last_in = w.last_inbound("1001").await;
    assert_eq!(last_in.visibility, "public");
    assert_eq!(
        last_in.trimmed.as_deref(),
        Some("It happened again at 10:00.")
    );
    assert!(
        last_in.text.contains("We have opened ticket"),
        "full body kept"
    );
    // The staff are told; the client is not answered.
    assert_eq!(
        w.queued_since(before).await,
        vec![("staff-notification".to_string(), vec![w.t.staff.clone()])]
    );
}

#[tokio::test]
async fn outlook_reply_without_in_reply_to_threads_by_subject_tag() {
    let w = world().await;
    let reply = format!(
        "From: Bob <{bob}>\r\nTo: {support}\r\nSubject: AW: [#T-1001] VPN drops every hour\r\n\
Message-ID: <r2-{tag}@outlook.test>\r\n\r\nStill broken here too.\r\n\r\n-----Original Message-----\r\n\
From: Example IT <{support}>\r\nSent: Monday, November 23, 2026 10:00 AM\r\nSubject: [#T-1001] VPN drops every hour\r\n\r\nWe have opened ticket T-1001\r\n",
        bob = w.bob,
        support = w.t.support,
        tag = w.t.tag
    );
    assert_eq!(
        w.rule_of(reply.as_bytes()).await,
        Some(ThreadRule::SubjectTag)
    );
    assert!(matches!(
        w.deliver(reply.as_bytes()).await,
        Outcome::Added { .. }
    ));
    let last_in = w.last_inbound("1001").await;
    assert_eq!(last_in.trimmed.as_deref(), Some("Still broken here too."));
}

#[tokio::test]
async fn reply_token_threads_and_a_stranger_becomes_an_internal_note() {
    let w = world().await;
    // Someone outside the client answers through the reply address.
    let stranger = w.t.addr("eve", "elsewhere.test");
    let raw = format!(
        "From: {stranger}\r\nTo: {to}\r\nSubject: Re: VPN\r\nMessage-ID: <s-{tag}@elsewhere.test>\r\n\r\nI can fix your VPN cheaply!\r\n",
        to = w.token_address,
        tag = w.t.tag
    );
    let plan = w
        .app
        .ingestor
        .explain(raw.as_bytes(), Source::Pipe)
        .await
        .unwrap();
    assert_eq!(plan.thread.rule, Some(ThreadRule::ReplyToken));
    assert!(!plan.thread.sender_on_ticket);
    let before = w.queued_count().await;
    assert_eq!(
        w.deliver(raw.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "internal-note".into()
        }
    );
    let note = w.last_inbound("1001").await;
    assert_eq!(note.visibility, "internal", "never public");
    assert_eq!(
        w.queued_since(before).await,
        vec![("staff-notification".to_string(), vec![w.t.staff.clone()])],
        "staff told, nobody else"
    );

    // The same stranger quoting only the tag gets no foothold on T-1001.
    let tag_only = format!(
        "From: {stranger}\r\nTo: {support}\r\nSubject: Re: [#T-1001] VPN\r\nMessage-ID: <s2-{tag}@elsewhere.test>\r\n\r\nHello?\r\n",
        support = w.t.support,
        tag = w.t.tag
    );
    let plan = w
        .app
        .ingestor
        .explain(tag_only.as_bytes(), Source::Pipe)
        .await
        .unwrap();
    assert_eq!(plan.thread.rule, None);
    assert!(plan.thread.declined.unwrap().contains("not on that ticket"));
    assert!(matches!(plan.action, ActionPlan::NewTicket { .. }));
    let notes_before = w.ticket("1001").await.messages.len();
    assert_eq!(
        w.deliver(tag_only.as_bytes()).await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    assert_eq!(w.ticket("1002").await.ticket.requester, stranger);
    assert_eq!(
        w.ticket("1001").await.messages.len(),
        notes_before,
        "nothing added to T-1001"
    );
}

#[tokio::test]
async fn assign_routes_the_next_notification_to_the_assignee_only() {
    // A second technician, so the assignment shows in who is told.
    let w = world_with(|t| {
        format!(
            "[[staff]]\nemail = \"{}\"\nname = \"Max Admin\"\n",
            t.addr("max", "msp.test")
        )
    })
    .await;
    let colleague = w.t.addr("max", "msp.test");
    let before = w.queued_count().await;
    let assign = format!(
        "From: {staff}\r\nTo: {to}\r\nSubject: Re: [#T-1001] VPN\r\nMessage-ID: <as-{tag}@msp.test>\r\n\r\n#assign tess\r\n",
        staff = w.t.staff,
        to = w.token_address,
        tag = w.t.tag
    );
    assert_eq!(
        w.deliver(assign.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "note".into()
        }
    );
    assert_eq!(
        w.ticket("1001").await.ticket.assignee.as_deref(),
        Some(w.t.staff.as_str())
    );
    assert_eq!(
        w.queued_count().await,
        before,
        "a bare command mails nobody"
    );
    let reply = format!(
        "From: {alice}\r\nTo: {to}\r\nSubject: Re: VPN\r\nMessage-ID: <aa-{tag}@customer.test>\r\n\r\nAny news?\r\n",
        alice = w.alice,
        to = w.token_address,
        tag = w.t.tag
    );
    w.deliver(reply.as_bytes()).await;
    assert_eq!(
        w.queued_since(before).await,
        vec![("staff-notification".to_string(), vec![w.t.staff.clone()])],
        "the assignee, not {colleague}"
    );
}

#[tokio::test]
async fn closed_ticket_reopens_inside_the_window_and_links_a_new_one_after() {
    let w = world().await;
    let staff_close = format!(
        "From: {staff}\r\nTo: {to}\r\nSubject: Re: [#T-1001] VPN\r\nMessage-ID: <c-{tag}@msp.test>\r\n\r\n#close\r\nFixed the lease time on the firewall.\r\n",
        staff = w.t.staff,
        to = w.token_address,
        tag = w.t.tag
    );
    assert!(matches!(
        w.deliver(staff_close.as_bytes()).await,
        Outcome::Added { .. }
    ));
    assert_eq!(w.ticket("1001").await.ticket.status, "closed");

    let reply = |n: u32| {
        format!(
            "From: {alice}\r\nTo: {to}\r\nSubject: Re: [#T-1001] VPN\r\nMessage-ID: <late{n}-{tag}@customer.test>\r\n\r\nIt is back.\r\n",
            alice = w.alice,
            to = w.token_address,
            tag = w.t.tag
        )
    };
    w.clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        w.deliver(reply(1).as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "reply-reopened".into()
        }
    );
    assert_eq!(w.ticket("1001").await.ticket.status, "open");

    // Closed again, and the client writes after reopen_days (14).
    w.deliver(staff_close.replace("<c-", "<c2-").as_bytes())
        .await;
    w.clock.advance(Duration::from_secs(15 * 86_400));
    assert_eq!(
        w.deliver(reply(2).as_bytes()).await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let new = w.ticket("1002").await;
    assert_eq!(new.ticket.linked_ticket.as_deref(), Some("T-1001"));
    assert_eq!(w.ticket("1001").await.ticket.status, "closed");
}

#[tokio::test]
async fn out_of_office_is_recorded_and_answered_by_nothing() {
    let w = world().await;
    let before = w.queued_count().await;
    let ooo = format!(
        "From: {alice}\r\nTo: {support}\r\nSubject: Automatic reply: [#T-1001] VPN drops every hour\r\n\
Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\nIn-Reply-To: <{ack}>\r\nMessage-ID: <ooo-{tag}@customer.test>\r\n\r\nI am out of office until Monday.\r\n",
        alice = w.alice,
        support = w.t.support,
        ack = w.ack_id,
        tag = w.t.tag
    );
    assert_eq!(
        w.deliver(ooo.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "auto-reply".into()
        }
    );
    assert_eq!(
        w.queued_count().await,
        before,
        "nothing answers an auto-reply"
    );
    let ticket = w.ticket("1001").await;
    assert_eq!(ticket.ticket.status, "open");
    let recorded = ticket.messages.last().unwrap();
    assert_eq!(
        (recorded.kind.as_str(), recorded.visibility.as_str()),
        ("auto-reply", "internal")
    );
}

#[tokio::test]
async fn staff_commands_apply_and_the_reply_reaches_requester_and_participants() {
    let w = world().await;
    let before = w.queued_count().await;
    let raw = format!(
        "From: Tess Tech <{staff}>\r\nTo: {to}\r\nSubject: Re: [#T-1001] New ticket: VPN drops every hour\r\n\
Message-ID: <st-{tag}@msp.test>\r\n\r\n#status waiting-on-client\r\n#priority high\r\n#category network\r\n#time 1h30\r\n\r\n\
Please restart the router and tell us if it helps.\r\n\r\nOn Mon, Postdesk wrote:\r\n> New ticket\r\n",
        staff = w.t.staff,
        to = w.token_address,
        tag = w.t.tag
    );
    assert_eq!(
        w.rule_of(raw.as_bytes()).await,
        Some(ThreadRule::ReplyToken)
    );
    assert_eq!(
        w.deliver(raw.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "staff-reply".into()
        }
    );
    let ticket = w.ticket("1001").await;
    assert_eq!(ticket.ticket.status, "waiting-on-client");
    assert_eq!(ticket.ticket.priority, "high");
    assert_eq!(ticket.ticket.category.as_deref(), Some("network"));
    assert_eq!(ticket.ticket.time_worked_minutes, 90);
    assert!(ticket.ticket.first_response_at.is_some());
    assert_eq!(
        w.queued_since(before).await,
        vec![(
            "public-reply".to_string(),
            vec![w.alice.clone(), w.bob.clone()]
        )]
    );
    let reply = ticket.messages.last().unwrap();
    assert!(reply.text.contains("Please restart the router"));
    assert!(!reply.text.contains("#status"), "commands are not mailed");

    // #note: internal, nothing to the client.
    let before = w.queued_count().await;
    let note = raw.replace("<st-", "<st2-").replace(
        "#status waiting-on-client\r\n#priority high\r\n#category network\r\n#time 1h30",
        "#note",
    );
    assert_eq!(
        w.deliver(note.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "note".into()
        }
    );
    assert_eq!(w.queued_count().await, before);

    // A wrong command: the technician is told, nothing is applied.
    let wrong = raw
        .replace("<st-", "<st3-")
        .replace("#priority high", "#priority whenever")
        .replace("#category network", "#assign nobody");
    assert_eq!(
        w.deliver(wrong.as_bytes()).await,
        Outcome::CommandRejected {
            ticket: Some("T-1001".into())
        }
    );
    assert_eq!(
        w.queued_since(before).await,
        vec![("command-rejected".to_string(), vec![w.t.staff.clone()])]
    );
    assert_eq!(w.ticket("1001").await.ticket.priority, "high", "unchanged");
}

#[tokio::test]
async fn a_technician_opens_a_ticket_for_a_client_who_phoned() {
    let w = world().await;
    let before = w.queued_count().await;
    let body = format!(
        "#requester {}\r\n#priority low\r\n\r\nAlice called: the printer jams on every second page.\r\n",
        w.alice
    );
    assert_eq!(
        w.staff_to_support("Printer on 2nd floor jams", &body).await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let ticket = w.ticket("1002").await;
    assert_eq!(ticket.ticket.requester, w.alice);
    assert_eq!(ticket.ticket.priority, "low");
    assert_eq!(
        ticket.ticket.client.as_deref(),
        Some(format!("Customer {}", w.t.tag).as_str())
    );
    assert_eq!(
        w.queued_since(before).await,
        vec![("acknowledgement".to_string(), vec![w.alice.clone()])]
    );
}

/// The acknowledgement's plain text among the mails queued after `skip`.
async fn queued_ack_text(w: &World, skip: usize) -> String {
    let mut conn = w.app.db.conn().await.unwrap();
    let ack = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .skip(skip)
        .find(|m| m.kind == "acknowledgement")
        .expect("an acknowledgement");
    let raw = outbox::raw_of(&mut conn, ack.id).await.unwrap().unwrap();
    mail_text(&raw)
}

#[tokio::test]
async fn a_phone_call_fixed_on_the_spot_is_logged_closed_with_its_time() {
    let w = world().await;
    let before = w.queued_count().await;
    let body = format!(
        "#requester {}\r\n#time 20m\r\n#close\r\n\r\nAlice called; cleared her cached credentials, works again.\r\n",
        w.alice
    );
    assert_eq!(
        w.staff_to_support("Outlook keeps asking for the password", &body)
            .await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let ticket = w.ticket("1002").await.ticket;
    assert_eq!(ticket.status, "closed");
    assert!(ticket.closed_at.is_some());
    assert_eq!(ticket.time_worked_minutes, 20);
    // The time counts for the client's hours as from any reply.
    let mut conn = w.app.db.conn().await.unwrap();
    let client_id = conversation::ticket_by_number(&mut conn, "T-1002")
        .await
        .unwrap()
        .unwrap()
        .client_id
        .expect("Alice's client");
    assert_eq!(
        postdesk::db::hours::minutes_between(&mut conn, client_id, 0, i64::MAX)
            .await
            .unwrap(),
        20
    );
    drop(conn);
    // Alice learns the ticket's number, and that there is nothing to wait for.
    assert_eq!(
        w.queued_since(before).await,
        vec![("acknowledgement".to_string(), vec![w.alice.clone()])]
    );
    let text = queued_ack_text(&w, before).await;
    assert!(
        text.contains("T-1002") && text.contains("the ticket is closed"),
        "{text}"
    );
    assert!(!text.contains("Expected first response"), "{text}");
    // Each command is in the audit log, the requester as her contact id.
    let rows = audit_rows(&w.app, |r| r.kind == "staff_command").await;
    let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["command.requester", "command.time", "command.close"]
    );
    assert!(rows
        .iter()
        .all(|r| r.resource.as_deref() == Some("ticket:T-1002")));
    let alice_id = {
        let mut conn = w.app.db.conn().await.unwrap();
        let alice = postdesk::domain::EmailAddress::parse(&w.alice).unwrap();
        postdesk::db::contacts::find_contact_by_email(&mut conn, &alice)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    assert_eq!(rows[0].detail.as_ref().unwrap()["contact"], alice_id);
    assert!(!format!("{rows:?}").contains(&w.alice), "{rows:?}");
}

#[tokio::test]
async fn a_ticket_opened_for_a_client_with_note_keeps_the_technicians_text_internal() {
    let w = world().await;
    let body = format!(
        "#requester {}\r\n#note\r\n#status waiting-on-client\r\n\r\nAlice sounded annoyed; the PO is still with her boss.\r\n",
        w.alice
    );
    assert_eq!(
        w.staff_to_support("Renew the firewall licence", &body)
            .await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let ticket = w.ticket("1002").await;
    assert_eq!(ticket.ticket.status, "waiting-on-client");
    let first = ticket.messages.first().expect("the technician's message");
    assert_eq!(first.visibility, "internal");
    assert!(first.text.contains("annoyed"), "{}", first.text);
}

#[tokio::test]
async fn a_hard_bounce_lands_on_the_ticket_and_suppresses_the_address() {
    let w = world().await;
    let before = w.queued_count().await;
    let dsn = format!(
        "From: MAILER-DAEMON@mx.customer.test (Mail Delivery System)\r\nTo: {support}\r\nReturn-Path: <>\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{tag}@mx.customer.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; {bob}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: Example IT <{support}>\r\nTo: {bob}\r\nMessage-ID: <{ack}>\r\nSubject: [#T-1001] VPN drops every hour\r\n\r\n--B--\r\n",
        support = w.t.support,
        tag = w.t.tag,
        bob = w.bob,
        ack = w.ack_id
    );
    assert_eq!(
        ingest(&w.app, dsn.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "bounce".into()
        }
    );
    let ticket = w.ticket("1001").await;
    let note = ticket
        .messages
        .iter()
        .rev()
        .find(|m| m.kind == "bounce")
        .unwrap();
    assert_eq!(note.visibility, "system");
    assert_eq!(
        w.queued_since(before).await,
        vec![("staff-notification".to_string(), vec![w.t.staff.clone()])]
    );
    // Bob is suppressed: the next public reply goes to Alice only.
    let before = w.queued_count().await;
    let raw = format!(
        "From: {staff}\r\nTo: {to}\r\nSubject: Re: VPN\r\nMessage-ID: <after-{tag}@msp.test>\r\n\r\nWe changed the VPN profile.\r\n",
        staff = w.t.staff,
        to = w.token_address,
        tag = w.t.tag
    );
    w.deliver(raw.as_bytes()).await;
    assert_eq!(
        w.queued_since(before).await,
        vec![("public-reply".to_string(), vec![w.alice.clone()])]
    );
}

#[tokio::test]
async fn apple_mail_reply_threads_and_loses_its_attribution_and_quote() {
    let w = world().await;
    let reply = format!(
        "From: Bob <{bob}>\r\nTo: Example IT <{support}>\r\nSubject: Re: [#T-1001] VPN drops every hour\r\n\
Message-ID: <A1B2-{tag}@customer.test>\r\nIn-Reply-To: <{ack}>\r\nReferences: <{ack}>\r\n\
Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\nX-Mailer: Apple Mail (2.3774.600.62)\r\n\r\n\
It drops on my Mac too.\r\n\r\nSent from my iPad\r\n\r\n> On 23 Nov 2026, at 10:00, Example IT <{support}> wrote:\r\n>\r\n> We have opened ticket T-1001\r\n",
        bob = w.bob,
        support = w.t.support,
        tag = w.t.tag,
        ack = w.ack_id
    );
    assert_eq!(
        w.rule_of(reply.as_bytes()).await,
        Some(ThreadRule::SignedMessageId)
    );
    assert_eq!(
        w.deliver(reply.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "reply".into()
        }
    );
    let last_in = w.last_inbound("1001").await;
    assert_eq!(last_in.trimmed.as_deref(), Some("It drops on my Mac too."));
    assert!(last_in.text.contains("Sent from my iPad"), "full body kept");
}

#[tokio::test]
async fn html_only_reply_is_trimmed_at_its_blockquote() {
    let w = world().await;
    // An HTML-only reply as Thunderbird and Apple Mail send it: the quoted
    // history is a <blockquote type="cite">.
    let reply = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: Re: [#T-1001] VPN drops every hour\r\n\
Message-ID: <h1-{tag}@customer.test>\r\nIn-Reply-To: <{ack}>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><div>Thanks, <b>restarting</b> the client fixed it.</div>\
<div><br></div><blockquote type=\"cite\"><div>We have opened ticket T-1001 for your request.</div>\
<div>Priority: Medium</div></blockquote></body></html>\r\n",
        alice = w.alice,
        support = w.t.support,
        tag = w.t.tag,
        ack = w.ack_id
    );
    assert!(matches!(
        w.deliver(reply.as_bytes()).await,
        Outcome::Added { .. }
    ));
    let last_in = w.last_inbound("1001").await;
    assert_eq!(
        last_in.trimmed.as_deref(),
        Some("Thanks, restarting the client fixed it.")
    );
    assert!(
        last_in.text.contains("We have opened ticket"),
        "full body kept"
    );

    // Gmail's HTML: the attribution sits in a div above the blockquote.
    let gmail = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: Re: [#T-1001] VPN drops every hour\r\n\
Message-ID: <h2-{tag}@customer.test>\r\nIn-Reply-To: <{ack}>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n\
<div dir=\"ltr\">It is back again this morning.</div><br><div class=\"gmail_quote\">\
<div dir=\"ltr\" class=\"gmail_attr\">On Mon, 23 Nov 2026 at 10:00, Example IT &lt;{support}&gt; wrote:<br></div>\
<blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex\">We have opened ticket T-1001</blockquote></div>\r\n",
        alice = w.alice,
        support = w.t.support,
        tag = w.t.tag,
        ack = w.ack_id
    );
    w.deliver(gmail.as_bytes()).await;
    assert_eq!(
        w.last_inbound("1001").await.trimmed.as_deref(),
        Some("It is back again this morning.")
    );
}

#[tokio::test]
async fn a_client_forwarding_a_mail_opens_a_ticket_with_the_forwarded_text_kept() {
    let w = world().await;
    let before = w.queued_count().await;
    let raw = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: Fwd: Your domain customer.test expires in 7 days\r\n\
Message-ID: <fw-{tag}@customer.test>\r\n\r\nCan you renew this for us?\r\n\r\n\
---------- Forwarded message ---------\r\nFrom: Registrar <noreply@registrar.test>\r\n\
Date: Mon, 23 Nov 2026 at 08:00\r\nSubject: Your domain customer.test expires in 7 days\r\nTo: <{alice}>\r\n\r\n\
Your domain customer.test expires on 30 November 2026.\r\n",
        alice = w.alice,
        support = w.t.support,
        tag = w.t.tag
    );
    assert_eq!(
        w.rule_of(raw.as_bytes()).await,
        None,
        "no thread: a new ticket"
    );
    assert_eq!(
        w.deliver(raw.as_bytes()).await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let ticket = w.ticket("1002").await;
    assert_eq!(ticket.ticket.requester, w.alice, "the forwarder asks");
    assert_eq!(
        ticket.ticket.subject, "Your domain customer.test expires in 7 days",
        "Fwd: is not part of the subject"
    );
    let first = &ticket.messages[0];
    assert_eq!(first.trimmed.as_deref(), Some("Can you renew this for us?"));
    assert!(
        first.text.contains("expires on 30 November 2026"),
        "the forwarded mail is kept"
    );
    assert_eq!(
        w.queued_since(before).await,
        vec![
            ("acknowledgement".to_string(), vec![w.alice.clone()]),
            ("staff-notification".to_string(), vec![w.t.staff.clone()])
        ]
    );
}

#[tokio::test]
async fn a_technician_forwards_a_clients_mail_with_fwd_and_the_ticket_is_the_clients() {
    let w = world().await;
    let bob = &w.bob;
    let before = w.queued_count().await;
    let raw = format!(
        "From: Tess Tech <{staff}>\r\nTo: {support}\r\nSubject: Fwd: Laptop will not boot\r\n\
Message-ID: <fwd-{tag}@msp.test>\r\n\r\n#fwd\r\n#priority high\r\n\r\n\
---------- Forwarded message ---------\r\nFrom: Bob <{bob}>\r\nDate: Mon, 23 Nov 2026 at 08:00\r\n\
Subject: Laptop will not boot\r\nTo: Tess Tech <{staff}>\r\n\r\nMy laptop shows a black screen since the update.\r\n",
        staff = w.t.staff,
        support = w.t.support,
        tag = w.t.tag
    );
    assert_eq!(
        w.deliver(raw.as_bytes()).await,
        Outcome::TicketCreated {
            ticket: "T-1002".into()
        }
    );
    let ticket = w.ticket("1002").await;
    assert_eq!(&ticket.ticket.requester, bob, "the ticket is Bob's");
    assert_eq!(ticket.ticket.priority, "high");
    assert_eq!(ticket.ticket.subject, "Laptop will not boot");
    assert_eq!(
        ticket.ticket.client.as_deref(),
        Some(format!("Customer {}", w.t.tag).as_str())
    );
    assert!(ticket.messages[0].text.contains("black screen"));
    assert!(!ticket.messages[0].text.contains("#fwd"));
    assert!(
        ticket.messages[0]
            .trimmed
            .as_deref()
            .is_some_and(|t| t.contains("black screen") && !t.contains("#priority")),
        "the forwarded mail is the text: {:?}",
        ticket.messages[0].trimmed
    );
    // Bob is acknowledged; the technician who forwarded it is not notified
    // of their own ticket.
    assert_eq!(
        w.queued_since(before).await,
        vec![("acknowledgement".to_string(), vec![bob.clone()])]
    );
}

#[tokio::test]
async fn a_reply_all_keeps_the_participants_and_nobody_gets_a_mail_twice() {
    let w = world().await;
    // Alice answers all: the reply address, Bob in CC, and our own support
    // address once more (some clients add every address of the thread).
    let reply = format!(
        "From: Alice <{alice}>\r\nTo: Example IT <{to}>, {support}\r\nCc: Bob <{bob}>\r\n\
Subject: RE: [#T-1001] VPN drops every hour\r\nMessage-ID: <ra-{tag}@customer.test>\r\nIn-Reply-To: <{ack}>\r\n\r\n\
Adding Bob, he sees it too.\r\n\r\nFrom: Example IT <{support}>\r\nSent: Monday, November 23, 2026 10:00\r\n\
To: Alice <{alice}>\r\nSubject: [#T-1001] VPN drops every hour\r\n\r\nWe have opened ticket T-1001\r\n",
        alice = w.alice,
        bob = w.bob,
        to = w.token_address,
        support = w.t.support,
        tag = w.t.tag,
        ack = w.ack_id
    );
    assert_eq!(
        w.rule_of(reply.as_bytes()).await,
        Some(ThreadRule::ReplyToken)
    );
    assert_eq!(
        w.deliver(reply.as_bytes()).await,
        Outcome::Added {
            ticket: "T-1001".into(),
            kind: "reply".into()
        }
    );
    assert_eq!(
        w.last_inbound("1001").await.trimmed.as_deref(),
        Some("Adding Bob, he sees it too.")
    );
    let before = w.queued_count().await;
    let answer = format!(
        "From: {staff}\r\nTo: {to}\r\nSubject: Re: VPN\r\nMessage-ID: <ans-{tag}@msp.test>\r\n\r\nWe replaced the VPN profile.\r\n",
        staff = w.t.staff,
        to = w.token_address,
        tag = w.t.tag
    );
    w.deliver(answer.as_bytes()).await;
    assert_eq!(
        w.queued_since(before).await,
        vec![(
            "public-reply".to_string(),
            vec![w.alice.clone(), w.bob.clone()]
        )],
        "each participant once, never the support address"
    );
}
