//! Outgoing mail is DKIM-signed with the operator's key: an acknowledgement
//! sent through the real Postfix and read back from Dovecot verifies with an
//! independent verifier (Debian's python3-dkim, the public key served by a
//! stub DNS function), and a changed body no longer does.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;

fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (tests/harness/install-deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key as PKCS#1 PEM (what `[dkim] private_key` takes) and its
/// public half as the `p=` of a DKIM DNS record.
fn rsa_key(dir: &Path) -> (std::path::PathBuf, String) {
    let key = dir.join("dkim.pem");
    run(
        "openssl",
        &[
            "genrsa",
            "-traditional",
            "-out",
            key.to_str().unwrap(),
            "2048",
        ],
    );
    let der = run(
        "openssl",
        &[
            "rsa",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ],
    );
    use base64::Engine;
    (key, base64::engine::general_purpose::STANDARD.encode(der))
}

/// Verifies `raw` with python3-dkim, answering the selector's TXT lookup
/// with `record`.
fn verifies(raw: &[u8], record: &str, dir: &Path) -> bool {
    let mail = dir.join("signed.eml");
    std::fs::write(&mail, raw).unwrap();
    let script = format!(
        "import dkim,sys\n\
         record = {record:?}.encode()\n\
         def dns(name, timeout=5):\n    return record if name == b'pd2026._domainkey.example.test.' else None\n\
         data = open({path:?}, 'rb').read()\n\
         print('ok' if dkim.verify(data, dnsfunc=dns) else 'bad')\n",
        path = mail.to_str().unwrap(),
    );
    let out = run("/usr/bin/python3", &["-c", &script]);
    String::from_utf8_lossy(&out).trim() == "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_carries_a_dkim_signature_that_verifies() {
    let t = TestEnv::new().await;
    let (key, public) = rsa_key(t.dir.path());
    let app = t
        .app(&format!(
            "[dkim]\ndomain = \"example.test\"\nselector = \"pd2026\"\nprivate_key_file = \"{}\"\n",
            key.display()
        ))
        .await;
    t.import_customer(&app).await;
    let alice = t.addr("alice", "customer.test");
    ingest(
        &app,
        &simple_mail(
            &alice,
            &t.support,
            "VPN is down",
            &format!("v-{}@customer.test", t.tag),
            "Since 9.",
        ),
    )
    .await;
    let mut state = app.sender.new_state().unwrap();
    app.sender
        .round(&mut state, &CancellationToken::new())
        .await
        .unwrap();
    state.close().await;
    let ack = wait_for("the acknowledgement", Duration::from_secs(20), || async {
        read_folder(&t.mail, &alice, "INBOX")
            .await
            .into_iter()
            .next()
    })
    .await;
    let signature = header(&ack, "DKIM-Signature").expect("a DKIM-Signature header");
    assert!(signature.contains("d=example.test"), "{signature}");
    assert!(signature.contains("s=pd2026"), "{signature}");
    let record = format!("v=DKIM1; k=rsa; p={public}");
    assert!(
        verifies(&ack, &record, t.dir.path()),
        "the signature verifies"
    );

    // One changed word in the body: no longer.
    let text = String::from_utf8_lossy(&ack).to_string();
    let tampered = text.replacen("VPN is down", "VPN is fine", 1);
    assert_ne!(tampered, text);
    assert!(!verifies(tampered.as_bytes(), &record, t.dir.path()));
}

#[tokio::test]
async fn a_bad_key_is_named_by_its_key() {
    let t = TestEnv::new().await;
    let toml = t.config_toml(
        "[dkim]\ndomain = \"example.com\"\nselector = \"pd\"\nprivate_key = \"not a key\"\n",
    );
    let err = postdesk::config::Config::from_toml_with_env(&toml, "bad.toml", &Default::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.toml") && err.contains("dkim.private_key") && err.contains("PKCS#1"),
        "{err}"
    );
}
