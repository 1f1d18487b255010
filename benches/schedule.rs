//! Planner benchmark (not a test): `cargo bench --bench schedule`.
//! Fills a database with BENCH_CLIENTS clients (default 1,000),
//! BENCH_INVOICES unpaid invoices (default 100,000, due dates spread over
//! ±60 days) and BENCH_DOMAINS domains (default 100,000, expiring over the
//! next 400 days), then times planner passes of the dunning and expiry jobs
//! as the daemon runs them: the first pass records every due run, the
//! second finds them all planned. SQLite in a temp dir, or PostgreSQL when
//! BENCH_DATABASE_URL names an empty database.

use std::sync::Arc;
use std::time::Instant;

use postdesk::app::App;
use postdesk::clock::{SharedClock, SystemClock};
use postdesk::config::Config;
use postdesk::db::job_runs;
use postdesk::schedule::{dunning, expiry};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let clients = env_num("BENCH_CLIENTS", 1_000);
    let invoices = env_num("BENCH_INVOICES", 100_000);
    let domains = env_num("BENCH_DOMAINS", 100_000);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/postdesk.db", dir.path().display()));
    let toml = format!(
        r#"
[database]
url = "{url}"
[storage]
dir = "{dir}/storage"
[smtp]
host = "127.0.0.1"
port = 25
tls = "none"
from = "Example IT <support@example.test>"
[web]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1:8080"
[[links.keys]]
id = "bench"
secret = "bench-secret-0123456789abcdef0123456789"
[company]
timezone = "Europe/Berlin"
"#,
        dir = dir.path().display()
    );
    let config = Config::from_toml_with_env(&toml, "bench.toml", &Default::default()).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock).await.unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2027-03-01T08:00:00+01:00")
        .unwrap()
        .timestamp_millis();

    let started = Instant::now();
    fill(&app, clients, invoices, domains).await;
    println!(
        "backend {:?}: {clients} clients, {invoices} invoices, {domains} domains written in {:.1} s",
        app.db.backend(),
        started.elapsed().as_secs_f64()
    );

    for pass in [
        "first pass (records the due runs)",
        "second pass (all planned already)",
    ] {
        let mut tx = app.db.begin().await.unwrap();
        let t0 = Instant::now();
        let dunning_runs = dunning::plan(&app, &mut tx, at).await.unwrap();
        let new_dunning = job_runs::plan_runs(&mut tx, &dunning_runs, at)
            .await
            .unwrap();
        let t1 = Instant::now();
        let expiry_runs = expiry::plan(&app, &mut tx, at).await.unwrap();
        let new_expiry = job_runs::plan_runs(&mut tx, &expiry_runs, at)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let t2 = Instant::now();
        println!(
            "{pass}: dunning {:.0} ms ({} due, {new_dunning} new), expiry {:.0} ms ({} due, {new_expiry} new), total {:.0} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            dunning_runs.len(),
            (t2 - t1).as_secs_f64() * 1e3,
            expiry_runs.len(),
            (t2 - t0).as_secs_f64() * 1e3,
        );
    }
}

/// Bulk rows, written straight in (the planner only reads these tables).
async fn fill(app: &App, clients: usize, invoices: usize, domains: usize) {
    let mut tx = app.db.begin().await.unwrap();
    let zones = [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Tokyo",
        "Pacific/Auckland",
    ];
    for c in 0..clients {
        sqlx::query("INSERT INTO clients (name, timezone, created_at) VALUES ($1, $2, 0)")
            .bind(format!("Client {c}"))
            .bind(zones[c % zones.len()])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM clients ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let base = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
    const CHUNK: usize = 50;
    for start in (0..invoices).step_by(CHUNK) {
        let n = CHUNK.min(invoices - start);
        let mut sql = String::from(
            "INSERT INTO invoices (number, client_id, status, currency, issue_date, due_date, \
             tax_rounding, subtotal_minor, tax_minor, total_minor, created_at, updated_at) VALUES ",
        );
        for i in 0..n {
            let b = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, 'sent', 'EUR', ${}, ${}, 'per-line', 10000, 1900, 11900, 0, 0)",
                b + 1,
                b + 2,
                b + 3,
                b + 4
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in start..start + n {
            let due = base + chrono::Duration::days((i % 121) as i64 - 60);
            q = q
                .bind(format!("B-{i}"))
                .bind(ids[i % ids.len()].0)
                .bind((due - chrono::Duration::days(14)).to_string())
                .bind(due.to_string());
        }
        q.execute(&mut *tx).await.unwrap();
    }
    for start in (0..domains).step_by(CHUNK) {
        let n = CHUNK.min(domains - start);
        let mut sql = String::from(
            "INSERT INTO expiring_items (client_id, kind, name, expires_on, created_at, updated_at) VALUES ",
        );
        for i in 0..n {
            let b = i * 3;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, 'domain', ${}, ${}, 0, 0)",
                b + 1,
                b + 2,
                b + 3
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in start..start + n {
            let expires = base + chrono::Duration::days((i % 400) as i64);
            q = q
                .bind(ids[i % ids.len()].0)
                .bind(format!("domain-{i}.example"))
                .bind(expires.to_string());
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}
