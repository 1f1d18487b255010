//! `[branding]` applied the same way to mails, pages and PDFs (issue 7):
//! with a distinctive branding, one rendered mail (the acknowledgement,
//! text and HTML parts), one page (the invoice) and one PDF (the invoice's,
//! as the outline of what it draws) are compared byte for byte with the
//! files under `tests/snapshots/`. `UPDATE_SNAPSHOTS=1` rewrites them
//! (review the diff before committing). Each test also asserts the branding
//! values appear, so an empty snapshot cannot pass.
//!
//! Everything that changes from run to run is fixed (the clock, the
//! numbers) or redacted (the test's address tag, link tokens, CSRF values,
//! the reply token).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use postdesk::app::App;
use postdesk::clock::{ManualClock, SharedClock};
use postdesk::config::Config;
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use postdesk::mail::ingest::Outcome;
use tower::ServiceExt;

/// Monday 23 November 2026, 10:00 UTC.
const START_MS: i64 = 1_795_428_000_000;

const COMPANY: &str = "Kestrel IT";
const COLOR: &str = "#0a7d5a";
const LOGO: &str = "https://kestrel.example/logo.png";
const FOOTER: &str = "Kestrel IT GmbH · Falkenweg 7 · 1010 Wien";
const PREFIX: &str = "[Kestrel]";

fn branded_toml(t: &TestEnv) -> String {
    let branding = format!(
        "[branding]\ncompany_name = \"{COMPANY}\"\nlogo_url = \"{LOGO}\"\n\
         primary_color = \"{COLOR}\"\nfooter = \"{FOOTER}\"\nsubject_prefix = \"{PREFIX}\"\n"
    );
    let toml = t.config_toml("");
    let plain = "[branding]\ncompany_name = \"Example IT\"\n";
    assert!(toml.contains(plain), "the harness config changed");
    toml.replace(plain, &branding)
}

struct Site {
    t: TestEnv,
    app: App,
    alice: EmailAddress,
}

async fn site() -> Site {
    let t = TestEnv::new().await;
    let clock: SharedClock = Arc::new(ManualClock::new(START_MS));
    let config =
        Config::from_toml_with_env(&branded_toml(&t), "test.toml", &Default::default()).unwrap();
    let app = App::open(config, clock).await.unwrap();
    let json = format!(
        r#"{{"clients":[{{"name":"Customer Ltd","domains":["customer.test"],"contacts":[
    {{"name":"Alice Example","email":"{alice}","types":["primary","billing"]}}]}}],
 "invoices":[{{"number":"INV-2026-0042","client":"Customer Ltd","currency":"EUR",
    "issue_date":"2026-11-01","due_date":"2026-12-15","terms":"Net 14",
    "notes":"Thank you for your business.","lines":[
      {{"description":"Managed workplace","quantity":"12","unit_price":"45.00","tax_rate":"19"}},
      {{"description":"On-site hours","quantity":"1.5","unit_price":"85","tax_rate":"19"}}]}}]}}"#,
        alice = t.addr("alice", "customer.test"),
    );
    let data = postdesk::import::parse(&json, "branding.json").unwrap();
    postdesk::import::import(&app.db, &data, "branding.json", START_MS)
        .await
        .unwrap();
    Site {
        alice: EmailAddress::parse(&t.addr("alice", "customer.test")).unwrap(),
        t,
        app,
    }
}

/// Replaces what differs between runs with fixed words.
fn redact(t: &TestEnv, text: &str) -> String {
    let text = text.replace(&t.tag, "TAG");
    let tokens = regex::Regex::new(r"/l/[A-Za-z0-9_\-.~]+").unwrap();
    let text = tokens.replace_all(&text, "/l/TOKEN");
    let reply = regex::Regex::new(r"support-TAG\+[A-Za-z0-9_\-]+@").unwrap();
    let text = reply.replace_all(&text, "support-TAG+REPLYTOKEN@");
    let csrf = regex::Regex::new(r#"name="csrf" value="[^"]*""#).unwrap();
    csrf.replace_all(&text, r#"name="csrf" value="CSRF""#)
        .to_string()
}

/// Compares `actual` with `tests/snapshots/<name>`, or rewrites that file
/// when `UPDATE_SNAPSHOTS=1`.
fn assert_snapshot(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to write it, then review it",
            path.display()
        )
    });
    if expected != actual {
        let new = path.with_extension(format!(
            "{}.new",
            path.extension().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&new, actual).unwrap();
        panic!(
            "{} differs from what was rendered, which is in {}: diff them; if the change \
             is intended, run the test with UPDATE_SNAPSHOTS=1",
            path.display(),
            new.display()
        );
    }
}

/// Both parts of a rendered mail carry every branding value.
fn assert_branded_mail(text: &str, html: &str, subject: &str) {
    assert!(subject.starts_with(PREFIX), "{subject}");
    for value in [COMPANY, FOOTER] {
        assert!(text.contains(value), "text part lacks {value}:\n{text}");
        assert!(html.contains(value), "HTML part lacks {value}:\n{html}");
    }
    assert!(html.contains(LOGO), "HTML part lacks the logo:\n{html}");
    assert!(html.contains(COLOR), "HTML part lacks the colour:\n{html}");
}

#[tokio::test]
async fn the_acknowledgement_mail_is_branded() {
    let s = site().await;
    let raw = simple_mail(
        &format!("Alice Example <{}>", s.alice.as_str()),
        &s.t.support,
        "Printer on floor 2 jams",
        "branding-1@customer.test",
        "Hello, the printer jams on every second page.",
    );
    let out = ingest(&s.app, &raw).await;
    assert_eq!(
        out,
        Outcome::TicketCreated {
            ticket: "T-1001".into()
        }
    );
    let ack = acks(&s.app).await.pop().expect("an acknowledgement");
    let mut conn = s.app.db.conn().await.unwrap();
    let raw = postdesk::db::outbox::raw_of(&mut conn, ack.id)
        .await
        .unwrap()
        .unwrap();
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("the outbox holds a mail");
    let subject = message.subject().unwrap_or_default().to_string();
    let text = message.body_text(0).expect("a text part").to_string();
    let html = message.body_html(0).expect("an HTML part").to_string();
    assert_branded_mail(&text, &html, &subject);
    let from = header(&raw, "From").unwrap_or_default();
    let reply_to = header(&raw, "Reply-To").unwrap_or_default();
    let rendered = format!(
        "From: {from}\nReply-To: {reply_to}\nSubject: {subject}\n\n\
         ----- text/plain -----\n{text}\n----- text/html -----\n{html}\n"
    );
    assert_snapshot("acknowledgement.mail.txt", &redact(&s.t, &rendered));
}

/// Opens Alice's invoice link and loads the page: (cookie, page HTML).
async fn invoice_page(s: &Site) -> (String, String) {
    let router = postdesk::web::router(s.app.clone());
    let url = link_for(
        &s.app.db,
        &s.app.config,
        LinkPurpose::Invoice,
        Some("INV-2026-0042"),
        &s.alice,
        START_MS / 1000,
    )
    .await
    .unwrap();
    let path = url.strip_prefix(&s.app.config.web.base_url).unwrap();
    let get = |path: String, cookie: Option<String>| {
        let router = router.clone();
        async move {
            let mut req = Request::builder().uri(path);
            if let Some(c) = cookie {
                req = req.header(header::COOKIE, c);
            }
            router
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap()
        }
    };
    let opened = get(path.to_string(), None).await;
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let cookie = opened.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let at = opened.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let page = get(at, Some(cookie.clone())).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = axum::body::to_bytes(page.into_body(), 1 << 20)
        .await
        .unwrap();
    (cookie, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_invoice_page_is_branded() {
    let s = site().await;
    let (_, html) = invoice_page(&s).await;
    for value in [COMPANY, COLOR, LOGO, FOOTER] {
        assert!(html.contains(value), "the page lacks {value}:\n{html}");
    }
    assert_snapshot("invoice.page.html", &redact(&s.t, &html));
}

/// The colours set by `rg` (fill) operators in the PDF's content streams.
fn fill_colours(pdf: &[u8]) -> Vec<(f32, f32, f32)> {
    let mut colours = Vec::new();
    let mut rest = pdf;
    while let Some(at) = find(rest, b"stream") {
        let start = at + b"stream".len();
        let body = &rest[start..];
        let body = body.strip_prefix(b"\r\n").or(body.strip_prefix(b"\n"));
        let Some(body) = body else {
            rest = &rest[start..];
            continue;
        };
        let end = find(body, b"endstream").expect("a stream ends");
        if let Ok(content) = miniz_oxide::inflate::decompress_to_vec_zlib(&body[..end]) {
            let content = String::from_utf8_lossy(&content);
            for line in content.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let [r, g, b, "rg"] = words[..] {
                    colours.push((r.parse().unwrap(), g.parse().unwrap(), b.parse().unwrap()));
                }
            }
        }
        rest = &body[end + b"endstream".len()..];
    }
    colours
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn the_invoice_pdf_is_branded() {
    let s = site().await;
    let mut conn = s.app.db.conn().await.unwrap();
    let detail = postdesk::db::invoices::invoice_detail(&mut conn, "INV-2026-0042")
        .await
        .unwrap()
        .expect("the imported invoice");
    let outline =
        postdesk::pdf::invoice_outline(&detail, &[], &s.app.config.branding).expect("outline");
    assert!(
        outline.contains(&format!("{COLOR} \"{COMPANY}\"")),
        "{outline}"
    );
    assert!(outline.contains(&format!("{FOOTER:?}")), "{outline}");

    // The PDF the page offers draws what the outline says: the company
    // and footer as text, the brand colour as a fill colour.
    let (cookie, _) = invoice_page(&s).await;
    let response = postdesk::web::router(s.app.clone())
        .oneshot(
            Request::builder()
                .uri("/invoice/INV-2026-0042/pdf")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pdf = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    let rendered = postdesk::pdf::render_invoice(&detail, &[], &s.app.config.branding).unwrap();
    assert_eq!(pdf.to_vec(), rendered, "the page serves the rendered PDF");
    let (r, g, b) = (10.0 / 255.0, 125.0 / 255.0, 90.0 / 255.0);
    assert!(
        fill_colours(&pdf)
            .iter()
            .any(|c| (c.0 - r).abs() < 0.002 && (c.1 - g).abs() < 0.002 && (c.2 - b).abs() < 0.002),
        "no fill in the brand colour: {:?}",
        fill_colours(&pdf)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoice.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let text = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8", file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (Debian's poppler-utils) is installed");
    let text = String::from_utf8(text.stdout).unwrap();
    for value in [COMPANY, FOOTER] {
        assert!(
            text.contains(value),
            "the PDF's text lacks {value}:\n{text}"
        );
    }
    assert_snapshot("invoice.pdf.txt", &outline);
}
