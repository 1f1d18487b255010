//! Invoice page benchmark (not a test): run it with
//! `bash tests/harness/bench-web.sh`, which installs wrk if missing and calls
//! `cargo bench --bench web`. It serves the web view in this process
//! (release build, SQLite in a temp dir), opens an invoice link once for its
//! cookie, then drives `GET /invoice/<number>` with wrk over loopback and
//! prints wrk's requests/s and latency percentiles.
//! BENCH_WEB_SECONDS (default 10), BENCH_WEB_CONNECTIONS (default 32) and
//! BENCH_WEB_THREADS (wrk threads, default 1) size it.

use std::process::Command;
use std::sync::Arc;

use postdesk::app::App;
use postdesk::clock::{SharedClock, SystemClock};
use postdesk::config::Config;
use postdesk::domain::EmailAddress;
use postdesk::links::{link_for, LinkPurpose};
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let toml = format!(
        r#"
[database]
url = "sqlite://{dir}/postdesk.db"
[storage]
dir = "{dir}/storage"
[smtp]
host = "127.0.0.1"
port = 25
tls = "none"
from = "Example IT <support@example.test>"
[web]
listen = "127.0.0.1:0"
base_url = "{base}"
[[links.keys]]
id = "bench"
secret = "bench-secret-0123456789abcdef0123456789"
[branding]
company_name = "Example IT"
"#,
        dir = dir.path().display()
    );
    let config = Config::from_toml_with_env(&toml, "bench.toml", &Default::default()).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock).await.unwrap();
    let lines: Vec<String> = (1..=12)
        .map(|i| {
            format!(
                r#"{{"description":"Service line {i}","quantity":"{i}","unit_price":"45.00","tax_rate":"19"}}"#
            )
        })
        .collect();
    let data = format!(
        r#"{{"clients":[{{"name":"Customer Ltd","domains":["customer.test"],"contacts":[
        {{"name":"Alice","email":"alice@customer.test","types":["primary","billing"]}}]}}],
     "invoices":[{{"number":"INV-BENCH-1","client":"Customer Ltd","currency":"EUR","issue_date":"2026-11-01",
        "due_date":"2099-11-15","terms":"Net 14","lines":[{}]}}]}}"#,
        lines.join(",")
    );
    let parsed = postdesk::import::parse(&data, "bench.json").unwrap();
    postdesk::import::import(&app.db, &parsed, "bench.json", 0)
        .await
        .unwrap();
    let link = link_for(
        &app.db,
        &app.config,
        LinkPurpose::Invoice,
        Some("INV-BENCH-1"),
        &EmailAddress::parse("alice@customer.test").unwrap(),
        chrono::Utc::now().timestamp(),
    )
    .await
    .unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(postdesk::web::serve(app.clone(), listener, cancel.clone()));

    // The cookie a browser gets from the link.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = http.get(&link).send().await.unwrap();
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let url = format!("{base}/invoice/INV-BENCH-1");
    let check = http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200, "the page opens with the cookie");
    let size = check.bytes().await.unwrap().len();

    let seconds = env_or("BENCH_WEB_SECONDS", "10");
    let connections = env_or("BENCH_WEB_CONNECTIONS", "32");
    let threads = env_or("BENCH_WEB_THREADS", "1");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args([
                "-t",
                &threads,
                "-c",
                &connections,
                "-d",
                &format!("{seconds}s"),
            ])
            .arg("--latency")
            .args(["-H", &format!("Cookie: {cookie}")])
            .arg(&url)
            .output()
            .expect("wrk (tests/harness/bench-web.sh installs it)")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("invoice page: {size} bytes, 12 lines");
    println!("{report}");
    assert!(
        !report.contains("Non-2xx"),
        "every request must be answered 200"
    );
    cancel.cancel();
    let _ = server.await;
}
