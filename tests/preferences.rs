//! The client's own mail preferences and links (issue 7, parts 4, 5, 8), on
//! the backend under test: one-click unsubscribe (RFC 8058) by POST only,
//! the preferences form, the unsubscribe headers on optional mail as it
//! arrives through the real Postfix and Dovecot (and not on other mail),
//! the links footer, the "email me my links" page that answers alike for
//! every address and is rate limited, and revoked preference links.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::*;
use postdesk::app::App;
use postdesk::clock::{Clock, ManualClock, SharedClock};
use postdesk::config::Config;
use postdesk::db::contacts::{self, Contact};
use postdesk::db::{link_requests, outbox};
use postdesk::domain::{EmailAddress, OptionalMail};
use postdesk::links::{link_for, LinkPurpose};
use postdesk::schedule::{run_pass, JobKind, Worker};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

struct Site {
    t: TestEnv,
    app: App,
    clock: ManualClock,
    router: Router,
    worker: Worker,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

/// A client with Alice (billing + primary), Bob (standard) and Carol
/// (billing), and an open invoice; `web` is added to the `[web]` section.
async fn site(web: &str) -> Site {
    site_with(web, "").await
}

/// [`site`] with `extra` sections in the config.
async fn site_with(web: &str, extra: &str) -> Site {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(ms("2026-11-20T10:00:00Z"));
    let shared: SharedClock = Arc::new(clock.clone());
    let toml = t
        .config_toml(extra)
        .replacen("[web]\n", &format!("[web]\n{web}\n"), 1);
    let config = Config::from_toml_with_env(&toml, "test.toml", &Default::default()).unwrap();
    let app = App::open(config, shared).await.unwrap();
    let s = Site {
        router: postdesk::web::router(app.clone()),
        t,
        app,
        clock,
        worker: Worker::new(),
    };
    s.import(&format!(
        r#"{{"clients":[{{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
            {{"name":"Alice","email":"{alice}","types":["billing","primary"]}},
            {{"name":"Bob","email":"{bob}","types":[]}},
            {{"name":"Carol","email":"{carol}","types":["billing"]}}]}}],
          "invoices":[{{"number":"INV-{tag}-1","client":"Customer {tag}","currency":"EUR",
            "issue_date":"2026-11-02","due_date":"2026-11-16",
            "lines":[{{"description":"Backup","quantity":"1","unit_price":"100"}}]}}]}}"#,
        tag = s.t.tag,
        alice = s.addr("alice"),
        bob = s.addr("bob"),
        carol = s.addr("carol"),
    ))
    .await;
    s
}

impl Site {
    fn addr(&self, name: &str) -> String {
        self.t.addr(name, "customer.test")
    }

    async fn import(&self, json: &str) {
        let data = postdesk::import::parse(json, "test.json").unwrap();
        postdesk::import::import(&self.app.db, &data, "test.json", self.clock.now_millis())
            .await
            .unwrap();
    }

    async fn contact(&self, name: &str) -> Contact {
        let mut conn = self.app.db.conn().await.unwrap();
        contacts::find_contact_by_email(&mut conn, &EmailAddress::parse(&self.addr(name)).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn pass(&self, kind: JobKind, at: &str) {
        self.clock.set(ms(at));
        run_pass(
            &self.app,
            &self.worker,
            kind,
            ms(at),
            false,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    }

    async fn outbox(&self, kind: &str) -> Vec<outbox::OutboxEntry> {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::list(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    async fn raw(&self, id: i64) -> Vec<u8> {
        let mut conn = self.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, id).await.unwrap().unwrap()
    }

    /// Path of a fresh link of `name`'s to `purpose`.
    async fn link(&self, name: &str, purpose: LinkPurpose) -> String {
        let url = link_for(
            &self.app.db,
            &self.app.config,
            purpose,
            None,
            &EmailAddress::parse(&self.addr(name)).unwrap(),
            self.clock.now_millis() / 1000,
        )
        .await
        .unwrap();
        self.path_of(&url)
    }

    fn path_of(&self, url: &str) -> String {
        url.strip_prefix(&self.app.config.web.base_url)
            .unwrap_or_else(|| panic!("{url} is under the base URL"))
            .to_string()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        ip: Option<[u8; 4]>,
    ) -> Reply {
        self.send_forwarded(method, path, cookie, form, ip, None)
            .await
    }

    /// [`Site::send`] with an `X-Forwarded-For` header.
    async fn send_forwarded(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        ip: Option<[u8; 4]>,
        forwarded_for: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(hops) = forwarded_for {
            req = req.header("x-forwarded-for", hops);
        }
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut req = req
            .body(Body::from(form.unwrap_or_default().to_string()))
            .unwrap();
        if let Some(ip) = ip {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        }
        let response = self.router.clone().oneshot(req).await.unwrap();
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
        self.send(Method::GET, path, cookie, None, None).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Reply {
        self.send(Method::POST, path, cookie, Some(form), None)
            .await
    }

    /// One round of the outbox sender: what is queued goes to Postfix.
    async fn send_outbox(&self) {
        let mut state = self.app.sender.new_state().unwrap();
        self.app
            .sender
            .round(&mut state, &CancellationToken::new())
            .await
            .unwrap();
        state.close().await;
    }

    /// Opens a link path: its cookie (`name=value`) and where it leads.
    async fn open(&self, path: &str) -> (String, String) {
        let r = self.get(path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.body);
        (cookie_of(&r), location(&r))
    }
}

fn cookie_of(r: &Reply) -> String {
    let set = r
        .headers
        .get(header::SET_COOKIE)
        .expect("a cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

fn location(r: &Reply) -> String {
    r.headers
        .get(header::LOCATION)
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_string()
}

fn hidden(body: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{field} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

/// The URIs inside `<…>` of a `List-Unsubscribe` value, in order.
fn unsubscribe_uris(raw: &[u8]) -> Vec<String> {
    let value = header(raw, "List-Unsubscribe").expect("List-Unsubscribe");
    let uris: Vec<String> = value
        .split(',')
        .map(|part| {
            part.trim()
                .strip_prefix('<')
                .and_then(|v| v.strip_suffix('>'))
                .unwrap_or_else(|| panic!("<URI> in {value}"))
                .to_string()
        })
        .collect();
    assert_eq!(uris.len(), 2, "one HTTP URL and one mailto: in {value}");
    uris
}

/// The one-click URL (RFC 8058: the header's one HTTP URI, first).
fn unsubscribe_url(raw: &[u8]) -> String {
    let url = unsubscribe_uris(raw).remove(0);
    assert!(url.starts_with("http"), "{url}");
    url
}

/// The `mailto:` of `List-Unsubscribe`: the address and the subject.
fn unsubscribe_mailto(raw: &[u8]) -> (String, String) {
    let mailto = unsubscribe_uris(raw).remove(1);
    let rest = mailto
        .strip_prefix("mailto:")
        .unwrap_or_else(|| panic!("mailto: in {mailto}"));
    let (address, query) = rest.split_once('?').expect("mailto:ADDRESS?subject=");
    let subject = query
        .strip_prefix("subject=")
        .expect("subject=")
        .replace("%20", " ");
    (address.to_string(), subject)
}

/// The URL on the line of the text starting with `label`.
fn url_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} in {text}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_by_post_stops_that_mail_and_a_get_changes_nothing() {
    let s = site("").await;
    s.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
    s.pass(JobKind::Report, "2026-12-01T07:30:00Z").await;
    let statements = s.outbox("monthly-statement").await;
    let alices: Vec<_> = statements
        .iter()
        .filter(|m| m.recipients == vec![s.addr("alice")])
        .collect();
    assert_eq!(alices.len(), 1, "{statements:?}");
    let raw = s.raw(alices[0].id).await;
    assert_eq!(
        header(&raw, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = unsubscribe_url(&raw);
    let path = s.path_of(&url);
    assert!(path.starts_with("/unsubscribe/statement/"), "{path}");
    let report = s.outbox("service-report").await;
    assert_eq!(report.len(), 1);
    let report_url = unsubscribe_url(&s.raw(report[0].id).await);
    assert!(s.path_of(&report_url).starts_with("/unsubscribe/report/"));

    // A GET (a mail scanner, a click) leads to the preferences, no change.
    for method in [Method::GET, Method::HEAD] {
        let r = s.send(method, &path, None, None, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let next = location(&r);
        assert!(next.starts_with("/l/"), "{next}");
        let (cookie, page) = s.open(&next).await;
        assert_eq!(page, "/preferences");
        let shown = s.get("/preferences", Some(&cookie)).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert!(shown.body.contains("Monthly statement"), "{}", shown.body);
    }
    assert!(s.contact("alice").await.wants(OptionalMail::Statement));

    // Any other body is not a one-click unsubscribe.
    let wrong = s.post(&path, None, "unsubscribe=yes").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(s.contact("alice").await.wants(OptionalMail::Statement));

    // The mail client's POST: no cookie, no CSRF value, the token decides.
    let done = s.post(&path, None, "List-Unsubscribe=One-Click").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("no longer get"), "{}", done.body);
    let alice = s.contact("alice").await;
    assert!(!alice.wants(OptionalMail::Statement));
    assert!(alice.wants(OptionalMail::Report), "only that list");
    assert!(alice.wants(OptionalMail::Announcements));
    // Twice is the same.
    assert_eq!(
        s.post(&path, None, "List-Unsubscribe=One-Click")
            .await
            .status,
        StatusCode::OK
    );
    // A forged token unsubscribes nobody.
    let forged = format!("{}x", path);
    assert_eq!(
        s.post(&forged, None, "List-Unsubscribe=One-Click")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Something for December's report, then January's run: the statement
    // goes to Carol only, the report still to Alice.
    s.import(&format!(
        r#"{{"invoices":[{{"number":"INV-{tag}-2","client":"Customer {tag}","currency":"EUR",
            "issue_date":"2026-12-05","due_date":"2026-12-19",
            "lines":[{{"description":"Support","quantity":"1","unit_price":"50"}}]}}]}}"#,
        tag = s.t.tag
    ))
    .await;
    s.pass(JobKind::Statement, "2027-01-01T07:30:00Z").await;
    s.pass(JobKind::Report, "2027-01-01T07:30:00Z").await;
    let statements = s.outbox("monthly-statement").await;
    let to_alice = statements
        .iter()
        .filter(|m| m.recipients == vec![s.addr("alice")])
        .count();
    let to_carol = statements
        .iter()
        .filter(|m| m.recipients == vec![s.addr("carol")])
        .count();
    assert_eq!((to_alice, to_carol), (1, 2), "{statements:?}");
    let reports = s.outbox("service-report").await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports
        .iter()
        .all(|m| m.recipients == vec![s.addr("alice")]));

    // An expired link's one-click still only lowers mail: it works.
    s.clock.advance(Duration::from_secs(60 * 86_400));
    assert_eq!(
        s.post(&s.path_of(&report_url), None, "List-Unsubscribe=One-Click")
            .await
            .status,
        StatusCode::OK
    );
    assert!(!s.contact("alice").await.wants(OptionalMail::Report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preferences_form_saves_what_was_ticked_and_the_jobs_follow_it() {
    let s = site("").await;
    let (cookie, page) = s
        .open(&s.link("alice", LinkPurpose::Preferences).await)
        .await;
    assert_eq!(page, "/preferences");
    let shown = s.get("/preferences", Some(&cookie)).await;
    assert_eq!(shown.status, StatusCode::OK);
    for kind in ["statement", "report", "announcements"] {
        assert!(
            shown.body.contains(&format!("name=\"{kind}\" checked")),
            "{kind} offered and on: {}",
            shown.body
        );
    }
    let csrf = hidden(&shown.body, "csrf");
    let csrf_cookie = cookie_of(&shown);
    let both = format!("{cookie}; {csrf_cookie}");

    // Without the CSRF value, or without the link: nothing is saved.
    let no_csrf = s.post("/preferences", Some(&cookie), "report=on").await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let no_link = s
        .post(
            "/preferences",
            Some(&csrf_cookie),
            &format!("csrf={csrf}&report=on"),
        )
        .await;
    assert_eq!(no_link.status, StatusCode::NOT_FOUND);
    assert!(s.contact("alice").await.wants(OptionalMail::Statement));

    // Only the report stays ticked.
    let saved = s
        .post(
            "/preferences",
            Some(&both),
            &format!("csrf={csrf}&report=on"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), "/preferences?saved=1");
    let alice = s.contact("alice").await;
    assert!(!alice.wants(OptionalMail::Statement));
    assert!(alice.wants(OptionalMail::Report));
    assert!(!alice.wants(OptionalMail::Announcements));
    let after = s.get("/preferences?saved=1", Some(&cookie)).await;
    assert!(after.body.contains("Saved."), "{}", after.body);
    assert!(after.body.contains("name=\"report\" checked"));
    assert!(!after.body.contains("name=\"statement\" checked"));

    // The next run follows it.
    s.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
    s.pass(JobKind::Report, "2026-12-01T07:30:00Z").await;
    let statements: Vec<_> = s
        .outbox("monthly-statement")
        .await
        .into_iter()
        .flat_map(|m| m.recipients)
        .collect();
    assert_eq!(statements, vec![s.addr("carol")]);
    let reports: Vec<_> = s
        .outbox("service-report")
        .await
        .into_iter()
        .flat_map(|m| m.recipients)
        .collect();
    assert_eq!(reports, vec![s.addr("alice")]);

    // A contact who opted out of everything through import ticks one box:
    // they get that one.
    s.import(&format!(
        r#"{{"clients":[{{"name":"Customer {tag}","contacts":[
            {{"name":"Carol","email":"{carol}","types":["billing"],"optional_mail":false}}]}}]}}"#,
        tag = s.t.tag,
        carol = s.addr("carol"),
    ))
    .await;
    assert!(!s.contact("carol").await.wants(OptionalMail::Statement));
    let (carol_cookie, _) = s
        .open(&s.link("carol", LinkPurpose::Preferences).await)
        .await;
    let page = s.get("/preferences", Some(&carol_cookie)).await;
    assert!(
        !page.body.contains("name=\"report\""),
        "a billing contact gets no service report: {}",
        page.body
    );
    assert!(page.body.contains("name=\"statement\">"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let cookies = format!("{carol_cookie}; {}", cookie_of(&page));
    let saved = s
        .post(
            "/preferences",
            Some(&cookies),
            &format!("csrf={csrf}&statement=on"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let carol = s.contact("carol").await;
    assert!(carol.wants(OptionalMail::Statement));
    assert!(!carol.wants(OptionalMail::Announcements));

    // Bob (standard) is offered announcements only.
    let (bob_cookie, _) = s.open(&s.link("bob", LinkPurpose::Preferences).await).await;
    let page = s.get("/preferences", Some(&bob_cookie)).await;
    assert!(page.body.contains("name=\"announcements\""));
    assert!(!page.body.contains("name=\"statement\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_mail_arrives_with_the_unsubscribe_headers_and_other_mail_without() {
    let s = site("").await;
    s.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
    // Not optional: the invoice mail and the acknowledgement of a request.
    postdesk::billing::send_invoice(&s.app, &format!("INV-{}-1", s.t.tag))
        .await
        .unwrap();
    let alice = s.addr("alice");
    ingest(
        &s.app,
        &simple_mail(
            &alice,
            &s.t.support,
            "Printer broken",
            &format!("req-{}@customer.test", s.t.tag),
            "It does not print.",
        ),
    )
    .await;
    assert_eq!(s.outbox("acknowledgement").await.len(), 1);

    s.send_outbox().await;
    let inbox = wait_for("three mails for Alice", Duration::from_secs(20), || async {
        let mails = read_folder(&s.t.mail, &alice, "INBOX").await;
        (mails.len() >= 3).then_some(mails)
    })
    .await;
    assert_eq!(inbox.len(), 3);
    let by_subject = |part: &str| {
        inbox
            .iter()
            .find(|raw| header(raw, "Subject").unwrap_or_default().contains(part))
            .unwrap_or_else(|| panic!("a mail about {part}"))
    };
    let statement = by_subject("Statement");
    let invoice = by_subject(&format!("INV-{}-1", s.t.tag));
    let ack = by_subject("Printer broken");

    let url = unsubscribe_url(statement);
    assert!(
        url.starts_with(&format!(
            "{}/unsubscribe/statement/",
            s.app.config.web.base_url
        )),
        "{url}"
    );
    assert_eq!(
        header(statement, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    for other in [invoice, ack] {
        assert_eq!(header(other, "List-Unsubscribe"), None);
        assert_eq!(header(other, "List-Unsubscribe-Post"), None);
    }

    // Notices to a person carry that person's links in the footer, and
    // they open.
    for mail in [statement, invoice] {
        let text = mail_text(mail);
        let tickets = url_after(&text, "Your tickets: ");
        let prefs = url_after(&text, "Which mails you get: ");
        let statement_link = url_after(&text, "Your statement: ");
        let (_, page) = s.open(&s.path_of(&tickets)).await;
        assert_eq!(page, "/tickets");
        let (cookie, page) = s.open(&s.path_of(&prefs)).await;
        assert_eq!(page, "/preferences");
        assert_eq!(
            s.get("/preferences", Some(&cookie)).await.status,
            StatusCode::OK
        );
        let (cookie, page) = s.open(&s.path_of(&statement_link)).await;
        assert_eq!(page, "/statement");
        assert_eq!(
            s.get("/statement", Some(&cookie)).await.status,
            StatusCode::OK
        );
    }
    // The one-click URL works as delivered.
    let done = s
        .post(&s.path_of(&url), None, "List-Unsubscribe=One-Click")
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(!s.contact("alice").await.wants(OptionalMail::Statement));
}

impl Site {
    /// Waits until no links request is still being carried out; their
    /// outcomes.
    async fn settled_requests(&self) -> Vec<String> {
        wait_for(
            "links requests handled",
            Duration::from_secs(10),
            || async {
                let mut conn = self.app.db.conn().await.unwrap();
                let rows = link_requests::outcomes(&mut conn).await.unwrap();
                rows.iter()
                    .all(|(_, o)| o != "pending")
                    .then(|| rows.into_iter().map(|(_, o)| o).collect())
            },
        )
        .await
    }

    /// Asks for the links of `address` from `ip`.
    async fn ask(&self, address: &str, ip: [u8; 4]) -> Reply {
        self.ask_forwarded(address, ip, None).await
    }

    /// [`Site::ask`] through a proxy at `ip` that says it forwards for
    /// `forwarded_for`.
    async fn ask_forwarded(
        &self,
        address: &str,
        ip: [u8; 4],
        forwarded_for: Option<&str>,
    ) -> Reply {
        let form = self.get("/links", None).await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = hidden(&form.body, "csrf");
        let cookie = cookie_of(&form);
        let body = format!(
            "address={}&csrf={csrf}",
            address.replace('@', "%40").replace('+', "%2B")
        );
        self.send_forwarded(
            Method::POST,
            "/links",
            Some(&cookie),
            Some(&body),
            Some(ip),
            forwarded_for,
        )
        .await
    }

    async fn links_mails(&self) -> Vec<outbox::OutboxEntry> {
        self.outbox("my-links").await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_me_my_links_answers_alike_and_mails_only_a_known_address() {
    let s = site("").await;
    let known = s.ask(&s.addr("alice"), [10, 0, 0, 1]).await;
    let unknown = s
        .ask(&s.t.addr("nobody", "customer.test"), [10, 0, 0, 2])
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body, "byte for byte the same");
    assert_eq!(
        known.headers.get(header::SET_COOKIE),
        unknown.headers.get(header::SET_COOKIE)
    );
    assert!(!known.body.contains(&s.addr("alice")));
    assert_eq!(s.settled_requests().await, ["mailed", "unknown"]);

    let mails = s.links_mails().await;
    assert_eq!(mails.len(), 1, "nothing queued for the unknown address");
    assert_eq!(mails[0].recipients, vec![s.addr("alice")]);
    let text = mail_text(&s.raw(mails[0].id).await);
    let urls: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.contains("/l/"))
        .map(|u| s.path_of(u))
        .collect();
    let mut pages = Vec::new();
    for path in urls {
        let (cookie, page) = s.open(&path).await;
        let r = s.get(&page, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        pages.push(page);
    }
    pages.sort();
    // Alice is a primary contact: she manages her company's contacts too.
    assert_eq!(
        pages,
        ["/contacts", "/preferences", "/statement", "/tickets"]
    );

    // A malformed address is told so: that says nothing about anyone.
    let form = s.get("/links", None).await;
    let bad = s
        .send(
            Method::POST,
            "/links",
            Some(&cookie_of(&form)),
            Some(&format!(
                "address=not-an-address&csrf={}",
                hidden(&form.body, "csrf")
            )),
            Some([10, 0, 0, 3]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Without the CSRF cookie: refused.
    let forged = s
        .send(
            Method::POST,
            "/links",
            None,
            Some(&format!("address={}&csrf=00", s.addr("alice"))),
            Some([10, 0, 0, 3]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(s.links_mails().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_me_my_links_stops_after_the_per_address_limit() {
    let s = site("links_per_address_per_hour = 2\nlinks_per_ip_per_hour = 100").await;
    let first = s.ask(&s.addr("alice"), [10, 0, 1, 1]).await;
    for i in 2..=4u8 {
        // From other machines each time: the address is what counts.
        let again = s.ask(&s.addr("alice"), [10, 0, 1, i]).await;
        assert_eq!((again.status, &again.body), (first.status, &first.body));
    }
    assert_eq!(
        s.settled_requests().await,
        ["mailed", "mailed", "limited", "limited"]
    );
    assert_eq!(s.links_mails().await.len(), 2);
    // An unknown address over its limit: the same answer again.
    for _ in 0..3 {
        let r = s
            .ask(&s.t.addr("nobody", "customer.test"), [10, 0, 1, 9])
            .await;
        assert_eq!(r.body, first.body);
    }
    // An hour later the address may ask again.
    s.clock.advance(Duration::from_secs(3_601));
    s.ask(&s.addr("alice"), [10, 0, 1, 1]).await;
    s.settled_requests().await;
    assert_eq!(s.links_mails().await.len(), 3);
    // Requests are kept a day, no longer.
    s.clock.advance(Duration::from_secs(25 * 3_600));
    s.ask(&s.addr("alice"), [10, 0, 1, 1]).await;
    assert_eq!(s.settled_requests().await, ["mailed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted_and_recorded() {
    let s =
        site("links_per_ip_per_hour = 1\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]").await;
    let proxy = [127, 0, 0, 1];
    // Two people behind the same proxy: each has their own limit.
    s.ask_forwarded(&s.addr("alice"), proxy, Some("203.0.113.5"))
        .await;
    s.ask_forwarded(&s.addr("bob"), proxy, Some("198.51.100.6, 10.0.0.2"))
        .await;
    // A client naming another address left of its own changes nothing.
    s.ask_forwarded(&s.addr("carol"), proxy, Some("198.51.100.99, 203.0.113.5"))
        .await;
    // A machine that is no trusted proxy cannot forward for anyone.
    s.ask_forwarded(&s.addr("carol"), [192, 0, 2, 50], Some("198.51.100.77"))
        .await;
    assert_eq!(
        s.settled_requests().await,
        ["mailed", "mailed", "limited", "mailed"]
    );
    let rows = audit_rows(&s.app, |r| r.action == "links.request").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.remote_addr.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ok", Some("203.0.113.5")),
            ("ok", Some("198.51.100.6")),
            ("limited", Some("203.0.113.5")),
            ("ok", Some("192.0.2.50")),
        ],
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_a_forwarded_for_header_is_ignored() {
    let s = site("links_per_ip_per_hour = 1").await;
    s.ask_forwarded(&s.addr("alice"), [127, 0, 0, 1], Some("203.0.113.5"))
        .await;
    s.ask_forwarded(&s.addr("bob"), [127, 0, 0, 1], Some("198.51.100.6"))
        .await;
    assert_eq!(s.settled_requests().await, ["mailed", "limited"]);
    let rows = audit_rows(&s.app, |r| r.action == "links.request").await;
    let from: Vec<_> = rows.iter().map(|r| r.remote_addr.as_deref()).collect();
    assert_eq!(from, [Some("127.0.0.1"), Some("127.0.0.1")], "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_me_my_links_stops_after_the_per_ip_limit() {
    let s = site("links_per_ip_per_hour = 2").await;
    let ip = [192, 0, 2, 7];
    let first = s.ask(&s.addr("alice"), ip).await;
    let second = s.ask(&s.addr("bob"), ip).await;
    let third = s.ask(&s.addr("carol"), ip).await;
    assert_eq!(first.body, second.body);
    assert_eq!(first.body, third.body);
    assert_eq!(s.settled_requests().await, ["mailed", "mailed", "limited"]);
    let mut to: Vec<_> = s
        .links_mails()
        .await
        .into_iter()
        .flat_map(|m| m.recipients)
        .collect();
    to.sort();
    let mut want = vec![s.addr("alice"), s.addr("bob")];
    want.sort();
    assert_eq!(to, want);
    // Carol from another machine is fine.
    s.ask(&s.addr("carol"), [192, 0, 2, 8]).await;
    s.settled_requests().await;
    assert_eq!(s.links_mails().await.len(), 3);

    // The audit log has each request, by nobody known, from where, limited
    // or not — and no address.
    let rows = audit_rows(&s.app, |r| r.action == "links.request").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.actor_kind.as_str(),
                r.outcome.as_str(),
                r.remote_addr.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anonymous", "ok", Some("192.0.2.7")),
            ("anonymous", "ok", Some("192.0.2.7")),
            ("anonymous", "limited", Some("192.0.2.7")),
            ("anonymous", "ok", Some("192.0.2.8")),
        ],
        "{rows:?}"
    );
    let everything = format!("{rows:?}");
    for name in ["alice", "bob", "carol"] {
        assert!(!everything.contains(&s.addr(name)), "{everything}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_preferences_link_says_how_to_get_a_fresh_one() {
    let s = site("").await;
    let link = s.link("alice", LinkPurpose::Preferences).await;
    let (cookie, _) = s.open(&link).await;
    s.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
    let statement = s.outbox("monthly-statement").await;
    let alices = statement
        .iter()
        .find(|m| m.recipients == vec![s.addr("alice")])
        .unwrap();
    let one_click = s.path_of(&unsubscribe_url(&s.raw(alices.id).await));

    // Deactivation (or an address change) bumps the link generation.
    let alice = s.contact("alice").await;
    {
        let mut conn = s.app.db.conn().await.unwrap();
        contacts::bump_link_generation(&mut conn, alice.id)
            .await
            .unwrap();
    }
    for page in [
        s.get(&link, None).await,
        s.get("/preferences", Some(&cookie)).await,
        s.post(&one_click, None, "List-Unsubscribe=One-Click").await,
    ] {
        assert_eq!(page.status, StatusCode::GONE, "{}", page.body);
        assert!(page.body.contains("no longer works"), "{}", page.body);
        assert!(page.body.contains("href=\"/links\""), "{}", page.body);
    }
    assert!(
        s.contact("alice").await.wants(OptionalMail::Statement),
        "a revoked link unsubscribes nobody"
    );
    // Anything not genuine stays a plain "not found".
    let old_statement = link.replace("/l/", "/l/x");
    assert_eq!(
        s.get(&old_statement, None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A request from `from` to the support address with `cc`.
fn request_with_cc(from: &str, to: &str, cc: &str, subject: &str, mid: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nPlease help.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_mail_to_one_contact_carries_their_links_and_to_several_none() {
    let s = site("").await;
    let (bob, alice, carol) = (s.addr("bob"), s.addr("alice"), s.addr("carol"));
    let stranger = s.t.addr("stranger", "sink.test");
    let tag = &s.t.tag;
    // Bob alone; Alice with Carol in Cc; someone no client knows.
    for raw in [
        simple_mail(
            &bob,
            &s.t.support,
            "Bob's printer",
            &format!("b-{tag}@x"),
            "Jams.",
        ),
        request_with_cc(
            &alice,
            &s.t.support,
            &carol,
            "Shared drive",
            &format!("a-{tag}@x"),
        ),
        simple_mail(
            &stranger,
            &s.t.support,
            "Stranger",
            &format!("s-{tag}@x"),
            "Hi.",
        ),
    ] {
        assert!(matches!(
            ingest(&s.app, &raw).await,
            postdesk::mail::ingest::Outcome::TicketCreated { .. }
        ));
    }
    s.send_outbox().await;
    let mail = s.t.mail.clone();
    let delivered = |who: String| {
        let mail = mail.clone();
        async move {
            wait_for("the acknowledgement", Duration::from_secs(20), || async {
                read_folder(&mail, &who, "INBOX").await.into_iter().next()
            })
            .await
        }
    };

    // Bob's acknowledgement, as delivered, carries his links, and they open
    // his pages: his tickets (with his ticket), his preferences; he is no
    // billing contact, so no statement.
    let text = mail_text(&delivered(bob.clone()).await);
    assert!(!text.contains("Your statement"), "{text}");
    let tickets = url_after(&text, "Your tickets: ");
    let prefs = url_after(&text, "Which mails you get: ");
    let (cookie, page) = s.open(&s.path_of(&tickets)).await;
    assert_eq!(page, "/tickets");
    let list = s.get("/tickets", Some(&cookie)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Bob&#x27;s printer") || list.body.contains("Bob's printer"));
    assert!(
        !list.body.contains("Shared drive"),
        "Alice's ticket is not Bob's"
    );
    let (cookie, page) = s.open(&s.path_of(&prefs)).await;
    assert_eq!(page, "/preferences");
    let prefs_page = s.get("/preferences", Some(&cookie)).await;
    assert_eq!(prefs_page.status, StatusCode::OK);
    // The links are Bob's: the preferences page they open is his.
    let bob_id = s.contact("bob").await.id;
    let opened = {
        let mut conn = s.app.db.conn().await.unwrap();
        postdesk::db::audit::link_opens_by_contact(&mut conn, bob_id)
            .await
            .unwrap()
    };
    assert_eq!(opened, 2, "both links were Bob's");

    // The ticket keeps the mail without the footer: others may read it.
    let mut conn = s.app.db.conn().await.unwrap();
    let shown = postdesk::db::tickets::show_ticket(
        &mut conn,
        &postdesk::domain::TicketNumber::parse("T-", "1001").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let ack = shown
        .messages
        .iter()
        .find(|m| m.kind == "acknowledgement")
        .expect("the acknowledgement on the ticket");
    assert!(!ack.text.contains("/l/"), "{}", ack.text);

    // One mail to Alice and Carol: neither gets links (they would be one
    // person's in the other's mailbox); the stranger is no client's contact.
    for who in [alice, carol, stranger] {
        let text = mail_text(&delivered(who).await);
        assert!(!text.contains("Your links"), "{text}");
        assert!(!text.contains("/l/"), "{text}");
    }
}

/// The invoice reminders queued after `after_id`, by recipient.
async fn reminders_after(s: &Site, after_id: i64) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut out = Vec::new();
    for m in s.outbox("invoice-reminder").await {
        if m.id > after_id {
            out.push((m.recipients.clone(), s.raw(m.id).await));
        }
    }
    out.sort();
    out
}

/// The preferences page of `name`, as their link opens it.
async fn preferences_page(s: &Site, name: &str) -> String {
    let (cookie, page) = s.open(&s.link(name, LinkPurpose::Preferences).await).await;
    assert_eq!(page, "/preferences");
    let shown = s.get("/preferences", Some(&cookie)).await;
    assert_eq!(shown.status, StatusCode::OK);
    shown.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_the_operator_made_optional_can_be_declined_by_those_it_is_for() {
    let s = site_with("", "[schedules]\noptional_reminders = [\"dunning\"]\n").await;
    let invoice = format!("INV-{}-1", s.t.tag);
    postdesk::billing::send_invoice(&s.app, &invoice)
        .await
        .unwrap();
    // Due 2026-11-16: the +7 stage has come.
    s.pass(JobKind::Dunning, "2026-11-23T09:30:00Z").await;
    let first = reminders_after(&s, 0).await;
    let (alice, carol) = (s.addr("alice"), s.addr("carol"));
    let to: Vec<_> = first.iter().map(|(to, _)| to.clone()).collect();
    assert_eq!(to, [vec![alice.clone()], vec![carol.clone()]]);
    let url = unsubscribe_url(&first[0].1);
    assert!(
        s.path_of(&url).starts_with("/unsubscribe/dunning/"),
        "{url}"
    );
    assert_eq!(
        header(&first[0].1, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // The preferences page offers it to whom it goes (Alice: billing), not
    // to Bob (standard); reminders the operator did not mark stay off it.
    let alices = preferences_page(&s, "alice").await;
    assert!(alices.contains("name=\"dunning\" checked"), "{alices}");
    assert!(!alices.contains("name=\"expiry\""), "{alices}");
    assert!(!alices.contains("name=\"card-expiry\""), "{alices}");
    let bobs = preferences_page(&s, "bob").await;
    assert!(!bobs.contains("name=\"dunning\""), "{bobs}");

    // Alice leaves by one click; the next stage reaches Carol only.
    let done = s
        .post(&s.path_of(&url), None, "List-Unsubscribe=One-Click")
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("invoices that are due or overdue"));
    assert!(!s.contact("alice").await.wants(OptionalMail::Dunning));
    assert!(s.contact("alice").await.wants(OptionalMail::Statement));
    let last = newest_reminder_id(&s).await;
    s.pass(JobKind::Dunning, "2026-11-30T09:30:00Z").await;
    let second = reminders_after(&s, last).await;
    let to: Vec<_> = second.iter().map(|(to, _)| to.clone()).collect();
    assert_eq!(to, [vec![carol]]);
    let alices = preferences_page(&s, "alice").await;
    assert!(
        alices.contains("name=\"dunning\">"),
        "unticked now: {alices}"
    );
}

async fn newest_reminder_id(s: &Site) -> i64 {
    s.outbox("invoice-reminder")
        .await
        .iter()
        .map(|m| m.id)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_not_made_optional_reaches_everyone_it_is_for() {
    let s = site("").await;
    // Alice's switch is off (as from a time the operator had it optional).
    let alice_id = s.contact("alice").await.id;
    {
        let mut conn = s.app.db.conn().await.unwrap();
        assert!(
            postdesk::db::preferences::unsubscribe(&mut conn, alice_id, OptionalMail::Dunning)
                .await
                .unwrap()
        );
    }
    postdesk::billing::send_invoice(&s.app, &format!("INV-{}-1", s.t.tag))
        .await
        .unwrap();
    s.pass(JobKind::Dunning, "2026-11-23T09:30:00Z").await;
    let sent = reminders_after(&s, 0).await;
    let to: Vec<_> = sent.iter().map(|(to, _)| to.clone()).collect();
    assert_eq!(to, [vec![s.addr("alice")], vec![s.addr("carol")]]);
    for (_, raw) in &sent {
        assert_eq!(header(raw, "List-Unsubscribe"), None);
        assert_eq!(header(raw, "List-Unsubscribe-Post"), None);
    }
    let alices = preferences_page(&s, "alice").await;
    assert!(!alices.contains("name=\"dunning\""), "{alices}");
    assert!(alices.contains("name=\"statement\""), "{alices}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_mail_from_the_mailto_stops_that_mail_and_opens_no_ticket() {
    let s = site("").await;
    s.pass(JobKind::Statement, "2026-12-01T07:30:00Z").await;
    s.send_outbox().await;
    let (alice, carol) = (s.addr("alice"), s.addr("carol"));
    let statement_of = |who: String| {
        let mail = s.t.mail.clone();
        async move {
            wait_for("the statement", Duration::from_secs(20), || async {
                read_folder(&mail, &who, "INBOX").await.into_iter().next()
            })
            .await
        }
    };
    let (address, subject) = unsubscribe_mailto(&statement_of(alice.clone()).await);
    let (support_local, support_domain) = s.t.support.split_once('@').unwrap();
    assert_eq!(
        address,
        format!("{support_local}+unsubscribe@{support_domain}")
    );
    assert!(subject.starts_with("unsubscribe statement "), "{subject}");
    let (carol_address, carol_subject) = unsubscribe_mailto(&statement_of(carol.clone()).await);
    assert_eq!(carol_address, address);

    // What a mail client sends for the mailto:, through Postfix into the
    // support mailbox; and Carol's with a forged token (its last
    // character changed), which must change nothing.
    let tag = &s.t.tag;
    let unsubscribe_mail = |from: &str, subject: &str, id: &str| {
        format!(
            "From: {from}\r\nTo: {address}\r\nSubject: {subject}\r\nMessage-ID: <{id}-{tag}@customer.test>\r\n\
Date: Tue, 01 Dec 2026 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
This message was automatically generated to unsubscribe.\r\n"
        )
        .into_bytes()
    };
    let mut forged = carol_subject.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    send_mail(
        &s.t.mail,
        &alice,
        &[&address],
        &unsubscribe_mail(&alice, &subject, "unsub-a"),
    )
    .await;
    send_mail(
        &s.t.mail,
        &carol,
        &[&carol_address],
        &unsubscribe_mail(&carol, &forged, "unsub-c"),
    )
    .await;

    let daemon = RunningDaemon::start(s.app.clone());
    let mail = s.t.mail.clone();
    let support = s.t.support.clone();
    wait_for("both mails processed", Duration::from_secs(30), || async {
        (read_folder(&mail, &support, "Processed").await.len() == 2).then_some(())
    })
    .await;
    daemon.stop().await;

    let alice_now = s.contact("alice").await;
    assert!(!alice_now.wants(OptionalMail::Statement));
    assert!(alice_now.wants(OptionalMail::Report), "only that kind");
    assert!(s.contact("carol").await.wants(OptionalMail::Statement));
    // No ticket, nothing answered.
    assert!(ticket_subjects(&s.app).await.is_empty());
    assert!(s.outbox("acknowledgement").await.is_empty());
    // The audit log says who and how; no address or token in it.
    let rows = audit_rows(&s.app, |_| true).await;
    let by_mail: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "preferences.unsubscribe")
        .collect();
    assert_eq!(by_mail.len(), 1, "{rows:?}");
    assert_eq!(by_mail[0].actor_id, Some(alice_now.id.to_string()));
    assert_eq!(
        by_mail[0].resource.as_deref(),
        Some("preferences:statement")
    );
    assert_eq!(
        by_mail[0].detail.as_ref().and_then(|d| d.get("via")),
        Some(&serde_json::json!("mail"))
    );
    let token = subject.rsplit(' ').next().unwrap();
    let everything = format!("{rows:?}");
    assert!(!everything.contains(token));
    assert!(!everything.contains(&alice));
}
