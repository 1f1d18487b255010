//! Signed links on the web (issue 4): `/l/<token>` verifies, records the
//! open, sets a cookie scoped to the page and redirects to it; the invoice
//! page shows what the link may show. Tampering, expiry, revocation and key
//! rotation; GET and HEAD change no business row.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::*;
use postdesk::app::App;
use postdesk::clock::{Clock, ManualClock, SharedClock};
use postdesk::db::{audit, contacts, invoices};
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use tower::ServiceExt;

const START_MS: i64 = 1_795_000_000_000;

struct Site {
    t: TestEnv,
    app: App,
    clock: ManualClock,
    router: Router,
    alice: EmailAddress,
    invoice: String,
}

fn billing_json(t: &TestEnv) -> String {
    format!(
        r#"{{"clients":[{{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
    {{"name":"Alice","email":"{alice}","types":["primary","billing"]}}]}},
  {{"name":"Other {tag}","domains":["other-{tag}.test"],"contacts":[
    {{"name":"Olga","email":"olga@other-{tag}.test","types":["billing"]}}]}}],
 "invoices":[{{"number":"INV-{tag}-1","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-01",
    "due_date":"2026-11-15","terms":"Net 14","lines":[
      {{"description":"Managed workplace","quantity":"12","unit_price":"45.00","tax_rate":"19"}},
      {{"description":"On-site hours","quantity":"1.5","unit_price":"85","tax_rate":"19"}}]}},
  {{"number":"INV-{tag}-2","client":"Other {tag}","currency":"EUR","issue_date":"2026-11-01",
    "due_date":"2026-11-15","lines":[{{"description":"Secret other thing","quantity":"1","unit_price":"1"}}]}}],
 "quotes":[{{"number":"Q-{tag}-1","client":"Customer {tag}","currency":"EUR","issue_date":"2026-11-01",
    "expiry_date":"2026-12-31","lines":[{{"description":"New firewall","quantity":"1","unit_price":"1200","tax_rate":"19"}}]}},
  {{"number":"Q-{tag}-old","client":"Customer {tag}","currency":"EUR","issue_date":"2026-10-01",
    "expiry_date":"2026-10-31","lines":[{{"description":"Old offer","quantity":"1","unit_price":"10"}}]}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
    )
}

async fn site_with(extra: impl Fn(&TestEnv) -> String) -> Site {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(START_MS);
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::open(t.config(&extra(&t)), shared).await.unwrap();
    let data = postdesk::import::parse(&billing_json(&t), "billing.json").unwrap();
    postdesk::import::import(&app.db, &data, "billing.json", START_MS)
        .await
        .unwrap();
    Site {
        router: postdesk::web::router(app.clone()),
        alice: EmailAddress::parse(&t.addr("alice", "customer.test")).unwrap(),
        invoice: format!("INV-{}-1", t.tag),
        t,
        app,
        clock,
    }
}

async fn site() -> Site {
    site_with(|_| String::new()).await
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Site {
    async fn request(&self, method: Method, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.request(Method::GET, path, cookie).await
    }

    /// The path of a fresh invoice link for Alice.
    async fn invoice_link(&self) -> String {
        self.link(LinkPurpose::Invoice, Some(&self.invoice)).await
    }

    /// The path of a fresh link of Alice's to `purpose` (and `number`).
    async fn link(&self, purpose: LinkPurpose, number: Option<&str>) -> String {
        let url = link_for(
            &self.app.db,
            &self.app.config,
            purpose,
            number,
            &self.alice,
            self.clock.now_millis() / 1000,
        )
        .await
        .unwrap();
        url.strip_prefix(&self.app.config.web.base_url)
            .unwrap()
            .to_string()
    }

    async fn snapshot(&self) -> Vec<String> {
        let mut conn = self.app.db.conn().await.unwrap();
        invoices::business_snapshot(&mut conn).await.unwrap()
    }

    async fn alice_opens(&self) -> i64 {
        let mut conn = self.app.db.conn().await.unwrap();
        let c = contacts::find_contact_by_email(&mut conn, &self.alice)
            .await
            .unwrap()
            .unwrap();
        audit::link_opens_by_contact(&mut conn, c.id).await.unwrap()
    }
}

/// `pd_link=<token>` from a Set-Cookie header, and its attributes.
fn cookie_of(reply: &Reply) -> (String, String) {
    let set = reply
        .headers
        .get(header::SET_COOKIE)
        .expect("a cookie")
        .to_str()
        .unwrap()
        .to_string();
    let pair = set.split(';').next().unwrap().to_string();
    (pair, set)
}

fn assert_security_headers(reply: &Reply) {
    let h = |name: header::HeaderName| {
        reply
            .headers
            .get(&name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let csp = h(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(h(header::REFERRER_POLICY), "no-referrer");
    assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(h(header::CACHE_CONTROL), "no-store");
}

#[tokio::test]
async fn a_link_redirects_to_a_clean_url_that_shows_the_invoice() {
    let s = site().await;
    let link = s.invoice_link().await;
    let reply = s.get(&link, None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_security_headers(&reply);
    let location = reply
        .headers
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(location, format!("/invoice/{}", s.invoice));
    let (cookie, attributes) = cookie_of(&reply);
    assert!(attributes.contains("HttpOnly"), "{attributes}");
    assert!(attributes.contains("SameSite=Lax"), "{attributes}");
    assert!(
        attributes.contains(&format!("Path=/invoice/{}", s.invoice)),
        "scoped to the page: {attributes}"
    );
    assert!(
        attributes.contains(&format!("Max-Age={}", 45 * 86_400)),
        "{attributes}"
    );

    let page = s.get(location, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page);
    let body = &page.body;
    assert!(body.contains(&format!("Invoice {}", s.invoice)), "{body}");
    assert!(body.contains(&format!("Customer {}", s.t.tag)));
    assert_eq!(body.matches("Managed workplace").count(), 1);
    assert_eq!(body.matches("On-site hours").count(), 1);
    // 540.00 + 127.50 net; 19 % tax per line: 102.60 + 24.23
    assert!(body.contains("667.50 EUR"), "subtotal");
    assert!(body.contains("126.83 EUR"), "tax");
    assert!(body.contains("794.33 EUR"), "total and balance");
    assert!(body.contains(">Sent<"), "status");
    assert!(body.contains("2026-11-15"));
    assert!(!body.contains("<script"), "no JavaScript");
    assert!(!body.contains("Secret other thing"));

    // Without the cookie, or with it on another invoice's URL: not found.
    let other = format!("/invoice/INV-{}-2", s.t.tag);
    assert_eq!(s.get(location, None).await.status, StatusCode::NOT_FOUND);
    let wrong = s.get(&other, Some(&cookie)).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert!(!wrong.body.contains("Secret other thing"));
    assert_security_headers(&wrong);
}

#[tokio::test]
async fn get_and_head_change_no_business_row_and_only_append_link_opens() {
    let s = site().await;
    // Money on the account, so every part of every page has something to show.
    postdesk::billing::record_manual_payment(
        &s.app,
        &postdesk::billing::ManualPayment {
            invoice_number: &s.invoice,
            amount_minor: 10_000,
            method: "bank-transfer",
            reference: None,
        },
    )
    .await
    .unwrap();
    let quote = format!("Q-{}-1", s.t.tag);
    let pages = [
        (
            LinkPurpose::Invoice,
            Some(s.invoice.as_str()),
            format!("/invoice/{}", s.invoice),
        ),
        (
            LinkPurpose::Quote,
            Some(quote.as_str()),
            format!("/quote/{quote}"),
        ),
        (LinkPurpose::Statement, None, "/statement".to_string()),
        (
            LinkPurpose::PaymentMethods,
            None,
            "/payment-methods".to_string(),
        ),
    ];
    let before = s.snapshot().await;
    let opens_before = s.alice_opens().await;
    let mut opened = 0;
    for (purpose, number, path) in &pages {
        let link = s.link(*purpose, *number).await;
        for method in [Method::HEAD, Method::GET, Method::HEAD, Method::GET] {
            let reply = s.request(method.clone(), &link, None).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{method} {path}");
            opened += 1;
            let cookie = cookie_of(&reply).0;
            let page = s.request(method.clone(), path, Some(&cookie)).await;
            assert_eq!(page.status, StatusCode::OK, "{method} {path}");
            if method == Method::HEAD {
                assert!(page.body.is_empty());
            }
        }
    }
    assert_eq!(s.snapshot().await, before, "no business data changed");
    assert_eq!(
        s.alice_opens().await,
        opens_before + opened,
        "each open recorded"
    );
}

#[tokio::test]
async fn the_statement_shows_balances_credit_payments_and_recurring_invoices() {
    let s = site().await;
    let json = format!(
        r#"{{"recurring_invoices":[{{"client":"Customer {tag}","scope":"Managed workplace, 12 seats",
            "currency":"EUR","quantity":"12","unit_price":"45.00","tax_rate":"19",
            "frequency":"monthly","next_bill_date":"2027-01-31","auto_pay":true}}]}}"#,
        tag = s.t.tag
    );
    let data = postdesk::import::parse(&json, "r.json").unwrap();
    postdesk::import::import(&s.app.db, &data, "r.json", START_MS)
        .await
        .unwrap();
    // 794.33 due; 100.00 paid by transfer.
    postdesk::billing::record_manual_payment(
        &s.app,
        &postdesk::billing::ManualPayment {
            invoice_number: &s.invoice,
            amount_minor: 10_000,
            method: "bank-transfer",
            reference: Some("REF-1"),
        },
    )
    .await
    .unwrap();
    let link = s.link(LinkPurpose::Statement, None).await;
    let reply = s.get(&link, None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let (cookie, attributes) = cookie_of(&reply);
    assert!(attributes.contains("Path=/statement"), "{attributes}");
    let page = s.get("/statement", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page);
    let body = &page.body;
    assert!(
        body.contains(&format!("Statement for Customer {}", s.t.tag)),
        "{body}"
    );
    assert!(
        body.contains("694.33 EUR"),
        "the balance after the payment: {body}"
    );
    assert!(body.contains(&s.invoice));
    assert!(
        body.contains("bank transfer") && body.contains("100.00 EUR"),
        "history"
    );
    assert!(body.contains("Managed workplace, 12 seats") && body.contains("2027-01-31"));
    // 12 × 45.00 = 540.00 + 19 % = 642.60 per month
    assert!(body.contains("642.60 EUR"), "recurring amount with tax");
    assert!(
        !body.contains(&format!("INV-{}-2", s.t.tag)),
        "another client's invoice"
    );
    assert!(!body.contains("Secret other thing"));
    // An invoice cookie does not open the statement, nor the reverse.
    let invoice_cookie = cookie_of(&s.get(&s.invoice_link().await, None).await).0;
    assert_eq!(
        s.get("/statement", Some(&invoice_cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/invoice/{}", s.invoice), Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The invoice page lists the payment and the new balance.
    let invoice = s
        .get(&format!("/invoice/{}", s.invoice), Some(&invoice_cookie))
        .await;
    // Due 2026-11-15, the clock says 2026-11-18: part-paid and overdue.
    assert!(invoice.body.contains(">Overdue<"), "{}", invoice.body);
    assert!(invoice.body.contains("694.33 EUR"));
    assert!(invoice.body.contains("Download PDF"));
}

#[tokio::test]
async fn every_altered_token_is_not_found() {
    let s = site().await;
    let link = s.invoice_link().await;
    let token = link.strip_prefix("/l/").unwrap();
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        let mut altered = bytes.to_vec();
        // Keep it a valid path character: swap between two URL-safe letters.
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let reply = s.get(&format!("/l/{altered}"), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "byte {i}");
        assert!(reply.headers.get(header::SET_COOKIE).is_none());
        assert!(reply.body.contains("Not found"));
    }
    // The page itself with an altered cookie.
    let altered = format!("pd_link={}x", token);
    let reply = s
        .get(&format!("/invoice/{}", s.invoice), Some(&altered))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/l/", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/nothing-here", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_expired_link_explains_itself_and_the_page_stops_opening() {
    let s = site().await;
    let link = s.invoice_link().await;
    let cookie = cookie_of(&s.get(&link, None).await).0;
    s.clock.advance(std::time::Duration::from_secs(46 * 86_400));
    let reply = s.get(&link, None).await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.body.contains("expired"), "{}", reply.body);
    assert!(
        !cookie_of(&reply).0.starts_with("pd_link="),
        "no page cookie, only the form's"
    );
    let page = s
        .get(&format!("/invoice/{}", s.invoice), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(!page.body.contains("Managed workplace"));
}

#[tokio::test]
async fn a_revoked_contact_generation_kills_old_links_and_cookies() {
    let s = site().await;
    let link = s.invoice_link().await;
    let cookie = cookie_of(&s.get(&link, None).await).0;
    let mut conn = s.app.db.conn().await.unwrap();
    let alice = contacts::find_contact_by_email(&mut conn, &s.alice)
        .await
        .unwrap()
        .unwrap();
    contacts::bump_link_generation(&mut conn, alice.id)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(s.get(&link, None).await.status, StatusCode::NOT_FOUND);
    let page = s
        .get(&format!("/invoice/{}", s.invoice), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // A link made now carries the new generation and works.
    let fresh = s.invoice_link().await;
    assert_eq!(s.get(&fresh, None).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn links_survive_a_key_rotation_until_the_old_key_is_removed() {
    let s = site().await;
    let old_link = s.invoice_link().await;
    // The new key signs; the old one still verifies.
    let new_key =
        "[[links.keys]]\nid = \"new\"\nsecret = \"new-secret-0123456789abcdef0123456789\"\n";
    let mut config = s.t.config("");
    let old_keys = config.link_keys.clone();
    let parsed_new = s.t.config(new_key).link_keys;
    // `config(extra)` appends: [test, new]; put the new key first.
    config.link_keys = vec![parsed_new[1].clone(), old_keys[0].clone()];
    let clock: SharedClock = Arc::new(s.clock.clone());
    let app = App::open(config.clone(), clock.clone()).await.unwrap();
    let router = postdesk::web::router(app.clone());
    let get = |router: Router, path: String| async move {
        router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        get(router.clone(), old_link.clone()).await,
        StatusCode::SEE_OTHER
    );
    let new_link = link_for(
        &app.db,
        &app.config,
        LinkPurpose::Invoice,
        Some(&s.invoice),
        &s.alice,
        s.clock.now_millis() / 1000,
    )
    .await
    .unwrap();
    assert!(new_link.contains("/l/new."), "{new_link}");
    // The old key retired.
    config.link_keys = vec![parsed_new[1].clone()];
    let app = App::open(config, clock).await.unwrap();
    let router = postdesk::web::router(app.clone());
    assert_eq!(get(router.clone(), old_link).await, StatusCode::NOT_FOUND);
    let new_path = new_link
        .strip_prefix(&app.config.web.base_url)
        .unwrap()
        .to_string();
    assert_eq!(get(router, new_path).await, StatusCode::SEE_OTHER);
}

impl Site {
    async fn post_form(&self, path: &str, cookie: Option<&str>, form: &str) -> Reply {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::from(form.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn fresh_links(&self) -> Vec<postdesk::db::outbox::OutboxEntry> {
        let mut conn = self.app.db.conn().await.unwrap();
        postdesk::db::outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == "fresh-link")
            .collect()
    }
}

/// The value of `name="<field>"`'s hidden input in a page.
fn hidden(body: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{field} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn an_expired_link_mails_a_fresh_one_to_the_address_on_file_once_an_hour() {
    let s = site().await;
    let link = s.invoice_link().await;
    s.clock.advance(std::time::Duration::from_secs(46 * 86_400));
    let page = s.get(&link, None).await;
    assert_eq!(page.status, StatusCode::GONE);
    let (csrf_cookie, attributes) = cookie_of(&page);
    assert!(attributes.contains("SameSite=Strict") && attributes.contains("HttpOnly"));
    let token = hidden(&page.body, "token");
    let csrf = hidden(&page.body, "csrf");
    let form = format!("token={token}&csrf={csrf}");

    // Without the cookie, or with another value: refused, nothing queued.
    assert_eq!(
        s.post_form("/l/renew", None, &form).await.status,
        StatusCode::FORBIDDEN
    );
    let forged = format!("token={token}&csrf={}", "0".repeat(32));
    assert_eq!(
        s.post_form("/l/renew", Some(&csrf_cookie), &forged)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(s.fresh_links().await.is_empty());

    let sent = s.post_form("/l/renew", Some(&csrf_cookie), &form).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("address we have on file"));
    assert!(
        !sent.body.contains(s.alice.as_str()),
        "the address is not shown"
    );
    let mails = s.fresh_links().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].recipients, vec![s.alice.to_string()]);
    assert!(
        mails[0].subject.contains(&s.invoice),
        "{}",
        mails[0].subject
    );

    // The mailed link opens the invoice.
    let mut conn = s.app.db.conn().await.unwrap();
    let raw = postdesk::db::outbox::raw_of(&mut conn, mails[0].id)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = parsed.body_text(0).unwrap().to_string();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/l/"))
        .unwrap_or_else(|| panic!("a link in {text}"));
    let path = url.strip_prefix(&s.app.config.web.base_url).unwrap();
    assert_eq!(s.get(path, None).await.status, StatusCode::SEE_OTHER);

    // Asked again within the hour: the same answer, no second mail.
    let again = s.post_form("/l/renew", Some(&csrf_cookie), &form).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(s.fresh_links().await.len(), 1);

    // A forged token gets nothing.
    let bad = format!("token={}x&csrf={csrf}", token);
    assert_eq!(
        s.post_form("/l/renew", Some(&csrf_cookie), &bad)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Each post is in the audit log once; the two that reached a contact
    // with whether a mail went, in the transaction that queued it.
    let rows = audit_rows(&s.app, |r| r.action == "link.renew").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.detail.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("denied", None),
            ("denied", None),
            ("ok", Some(serde_json::json!({ "mailed": true }))),
            (
                "ok",
                Some(serde_json::json!({ "mailed": false, "why": "sent within the hour" }))
            ),
            ("denied", None),
        ],
        "{rows:?}"
    );
    assert!(!format!("{rows:?}").contains(&token));
}

impl Site {
    /// Opens Alice's link to quote `number`: the link cookie, the page.
    async fn open_quote(&self, number: &str) -> (String, Reply) {
        let url = link_for(
            &self.app.db,
            &self.app.config,
            LinkPurpose::Quote,
            Some(number),
            &self.alice,
            self.clock.now_millis() / 1000,
        )
        .await
        .unwrap();
        let path = url.strip_prefix(&self.app.config.web.base_url).unwrap();
        let redirect = self.get(path, None).await;
        assert_eq!(redirect.status, StatusCode::SEE_OTHER);
        let link_cookie = cookie_of(&redirect).0;
        let page = self
            .get(&format!("/quote/{number}"), Some(&link_cookie))
            .await;
        (link_cookie, page)
    }

    async fn queued_kinds(&self) -> Vec<(String, Vec<String>)> {
        let mut conn = self.app.db.conn().await.unwrap();
        postdesk::db::outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.kind, m.recipients))
            .collect()
    }
}

#[tokio::test]
async fn a_quote_is_accepted_once_with_a_valid_form_and_everyone_is_told() {
    let s = site().await;
    let number = format!("Q-{}-1", s.t.tag);
    let (link_cookie, page) = s.open_quote(&number).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Accept quote") && page.body.contains("New firewall"));
    assert!(page.body.contains("1,428.00 EUR"), "total with 19 % tax");
    let (csrf_cookie, attributes) = cookie_of(&page);
    assert!(
        attributes.contains(&format!("Path=/quote/{number}")),
        "{attributes}"
    );
    let csrf = hidden(&page.body, "csrf");
    let both = format!("{link_cookie}; {csrf_cookie}");
    let decision = format!("/quote/{number}/decision");
    let before = s.snapshot().await;

    // No CSRF cookie, a wrong value, or no link cookie: nothing changes.
    let form = format!("decision=accept&csrf={csrf}");
    assert_eq!(
        s.post_form(&decision, Some(&link_cookie), &form)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let wrong = format!("decision=accept&csrf={}", "f".repeat(32));
    assert_eq!(
        s.post_form(&decision, Some(&both), &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post_form(&decision, Some(&csrf_cookie), &form)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.snapshot().await, before);
    assert!(s.queued_kinds().await.is_empty());

    let accepted = s.post_form(&decision, Some(&both), &form).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        accepted.headers.get(header::LOCATION).unwrap(),
        &format!("/quote/{number}")
    );
    let after = s.get(&format!("/quote/{number}"), Some(&link_cookie)).await;
    assert!(after.body.contains(">Accepted<"), "{}", after.body);
    assert!(!after.body.contains("Accept quote"), "no form once decided");
    assert_eq!(
        s.queued_kinds().await,
        vec![
            ("quote-decided".to_string(), vec![s.t.staff.clone()]),
            ("quote-confirmation".to_string(), vec![s.alice.to_string()]),
        ]
    );

    // Declining afterwards changes nothing and mails nobody.
    let snapshot = s.snapshot().await;
    let decline = format!("decision=decline&csrf={csrf}");
    let again = s.post_form(&decision, Some(&both), &decline).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("decided already"));
    assert_eq!(s.snapshot().await, snapshot);
    assert_eq!(s.queued_kinds().await.len(), 2);
}

#[tokio::test]
async fn an_expired_quote_cannot_be_accepted() {
    let s = site().await;
    let number = format!("Q-{}-old", s.t.tag);
    let (link_cookie, page) = s.open_quote(&number).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(">Expired<"), "{}", page.body);
    assert!(!page.body.contains("Accept quote"));
    // Even a hand-made POST with a valid CSRF pair is refused by the server.
    let (csrf, csrf_cookie) = {
        let other = format!("Q-{}-1", s.t.tag);
        let (_, open_page) = s.open_quote(&other).await;
        let value = hidden(&open_page.body, "csrf");
        (value.clone(), format!("pd_csrf={value}"))
    };
    let before = s.snapshot().await;
    let reply = s
        .post_form(
            &format!("/quote/{number}/decision"),
            Some(&format!("{link_cookie}; {csrf_cookie}")),
            &format!("decision=accept&csrf={csrf}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.contains("valid until 2026-10-31"),
        "{}",
        reply.body
    );
    assert_eq!(s.snapshot().await, before);
    assert!(s.queued_kinds().await.is_empty());
}

#[tokio::test]
async fn the_invoice_pdf_downloads_for_the_link_holder_only() {
    let s = site().await;
    let cookie = cookie_of(&s.get(&s.invoice_link().await, None).await).0;
    let path = format!("/invoice/{}/pdf", s.invoice);
    let reply = s
        .router
        .clone()
        .oneshot(
            Request::get(&path)
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.headers()[header::CONTENT_TYPE], "application/pdf");
    assert!(reply.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains(&format!("invoice-{}.pdf", s.invoice)));
    let bytes = axum::body::to_bytes(reply.into_body(), 10 << 20)
        .await
        .unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let text = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by install-deps.sh)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&s.invoice), "{text}");
    assert!(text.contains("794.33"), "{text}");
    // Without the link's cookie, or for another client's invoice: not found.
    assert_eq!(s.get(&path, None).await.status, StatusCode::NOT_FOUND);
    let other = format!("/invoice/INV-{}-2/pdf", s.t.tag);
    assert_eq!(
        s.get(&other, Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn without_a_provider_the_invoice_shows_the_operators_payment_instructions() {
    let s = site_with(|_| {
        "[payments]\ninstructions = \"Transfer to IBAN DE02 1203 0000 0000 2020 51.\"\n".into()
    })
    .await;
    let cookie = cookie_of(&s.get(&s.invoice_link().await, None).await).0;
    let page = s
        .get(&format!("/invoice/{}", s.invoice), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("How to pay"), "{}", page.body);
    assert!(page.body.contains("IBAN DE02 1203 0000 0000 2020 51"));
    assert!(
        !page.body.contains("Pay now"),
        "no online payment without a provider"
    );
}
