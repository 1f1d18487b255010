//! The audit log (issue 7, item 6), on the backend under test: a link open,
//! a page through it, a form post (saved, and refused), a staff command and
//! admin API calls each append exactly the expected entry — and no entry
//! carries an address, a token or a body; the table refuses UPDATE; the
//! purge job drops only entries older than `[audit] retention_days`;
//! `postdesk audit --json --kind` prints only matching lines.
//! (The payment webhook's entry is checked in `tests/payments.rs`.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::*;
use postdesk::app::App;
use postdesk::audit::{Actor, AuditEvent, AuditFilter, AuditKind, AuditRecord};
use postdesk::clock::{Clock, ManualClock, SharedClock};
use postdesk::config::Config;
use postdesk::db::{audit, contacts};
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use postdesk::schedule::{run_pass, JobKind, Worker};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token-0123456789abcdef0123";
const DAY_MS: i64 = 86_400_000;

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
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn site(extra: &str) -> Site {
    let t = TestEnv::new().await;
    let clock = ManualClock::new(ms("2026-11-20T10:00:00Z"));
    let shared: SharedClock = Arc::new(clock.clone());
    let config =
        Config::from_toml_with_env(&t.config_toml(extra), "test.toml", &Default::default())
            .unwrap();
    let app = App::open(config, shared).await.unwrap();
    let json = format!(
        r#"{{"clients":[{{"name":"Customer {tag}","domains":["customer.test"],"contacts":[
            {{"name":"Alice","email":"{alice}","types":["billing","primary"]}}]}}]}}"#,
        tag = t.tag,
        alice = t.addr("alice", "customer.test"),
    );
    let data = postdesk::import::parse(&json, "test.json").unwrap();
    postdesk::import::import(&app.db, &data, "test.json", clock.now_millis())
        .await
        .unwrap();
    Site {
        router: postdesk::web::router(app.clone()),
        t,
        app,
        clock,
    }
}

impl Site {
    fn alice(&self) -> String {
        self.t.addr("alice", "customer.test")
    }

    async fn alice_id(&self) -> (i64, i64) {
        let mut conn = self.app.db.conn().await.unwrap();
        let c = contacts::find_contact_by_email(
            &mut conn,
            &EmailAddress::parse(&self.alice()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        (c.id, c.client_id.unwrap())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        extra_header: Option<(header::HeaderName, String)>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::USER_AGENT, "AuditTest/1.0");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if let Some((name, value)) = extra_header {
            req = req.header(name, value);
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut req = req
            .body(Body::from(form.unwrap_or_default().to_string()))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
        }
    }

    async fn rows(&self) -> Vec<AuditRecord> {
        let mut conn = self.app.db.conn().await.unwrap();
        audit::list(&mut conn, &AuditFilter::default())
            .await
            .unwrap()
    }

    /// No entry holds an address, or any of `secrets`.
    async fn assert_clean(&self, secrets: &[&str]) {
        for row in self.rows().await {
            let text = serde_json::to_string(&row).unwrap();
            assert!(!text.contains('@'), "an address in {text}");
            for s in secrets {
                assert!(!text.contains(s), "`{s}` in {text}");
            }
        }
    }
}

fn cookies(r: &Reply) -> Vec<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect()
}

fn hidden(body: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{field} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn a_link_open_a_page_and_form_posts_each_append_one_entry() {
    let s = site("").await;
    let (alice, client) = s.alice_id().await;
    let url = link_for(
        &s.app.db,
        &s.app.config,
        LinkPurpose::Preferences,
        None,
        &EmailAddress::parse(&s.alice()).unwrap(),
        s.clock.now_millis() / 1000,
    )
    .await
    .unwrap();
    let path = url.strip_prefix(&s.app.config.web.base_url).unwrap();
    let token = path.strip_prefix("/l/").unwrap().to_string();

    // The open.
    let opened = s.send(Method::GET, path, None, None, None).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let link_cookie = cookies(&opened).remove(0);
    // The page it leads to.
    let page = s
        .send(Method::GET, "/preferences", Some(&link_cookie), None, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden(&page.body, "csrf");
    let both = format!("{link_cookie}; {}", cookies(&page).join("; "));
    // A saved choice.
    let saved = s
        .send(
            Method::POST,
            "/preferences",
            Some(&both),
            Some(&format!("csrf={csrf}&announcements=on")),
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    // Refused: the form value missing (the holder is known) and no link at all.
    let forged = s
        .send(
            Method::POST,
            "/preferences",
            Some(&link_cookie),
            Some("csrf=0000&statement=on"),
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let stranger = s
        .send(Method::POST, "/preferences", None, Some("csrf=1"), None)
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);

    let rows = s.rows().await;
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.kind.as_str(),
                r.action.as_str(),
                r.resource.as_deref(),
                r.actor_kind.as_str(),
                r.actor_id.clone(),
                r.client_id,
                r.outcome.as_str(),
            )
        })
        .collect();
    let me = Some(alice.to_string());
    assert_eq!(
        got,
        vec![
            (
                "link_open",
                "link.open",
                Some("preferences"),
                "contact",
                me.clone(),
                Some(client),
                "ok"
            ),
            (
                "link_open",
                "preferences.view",
                Some("preferences"),
                "contact",
                me.clone(),
                Some(client),
                "ok"
            ),
            (
                "form_post",
                "preferences.save",
                Some("preferences"),
                "contact",
                me.clone(),
                Some(client),
                "ok"
            ),
            (
                "form_post",
                "preferences.save",
                Some("preferences"),
                "contact",
                me.clone(),
                Some(client),
                "denied"
            ),
            (
                "form_post",
                "preferences.save",
                Some("preferences"),
                "anonymous",
                None,
                None,
                "denied"
            ),
        ]
    );
    for r in &rows {
        assert_eq!(r.remote_addr.as_deref(), Some("192.0.2.7"), "{r:?}");
        assert_eq!(r.user_agent.as_deref(), Some("AuditTest/1.0"), "{r:?}");
    }
    assert_eq!(
        rows[2].detail,
        Some(serde_json::json!({"wanted": ["announcements"]}))
    );
    assert_eq!(rows[0].at, "2026-11-20T10:00:00Z", "the Clock's time");
    let link_value = link_cookie.split_once('=').unwrap().1.to_string();
    s.assert_clean(&[&token, &link_value, &csrf]).await;
}

#[tokio::test]
async fn a_staff_command_is_recorded_with_the_ticket_and_the_technician() {
    let s = site("").await;
    let (_, client) = s.alice_id().await;
    let tag = &s.t.tag;
    let first = simple_mail(
        &s.alice(),
        &s.t.support,
        "Printer jammed",
        &format!("p-{tag}@customer.test"),
        "The printer on floor 2 is jammed again.",
    );
    let outcome = ingest(&s.app, &first).await;
    let number = serde_json::to_value(&outcome).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = format!(
        "From: {staff}\r\nTo: {support}\r\nSubject: Re: [#{number}] Printer jammed\r\n\
         Message-ID: <s-{tag}@msp.test>\r\n\r\n#priority high\r\n#time 30m\r\n\r\nOn my way with a new roller.\r\n",
        staff = s.t.staff,
        support = s.t.support,
    );
    ingest(&s.app, reply.as_bytes()).await;
    let rows: Vec<_> = s
        .rows()
        .await
        .into_iter()
        .filter(|r| r.kind == "staff_command")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, (action, detail)) in rows.iter().zip([
        ("command.priority", serde_json::json!({"priority": "high"})),
        ("command.time", serde_json::json!({"minutes": 30})),
    ]) {
        assert_eq!(row.action, action);
        assert_eq!(row.actor_kind, "staff");
        assert_eq!(row.actor_id.as_deref(), Some("Tess Tech"));
        assert_eq!(
            row.resource.as_deref(),
            Some(format!("ticket:{number}").as_str())
        );
        assert_eq!(row.client_id, Some(client));
        assert_eq!(row.outcome, "ok");
        assert_eq!(row.remote_addr, None, "mail has no remote address");
        assert_eq!(row.detail.as_ref(), Some(&detail));
    }
    s.assert_clean(&["roller", "jammed"]).await;
}

#[tokio::test]
async fn admin_api_calls_are_recorded_refused_ones_too() {
    let s = site("").await;
    let (_, client) = s.alice_id().await;
    let ok = s
        .send(
            Method::GET,
            &format!("/api/v1/clients/{client}"),
            None,
            None,
            Some((header::AUTHORIZATION, format!("Bearer {TOKEN}"))),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let refused = s
        .send(
            Method::POST,
            "/api/v1/invoices/INV-9/void",
            None,
            None,
            Some((header::AUTHORIZATION, "Bearer wrong-token-xyz".into())),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let rows: Vec<_> = s
        .rows()
        .await
        .into_iter()
        .filter(|r| r.kind == "admin_api")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].action, "clients.show");
    assert_eq!(
        rows[0].resource.as_deref(),
        Some(format!("client:{client}").as_str())
    );
    assert_eq!(
        (rows[0].actor_kind.as_str(), rows[0].actor_id.as_deref()),
        ("api_token", Some("admin"))
    );
    assert_eq!(rows[0].outcome, "ok");
    assert_eq!(rows[0].remote_addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        rows[0].detail,
        Some(serde_json::json!({"method": "GET", "route": "/api/v1/clients/{id}", "status": 200}))
    );
    assert_eq!(rows[1].action, "invoices.void");
    assert_eq!(rows[1].resource.as_deref(), Some("invoice:INV-9"));
    assert_eq!(rows[1].actor_kind, "anonymous");
    assert_eq!(rows[1].outcome, "denied");
    s.assert_clean(&[TOKEN, "wrong-token-xyz"]).await;
}

#[tokio::test]
async fn the_audit_table_refuses_updates() {
    let s = site("").await;
    let mut conn = s.app.db.conn().await.unwrap();
    let event = AuditEvent::new(AuditKind::FormPost, "ticket.reply", s.clock.now_millis())
        .actor(Actor::Contact(1));
    audit::record(&mut conn, &event).await.unwrap();
    let update = sqlx::query("UPDATE audit_events SET outcome = 'denied'")
        .execute(&mut *conn)
        .await;
    assert!(update.is_err(), "an UPDATE must fail");
    let rows = audit::list(&mut conn, &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "ok");
}

#[tokio::test]
async fn retention_prunes_only_entries_older_than_the_cutoff() {
    let s = site("[audit]\nretention_days = 30\n").await;
    let now = s.clock.now_millis();
    {
        let mut conn = s.app.db.conn().await.unwrap();
        for (age_days, action) in [
            (45, "old.one"),
            (31, "old.two"),
            (29, "young.one"),
            (0, "young.two"),
        ] {
            let e = AuditEvent::new(AuditKind::AdminApi, action, now - age_days * DAY_MS);
            audit::record(&mut conn, &e).await.unwrap();
        }
    }
    run_pass(
        &s.app,
        &Worker::new(),
        JobKind::Purge,
        now,
        false,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let left: Vec<String> = s.rows().await.into_iter().map(|r| r.action).collect();
    assert_eq!(left, ["young.one", "young.two"]);
    // A second pass the same day plans nothing more (one run per day).
    let again = run_pass(
        &s.app,
        &Worker::new(),
        JobKind::Purge,
        now,
        false,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(again.planned, 0);
}

#[tokio::test]
async fn the_cli_prints_only_matching_entries_as_json_lines() {
    let s = site("").await;
    let now = s.clock.now_millis();
    {
        let mut conn = s.app.db.conn().await.unwrap();
        for (kind, action) in [
            (AuditKind::FormPost, "ticket.reply"),
            (AuditKind::LinkOpen, "link.open"),
            (AuditKind::FormPost, "quote.accept"),
            (AuditKind::AdminApi, "clients.show"),
        ] {
            let e = AuditEvent::new(kind, action, now).actor(Actor::Contact(7));
            audit::record(&mut conn, &e).await.unwrap();
        }
    }
    let config = s.t.config_file("");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("POSTDESK_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["audit", "--json", "--kind", "form_post"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ticket.reply", "quote.accept"]);
    for l in &lines {
        assert_eq!(l["kind"], "form_post");
        assert_eq!(l["actor_kind"], "contact");
        assert_eq!(l["actor_id"], "7");
    }
    let out = run(&["audit", "--json", "--action", "quote."]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    // A bad filter names its flag.
    let out = run(&["audit", "--kind", "payments"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind `payments`"));
}
