//! The web view in a real browser (issue 4): Debian's Chromium, headless,
//! driven by tests/browser/*.mjs (playwright-core). Every client page opened
//! from its signed link passes axe-core's WCAG A/AA rules in light and dark,
//! fits a 360 px wide phone without horizontal scrolling, and is
//! screenshotted at 360 px and desktop width into
//! `target/tmp/browser-artifacts/` (kept as test artifacts).
//!
//! Chromium, Node.js and the npm packages come from
//! tests/harness/install-deps.sh; a missing one is a failure, not a skip.

mod common;
#[path = "support/fake_stripe.rs"]
mod fake_stripe;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::*;
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use serde_json::{json, Value};

struct Served(ServedApp);

impl std::ops::Deref for Served {
    type Target = ServedApp;
    fn deref(&self) -> &ServedApp {
        &self.0
    }
}

impl Served {
    async fn start(extra: &str) -> Served {
        Served(ServedApp::start(extra).await)
    }

    async fn link(&self, purpose: LinkPurpose, number: Option<&str>) -> String {
        let alice = EmailAddress::parse(&self.t.addr("alice", "customer.test")).unwrap();
        link_for(
            &self.app.db,
            &self.app.config,
            purpose,
            number,
            &alice,
            chrono::Utc::now().timestamp(),
        )
        .await
        .unwrap()
    }
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` of tests/browser with `input` and returns what it printed.
pub fn run_browser_script(script: &str, input: &Value) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run tests/harness/install-deps.sh"
    );
    let input_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input_file.path(), input.to_string()).unwrap();
    let output = Command::new("node")
        .arg(dir.join(script))
        .arg(input_file.path())
        .current_dir(&dir)
        .output()
        .expect("node runs (install-deps.sh installs it)");
    assert!(
        output.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn billing_json(t: &TestEnv) -> String {
    format!(
        r#"{{"clients":[{{"name":"Ελληνική Εταιρεία {tag}","domains":["customer.test"],"contacts":[
    {{"name":"Alice","email":"{alice}","types":["primary","billing"]}}]}}],
 "invoices":[{{"number":"INV-{tag}-1","client":"Ελληνική Εταιρεία {tag}","currency":"EUR","issue_date":"2026-11-01",
    "due_date":"2099-11-15","terms":"Net 14. Bank transfer to IBAN DE02 1203 0000 0000 2020 51, quoting the invoice number.",
    "notes":"Thank you for your business.","lines":[
      {{"description":"Managed workplace (12 seats), including patch management, endpoint protection and a very long description that has to wrap on a phone","quantity":"12","unit_price":"45.00","tax_rate":"19"}},
      {{"description":"On-site hours","quantity":"1.5","unit_price":"85","tax_rate":"19"}}]}}],
 "quotes":[{{"number":"Q-{tag}-1","client":"Ελληνική Εταιρεία {tag}","currency":"EUR","issue_date":"2026-11-01",
    "expiry_date":"2099-12-31","lines":[{{"description":"New firewall","quantity":"1","unit_price":"1200","tax_rate":"19"}}]}}],
 "recurring_invoices":[{{"client":"Ελληνική Εταιρεία {tag}","scope":"Managed workplace, 12 seats","currency":"EUR",
    "quantity":"12","unit_price":"45.00","tax_rate":"19","frequency":"monthly","next_bill_date":"2027-01-31"}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_page_is_accessible_in_light_and_dark_and_fits_a_phone() {
    let s = Served::start("").await;
    let data = postdesk::import::parse(&billing_json(&s.t), "billing.json").unwrap();
    postdesk::import::import(&s.app.db, &data, "billing.json", 0)
        .await
        .unwrap();
    let invoice = format!("INV-{}-1", s.t.tag);
    postdesk::billing::record_manual_payment(
        &s.app,
        &postdesk::billing::ManualPayment {
            invoice_number: &invoice,
            amount_minor: 10_000,
            method: "bank-transfer",
            reference: None,
        },
    )
    .await
    .unwrap();
    let quote = format!("Q-{}-1", s.t.tag);
    let ticket = open_ticket(&s).await;
    let pages = [
        (
            "invoice",
            s.link(LinkPurpose::Invoice, Some(&invoice)).await,
            format!("/invoice/{invoice}"),
        ),
        (
            "quote",
            s.link(LinkPurpose::Quote, Some(&quote)).await,
            format!("/quote/{quote}"),
        ),
        (
            "statement",
            s.link(LinkPurpose::Statement, None).await,
            "/statement".to_string(),
        ),
        (
            "payment-methods",
            s.link(LinkPurpose::PaymentMethods, None).await,
            "/payment-methods".to_string(),
        ),
        (
            "preferences",
            s.link(LinkPurpose::Preferences, None).await,
            "/preferences".to_string(),
        ),
        (
            "ticket",
            s.link(LinkPurpose::Ticket, Some(&ticket)).await,
            format!("/ticket/{ticket}"),
        ),
        (
            "tickets",
            s.link(LinkPurpose::Tickets, None).await,
            "/tickets".to_string(),
        ),
        (
            "contacts",
            s.link(LinkPurpose::Contacts, None).await,
            "/contacts".to_string(),
        ),
        // The public "email me my links" form.
        (
            "links",
            format!("{}/links", s.app.config.web.base_url),
            "/links".to_string(),
        ),
        // A link that opens nothing gets the plain "not found" page.
        (
            "not-found",
            format!("{}/l/not-a-token", s.app.config.web.base_url),
            "/l/not-a-token".to_string(),
        ),
    ];
    let out = artifacts();
    let input = json!({
        "out": out,
        "pages": pages.iter().map(|(name, link, _)| json!({"name": name, "link": link})).collect::<Vec<_>>(),
    });
    let result = tokio::task::spawn_blocking(move || run_browser_script("check_pages.mjs", &input))
        .await
        .unwrap();
    let checked = result["pages"].as_array().unwrap();
    assert_eq!(checked.len(), pages.len());
    for ((name, _, path), page) in pages.iter().zip(checked) {
        assert_eq!(page["name"], *name);
        assert_eq!(page["url"], path.as_str(), "{name}: the clean URL");
        let expected = if *name == "not-found" { 404 } else { 200 };
        assert_eq!(page["status"], expected, "{name}");
        let runs = page["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 4, "360 and 1280 px, light and dark");
        for run in runs {
            let what = format!("{name} at {} px, {}", run["width"], run["scheme"]);
            assert_eq!(
                run["violations"].as_array().unwrap().len(),
                0,
                "{what}: axe-core violations: {}",
                run["violations"]
            );
            assert!(
                run["overflow_px"].as_i64().unwrap() <= 0,
                "{what}: scrolls sideways by {} px",
                run["overflow_px"]
            );
            let shot = Path::new(run["screenshot"].as_str().unwrap());
            let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "{what}: screenshot {} missing", shot.display());
        }
    }
}

/// Alice's ticket with a screenshot, a technician's answer and her HTML
/// reply: what a ticket page usually shows. Returns its number.
async fn open_ticket(s: &Served) -> String {
    let alice = s.t.addr("alice", "customer.test");
    let png =
        base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nnot really a picture");
    let first = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: The printer on the second floor jams\r\n\
Message-ID: <first-{tag}@customer.test>\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nIt jams on every second page. A screenshot of the error is attached.\r\n\
--b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"error.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--b1--\r\n",
        support = s.t.support,
        tag = s.t.tag,
    );
    let number = match ingest(&s.app, first.as_bytes()).await {
        postdesk::mail::ingest::Outcome::TicketCreated { ticket } => ticket,
        other => panic!("{other:?}"),
    };
    let answer = simple_mail(
        &s.t.staff,
        &s.t.support,
        &format!("Re: [{number}] The printer on the second floor jams"),
        &format!("answer-{}@msp.test", s.t.tag),
        "#status waiting-on-client\nPlease send the printer's serial number.",
    );
    ingest(&s.app, &answer).await;
    let html_reply = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: Re: [{number}] The printer on the second floor jams\r\n\
Message-ID: <html-{tag}@customer.test>\r\nDate: Fri, 20 Nov 2026 11:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"a1\"\r\n\r\n--a1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nThe serial number is CN-12345.\r\n--a1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>The serial number is <b>CN-12345</b>.</p><ul><li>Model: LaserJet</li></ul>\r\n--a1--\r\n",
        support = s.t.support,
        tag = s.t.tag,
    );
    ingest(&s.app, html_reply.as_bytes()).await;
    number
}

/// A hostile HTML mail on the ticket page (SPEC §2.7: HTML is sanitized
/// before it is shown): in Chromium, with the page's real CSP, it opens no
/// dialog, makes no request outside Postdesk, moves the tab nowhere, and
/// the CSP has nothing to block — because nothing of it survived. The page
/// stays accessible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_mail_on_the_ticket_page_runs_nothing_and_fetches_nothing() {
    let s = Served::start("").await;
    let data = postdesk::import::parse(&billing_json(&s.t), "billing.json").unwrap();
    postdesk::import::import(&s.app.db, &data, "billing.json", 0)
        .await
        .unwrap();
    let number = open_ticket(&s).await;
    let alice = s.t.addr("alice", "customer.test");
    let hostile_html = r#"<html><head><meta http-equiv="refresh" content="1;url=http://127.0.0.1:9/refreshed">
<base href="http://127.0.0.1:9/"><link rel="stylesheet" href="http://127.0.0.1:9/style.css">
<style>@import url(http://127.0.0.1:9/import.css); body { background: url(http://127.0.0.1:9/bg.png) }</style>
<script>alert('script')</script><script src="http://127.0.0.1:9/evil.js"></script></head>
<body background="http://127.0.0.1:9/body.png" onload="alert('onload')">
<p>Totally normal <b>reply</b>.</p>
<img src="http://127.0.0.1:9/pixel.gif" width="1" height="1" alt="">
<img src="https://tracker.invalid/open.gif">
<img src="x" onerror="alert('onerror')">
<img srcset="http://127.0.0.1:9/srcset.png 2x" alt="s">
<svg onload="alert('svg')"><image href="http://127.0.0.1:9/svg.png"/></svg>
<div style="background-image:url(http://127.0.0.1:9/div.png)">styled</div>
<video poster="http://127.0.0.1:9/poster.png" src="http://127.0.0.1:9/v.mp4" autoplay></video>
<audio src="http://127.0.0.1:9/a.mp3" autoplay></audio>
<object data="http://127.0.0.1:9/obj"></object><embed src="http://127.0.0.1:9/embed">
<iframe src="http://127.0.0.1:9/frame"></iframe><iframe srcdoc="<script>alert('srcdoc')</script>"></iframe>
<details open ontoggle="alert('toggle')"><summary>x</summary>y</details>
<input autofocus onfocus="alert('focus')">
<form action="http://127.0.0.1:9/steal"><button>Send</button></form>
<a href="javascript:alert('js')">click me</a>
</body></html>"#;
    let hostile = format!(
        "From: Alice <{alice}>\r\nTo: {support}\r\nSubject: Re: [{number}] The printer on the second floor jams\r\n\
Message-ID: <hostile-{tag}@customer.test>\r\nDate: Fri, 20 Nov 2026 12:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"h1\"\r\n\r\n--h1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nTotally normal reply.\r\n--h1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n{hostile_html}\r\n--h1--\r\n",
        support = s.t.support,
        tag = s.t.tag,
    );
    assert!(matches!(
        ingest(&s.app, hostile.as_bytes()).await,
        postdesk::mail::ingest::Outcome::Added { .. }
    ));
    let input = json!({
        "link": s.link(LinkPurpose::Ticket, Some(&number)).await,
        "out": artifacts(),
    });
    let result =
        tokio::task::spawn_blocking(move || run_browser_script("hostile_mail.mjs", &input))
            .await
            .unwrap();
    let path = format!("/ticket/{number}");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["url"], path.as_str(), "{result}");
    assert_eq!(
        result["final_url"],
        path.as_str(),
        "no refresh moved the tab: {result}"
    );
    assert_eq!(result["dialogs"], json!([]), "{result}");
    assert_eq!(result["outside_requests"], json!([]), "{result}");
    assert!(
        result["requests"].as_i64().unwrap() >= 1,
        "the page itself was watched: {result}"
    );
    assert_eq!(result["csp_violations"], json!([]), "{result}");
    assert_eq!(result["violations"], json!([]), "axe-core: {result}");
}

/// The whole way of a client's payment: the invoice mail goes out through
/// Postfix into the client's mailbox in Dovecot; the link in it opens the
/// invoice in Chromium; "Pay now" leads to the (fake) Stripe checkout; the
/// card payment's signed webhook is applied before the browser comes back;
/// the invoice says "Paid" — with the pages' real CSP in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_mailed_for_real_is_paid_by_card_in_the_browser() {
    let fake = fake_stripe::FakeStripe::start().await;
    let s = Served::start(&fake.config_toml()).await;
    fake.set_webhook_target(format!("{}/webhooks/stripe", s.base_url));
    let data = postdesk::import::parse(&billing_json(&s.t), "billing.json").unwrap();
    postdesk::import::import(&s.app.db, &data, "billing.json", 0)
        .await
        .unwrap();
    let invoice = format!("INV-{}-1", s.t.tag);
    let daemon = RunningDaemon::start(s.app.clone());
    let sent = postdesk::billing::send_invoice(&s.app, &invoice)
        .await
        .unwrap();
    assert_eq!(sent.mailed, 1);
    let alice = s.t.addr("alice", "customer.test");
    let raw = wait_for(
        "the invoice mail in the client's mailbox",
        std::time::Duration::from_secs(60),
        || {
            let (mail, alice, invoice) = (s.t.mail.clone(), alice.clone(), invoice.clone());
            async move {
                read_folder(&mail, &alice, "INBOX")
                    .await
                    .into_iter()
                    .find(|m| String::from_utf8_lossy(m).contains(&invoice))
            }
        },
    )
    .await;
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = parsed.body_text(0).unwrap().to_string();
    let link = regex::Regex::new(r"http://127\.0\.0\.1:[0-9]+/l/[A-Za-z0-9_.~-]+")
        .unwrap()
        .find(&text)
        .unwrap_or_else(|| panic!("no link in the mail: {text}"))
        .as_str()
        .to_string();
    let input = json!({ "link": link, "out": artifacts() });
    let result = tokio::task::spawn_blocking(move || run_browser_script("pay_invoice.mjs", &input))
        .await
        .unwrap();
    assert_eq!(result["status"], "Paid", "{result}");
    assert!(
        result["final_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/invoice/{invoice}")),
        "{result}"
    );
    assert_eq!(result["csp_blocked"], json!([]), "{result}");
    for scheme in ["light", "dark"] {
        assert_eq!(
            result["violations"][scheme],
            json!([]),
            "{scheme}: {result}"
        );
    }
    let mut conn = s.app.db.conn().await.unwrap();
    let paid = postdesk::db::invoices::invoice_by_number(&mut conn, &invoice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (paid.paid_minor, paid.status.as_str()),
        (paid.total_minor, "paid")
    );
    drop(conn);
    daemon.stop().await;
}
