//! The client's ticket, tickets and contacts pages (issue 7, parts 1-3), on
//! the backend under test: who sees what by contact type (no URL or id
//! guess shows a colleague's ticket, attachment or CSV line, nor anything of
//! another client), deactivation killing every old link, address changes
//! that wait for their confirmation, a reply with a photo posted on the
//! ticket page landing exactly like an emailed one, close and reopen, and
//! mail HTML shown without anything that runs or fetches.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use common::*;
use postdesk::app::App;
use postdesk::clock::{Clock, ManualClock, SharedClock};
use postdesk::config::Config;
use postdesk::db::contacts::{self, Contact};
use postdesk::db::{outbox, tickets};
use postdesk::domain::{EmailAddress, TicketNumber};
use postdesk::links::issue::ContactLinks;
use postdesk::links::{link_for, sign, IssueError, LinkClaims, LinkPurpose};
use postdesk::mail::ingest::Outcome;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const START: &str = "2026-11-20T10:00:00Z";

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// A PNG-looking file (the bytes are what matters: they must round-trip).
fn photo() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
    bytes
}

struct Site {
    t: TestEnv,
    app: App,
    clock: ManualClock,
    router: Router,
    /// Ticket numbers: Bob's, Carol's (both of the customer), Olga's (of
    /// another client).
    bob_ticket: String,
    carol_ticket: String,
    olga_ticket: String,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A mail with `body` and, when given, a PNG attachment.
fn mail(from: &str, to: &str, subject: &str, mid: &str, body: &str, png: Option<&[u8]>) -> Vec<u8> {
    let Some(png) = png else {
        return simple_mail(from, to, subject, mid, body);
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\
Date: Fri, 20 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b1\r\n\
Content-Type: image/png\r\nContent-Disposition: attachment; filename=\"screen.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// A customer with Alice (primary), Tom (technical), Bob and Carol
/// (standard); another client with Olga (primary). Bob, Carol and Olga
/// each opened a ticket with a screenshot; `extra` goes at the end of the
/// config.
async fn site(extra: &str) -> Site {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(ms(START));
    let shared: SharedClock = Arc::new(clock.clone());
    let config =
        Config::from_toml_with_env(&t.config_toml(extra), "test.toml", &Default::default())
            .unwrap();
    let app = App::open(config, shared).await.unwrap();
    let json = format!(
        r#"{{"clients":[
          {{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
            {{"name":"Alice","email":"{alice}","types":["primary"]}},
            {{"name":"Tom","email":"{tom}","types":["technical"]}},
            {{"name":"Bob","email":"{bob}","types":[]}},
            {{"name":"Carol","email":"{carol}","types":[]}}]}},
          {{"name":"Other {tag}","domains":["other-{tag}.test"],"contacts":[
            {{"name":"Olga","email":"{olga}","types":["primary"]}}]}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
        tom = t.addr("tom", "customer.test"),
        bob = t.addr("bob", "customer.test"),
        carol = t.addr("carol", "customer.test"),
        olga = t.addr("olga", &format!("other-{}.test", t.tag)),
    );
    let data = postdesk::import::parse(&json, "test.json").unwrap();
    postdesk::import::import(&app.db, &data, "test.json", clock.now_millis())
        .await
        .unwrap();
    let mut numbers = Vec::new();
    for (who, domain) in [
        ("bob", "customer.test".to_string()),
        ("carol", "customer.test".to_string()),
        ("olga", format!("other-{}.test", t.tag)),
    ] {
        let raw = mail(
            &t.addr(who, &domain),
            &t.support,
            &format!("Printer of {who} is broken"),
            &format!("{who}-{}@customer.test", t.tag),
            &format!("Hello, the printer of {who} jams."),
            Some(&photo()),
        );
        match ingest(&app, &raw).await {
            Outcome::TicketCreated { ticket } => numbers.push(ticket),
            other => panic!("{who}: {other:?}"),
        }
    }
    Site {
        router: postdesk::web::router(app.clone()),
        t,
        app,
        clock,
        olga_ticket: numbers.pop().unwrap(),
        carol_ticket: numbers.pop().unwrap(),
        bob_ticket: numbers.pop().unwrap(),
    }
}

impl Site {
    fn addr(&self, name: &str) -> String {
        if name == "olga" {
            return self.t.addr("olga", &format!("other-{}.test", self.t.tag));
        }
        self.t.addr(name, "customer.test")
    }

    async fn contact(&self, name: &str) -> Contact {
        self.contact_by_id(self.contact_id(name).await).await
    }

    async fn contact_id(&self, name: &str) -> i64 {
        let mut conn = self.app.db.conn().await.unwrap();
        contacts::find_contact_by_email(&mut conn, &EmailAddress::parse(&self.addr(name)).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} is a contact"))
            .id
    }

    async fn contact_by_id(&self, id: i64) -> Contact {
        let mut conn = self.app.db.conn().await.unwrap();
        contacts::find_contact_by_id(&mut conn, id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn try_link(
        &self,
        name: &str,
        purpose: LinkPurpose,
        number: Option<&str>,
    ) -> Result<String, IssueError> {
        link_for(
            &self.app.db,
            &self.app.config,
            purpose,
            number,
            &EmailAddress::parse(&self.addr(name)).unwrap(),
            self.clock.now_millis() / 1000,
        )
        .await
        .map(|url| self.path_of(&url))
    }

    /// Path of a fresh link of `name`'s.
    async fn link(&self, name: &str, purpose: LinkPurpose, number: Option<&str>) -> String {
        self.try_link(name, purpose, number).await.unwrap()
    }

    /// A token signed with the site's key, as if an older rule had allowed
    /// it: the pages must check again.
    async fn forged(&self, name: &str, purpose: LinkPurpose, resource: &str) -> String {
        let c = self.contact(name).await;
        sign(
            &self.app.config.link_keys,
            &LinkClaims {
                purpose,
                resource: resource.to_string(),
                contact_id: c.id,
                generation: c.link_generation,
                expires_at: self.clock.now_millis() / 1000 + 3600,
            },
        )
        .unwrap()
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
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.send(Method::GET, path, cookie, None, Vec::new()).await
    }

    async fn post(&self, path: &str, cookie: &str, form: &str) -> Reply {
        self.send(
            Method::POST,
            path,
            Some(cookie),
            Some("application/x-www-form-urlencoded"),
            form.as_bytes().to_vec(),
        )
        .await
    }

    /// Opens a link path: the cookie (`name=value`) it sets and where it leads.
    async fn open(&self, path: &str) -> (String, String) {
        let r = self.get(path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.text());
        (cookie_of(&r), location(&r))
    }

    /// Opens `name`'s link and loads its page: (cookies for its forms, page).
    async fn page(
        &self,
        name: &str,
        purpose: LinkPurpose,
        number: Option<&str>,
    ) -> (String, Reply) {
        let (cookie, at) = self.open(&self.link(name, purpose, number).await).await;
        let page = self.get(&at, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{at}: {}", page.text());
        // Pages with forms also set their CSRF cookie.
        match page.headers.get(header::SET_COOKIE) {
            Some(_) => (format!("{cookie}; {}", cookie_of(&page)), page),
            None => (cookie, page),
        }
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

    async fn detail(&self, number: &str) -> tickets::TicketDetail {
        let mut conn = self.app.db.conn().await.unwrap();
        tickets::show_ticket(&mut conn, &TicketNumber::parse("T-", number).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// The messages that came in on ticket `number` (not the mail we sent).
    async fn inbound(&self, number: &str) -> Vec<tickets::MessageView> {
        self.detail(number)
            .await
            .messages
            .into_iter()
            .filter(|m| m.direction == "in")
            .collect()
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

/// The attachment URLs (paths) on a ticket page.
fn file_paths(page: &str) -> Vec<String> {
    regex::Regex::new(r#"http://127\.0\.0\.1:8080(/ticket/[A-Za-z0-9-]+/files/[A-Za-z0-9_.~-]+)"#)
        .unwrap()
        .captures_iter(page)
        .map(|c| c[1].to_string())
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_contact_sees_only_their_own_tickets_through_every_url() {
    let s = site("").await;
    let (bob_t, carol_t, olga_t) = (&s.bob_ticket, &s.carol_ticket, &s.olga_ticket);

    // Bob's own ticket: the page and its screenshot.
    let (bob_cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(bob_t)).await;
    let html = page.text();
    assert!(html.contains("Printer of bob is broken"), "{html}");
    let files = file_paths(&html);
    assert_eq!(files.len(), 1, "{html}");
    let got = s.get(&files[0], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(sha256(&got.body), sha256(&photo()));
    // "All your tickets" opens his list through a fresh tickets link.
    let back = regex::Regex::new(r#"href="(/l/[^"]+)">All your tickets"#)
        .unwrap()
        .captures(&html)
        .unwrap_or_else(|| panic!("a link back to the list in {html}"))[1]
        .to_string();
    assert_eq!(s.open(&back).await.1, "/tickets");

    // A colleague's ticket: no link is issued, and no guessed URL opens it.
    assert!(matches!(
        s.try_link("bob", LinkPurpose::Ticket, Some(carol_t)).await,
        Err(IssueError::NotTheirs(..))
    ));
    let guessed = s
        .get(&format!("/ticket/{carol_t}"), Some(&bob_cookie))
        .await;
    assert_eq!(guessed.status, StatusCode::NOT_FOUND);
    // A genuine signature for a ticket that is not his (as an older rule or
    // a changed type might have left): the page checks again.
    let forged = s.forged("bob", LinkPurpose::Ticket, carol_t).await;
    let (cookie, at) = s.open(&format!("/l/{forged}")).await;
    assert_eq!(
        s.get(&at, Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    // Carol's screenshot: Bob's file URL under her ticket's path, and an
    // attachment token of Bob's naming her file.
    let bob_token = files[0].rsplit('/').next().unwrap();
    let moved = format!("/ticket/{carol_t}/files/{bob_token}");
    assert_eq!(s.get(&moved, None).await.status, StatusCode::NOT_FOUND);
    let (carol_cookie, carol_page) = s.page("carol", LinkPurpose::Ticket, Some(carol_t)).await;
    drop(carol_cookie);
    let carol_file = file_paths(&carol_page.text()).remove(0);
    let carol_file_id = {
        let token = carol_file.rsplit('/').next().unwrap();
        postdesk::links::verify(&s.app.config.link_keys, token, s.clock.now_millis() / 1000)
            .unwrap()
            .resource
    };
    let forged_file = s
        .forged("bob", LinkPurpose::Attachment, &carol_file_id)
        .await;
    for path in [
        format!("/ticket/{carol_t}/files/{forged_file}"),
        format!("/ticket/{bob_t}/files/{forged_file}"),
    ] {
        assert_eq!(
            s.get(&path, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Attachment tokens are not links.
    assert_eq!(
        s.get(&format!("/l/{bob_token}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    // Each download is a link open in the audit log: Bob's by Bob (the
    // token's contact, with no link cookie sent), with the file's id; the
    // moved and forged ones refused.
    let downloads = audit_rows(&s.app, |r| r.action == "ticket.file").await;
    let seen: Vec<_> = downloads
        .iter()
        .map(|r| (r.kind.as_str(), r.outcome.as_str(), r.resource.as_deref()))
        .collect();
    let bob_resource = format!("ticket:{bob_t}");
    let carol_resource = format!("ticket:{carol_t}");
    assert_eq!(
        seen,
        [
            ("link_open", "ok", Some(bob_resource.as_str())),
            ("link_open", "denied", Some(carol_resource.as_str())),
            ("link_open", "denied", Some(carol_resource.as_str())),
            ("link_open", "denied", Some(bob_resource.as_str())),
        ],
        "{downloads:?}"
    );
    let bob_id = s.contact_id("bob").await.to_string();
    assert_eq!(downloads[0].actor_id.as_deref(), Some(bob_id.as_str()));
    assert!(
        downloads[0]
            .detail
            .as_ref()
            .and_then(|d| d["attachment"].as_i64())
            .is_some(),
        "{downloads:?}"
    );

    // The tickets list and its CSV: Bob's only.
    let (tickets_cookie, list) = s.page("bob", LinkPurpose::Tickets, None).await;
    let list = list.text();
    assert!(list.contains(bob_t.as_str()), "{list}");
    assert!(
        !list.contains(carol_t.as_str()) && !list.contains(olga_t.as_str()),
        "{list}"
    );
    let csv = s.get("/tickets/export.csv", Some(&tickets_cookie)).await;
    assert_eq!(csv.status, StatusCode::OK);
    let csv = csv.text();
    assert!(csv.contains(bob_t.as_str()), "{csv}");
    assert!(
        !csv.contains(carol_t.as_str()) && !csv.contains(olga_t.as_str()),
        "{csv}"
    );

    // A technical contact sees all of the client's, nothing of the other's.
    let (tom_cookie, tom_list) = s.page("tom", LinkPurpose::Tickets, None).await;
    let tom_list = tom_list.text();
    assert!(tom_list.contains(bob_t.as_str()) && tom_list.contains(carol_t.as_str()));
    assert!(!tom_list.contains(olga_t.as_str()), "{tom_list}");
    let tom_csv = s.get("/tickets/export.csv", Some(&tom_cookie)).await.text();
    assert!(tom_csv.contains(carol_t.as_str()) && !tom_csv.contains(olga_t.as_str()));
    // Search and filter.
    let searched = s
        .get("/tickets?q=of+carol&status=", Some(&tom_cookie))
        .await
        .text();
    assert!(searched.contains(carol_t.as_str()) && !searched.contains(bob_t.as_str()));
    let closed = s
        .get("/tickets?status=closed", Some(&tom_cookie))
        .await
        .text();
    assert!(!closed.contains(carol_t.as_str()), "{closed}");
    let (_, tom_sees_carol) = s.page("tom", LinkPurpose::Ticket, Some(carol_t)).await;
    assert!(tom_sees_carol.text().contains("Printer of carol"));

    // Another client's primary contact sees nothing of this client.
    assert!(s
        .try_link("olga", LinkPurpose::Ticket, Some(bob_t))
        .await
        .is_err());
    let forged = s.forged("olga", LinkPurpose::Ticket, bob_t).await;
    let (cookie, at) = s.open(&format!("/l/{forged}")).await;
    assert_eq!(
        s.get(&at, Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    let olga_file = s
        .forged("olga", LinkPurpose::Attachment, &carol_file_id)
        .await;
    assert_eq!(
        s.get(&format!("/ticket/{carol_t}/files/{olga_file}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (olga_cookie, olga_list) = s.page("olga", LinkPurpose::Tickets, None).await;
    let olga_list = olga_list.text();
    assert!(olga_list.contains(olga_t.as_str()), "{olga_list}");
    assert!(!olga_list.contains(bob_t.as_str()) && !olga_list.contains(carol_t.as_str()));
    let olga_csv = s
        .get("/tickets/export.csv", Some(&olga_cookie))
        .await
        .text();
    assert!(!olga_csv.contains(bob_t.as_str()), "{olga_csv}");

    // The contacts page: not for standard contacts — no link is issued,
    // and a token signed anyway opens nothing.
    assert!(matches!(
        s.try_link("bob", LinkPurpose::Contacts, None).await,
        Err(IssueError::WrongContactType(_))
    ));
    let token = s.forged("bob", LinkPurpose::Contacts, "").await;
    assert_eq!(
        s.get(&format!("/l/{token}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let (_, contacts) = s.page("tom", LinkPurpose::Contacts, None).await;
    let contacts = contacts.text();
    assert!(contacts.contains(&s.addr("carol")), "{contacts}");
    assert!(!contacts.contains(&s.addr("olga")), "{contacts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_contacts_old_links_all_fail() {
    let s = site("").await;
    let bob_t = s.bob_ticket.clone();
    let ticket_link = s.link("bob", LinkPurpose::Ticket, Some(&bob_t)).await;
    let (ticket_cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(&bob_t)).await;
    let file = file_paths(&page.text()).remove(0);
    let (tickets_cookie, _) = s.page("bob", LinkPurpose::Tickets, None).await;
    // Bob is made technical for a moment, so he holds a contacts link too.
    let (alice, contacts) = s.page("alice", LinkPurpose::Contacts, None).await;
    let csrf = hidden(&contacts.text(), "csrf");
    let bob_id = s.contact_id("bob").await;
    let r = s
        .post(
            &format!("/contacts/{bob_id}/types"),
            &alice,
            &format!("csrf={csrf}&technical=on"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(s.contact("bob").await.types.technical);
    let (contacts_cookie, _) = s.page("bob", LinkPurpose::Contacts, None).await;

    // Alice deactivates Bob.
    let r = s
        .post(
            &format!("/contacts/{bob_id}/deactivate"),
            &alice,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!s.contact_by_id(bob_id).await.active);

    for (what, path, cookie) in [
        (
            "ticket",
            format!("/ticket/{bob_t}"),
            Some(ticket_cookie.as_str()),
        ),
        (
            "tickets",
            "/tickets".to_string(),
            Some(tickets_cookie.as_str()),
        ),
        (
            "csv",
            "/tickets/export.csv".to_string(),
            Some(tickets_cookie.as_str()),
        ),
        (
            "contacts",
            "/contacts".to_string(),
            Some(contacts_cookie.as_str()),
        ),
        ("attachment", file.clone(), None),
        ("link", ticket_link.clone(), None),
    ] {
        let r = s.get(&path, cookie).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text());
    }
    // Nor does a reply through the old page get in.
    let r = s
        .post(
            &format!("/ticket/{bob_t}/state"),
            &ticket_cookie,
            "csrf=x&action=close",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(s.try_link("bob", LinkPurpose::Tickets, None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_removes_the_last_primary_contact_or_locks_themselves_out() {
    let s = site("").await;
    // Those who manage contacts find the page among their links; others don't.
    let now = s.clock.now_millis() / 1000;
    for (name, manages) in [("alice", true), ("tom", true), ("bob", false)] {
        let links = ContactLinks::of(&s.app.config, &s.contact(name).await, now).unwrap();
        assert_eq!(links.contacts.is_some(), manages, "{name}");
        if let Some(url) = links.contacts {
            let (cookie, at) = s.open(&s.path_of(&url)).await;
            assert_eq!(s.get(&at, Some(&cookie)).await.status, StatusCode::OK);
        }
    }
    let (alice, page) = s.page("alice", LinkPurpose::Contacts, None).await;
    let csrf = hidden(&page.text(), "csrf");
    let alice_id = s.contact_id("alice").await;
    // Alice cannot deactivate herself, nor drop her own right to manage.
    let r = s
        .post(
            &format!("/contacts/{alice_id}/deactivate"),
            &alice,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.text().contains("cannot deactivate yourself"),
        "{}",
        r.text()
    );
    let r = s
        .post(
            &format!("/contacts/{alice_id}/types"),
            &alice,
            &format!("csrf={csrf}&billing=on"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(s.contact("alice").await.types.primary);

    // Tom (technical) can neither deactivate nor demote the last primary.
    let (tom, page) = s.page("tom", LinkPurpose::Contacts, None).await;
    let tom_csrf = hidden(&page.text(), "csrf");
    for (path, form) in [
        (
            format!("/contacts/{alice_id}/deactivate"),
            format!("csrf={tom_csrf}"),
        ),
        (
            format!("/contacts/{alice_id}/types"),
            format!("csrf={tom_csrf}&technical=on"),
        ),
    ] {
        let r = s.post(&path, &tom, &form).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.text());
        assert!(r.text().contains("last primary contact"), "{}", r.text());
    }
    let alice_now = s.contact("alice").await;
    assert!(alice_now.active && alice_now.types.primary);

    // With a second primary, Tom may deactivate Alice; a wrong CSRF value
    // or another client's contact changes nothing.
    let r = s
        .post(
            "/contacts/add",
            &tom,
            &format!(
                "csrf={tom_csrf}&name=Pat&email={}&primary=on",
                s.addr("pat")
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let pat = s.contact("pat").await;
    assert!(pat.types.primary && pat.active);
    assert_eq!(pat.client_id, s.contact("alice").await.client_id);
    let r = s
        .post(
            "/contacts/add",
            &tom,
            &format!("csrf={tom_csrf}&email={}", s.addr("olga")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "an address in use: {}",
        r.text()
    );
    let olga_id = s.contact_id("olga").await;
    let r = s
        .post(
            &format!("/contacts/{olga_id}/deactivate"),
            &tom,
            &format!("csrf={tom_csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(s.contact("olga").await.active);
    let r = s
        .post(
            &format!("/contacts/{alice_id}/deactivate"),
            &tom,
            "csrf=wrong",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(s.contact("alice").await.active);
    let r = s
        .post(
            &format!("/contacts/{alice_id}/deactivate"),
            &tom,
            &format!("csrf={tom_csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!s.contact("alice").await.active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_change_takes_effect_only_after_confirmation() {
    let s = site("").await;
    let bob_id = s.contact_id("bob").await;
    let old = s.addr("bob");
    let new = s.t.addr("robert", "customer.test");
    let (bob_cookie, _) = s
        .page("bob", LinkPurpose::Ticket, Some(&s.bob_ticket))
        .await;
    let (alice, page) = s.page("alice", LinkPurpose::Contacts, None).await;
    let csrf = hidden(&page.text(), "csrf");
    let r = s
        .post(
            &format!("/contacts/{bob_id}/address"),
            &alice,
            &format!("csrf={csrf}&email={new}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

    // Asked, not done: the old address and its links still work.
    assert_eq!(s.contact_by_id(bob_id).await.email, old);
    let still = s
        .get(&format!("/ticket/{}", s.bob_ticket), Some(&bob_cookie))
        .await;
    assert_eq!(still.status, StatusCode::OK);
    let shown = s.get("/contacts", Some(&alice)).await.text();
    assert!(shown.contains("Waiting for confirmation"), "{shown}");
    // The confirmation went to the NEW address only.
    let mails = s.outbox("address-confirmation").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].recipients, vec![new.clone()]);
    let raw = {
        let mut conn = s.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, mails[0].id)
            .await
            .unwrap()
            .unwrap()
    };
    let text = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    let link = regex::Regex::new(r"http://127\.0\.0\.1:8080(/l/[A-Za-z0-9_.~-]+)")
        .unwrap()
        .captures(&text)
        .unwrap_or_else(|| panic!("a link in {text}"))[1]
        .to_string();

    // Opening the link (a mail scanner, too) changes nothing.
    let (cookie, at) = s.open(&link).await;
    assert!(at.starts_with("/address-change/"), "{at}");
    let confirm_page = s.get(&at, Some(&cookie)).await;
    assert_eq!(confirm_page.status, StatusCode::OK);
    assert_eq!(s.contact_by_id(bob_id).await.email, old);
    let page_csrf = cookie_of(&confirm_page);
    let both = format!("{cookie}; {page_csrf}");
    // A POST without the form's CSRF value changes nothing.
    assert_eq!(
        s.post(&at, &cookie, "csrf=guess").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.contact_by_id(bob_id).await.email, old);

    // Confirmed: the new address counts, every older link is dead.
    let form_csrf = hidden(&confirm_page.text(), "csrf");
    let done = s.post(&at, &both, &format!("csrf={form_csrf}")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(s.contact_by_id(bob_id).await.email, new);
    let dead = s
        .get(&format!("/ticket/{}", s.bob_ticket), Some(&bob_cookie))
        .await;
    assert_eq!(dead.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&link, None).await.status,
        StatusCode::NOT_FOUND,
        "used once"
    );
    // The new address's fresh links open Bob's tickets.
    let (_, list) = s.page("robert", LinkPurpose::Tickets, None).await;
    assert!(list.text().contains(s.bob_ticket.as_str()));

    // The OLD address is told, in a mail without links that does not name
    // the new address; only once.
    let told = s.outbox("address-changed").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].recipients, vec![old.clone()]);
    let raw = {
        let mut conn = s.app.db.conn().await.unwrap();
        outbox::raw_of(&mut conn, told[0].id)
            .await
            .unwrap()
            .unwrap()
    };
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = parsed.body_text(0).unwrap().to_string();
    let html = parsed.body_html(0).unwrap().to_string();
    assert!(text.contains("now goes to a new address"), "{text}");
    for part in [&text, &html] {
        assert!(!part.contains("/l/") && !part.contains("http"), "{part}");
        assert!(!part.contains(&new), "{part}");
    }
    assert_eq!(s.outbox("address-confirmation").await.len(), 1);

    // The audit log has each post once: the request and the confirmation
    // with their changes, the refused confirmation from the page's layer;
    // no address in any of them.
    let alice_id = s.contact_id("alice").await;
    let rows = audit_rows(&s.app, |r| r.kind == "form_post").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.outcome.as_str(),
                r.actor_id.clone(),
                r.resource.clone(),
            )
        })
        .collect();
    let change_id = at.rsplit('/').next().unwrap();
    assert_eq!(
        seen,
        [
            (
                "contacts.change_address",
                "ok",
                Some(alice_id.to_string()),
                Some(format!("contact:{bob_id}"))
            ),
            (
                "contacts.confirm_address",
                "denied",
                Some(bob_id.to_string()),
                Some(format!("address_change:{change_id}"))
            ),
            (
                "contacts.confirm_address",
                "ok",
                Some(bob_id.to_string()),
                Some(format!("address_change:{change_id}"))
            ),
        ],
        "{rows:?}"
    );
    let everything = format!("{rows:?}");
    assert!(!everything.contains(&new) && !everything.contains(&old));
}

/// Builds a multipart/form-data body.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----postdesk-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (filename, content_type, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n\
Content-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_photo_on_the_ticket_page_lands_like_an_emailed_reply() {
    let s = site("").await;
    let number = s.bob_ticket.clone();
    let (cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(&number)).await;
    let csrf = hidden(&page.text(), "csrf");
    let notices_before = s.outbox("staff-notification").await.len();
    let messages_before = s.inbound(&number).await.len();
    let picture = photo();
    let (content_type, body) = multipart(
        &[("csrf", &csrf), ("text", "Here is a photo of the jam.")],
        &[("IMG_0042.png", "image/png", &picture)],
    );
    let post = |body: Vec<u8>| {
        let (s, cookie, content_type, number) =
            (&s, cookie.clone(), content_type.clone(), number.clone());
        async move {
            s.send(
                Method::POST,
                &format!("/ticket/{number}/reply"),
                Some(&cookie),
                Some(&content_type),
                body,
            )
            .await
        }
    };
    let r = post(body.clone()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(location(&r), format!("/ticket/{number}?done=reply"));

    // On the ticket: a public reply from Bob with the photo, byte for byte.
    let inbound = s.inbound(&number).await;
    assert_eq!(inbound.len(), messages_before + 1);
    let reply = inbound.last().unwrap();
    assert_eq!(
        (
            reply.direction.as_str(),
            reply.kind.as_str(),
            reply.visibility.as_str()
        ),
        ("in", "reply", "public")
    );
    assert_eq!(reply.from.as_deref(), Some(s.addr("bob").as_str()));
    assert!(
        reply.text.contains("Here is a photo of the jam."),
        "{}",
        reply.text
    );
    assert_eq!(reply.attachments.len(), 1);
    assert_eq!(reply.attachments[0].filename, "IMG_0042.png");
    assert_eq!(reply.attachments[0].sha256, sha256(&picture));
    // The staff are told, as for a mailed reply.
    assert_eq!(
        s.outbox("staff-notification").await.len(),
        notices_before + 1
    );
    // The page shows it first, and serves the photo back unchanged.
    let shown = s
        .get(&format!("/ticket/{number}"), Some(&cookie))
        .await
        .text();
    let first = shown.find("Here is a photo").expect("the reply is shown");
    assert!(
        first < shown.find("the printer of bob jams").unwrap(),
        "newest first"
    );
    let files = file_paths(&shown);
    assert_eq!(files.len(), 2, "{shown}");
    let served = s.get(&files[0], None).await;
    assert_eq!(sha256(&served.body), sha256(&picture));
    assert_eq!(
        served.headers.get(header::CONTENT_TYPE).unwrap(),
        "image/png"
    );

    // The same form posted again (a double click) is the same mail: once.
    let again = post(body).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(s.inbound(&number).await.len(), messages_before + 1);

    // The same reply by mail has the same outcome.
    let thread_id = s.detail(&number).await.messages[0]
        .message_id
        .clone()
        .unwrap();
    let emailed = format!(
        "From: {bob}\r\nTo: {support}\r\nSubject: Re: [{number}] Printer of bob is broken\r\n\
Message-ID: <mailed-{tag}@customer.test>\r\nIn-Reply-To: <{thread_id}>\r\n\
Date: Fri, 20 Nov 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nAnd by mail.\r\n",
        bob = s.addr("bob"),
        support = s.t.support,
        tag = s.t.tag,
    );
    let by_mail = ingest(&s.app, emailed.as_bytes()).await;
    assert_eq!(
        by_mail,
        Outcome::Added {
            ticket: number.clone(),
            kind: "reply".into()
        }
    );
    let by_mail = s.inbound(&number).await.last().unwrap().clone();
    assert_eq!(
        (by_mail.kind, by_mail.visibility),
        (reply.kind.clone(), reply.visibility.clone())
    );
    assert_eq!(
        s.outbox("staff-notification").await.len(),
        notices_before + 2
    );

    // An empty reply, or a forged form, adds nothing.
    let (ct, empty) = multipart(&[("csrf", &csrf), ("text", "  ")], &[]);
    let r = s
        .send(
            Method::POST,
            &format!("/ticket/{number}/reply"),
            Some(&cookie),
            Some(&ct),
            empty,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (ct, forged) = multipart(&[("csrf", "forged"), ("text", "x")], &[]);
    let r = s
        .send(
            Method::POST,
            &format!("/ticket/{number}/reply"),
            Some(&cookie),
            Some(&ct),
            forged,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.inbound(&number).await.len(), messages_before + 2);

    // Each post is in the audit log once: the applied reply with what it
    // came to (written with the mail), the double click, the empty and the
    // forged ones by the page's layer.
    let rows = audit_rows(&s.app, |r| r.action == "ticket.reply").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.detail.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ok", Some(serde_json::json!({ "outcome": "added" }))),
            ("ok", None),
            ("invalid", None),
            ("denied", None),
        ],
        "{rows:?}"
    );
    let bob = s.contact("bob").await;
    for r in &rows {
        assert_eq!(r.actor_id, Some(bob.id.to_string()));
        assert_eq!(
            r.resource.as_deref(),
            Some(format!("ticket:{number}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_size_limit_is_refused_with_the_limit() {
    let s = site("[limits]\nmax_message_mb = 1\n").await;
    let number = s.bob_ticket.clone();
    let (cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(&number)).await;
    let csrf = hidden(&page.text(), "csrf");
    let before = s.inbound(&number).await.len();
    let big = vec![7u8; 900 * 1024]; // under 1 MB raw, over it as base64
    let (ct, body) = multipart(
        &[("csrf", &csrf), ("text", "big")],
        &[("big.bin", "application/octet-stream", &big)],
    );
    let r = s
        .send(
            Method::POST,
            &format!("/ticket/{number}/reply"),
            Some(&cookie),
            Some(&ct),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.text().contains("larger than 1 MB"), "{}", r.text());
    let huge = vec![7u8; 2 * 1024 * 1024];
    let (ct, body) = multipart(
        &[("csrf", &csrf), ("text", "huge")],
        &[("huge.bin", "application/octet-stream", &huge)],
    );
    let r = s
        .send(
            Method::POST,
            &format!("/ticket/{number}/reply"),
            Some(&cookie),
            Some(&ct),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(s.inbound(&number).await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_and_reopening_on_the_page_tells_the_staff_and_the_client() {
    let s = site("").await;
    let number = s.bob_ticket.clone();
    let (cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(&number)).await;
    let csrf = hidden(&page.text(), "csrf");
    let staff_before = s.outbox("staff-notification").await.len();
    let r = s
        .post(
            &format!("/ticket/{number}/state"),
            &cookie,
            &format!("csrf={csrf}&action=close"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(s.detail(&number).await.ticket.status, "closed");
    assert_eq!(s.outbox("staff-notification").await.len(), staff_before + 1);
    let changed = s.outbox("status-changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].recipients, vec![s.addr("bob")]);
    let shown = s
        .get(&format!("/ticket/{number}"), Some(&cookie))
        .await
        .text();
    assert!(shown.contains("Reopen ticket"), "{shown}");

    // Within the reopen window it opens again; past it, a reply is needed.
    s.clock.set(ms(START) + 86_400_000);
    let r = s
        .post(
            &format!("/ticket/{number}/state"),
            &cookie,
            &format!("csrf={csrf}&action=reopen"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(s.detail(&number).await.ticket.status, "open");
    assert_eq!(s.outbox("staff-notification").await.len(), staff_before + 2);
    s.post(
        &format!("/ticket/{number}/state"),
        &cookie,
        &format!("csrf={csrf}&action=close"),
    )
    .await;
    let days = s.app.config.tickets.reopen_days as i64;
    s.clock.set(ms(START) + (days + 2) * 86_400_000);
    let late = s
        .post(
            &format!("/ticket/{number}/state"),
            &cookie,
            &format!("csrf={csrf}&action=reopen"),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
    assert_eq!(s.detail(&number).await.ticket.status, "closed");

    // Each post is in the audit log once: the changes with their
    // transaction, the refused reopen by the page's layer.
    let bob = s.contact("bob").await;
    let rows = audit_rows(&s.app, |r| {
        r.action.starts_with("ticket.") && r.kind == "form_post"
    })
    .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.outcome.as_str(),
                r.detail.as_ref().map(|d| d["changed"].clone()),
            )
        })
        .collect();
    let changed = |yes: bool| Some(serde_json::json!(yes));
    assert_eq!(
        seen,
        [
            ("ticket.close", "ok", changed(true)),
            ("ticket.reopen", "ok", changed(true)),
            ("ticket.close", "ok", changed(true)),
            ("ticket.reopen", "denied", None),
        ],
        "{rows:?}"
    );
    for r in &rows {
        assert_eq!(r.actor_id, Some(bob.id.to_string()));
        assert_eq!(r.client_id, bob.client_id);
        assert_eq!(
            r.resource.as_deref(),
            Some(format!("ticket:{number}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_no_internal_note_and_no_active_mail_html() {
    let s = site("[portal]\nshow_time_worked = true\n").await;
    let number = s.bob_ticket.clone();
    // A technician's internal note with time worked.
    let note = simple_mail(
        &s.t.staff,
        &s.t.support,
        &format!("Re: [{number}] Printer of bob is broken"),
        &format!("note-{}@msp.test", s.t.tag),
        "#note\n#time 1h30\nSecret: the printer is out of warranty.",
    );
    assert!(matches!(ingest(&s.app, &note).await, Outcome::Added { .. }));
    // A technician's public answer, with a command on top.
    let answer = simple_mail(
        &s.t.staff,
        &s.t.support,
        &format!("Re: [{number}] Printer of bob is broken"),
        &format!("answer-{}@msp.test", s.t.tag),
        "#status waiting-on-client\nWhich printer model is it?",
    );
    assert!(matches!(
        ingest(&s.app, &answer).await,
        Outcome::Added { .. }
    ));
    // A hostile HTML reply from Bob.
    let hostile = format!(
        "From: {bob}\r\nTo: {support}\r\nSubject: Re: [{number}] Printer of bob is broken\r\n\
Message-ID: <hostile-{tag}@customer.test>\r\nDate: Fri, 20 Nov 2026 11:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"h\"\r\n\r\n--h\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nLook at this\r\n--h\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><meta http-equiv=\"refresh\" content=\"0;url=https://evil.test/\">\
<script>alert(1)</script></head><body><p onmouseover=\"alert(2)\">Look at this</p>\
<img src=\"https://tracker.test/pixel.gif\" alt=\"\"><img src=x onerror=\"alert(3)\">\
<a href=\"javascript:alert(4)\">click</a><iframe src=\"https://evil.test/\"></iframe></body></html>\r\n--h--\r\n",
        bob = s.addr("bob"),
        support = s.t.support,
        tag = s.t.tag,
    );
    assert!(matches!(
        ingest(&s.app, hostile.as_bytes()).await,
        Outcome::Added { .. }
    ));

    let (_, page) = s.page("bob", LinkPurpose::Ticket, Some(&number)).await;
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("img-src 'self' data:"),
        "{csp}"
    );
    assert!(
        !csp.contains("https:") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = page.text();
    assert!(
        !html.contains("out of warranty"),
        "internal note shown: {html}"
    );
    assert!(html.contains("Look at this"));
    assert_eq!(
        html.matches("Which printer model is it?").count(),
        1,
        "the answer as the client got it, once: {html}"
    );
    assert!(!html.contains("#status"), "{html}");
    assert!(!html.contains("Reply above this line"), "{html}");
    for banned in [
        "<script",
        "onerror",
        "onmouseover",
        "tracker.test",
        "evil.test",
        "javascript:",
        "<iframe",
        "http-equiv",
    ] {
        assert!(!html.contains(banned), "{banned} in {html}");
    }
    assert!(
        html.contains("1 h 30 min"),
        "time worked shown when configured"
    );
    let (_, page) = {
        let plain = site("").await;
        let n = plain.bob_ticket.clone();
        plain.page("bob", LinkPurpose::Ticket, Some(&n)).await
    };
    assert!(!page.text().contains("Time worked"), "off by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_the_page_are_limited_per_contact_per_hour() {
    let s = site("[limits]\nportal_replies_per_hour = 2\n").await;
    let number = s.bob_ticket.clone();
    let post = |text: &'static str| {
        let s = &s;
        let number = number.clone();
        async move {
            // A fresh page for each: the form's value keys the reply.
            let (cookie, page) = s.page("bob", LinkPurpose::Ticket, Some(&number)).await;
            let csrf = hidden(&page.text(), "csrf");
            let (ct, body) = multipart(&[("csrf", &csrf), ("text", text)], &[]);
            s.send(
                Method::POST,
                &format!("/ticket/{number}/reply"),
                Some(&cookie),
                Some(&ct),
                body,
            )
            .await
        }
    };
    let before = s.inbound(&number).await.len();
    for text in ["First addition.", "Second addition."] {
        let r = post(text).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    }
    assert_eq!(s.inbound(&number).await.len(), before + 2);
    let told = s.outbox("staff-notification").await.len();

    let r = post("Third addition.").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("2 replies"), "{}", r.text());
    assert!(
        r.text().contains("reply to one of our mails"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.inbound(&number).await.len(),
        before + 2,
        "nothing ingested"
    );
    assert_eq!(s.outbox("staff-notification").await.len(), told);

    // Another contact is not held by Bob's limit (Alice, primary, sees it).
    let (cookie, page) = s.page("alice", LinkPurpose::Ticket, Some(&number)).await;
    let csrf = hidden(&page.text(), "csrf");
    let (ct, body) = multipart(&[("csrf", &csrf), ("text", "Alice adds.")], &[]);
    let r = s
        .send(
            Method::POST,
            &format!("/ticket/{number}/reply"),
            Some(&cookie),
            Some(&ct),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

    // An hour later Bob may post again.
    s.clock.set(s.clock.now_millis() + 3_600_001);
    let r = post("Fourth addition.").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(s.inbound(&number).await.len(), before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_and_payment_methods_open_for_billing_and_primary_contacts_only() {
    let s = site("").await;
    let pages = [
        (LinkPurpose::Statement, "/statement"),
        (LinkPurpose::PaymentMethods, "/payment-methods"),
    ];
    // Alice (primary) opens both.
    for (purpose, path) in pages {
        let (cookie, at) = s.open(&s.link("alice", purpose, None).await).await;
        assert_eq!(at, path);
        let page = s.get(path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text());
    }
    // No link is issued to Tom (technical) or Bob (standard), and a token
    // signed anyway opens nothing.
    for name in ["tom", "bob"] {
        for (purpose, path) in pages {
            assert!(
                matches!(
                    s.try_link(name, purpose, None).await,
                    Err(IssueError::WrongContactType(_))
                ),
                "{name}: {path}"
            );
            let token = s.forged(name, purpose, "").await;
            let r = s.get(&format!("/l/{token}"), None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}: {path}");
        }
    }

    // Carol, made billing, gets and opens her statement; made standard
    // again, the same link and page cookie open nothing.
    let (alice, contacts) = s.page("alice", LinkPurpose::Contacts, None).await;
    let csrf = hidden(&contacts.text(), "csrf");
    let carol_id = s.contact_id("carol").await;
    let set_types = |form: String| {
        let alice = alice.clone();
        let s = &s;
        async move {
            let r = s
                .post(&format!("/contacts/{carol_id}/types"), &alice, &form)
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        }
    };
    set_types(format!("csrf={csrf}&billing=on")).await;
    let link = s.link("carol", LinkPurpose::Statement, None).await;
    let (cookie, _) = s.open(&link).await;
    assert_eq!(
        s.get("/statement", Some(&cookie)).await.status,
        StatusCode::OK
    );
    set_types(format!("csrf={csrf}")).await;
    assert_eq!(
        s.get("/statement", Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&link, None).await.status, StatusCode::NOT_FOUND);
}
