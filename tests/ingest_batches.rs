//! A backlog is applied in batches, straight through, with the books of the
//! batch kept set-wise. These tests put several messages into the mailbox
//! before the watcher starts, so they are fetched and applied as one batch,
//! and check what the fast path must keep: one message failing is
//! quarantined alone and the others are applied once; a duplicate inside the
//! batch is recognised; a new sender writing twice in one batch is one
//! contact with two tickets.

mod common;

use std::time::Duration;

use common::*;
use postdesk::db::{contacts, inbound, outbox, tickets};

/// Appends `mails` to the support mailbox's INBOX in one IMAP session.
async fn fill_inbox(app: &postdesk::app::App, mails: &[Vec<u8>]) {
    let mailbox = app.config.mailboxes[0].clone();
    let mut session = postdesk::mail::imap::connect(&mailbox).await.unwrap();
    for m in mails {
        session.append("INBOX", None, None, m).await.unwrap();
    }
    session.logout().await.unwrap();
}

/// Makes the database refuse any ticket whose subject starts with `poison`,
/// as a failure of that one message would.
async fn poison_tickets(app: &postdesk::app::App) {
    let mut conn = app.db.conn().await.unwrap();
    let statements: &[&str] = match std::env::var("POSTDESK_TEST_DB").as_deref() {
        Ok("postgres") => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.subject LIKE 'poison%' THEN RAISE EXCEPTION 'poisoned'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON tickets \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
        _ => &["CREATE TRIGGER refuse_poison BEFORE INSERT ON tickets \
                WHEN NEW.subject LIKE 'poison%' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_is_quarantined_alone_and_its_batch_applied_once() {
    let env = TestEnv::new().await;
    let app = env.app("").await;
    poison_tickets(&app).await;
    let to = env.support.clone();
    let mail = |name: &str, subject: &str, id: &str| {
        simple_mail(
            &env.addr(name, "sender.test"),
            &to,
            subject,
            &format!("<{id}-{}@sender.test>", env.tag),
            "The printer on the second floor is jammed again.",
        )
    };
    let mails = vec![
        mail("ann", "first", "m1"),
        mail("bob", "second", "m2"),
        mail("cat", "poison pill", "m3"),
        mail("dan", "fourth", "m4"),
        // The first one again (a re-delivery inside the same batch).
        mail("ann", "first", "m1"),
        mail("eve", "sixth", "m6"),
    ];
    fill_inbox(&app, &mails).await;

    let daemon = RunningDaemon::start(app.clone());
    let quarantine = wait_for(
        "the poisoned message in quarantine",
        Duration::from_secs(30),
        || {
            let app = app.clone();
            async move {
                let mut conn = app.db.conn().await.unwrap();
                let q = inbound::list_quarantine(&mut conn).await.unwrap();
                (!q.is_empty()).then_some(q)
            }
        },
    )
    .await;
    let processed = wait_for("every message moved", Duration::from_secs(30), || {
        let mail = env.mail.clone();
        let user = env.support.clone();
        async move {
            let done = read_folder(&mail, &user, "Processed").await;
            (done.len() == 6).then_some(done)
        }
    })
    .await;
    daemon.stop().await;

    assert_eq!(
        quarantine.len(),
        1,
        "only the poisoned message is quarantined"
    );
    assert!(
        quarantine[0].reason.contains("processing failed")
            && quarantine[0].reason.contains("poisoned"),
        "the reason says what failed: {}",
        quarantine[0].reason
    );
    assert_eq!(
        ticket_subjects(&app).await,
        ["first", "fourth", "second", "sixth"],
        "every other message opened exactly one ticket"
    );
    let mut conn = app.db.conn().await.unwrap();
    let acks = outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "acknowledgement")
        .count();
    assert_eq!(acks, 4, "one acknowledgement per ticket");
    assert_eq!(
        processed.len(),
        6,
        "all six left the inbox, the duplicate too"
    );
    assert_eq!(
        app.metrics.ingest_batches_redone.get(),
        1,
        "the batch was redone once, message by message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sender_writing_twice_in_one_batch_is_one_contact_with_two_tickets() {
    let env = TestEnv::new().await;
    let app = env.app("").await;
    env.import_customer(&app).await;
    let to = env.support.clone();
    let newcomer = env.addr("newcomer", "customer.test");
    let stranger = env.addr("stranger", "elsewhere.test");
    let mails = vec![
        simple_mail(
            &newcomer,
            &to,
            "vpn down",
            &format!("<n1-{}@c>", env.tag),
            "VPN is down.",
        ),
        simple_mail(
            &stranger,
            &to,
            "hello",
            &format!("<s1-{}@c>", env.tag),
            "Hi.",
        ),
        simple_mail(
            &newcomer,
            &to,
            "and mail",
            &format!("<n2-{}@c>", env.tag),
            "Mail too.",
        ),
        simple_mail(
            &stranger,
            &to,
            "again",
            &format!("<s2-{}@c>", env.tag),
            "Hi again.",
        ),
    ];
    fill_inbox(&app, &mails).await;

    let daemon = RunningDaemon::start(app.clone());
    wait_for("four tickets", Duration::from_secs(30), || {
        let app = app.clone();
        async move { (ticket_subjects(&app).await.len() == 4).then_some(()) }
    })
    .await;
    daemon.stop().await;

    assert_eq!(
        ticket_subjects(&app).await,
        ["again", "and mail", "hello", "vpn down"]
    );
    let mut conn = app.db.conn().await.unwrap();
    let newcomer_contact = contacts::find_contact_by_email(
        &mut conn,
        &postdesk::domain::EmailAddress::parse(&newcomer).unwrap(),
    )
    .await
    .unwrap()
    .expect("the newcomer became a contact");
    let customer = contacts::find_client_by_domain(&mut conn, "customer.test")
        .await
        .unwrap();
    assert_eq!(
        newcomer_contact.client_id, customer,
        "a new address of the client's domain joins the client"
    );
    let stranger_contact = contacts::find_contact_by_email(
        &mut conn,
        &postdesk::domain::EmailAddress::parse(&stranger).unwrap(),
    )
    .await
    .unwrap()
    .expect("the stranger became a contact (unknown_senders = create)");
    assert_eq!(stranger_contact.client_id, None);
    // The batch counted its ticket numbers on in memory and wrote the
    // counter back: the numbers are consecutive, and the next ticket, opened
    // alone, follows them.
    let mut numbers: Vec<i64> = tickets::list_tickets(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|t| t.number.trim_start_matches("T-").parse().unwrap())
        .collect();
    numbers.sort_unstable();
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 4).collect::<Vec<_>>());
    drop(conn);
    let later = simple_mail(
        &stranger,
        &to,
        "later",
        &format!("<s3-{}@c>", env.tag),
        "Later.",
    );
    assert_eq!(
        ingest(&app, &later).await,
        postdesk::mail::ingest::Outcome::TicketCreated {
            ticket: format!("T-{}", first + 4)
        }
    );
    assert_eq!(
        app.metrics.ingest_batches_redone.get(),
        0,
        "the batch went straight through: the second mail of each sender found the contact the first one made"
    );
}
