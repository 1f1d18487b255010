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
