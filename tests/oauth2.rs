//! OAuth2 mailboxes against the real servers: a private Dovecot whose oauth2
//! passdb asks a fake authorization server (tests/support/fake_oauth.rs)
//! about every XOAUTH2 login, and a private Postfix whose SMTP AUTH goes
//! through the same Dovecot — so IMAP ingest and SMTP sending both sign in
//! with real XOAUTH2. Time is moved on the app's and the fake's shared clock,
//! never slept through.

mod common;
#[path = "support/fake_oauth.rs"]
mod fake_oauth;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fake_oauth::{FakeOAuth, OAuthMailSystem, CLIENT_ID, CLIENT_SECRET};
use postdesk::app::App;
use postdesk::clock::{Clock, ManualClock, SharedClock, SystemClock};
use postdesk::config::Config;
use postdesk::mail::imap;
use reqwest::StatusCode;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// How `[smtp]` sends in a test.
enum Smtp {
    /// The private Postfix's MX-like port, no AUTH.
    Plain,
    /// The submission port (STARTTLS), XOAUTH2 with the mailbox's grant.
    SameGrant,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The config of one test: mailbox `support` signs in with OAuth2;
/// `refresh_token` is a TOML line (`refresh_token = …` or `…_file = …`).
fn config_toml(
    t: &TestEnv,
    mail: &OAuthMailSystem,
    fake: &FakeOAuth,
    refresh_token: &str,
    smtp: Smtp,
    listen: &str,
) -> String {
    let grant = format!(
        "provider = \"custom\"\ntoken_url = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\nscope = \"mail\"\n{refresh_token}",
        url = fake.token_url()
    );
    let smtp = match smtp {
        Smtp::Plain => format!("port = {}\ntls = \"none\"", mail.smtp_port),
        Smtp::SameGrant => format!(
            "port = {}\ntls = \"starttls\"\nca_file = \"{}\"\nusername = \"{}\"\n\
             auth = \"oauth2\"\n[smtp.oauth2]\n{grant}",
            mail.submission_port,
            mail.ca.display(),
            t.support
        ),
    };
    format!(
        r#"
[database]
url = "{db}"
max_connections = 4
[storage]
dir = "{dir}/storage"
[[mailbox]]
name = "support"
address = "{support}"
imap_host = "127.0.0.1"
imap_port = {imap}
imap_tls = "none"
username = "{support}"
auth = "oauth2"
processed_folder = "Processed"
poll_interval_seconds = 1
[mailbox.oauth2]
{grant}
[web]
listen = "{listen}"
base_url = "http://{listen}"
admin_token = "{ADMIN_TOKEN}"
[[links.keys]]
id = "test"
secret = "test-secret-0123456789abcdef0123456789"
[branding]
company_name = "Example IT"
[[staff]]
email = "{staff}"
name = "Tess Tech"
[smtp]
host = "127.0.0.1"
from = "Example IT Support <{support}>"
{smtp}
"#,
        db = t.db_url,
        dir = t.dir.path().display(),
        support = t.support,
        imap = mail.imap_port,
        staff = t.staff,
    )
}

async fn open(toml: &str, clock: SharedClock) -> App {
    let config = Config::from_toml_with_env(toml, "test.toml", &BTreeMap::new())
        .expect("test config is valid");
    App::open(config, clock).await.expect("app opens")
}

/// Signs in to the mailbox as the IMAP watcher does, and logs out.
async fn xoauth2_login(app: &App) {
    let tokens = app.oauth.for_mailbox("support").expect("an OAuth2 mailbox");
    let mut session = imap::connect_with(&app.config.mailboxes[0], Some(&tokens))
        .await
        .expect("XOAUTH2 login accepted by Dovecot");
    session.logout().await.unwrap();
}

/// One XOAUTH2 login with exactly `token`: did Dovecot accept it?
async fn dovecot_accepts(mail: &OAuthMailSystem, user: &str, token: &str) -> bool {
    struct Once(Option<String>);
    impl async_imap::Authenticator for Once {
        type Response = String;
        fn process(&mut self, _: &[u8]) -> String {
            self.0.take().unwrap_or_default()
        }
    }
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", mail.imap_port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    let response = format!("user={user}\x01auth=Bearer {token}\x01\x01");
    match client.authenticate("XOAUTH2", Once(Some(response))).await {
        Ok(mut session) => {
            let _ = session.logout().await;
            true
        }
        Err(_) => false,
    }
}

async fn count(app: &App, sql: &str) -> i64 {
    let mut conn = app.db.conn().await.unwrap();
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_ingest_and_smtp_sending_sign_in_with_one_shared_xoauth2_grant() {
    let clock: SharedClock = Arc::new(SystemClock);
    let fake = FakeOAuth::start(clock.clone(), 3600).await;
    let mail = OAuthMailSystem::start(&fake);
    let t = TestEnv::new().await;
    let refresh_token = fake.grant(&t.support);
    let toml = config_toml(
        &t,
        &mail,
        &fake,
        &format!("refresh_token = \"{refresh_token}\""),
        Smtp::SameGrant,
        &format!("127.0.0.1:{}", free_port()),
    );
    let app = open(&toml, clock).await;
    // IMAP and SMTP use the same grant: one manager.
    assert_eq!(app.oauth.all().len(), 1);
    assert_eq!(app.oauth.all()[0].used_by(), ["support", "smtp"]);
    t.import_customer(&app).await;
    let daemon = RunningDaemon::start(app.clone());

    let alice = t.addr("alice", "customer.test");
    let raw = simple_mail(
        &alice,
        &t.support,
        "VPN down",
        &format!("vpn-{}@customer.test", t.tag),
        "The VPN does not connect.",
    );
    send_mail(&mail.servers(), &alice, &[&t.support], &raw).await;

    // Fetched over IMAP (XOAUTH2), acknowledged over SMTP (XOAUTH2 through
    // Postfix and Dovecot SASL), delivered to alice.
    let servers = mail.servers();
    let inbox = wait_for(
        "the acknowledgement in alice's mailbox",
        Duration::from_secs(60),
        || async {
            let inbox = read_folder(&servers, &alice, "INBOX").await;
            (!inbox.is_empty()).then_some(inbox)
        },
    )
    .await;
    let subject = header(&inbox[0], "Subject").unwrap();
    assert!(subject.contains("VPN down"), "{subject}");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM tickets").await,
        1,
        "one ticket from the mail fetched over XOAUTH2"
    );
    daemon.stop().await;

    // One refresh served both: the token was cached and shared.
    let refreshes = fake.refreshes();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert!(refreshes[0].1);
    // Dovecot checked it for the IMAP login and for Postfix's SMTP AUTH.
    let checked = fake.introspections();
    assert!(checked.len() >= 2, "{checked:?}");
    assert!(checked.iter().all(|(_, active)| *active), "{checked:?}");
    let log = std::fs::read_to_string(mail.dir.path().join("log/dovecot.log")).unwrap();
    assert!(
        log.contains("method=XOAUTH2"),
        "IMAP signed in with XOAUTH2"
    );
    let mail_log =
        std::fs::read_to_string(mail.dir.path().join("log/postfix.log")).unwrap_or_default();
    assert!(
        mail_log.contains("sasl_method=XOAUTH2"),
        "Postfix took the mail over XOAUTH2: {mail_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_is_refreshed_before_it_expires() {
    let clock = ManualClock::new(SystemClock.now_millis());
    let shared: SharedClock = Arc::new(clock.clone());
    let fake = FakeOAuth::start(shared.clone(), 3600).await;
    let mail = OAuthMailSystem::start(&fake);
    let t = TestEnv::new().await;
    let refresh_token = fake.grant(&t.support);
    let toml = config_toml(
        &t,
        &mail,
        &fake,
        &format!("refresh_token = \"{refresh_token}\""),
        Smtp::Plain,
        "127.0.0.1:0",
    );
    let app = open(&toml, shared).await;

    xoauth2_login(&app).await;
    assert_eq!(fake.refreshes().len(), 1);
    let first = fake.introspections().last().unwrap().0.clone();

    // 50 of 60 minutes later the token is still used.
    clock.advance(Duration::from_secs(50 * 60));
    xoauth2_login(&app).await;
    assert_eq!(fake.refreshes().len(), 1, "cached while far from expiry");
    assert_eq!(fake.introspections().last().unwrap().0, first);

    // 4 minutes left (less than 5): refreshed before it expires.
    clock.advance(Duration::from_secs(6 * 60));
    xoauth2_login(&app).await;
    assert_eq!(fake.refreshes().len(), 2, "refreshed within the margin");
    let second = fake.introspections().last().unwrap().0.clone();
    assert_ne!(second, first);

    // Past the first token's expiry the real Dovecot refuses it; the
    // manager's current one still signs in without another refresh.
    clock.advance(Duration::from_secs(5 * 60));
    assert!(!dovecot_accepts(&mail, &t.support, &first).await);
    xoauth2_login(&app).await;
    assert_eq!(fake.refreshes().len(), 2);
    assert_eq!(fake.introspections().last().unwrap().0, second);
    let metrics = app.metrics.render(0, 0);
    assert!(
        metrics.contains("postdesk_oauth_grant_valid{credential=\"support\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "postdesk_oauth_token_refreshes_total{credential=\"support\",outcome=\"ok\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_saved_encrypted_and_used_after_a_restart() {
    let clock: SharedClock = Arc::new(SystemClock);
    let fake = FakeOAuth::start(clock.clone(), 3600).await;
    fake.set_rotate(true);
    let mail = OAuthMailSystem::start(&fake);
    let t = TestEnv::new().await;
    let configured = fake.grant(&t.support);
    let toml = config_toml(
        &t,
        &mail,
        &fake,
        &format!("refresh_token = \"{configured}\""),
        Smtp::Plain,
        "127.0.0.1:0",
    );

    let app = open(&toml, clock.clone()).await;
    xoauth2_login(&app).await;
    let refreshes = fake.refreshes();
    assert_eq!(refreshes.len(), 1);
    assert!(!fake.is_live_refresh_token(&configured), "rotated away");
    // Stored, and not in clear.
    let stored: Vec<(String,)> = {
        let mut conn = app.db.conn().await.unwrap();
        sqlx::query_as("SELECT refresh_token FROM oauth_grants")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].0.starts_with("v1.test."),
        "sealed with link key `test`"
    );
    assert!(!stored[0].0.contains("rt-"), "no token in clear");
    app.db.close().await;
    drop(app);

    // A restart with the same config: the configured token is dead, the
    // stored one is used (and rotated again, and saved again).
    let app = open(&toml, clock.clone()).await;
    xoauth2_login(&app).await;
    let refreshes = fake.refreshes();
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    assert_ne!(refreshes[1].0, configured);
    assert!(refreshes[1].1, "the stored token was accepted");
    assert!(!app.oauth.all()[0].is_revoked());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'oauth-revoked'"
        )
        .await,
        0
    );
    app.db.close().await;
    drop(app);

    // A different configured token (a new grant) wins over the stored one.
    let fresh = fake.grant(&t.support);
    let app = open(&toml.replace(&configured, &fresh), clock).await;
    xoauth2_login(&app).await;
    assert_eq!(fake.refreshes()[2], (fresh, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_fails_readiness_tells_operators_once_and_recovers_with_a_new_token() {
    let clock: SharedClock = Arc::new(SystemClock);
    let fake = FakeOAuth::start(clock.clone(), 3600).await;
    let mail = OAuthMailSystem::start(&fake);
    let t = TestEnv::new().await;
    let token_file = t.dir.path().join("refresh-token");
    std::fs::write(&token_file, fake.grant(&t.support)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let toml = config_toml(
        &t,
        &mail,
        &fake,
        &format!("refresh_token_file = \"{}\"", token_file.display()),
        Smtp::Plain,
        &listen,
    );
    let app = open(&toml, clock).await;
    let daemon = RunningDaemon::start(app.clone());
    let http = reqwest::Client::new();
    let readyz = || async {
        let r = http
            .get(format!("http://{listen}/readyz"))
            .send()
            .await
            .ok()?;
        let status = r.status();
        let body: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
        Some((status, body))
    };
    let metrics = || async {
        http.get(format!("http://{listen}/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let (_, body) = wait_for("ready", Duration::from_secs(30), || async {
        readyz().await.filter(|(s, _)| *s == StatusCode::OK)
    })
    .await;
    assert_eq!(body["oauth2"]["support"]["state"], "valid");

    // The administrator revokes the app's consent; the server drops the
    // session, so the watcher must sign in again.
    fake.revoke_all();
    mail.kick(&t.support);
    let (status, body) = wait_for(
        "readiness to name the revoked grant",
        Duration::from_secs(60),
        || async {
            readyz()
                .await
                .filter(|(_, b)| b["mailboxes"]["support"] == "oauth2-grant-revoked")
        },
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["oauth2"]["support"]["state"], "revoked", "{body}");
    let text = metrics().await;
    assert!(
        text.contains("postdesk_oauth_grant_valid{credential=\"support\"} 0"),
        "{text}"
    );

    // The watcher keeps trying (with backoff); the operators hear once.
    wait_for(
        "three refused refreshes",
        Duration::from_secs(60),
        || async { (fake.refreshes().iter().filter(|(_, ok)| !ok).count() >= 3).then_some(()) },
    )
    .await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'oauth-revoked'"
        )
        .await,
        1,
        "one operator mail per revocation, not per retry"
    );
    let recipients: Vec<(String,)> = {
        let mut conn = app.db.conn().await.unwrap();
        sqlx::query_as("SELECT recipients FROM outbox WHERE kind = 'oauth-revoked'")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(recipients[0].0, t.staff);

    // A new grant written to the token file: the next retry recovers.
    std::fs::write(&token_file, fake.grant(&t.support)).unwrap();
    let (_, body) = wait_for("ready again", Duration::from_secs(90), || async {
        readyz().await.filter(|(s, _)| *s == StatusCode::OK)
    })
    .await;
    assert_eq!(body["mailboxes"]["support"], "connected");
    assert_eq!(body["oauth2"]["support"]["state"], "valid");
    let text = metrics().await;
    assert!(
        text.contains("postdesk_oauth_grant_valid{credential=\"support\"} 1"),
        "{text}"
    );

    // The one notice reached the operator's mailbox.
    let servers = mail.servers();
    let staff = t.staff.clone();
    let notices = wait_for("the operator's notice", Duration::from_secs(30), || async {
        let inbox = read_folder(&servers, &staff, "INBOX").await;
        (!inbox.is_empty()).then_some(inbox)
    })
    .await;
    daemon.stop().await;
    assert_eq!(notices.len(), 1);
    let subject = header(&notices[0], "Subject").unwrap();
    assert!(subject.contains("OAuth2 grant was revoked"), "{subject}");
    assert!(subject.contains("support"), "{subject}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'oauth-revoked'"
        )
        .await,
        1
    );
}

/// The commented OAuth2 examples of deploy/postdesk.example.toml, switched
/// on, are a valid configuration (the rest of the file is tested in cli.rs).
#[test]
fn the_example_configs_oauth2_blocks_are_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/postdesk.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut on = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("# >>> oauth2") {
            inside = true;
        } else if line.starts_with("# <<< oauth2") {
            inside = false;
        } else if inside {
            on.push_str(line.strip_prefix("# ").unwrap_or(line));
            on.push('\n');
        } else {
            on.push_str(line);
            on.push('\n');
        }
    }
    assert!(on.contains("\n[mailbox.oauth2]\n") && on.contains("\n[smtp.oauth2]\n"));
    for secret in [
        "imap-support",
        "imap-urgent",
        "link-key-2026-11",
        "m365-client-secret",
        "m365-refresh-token",
    ] {
        let file = dir.path().join(secret);
        std::fs::write(&file, "an-example-secret-that-is-long-enough-0123456789\n").unwrap();
        on = on.replace(
            &format!("/run/secrets/{secret}"),
            &file.display().to_string(),
        );
    }
    // SMTP signs in with the grant instead of its password.
    let on = on.replace(
        "username = \"support@example.com\"\npassword_file = \"/run/secrets/smtp\"\n",
        "username = \"helpdesk@contoso.com\"\n",
    );
    let config = Config::from_toml_with_env(&on, "postdesk.example.toml", &BTreeMap::new())
        .expect("the example's OAuth2 blocks parse");
    let m365 = &config.mailboxes[2];
    assert_eq!(m365.imap_host, "outlook.office365.com");
    let grant = m365.oauth2.as_ref().unwrap();
    assert_eq!(
        grant.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    let smtp = config
        .smtp
        .oauth2
        .as_ref()
        .expect("smtp signs in with OAuth2");
    assert_eq!(smtp.client_id, grant.client_id);
    assert_eq!(smtp.token_url, grant.token_url);
    assert_eq!(
        config.smtp.username.as_deref(),
        Some(m365.username.as_str())
    );
    // The example's [smtp] names its host; the preset fills only what is missing.
    assert_eq!(config.smtp.host, "smtp.example.com");
}
