//! Ingest benchmark against the real servers (not a test): run it with
//! `bash tests/harness/bench.sh`, which starts Dovecot + Postfix and calls
//! `cargo bench --bench ingest`. Prints one line per figure; the results and
//! the command go into docs/BENCHMARKS.md.
//!
//! 1. backlog: N messages (default 10,000 × ~4 KB) appended to a mailbox, then
//!    - the raw `UID FETCH 1:* BODY.PEEK[]` rate of that mailbox,
//!    - the IMAP watcher alone: messages/s into committed tickets (acks queued),
//!    - the outbox sender alone: acks/s drained to Postfix, beside the raw SMTP
//!      submission rate of the same mails over one session;
//! 2. latency over IDLE: SMTP accepted → ack file in the sender's maildir, 200 mails;
//! 3. latency through the MTA pipe mode (`postdesk ingest` process start → ack file).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use postdesk::app::App;
use postdesk::clock::SystemClock;
use postdesk::config::Config;
use tokio_util::sync::CancellationToken;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} unset: run `bash tests/harness/bench.sh`"))
}

struct Bench {
    dir: tempfile::TempDir,
    mail_dir: PathBuf,
    imap_port: u16,
    smtp_port: u16,
    tag: String,
}

impl Bench {
    fn support(&self) -> String {
        format!("bench-{}@example.test", self.tag)
    }
    /// A distinct sender per message: the per-address limit on automatic
    /// mail (30 in 10 minutes) would otherwise hold most acknowledgements back.
    fn client(&self, i: usize) -> String {
        format!("c{i}-{}@customer.test", self.tag)
    }
    fn config_text(&self) -> String {
        format!(
            "[database]\nurl = \"sqlite://{d}/bench.db\"\n[storage]\ndir = \"{d}/storage\"\n\
[[mailbox]]\nname = \"support\"\naddress = \"{s}\"\nimap_host = \"127.0.0.1\"\nimap_port = {i}\nimap_tls = \"none\"\n\
username = \"{s}\"\npassword = \"test-pw\"\nprocessed_folder = \"Processed\"\n\
[smtp]\nhost = \"127.0.0.1\"\nport = {p}\ntls = \"none\"\nfrom = \"Support <{s}>\"\nconnections = 4\n\
[web]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://127.0.0.1\"\n[[links.keys]]\nid = \"b\"\nsecret = \"bench-secret-0123456789abcdef0123456789\"\n",
            d = self.dir.path().display(),
            s = self.support(),
            i = self.imap_port,
            p = self.smtp_port
        )
    }
    fn config(&self) -> Config {
        Config::from_toml_with_env(&self.config_text(), "bench.toml", &Default::default()).unwrap()
    }
    fn maildir_new(&self, address: &str) -> PathBuf {
        let (user, domain) = address.split_once('@').unwrap();
        self.mail_dir
            .join("mail")
            .join(domain)
            .join(user)
            .join("Maildir/new")
    }
}

fn mail(from: &str, to: &str, i: usize) -> Vec<u8> {
    let line =
        "The backup job on the file server failed again with the same error as yesterday.\r\n";
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Request number {i}\r\nMessage-ID: <bench-{i}-{to}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        line.repeat(48)
    )
    .into_bytes()
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Waits until the harness's Postfix has delivered everything queued.
fn wait_for_empty_mail_queue() {
    let conf = env("MAILTEST_POSTFIX_CONF");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = std::process::Command::new("postqueue")
            .args(["-c", &conf, "-j"])
            .output()
            .expect("postqueue");
        if out.stdout.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "Postfix queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let latency_mails: usize = std::env::var("BENCH_LATENCY_MAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let b = Bench {
        dir: tempfile::tempdir().unwrap(),
        mail_dir: env("MAILTEST_DIR").into(),
        imap_port: env("MAILTEST_IMAP_PORT").parse().unwrap(),
        smtp_port: env("MAILTEST_SMTP_PORT").parse().unwrap(),
        tag: format!("{}", std::process::id()),
    };
    let config = b.config();
    let mailbox = config.mailboxes[0].clone();

    // ---- fill the mailbox
    let t0 = Instant::now();
    let mut session = postdesk::mail::imap::connect(&mailbox).await.unwrap();
    let mails: Vec<Vec<u8>> = (0..n)
        .map(|i| mail(&b.client(i), &b.support(), i))
        .collect();
    for m in &mails {
        session.append("INBOX", None, None, m).await.unwrap();
    }
    println!(
        "backlog: appended {n} messages in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // ---- raw FETCH rate
    session.select("INBOX").await.unwrap();
    let t0 = Instant::now();
    let fetched: Vec<_> = session
        .uid_fetch("1:*", "(UID BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let fetch_s = t0.elapsed().as_secs_f64();
    assert_eq!(fetched.len(), n);
    drop(fetched);
    session.logout().await.unwrap();
    println!(
        "raw IMAP UID FETCH BODY.PEEK[]: {:.0} msg/s",
        n as f64 / fetch_s
    );

    // ---- ingest alone: the watcher, no sender
    let app = App::open(config.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let t0 = Instant::now();
    let watcher = tokio::spawn(postdesk::mail::imap::watch(
        app.ingestor.clone(),
        mailbox.clone(),
        cancel.clone(),
    ));
    loop {
        let mut conn = app.db.conn().await.unwrap();
        if postdesk::db::outbox::pending_count(&mut conn)
            .await
            .unwrap() as usize
            >= n
        {
            break;
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    cancel.cancel();
    watcher.await.unwrap();
    println!(
        "ingest (SQLite, {n} tickets committed, acks queued): {:.0} msg/s",
        n as f64 / ingest_s
    );
    // BENCH_ONLY_INGEST=1 stops here: the figure being worked on, quickly.
    if std::env::var_os("BENCH_ONLY_INGEST").is_some() {
        return;
    }

    // ---- raw SMTP submission rate, one session, the same mails to a sink
    let smtp = postdesk::mail::smtp::SmtpConnector::new(config.smtp.clone());
    let sample = 1000.min(n);
    let mut conn = smtp.connect().await.unwrap();
    let sink = vec![format!("sink-{}@sink.test", b.tag)];
    let t0 = Instant::now();
    for m in mails.iter().take(sample) {
        postdesk::mail::smtp::send(&mut conn, &b.support(), &sink, m, || {})
            .await
            .unwrap();
    }
    let raw_smtp = sample as f64 / t0.elapsed().as_secs_f64();
    let _ = conn.quit().await;
    println!("raw SMTP submission (1 session): {raw_smtp:.0} msg/s");

    // ---- sender alone: drain the queued acks
    let t0 = Instant::now();
    let drain_cancel = CancellationToken::new();
    let drain: Vec<_> = (0..config.smtp.connections)
        .map(|_| tokio::spawn(app.sender.clone().run(drain_cancel.clone())))
        .collect();
    loop {
        let mut c = app.db.conn().await.unwrap();
        if postdesk::db::outbox::pending_count(&mut c).await.unwrap() == 0 {
            break;
        }
        drop(c);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_rate = n as f64 / t0.elapsed().as_secs_f64();
    drain_cancel.cancel();
    for h in drain {
        h.await.unwrap();
    }
    println!(
        "outbox drain ({} sessions): {drain_rate:.0} msg/s = {:.0}% of raw SMTP",
        config.smtp.connections,
        100.0 * drain_rate / raw_smtp
    );

    // Postfix still delivers the drained acks; measure latency on an idle MTA.
    wait_for_empty_mail_queue();

    // ---- latency over IDLE: the whole daemon
    let daemon_cancel = CancellationToken::new();
    let daemon = tokio::spawn(app.clone().run(daemon_cancel.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut conn = smtp.connect().await.unwrap();
    let mut lat = Vec::new();
    for i in 0..latency_mails {
        let client = format!("lat{i}-{}@customer.test", b.tag);
        let new_dir = b.maildir_new(&client);
        let m = mail(&client, &b.support(), 1_000_000 + i);
        let t0 = Instant::now();
        postdesk::mail::smtp::send(&mut conn, &client, &[b.support()], &m, || {})
            .await
            .unwrap();
        let deadline = t0 + Duration::from_secs(20);
        while count_files(&new_dir) == 0 {
            assert!(Instant::now() < deadline, "ack {i} did not arrive");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(t0.elapsed());
    }
    let _ = conn.quit().await;
    lat.sort();
    println!(
        "ingest-to-ack latency over IDLE ({latency_mails} mails): p50 {} ms, p99 {} ms",
        percentile(&lat, 0.5).as_millis(),
        percentile(&lat, 0.99).as_millis()
    );
    daemon_cancel.cancel();
    daemon.await.unwrap().unwrap();

    // ---- latency through the MTA pipe mode
    let config_file = b.dir.path().join("bench.toml");
    std::fs::write(&config_file, b.config_text()).unwrap();
    let exe = std::env::var("POSTDESK_BIN").unwrap_or_else(|_| "target/release/postdesk".into());
    let mut lat = Vec::new();
    for i in 0..50 {
        let client = format!("pipe{i}-{}@customer.test", b.tag);
        let new_dir = b.maildir_new(&client);
        let m = mail(&client, &b.support(), 2_000_000 + i);
        let t0 = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .args(["--config", config_file.to_str().unwrap(), "ingest"])
            .env("POSTDESK_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("postdesk binary (cargo build --release)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&m).unwrap();
        assert!(child.wait().unwrap().success());
        let deadline = t0 + Duration::from_secs(20);
        while count_files(&new_dir) == 0 {
            assert!(Instant::now() < deadline, "pipe ack {i} did not arrive");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(t0.elapsed());
    }
    lat.sort();
    println!(
        "ingest-to-ack latency through the MTA pipe (50 mails): p50 {} ms, p99 {} ms",
        percentile(&lat, 0.5).as_millis(),
        percentile(&lat, 0.99).as_millis()
    );
}
