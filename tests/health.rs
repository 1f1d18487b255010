//! What operators' tools see of a running daemon: `/healthz`, `/readyz`
//! following the database and each mailbox's IMAP session, and `/metrics`
//! (behind the admin token) counting what really happened — a mail
//! delivered by Postfix, ingested from Dovecot, acknowledged over SMTP.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_mailboxes_and_metrics_count_real_work() {
    let s = ServedApp::start("").await;
    s.t.import_customer(&s.app).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", s.base_url)).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // No IMAP session yet: not ready, and it says which mailbox.
    let not_ready = get("/readyz").await.unwrap();
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_str(&not_ready.text().await.unwrap()).unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["mailboxes"]["support"], "disconnected");

    // The watcher and a sender start: ready.
    let cancel = CancellationToken::new();
    let mailbox = s.app.config.mailboxes[0].clone();
    let watcher = tokio::spawn(postdesk::mail::imap::watch(
        s.app.ingestor.clone(),
        mailbox,
        cancel.clone(),
    ));
    let sender = tokio::spawn(s.app.sender.clone().run(cancel.clone()));
    wait_for(
        "the mailbox to be ready",
        Duration::from_secs(20),
        || async { (get("/readyz").await.unwrap().status() == StatusCode::OK).then_some(()) },
    )
    .await;

    let alice = s.t.addr("alice", "customer.test");
    let raw = simple_mail(
        &alice,
        &s.t.support,
        "Printer offline",
        &format!("m-{}@customer.test", s.t.tag),
        "It is offline.",
    );
    send_mail(&s.t.mail, &alice, &[&s.t.support], &raw).await;

    // Metrics need the admin token.
    let anonymous = get("/metrics").await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let scrape = || async {
        let r = http
            .get(format!("{}/metrics", s.base_url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    };
    let text = wait_for(
        "the ticket and its acknowledgement",
        Duration::from_secs(30),
        || async {
            let text = scrape().await;
            (text.contains("postdesk_messages_ingested_total{outcome=\"ticket-created\"} 1")
                && text.contains("postdesk_mail_sent_total 2"))
            .then_some(text)
        },
    )
    .await;
    assert!(
        text.contains("postdesk_mailbox_connected{mailbox=\"support\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("postdesk_ingest_latency_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("postdesk_outbox_depth 0"), "{text}");
    assert!(text.contains("postdesk_send_failures_total 0"), "{text}");
    assert!(!text.contains(&alice), "no address in metrics");

    // The watcher stops: not ready again.
    cancel.cancel();
    watcher.await.unwrap();
    sender.await.unwrap();
    let after = get("/readyz").await.unwrap();
    assert_eq!(after.status(), StatusCode::SERVICE_UNAVAILABLE);
}
