//! The binary as an operator drives it: `check-config`, `import`, `ingest`
//! (MTA pipe mode, exit 75 on a temporary failure), `explain`, `tickets`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn postdesk(config: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("POSTDESK_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/postdesk.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // The example points at secret files that exist only in production:
    // give the parser real ones.
    let dir = tempfile::tempdir().unwrap();
    let mut text2 = text.clone();
    for secret in ["imap-support", "imap-urgent", "smtp", "link-key-2026-11"] {
        let file = dir.path().join(secret);
        std::fs::write(&file, "an-example-secret-that-is-long-enough-0123456789\n").unwrap();
        text2 = text2.replace(
            &format!("/run/secrets/{secret}"),
            &file.display().to_string(),
        );
    }
    let config = postdesk::config::Config::from_toml_with_env(
        &text2,
        "postdesk.example.toml",
        &Default::default(),
    )
    .expect("the example config parses");
    assert_eq!(config.mailboxes.len(), 2);
    assert_eq!(
        config.mailboxes[1].default_priority,
        postdesk::domain::Priority::High
    );
    assert!(
        !config.portal.show_time_worked,
        "the example keeps time worked off the client's ticket page"
    );
}

#[test]
fn check_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/postdesk.example.toml"),
    )
    .unwrap()
    .replace(
        "password_file = \"/run/secrets/imap-urgent\"",
        "password = \"x\"",
    )
    .replace(
        "password_file = \"/run/secrets/imap-support\"",
        "password = \"x\"",
    )
    .replace("password_file = \"/run/secrets/smtp\"", "password = \"x\"")
    .replace(
        "secret_file = \"/run/secrets/link-key-2026-11\"",
        "secret = \"0123456789abcdef0123456789abcdef\"",
    );
    std::fs::write(&path, &good).unwrap();
    let out = postdesk(&path, &["check-config"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(
        &path,
        good.replace(
            "imap_tls = \"tls\"                      # none",
            "imap_tls = \"ssl\" # none",
        ),
    )
    .unwrap();
    let out = postdesk(&path, &["check-config"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("mailbox[0].imap_tls"),
        "{err}"
    );

    // A schedule with four fields.
    let bad_cron = good.replace(
        "cron = \"0 9 * * *\"                 # payment reminders",
        "cron = \"0 9 * *\"",
    );
    assert_ne!(bad_cron, good, "the example's dunning cron line moved");
    std::fs::write(&path, bad_cron).unwrap();
    let out = postdesk(&path, &["check-config"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml")
            && err.contains("schedules.dunning.cron")
            && err.contains("expected 5 fields"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_and_a_dry_run_says_who_would_get_what() {
    let t = TestEnv::new().await;
    let config = t.config_file("");
    let alice = t.addr("alice", "customer.test");
    let import = t.dir.path().join("data.json");
    std::fs::write(
        &import,
        format!(
            r#"{{"clients":[{{"name":"Customer {tag}","contacts":[
                {{"email":"{alice}","types":["billing"]}}]}}],
              "invoices":[{{"number":"INV-{tag}","client":"Customer {tag}","currency":"EUR",
                "issue_date":"2026-11-01","due_date":"2026-11-15",
                "lines":[{{"description":"Backup","quantity":"1","unit_price":"100"}}]}}]}}"#,
            tag = t.tag
        ),
    )
    .unwrap();
    stdout_json(&postdesk(
        &config,
        &["import", import.to_str().unwrap()],
        None,
    ));

    let run = stdout_json(&postdesk(
        &config,
        &[
            "jobs",
            "run",
            "dunning",
            "--at",
            "2026-11-22T09:00:00Z",
            "--dry-run",
            "--json",
        ],
        None,
    ));
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["runs"][0]["about"], format!("invoice INV-{}", t.tag));
    assert_eq!(run["runs"][0]["stage"], "+7");
    assert_eq!(run["runs"][0]["mails"][0]["kind"], "invoice-reminder");
    assert_eq!(run["runs"][0]["mails"][0]["to"][0], alice);

    let list = stdout_json(&postdesk(&config, &["jobs", "list", "--json"], None));
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 9);
    let dunning = jobs.iter().find(|j| j["kind"] == "dunning").unwrap();
    assert_eq!(dunning["cron"], "0 9 * * *");
    assert_eq!(dunning["done"], 0, "the dry run recorded nothing");
    assert!(dunning["next_at"].as_str().unwrap().ends_with("09:00:00Z"));

    // For real, then listed.
    let human = postdesk(
        &config,
        &["jobs", "run", "dunning", "--at", "2026-11-22T09:00:00Z"],
        None,
    );
    assert!(
        human.status.success(),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("1 carried out") && text.contains("7 days overdue"),
        "{text}"
    );
    let list = stdout_json(&postdesk(&config, &["jobs", "list", "--json"], None));
    let dunning = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "dunning")
        .unwrap()
        .clone();
    assert_eq!(dunning["done"], 1);
    assert_eq!(list["recent"][0]["stage"], "+7");
}

#[tokio::test]
async fn pipe_mode_ingests_and_acknowledges() {
    let t = TestEnv::new().await;
    let config = t.config_file("");
    let import = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import/clients.json");
    let summary = stdout_json(&postdesk(
        &config,
        &["import", import.to_str().unwrap()],
        None,
    ));
    assert_eq!(summary["clients"], 2);

    let alice = t.addr("alice", "customer.test");
    let raw = simple_mail(
        &alice,
        &t.support,
        "Pipe request",
        &format!("pipe-{}@x.test", t.tag),
        "hello",
    );
    let outcome = stdout_json(&postdesk(&config, &["ingest"], Some(&raw)));
    assert_eq!(outcome["outcome"], "ticket-created");
    let number = outcome["ticket"].as_str().unwrap().to_string();

    // The acknowledgement was sent right away by the ingest command.
    let acks = read_folder(&t.mail, &alice, "INBOX").await;
    let acks = if acks.is_empty() {
        wait_for(
            "the acknowledgement",
            std::time::Duration::from_secs(20),
            || async {
                let m = read_folder(&t.mail, &alice, "INBOX").await;
                (!m.is_empty()).then_some(m)
            },
        )
        .await
    } else {
        acks
    };
    assert_eq!(
        header(&acks[0], "Subject"),
        Some(format!("[#{number}] Pipe request"))
    );

    let list = stdout_json(&postdesk(&config, &["tickets", "list", "--json"], None));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let show = stdout_json(&postdesk(
        &config,
        &["tickets", "show", &number, "--json"],
        None,
    ));
    assert_eq!(show["messages"][0]["direction"], "in");
    assert_eq!(show["messages"][0]["from"], alice.as_str());
    assert_eq!(
        show["messages"][0]["text"].as_str().unwrap().trim(),
        "hello"
    );
    let outbox = stdout_json(&postdesk(&config, &["outbox", "list", "--json"], None));
    assert_eq!(outbox[0]["status"], "sent");

    // explain on the same message: a duplicate now, and nothing written.
    let file = t.dir.path().join("m.eml");
    std::fs::write(&file, &raw).unwrap();
    let plan = stdout_json(&postdesk(
        &config,
        &["explain", file.to_str().unwrap(), "--json"],
        None,
    ));
    assert_eq!(plan["action"]["kind"], "duplicate");
    let q = stdout_json(&postdesk(&config, &["quarantine", "list", "--json"], None));
    assert_eq!(q, serde_json::json!([]));
}

#[test]
fn pipe_mode_exits_75_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let text = format!(
        "[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n[storage]\ndir = \"{}\"\n\
[smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nfrom = \"s@example.test\"\n\
[web]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://x.test\"\n[[links.keys]]\nid = \"k\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
        dir.path().join("s").display()
    );
    std::fs::write(&config, text).unwrap();
    let out = postdesk(
        &config,
        &["ingest"],
        Some(b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
