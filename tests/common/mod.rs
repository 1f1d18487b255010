//! Shared harness of the integration tests: a fresh database per test (SQLite
//! file or a new PostgreSQL database, chosen by `POSTDESK_TEST_DB`), the real
//! mail servers started by `tests/run.sh` (`MAILTEST_*`), unique addresses per
//! test so tests run in parallel, and helpers to send over SMTP and read over
//! IMAP.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use postdesk::app::App;
use postdesk::clock::{SharedClock, SystemClock};
use postdesk::config::Config;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

pub fn random_tag() -> String {
    let mut b = [0u8; 5];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `bash tests/run.sh`, which starts the mail and database servers")
    })
}

/// The mail system of `tests/harness/start-mail.sh`.
#[derive(Debug, Clone)]
pub struct MailServers {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    pub ca: PathBuf,
    pub password: String,
}

impl MailServers {
    pub fn from_env() -> Self {
        Self {
            dir: env("MAILTEST_DIR").into(),
            imap_port: env("MAILTEST_IMAP_PORT").parse().unwrap(),
            imaps_port: env("MAILTEST_IMAPS_PORT").parse().unwrap(),
            smtp_port: env("MAILTEST_SMTP_PORT").parse().unwrap(),
            ca: env("MAILTEST_CA").into(),
            password: env("MAILTEST_PASSWORD"),
        }
    }
}

/// One test's world: its own database, storage and addresses.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub mail: MailServers,
    pub tag: String,
    pub support: String,
    pub staff: String,
}

/// A database URL for a fresh, empty database of the backend under test.
/// PostgreSQL unavailable is a failure, never a skip.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("POSTDESK_TEST_DB").as_deref() {
        Ok("postgres") => {
            let admin_url = env("POSTDESK_TEST_PG_URL");
            let name = format!("pd_{}", random_tag());
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("PostgreSQL must be reachable at POSTDESK_TEST_PG_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin_url.rsplit_once('/').expect("URL with a database").0;
            format!("{base}/{name}")
        }
        Ok("sqlite") | Err(_) => format!("sqlite://{}/postdesk.db", dir.display()),
        Ok(other) => panic!("POSTDESK_TEST_DB={other}: expected sqlite or postgres"),
    }
}

impl TestEnv {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = fresh_database(dir.path()).await;
        let tag = random_tag();
        Self {
            db_url,
            mail: MailServers::from_env(),
            support: format!("support-{tag}@example.test"),
            staff: format!("tech-{tag}@msp.test"),
            tag,
            dir,
        }
    }

    /// An address of this test at `domain` (`name-<tag>@domain`).
    pub fn addr(&self, name: &str, domain: &str) -> String {
        format!("{name}-{}@{domain}", self.tag)
    }

    /// The client domain of this test (a real mail domain of the harness,
    /// separated from other tests by the per-test database).
    pub fn config_toml(&self, extra: &str) -> String {
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
password = "{pw}"
processed_folder = "Processed"
poll_interval_seconds = 1
[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "Example IT Support <{support}>"
[web]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1:8080"
admin_token = "test-admin-token-0123456789abcdef0123"
[[links.keys]]
id = "test"
secret = "test-secret-0123456789abcdef0123456789"
[branding]
company_name = "Example IT"
[[staff]]
email = "{staff}"
name = "Tess Tech"
{extra}
"#,
            db = self.db_url,
            dir = self.dir.path().display(),
            support = self.support,
            imap = self.mail.imap_port,
            pw = self.mail.password,
            smtp = self.mail.smtp_port,
            staff = self.staff,
        )
    }

    pub fn config(&self, extra: &str) -> Config {
        Config::from_toml_with_env(&self.config_toml(extra), "test.toml", &BTreeMap::new())
            .expect("test config is valid")
    }

    /// Writes the config to a file (for driving the binary).
    pub fn config_file(&self, extra: &str) -> PathBuf {
        let path = self.dir.path().join("postdesk.toml");
        std::fs::write(&path, self.config_toml(extra)).unwrap();
        path
    }

    pub async fn app(&self, extra: &str) -> App {
        let clock: SharedClock = Arc::new(SystemClock);
        App::open(self.config(extra), clock)
            .await
            .expect("app opens")
    }

    /// Imports `customer.test` as a client with `alice-<tag>@customer.test` as
    /// its primary contact.
    pub async fn import_customer(&self, app: &App) {
        let json = format!(
            r#"{{"clients":[{{"name":"Customer {tag}","domains":["customer.test"],
            "contacts":[{{"name":"Alice Example","email":"{alice}","types":["primary"]}}]}}]}}"#,
            tag = self.tag,
            alice = self.addr("alice", "customer.test"),
        );
        let data = postdesk::import::parse(&json, "inline").unwrap();
        postdesk::import::import(&app.db, &data, "inline", 0)
            .await
            .unwrap();
    }
}

/// Runs the daemon in this process until the returned token is cancelled.
pub struct RunningDaemon {
    pub cancel: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningDaemon {
    pub fn start(app: App) -> Self {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(app.run(cancel.clone()));
        Self { cancel, handle }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("daemon stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// Sends `raw` over SMTP to the harness's Postfix.
pub async fn send_mail(mail: &MailServers, from: &str, to: &[&str], raw: &[u8]) {
    let smtp = postdesk::config::SmtpConfig {
        host: "127.0.0.1".into(),
        port: mail.smtp_port,
        tls: postdesk::config::TlsMode::None,
        username: None,
        password: None,
        from: "sender@example.test".parse().unwrap(),
        ca_file: None,
        connections: 1,
        oauth2: None,
    };
    let connector = postdesk::mail::smtp::SmtpConnector::new(smtp);
    let mut conn = connector.connect().await.expect("SMTP connect");
    let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    postdesk::mail::smtp::send(&mut conn, from, &to, raw, || {})
        .await
        .expect("SMTP accepted the mail");
    let _ = conn.quit().await;
}

/// Every message in `folder` of `user`'s mailbox, raw, by UID order.
pub async fn read_folder(mail: &MailServers, user: &str, folder: &str) -> Vec<Vec<u8>> {
    let mailbox = postdesk::config::MailboxConfig {
        name: "reader".into(),
        address: postdesk::domain::EmailAddress::parse(user).unwrap(),
        imap_host: "127.0.0.1".into(),
        imap_port: mail.imap_port,
        imap_tls: postdesk::config::TlsMode::None,
        username: user.into(),
        password: mail.password.clone(),
        oauth2: None,
        folder: folder.into(),
        processed_folder: None,
        default_priority: postdesk::domain::Priority::Medium,
        default_category: None,
        ca_file: None,
        poll_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
    };
    let mut session = postdesk::mail::imap::connect(&mailbox)
        .await
        .expect("IMAP login");
    if session.select(folder).await.is_err() {
        let _ = session.logout().await;
        return Vec::new();
    }
    let fetched: Vec<_> = session
        .uid_fetch("1:*", "(UID BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap_or_default();
    let mut out: Vec<(u32, Vec<u8>)> = fetched
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .collect();
    out.sort_by_key(|(u, _)| *u);
    let _ = session.logout().await;
    out.into_iter().map(|(_, b)| b).collect()
}

/// Polls `probe` every 100 ms until it returns `Some`, failing after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain-text mail.
pub fn simple_mail(from: &str, to: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Ingests `raw` as the MTA pipe would hand it over.
pub async fn ingest(app: &App, raw: &[u8]) -> postdesk::mail::ingest::Outcome {
    app.ingestor
        .ingest(postdesk::mail::ingest::Delivery {
            source: postdesk::mail::ingest::Source::Pipe,
            raw,
            oversized_bytes: None,
        })
        .await
        .expect("no temporary failure")
}

/// The header value `name` of a raw message (first occurrence, unfolded).
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.header_raw(name)
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The first text body of a raw message (decoded); panics when there is none.
pub fn mail_text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message")
        .body_text(0)
        .expect("a text body")
        .into_owned()
}

/// The app serving its web view on a free loopback port, with `web.base_url`
/// pointing at it (links in mails and pages then open in a real client).
pub struct ServedApp {
    pub t: TestEnv,
    pub app: App,
    pub base_url: String,
    cancel: CancellationToken,
}

impl ServedApp {
    pub async fn start(extra: &str) -> ServedApp {
        let t = TestEnv::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let toml = t.config_toml(extra).replace(
            "base_url = \"http://127.0.0.1:8080\"",
            &format!("base_url = \"{base_url}\""),
        );
        let config = Config::from_toml_with_env(&toml, "test.toml", &BTreeMap::new()).unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let app = App::open(config, clock).await.unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(postdesk::web::serve(app.clone(), listener, cancel.clone()));
        ServedApp {
            t,
            app,
            base_url,
            cancel,
        }
    }
}

impl Drop for ServedApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts `postdesk run` as a process of its own (to be killed with -9),
/// its log appended to `log`.
pub fn start_daemon(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("POSTDESK_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// How many mails `address` has in its Maildir (new and cur).
pub fn acks_in_maildir(mail: &MailServers, address: &str) -> usize {
    let (user, domain) = address.split_once('@').unwrap();
    let base = mail
        .dir
        .join("mail")
        .join(domain)
        .join(user)
        .join("Maildir");
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(base.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

/// The subjects of all tickets, sorted.
/// The audit log's entries that `keep` picks, oldest first.
pub async fn audit_rows(
    app: &App,
    keep: impl Fn(&postdesk::audit::AuditRecord) -> bool,
) -> Vec<postdesk::audit::AuditRecord> {
    let mut conn = app.db.conn().await.unwrap();
    postdesk::db::audit::list(&mut conn, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| keep(r))
        .collect()
}

pub async fn ticket_subjects(app: &App) -> Vec<String> {
    let mut conn = app.db.conn().await.unwrap();
    let mut subjects: Vec<String> = postdesk::db::tickets::list_tickets(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.subject)
        .collect();
    subjects.sort();
    subjects
}

/// Every acknowledgement in the outbox.
pub async fn acks(app: &App) -> Vec<postdesk::db::outbox::OutboxEntry> {
    let mut conn = app.db.conn().await.unwrap();
    postdesk::db::outbox::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "acknowledgement")
        .collect()
}

/// Rows still claimed by a worker whose lease is over (or pending at all).
pub async fn leftover_claims(app: &App) -> i64 {
    let mut conn = app.db.conn().await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' OR \
         (claimed_by IS NOT NULL AND status <> 'sent' AND status <> 'failed')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    n
}

/// Waits until every sender has an acknowledgement in its Maildir, then
/// gives a late duplicate time to show up, and asserts the end state:
/// one ticket per request, one acknowledgement sent and delivered per
/// sender, nothing left pending or claimed.
pub async fn assert_each_once(app: &App, servers: &MailServers, senders: &[String]) {
    wait_for(
        "an acknowledgement delivered to every sender",
        Duration::from_secs(180),
        || async {
            senders
                .iter()
                .all(|s| acks_in_maildir(servers, s) >= 1)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let subjects = ticket_subjects(app).await;
    let mut unique = subjects.clone();
    unique.dedup();
    assert_eq!(
        subjects.len(),
        senders.len(),
        "one ticket per message: {subjects:?}"
    );
    assert_eq!(
        unique.len(),
        senders.len(),
        "no message twice: {subjects:?}"
    );
    let acks = acks(app).await;
    assert_eq!(acks.len(), senders.len(), "one acknowledgement per ticket");
    assert!(
        acks.iter().all(|m| m.status == "sent"),
        "every acknowledgement sent: {acks:?}"
    );
    assert_eq!(leftover_claims(app).await, 0, "no outbox row left claimed");
    let wrong: Vec<String> = senders
        .iter()
        .filter_map(|s| {
            let n = acks_in_maildir(servers, s);
            (n != 1).then(|| format!("{s}: {n}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "senders without exactly one acknowledgement: {wrong:?}"
    );
}
