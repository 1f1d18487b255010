//! `kill -9` of the daemon in the middle of a backlog, then a restart: every
//! message has exactly one ticket and every sender exactly one acknowledgement.

mod common;

use std::time::Duration;

use common::*;
use postdesk::db::{outbox, tickets};

const MESSAGES: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_backlog_loses_and_doubles_nothing() {
    let t = TestEnv::new().await;
    let config = t.config_file("");
    let app = t.app("").await;
    t.import_customer(&app).await;
    let sender = |i: usize| t.addr(&format!("c{i}"), "customer.test");

    // The backlog: appended straight into the support mailbox.
    let mailbox = app.config.mailboxes[0].clone();
    let mut session = postdesk::mail::imap::connect(&mailbox).await.unwrap();
    for i in 0..MESSAGES {
        let raw = simple_mail(
            &sender(i),
            &t.support,
            &format!("Backlog {i}"),
            &format!("bl{i}-{}@x.test", t.tag),
            "please help",
        );
        session.append("INBOX", None, None, &raw).await.unwrap();
    }
    session.logout().await.unwrap();

    let log = t.dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let count = || async {
        let mut conn = app.db.conn().await.unwrap();
        tickets::list_tickets(&mut conn).await.unwrap().len()
    };
    let sent = || async {
        let mut conn = app.db.conn().await.unwrap();
        let all = outbox::list(&mut conn).await.unwrap();
        all.iter()
            .filter(|m| m.status == "sent" && m.kind == "acknowledgement")
            .count()
    };
    // Killed while both ingest and sending are under way: ingest commits
    // batches of 100 and outruns the sender (on a loaded machine by far), so
    // kill as soon as the first acknowledgement went out — and at the latest
    // with a third of the backlog in, so the kill always falls inside it.
    wait_for(
        "a part of the backlog ingested and acknowledged",
        Duration::from_secs(120),
        || async {
            let n = count().await;
            (n >= MESSAGES / 10 && (sent().await >= 1 || n >= MESSAGES / 3)).then_some(())
        },
    )
    .await;
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let at_kill = count().await;
    assert!(at_kill < MESSAGES, "killed in the middle of the backlog");

    let mut daemon = start_daemon(&config, &log);
    wait_for(
        "every ticket and every acknowledgement sent",
        Duration::from_secs(300),
        || async {
            let mut conn = app.db.conn().await.unwrap();
            let n = tickets::list_tickets(&mut conn).await.unwrap().len();
            let pending = outbox::pending_count(&mut conn).await.unwrap();
            (n == MESSAGES && pending == 0).then_some(())
        },
    )
    .await;
    let senders: Vec<String> = (0..MESSAGES).map(sender).collect();
    assert_each_once(&app, &t.mail, &senders).await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}
