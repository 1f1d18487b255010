//! A fake OAuth2 authorization server for the tests: an axum server on
//! 127.0.0.1:0 with a token endpoint (RFC 6749 refresh-token grant) and an
//! introspection endpoint (RFC 7662) that Dovecot's oauth2 passdb asks about
//! every XOAUTH2 login — and [`OAuthMailSystem`], a private Dovecot + Postfix
//! (tests/harness/start-mail.sh with `OAUTH2_INTROSPECTION_URL`) that trusts
//! exactly this fake.
//!
//! Time is the test's clock: an access token is active until its issue time
//! plus its lifetime *on that clock*, so a test moves time without sleeping,
//! and a client that forgets to refresh is refused by the real Dovecot.
//!
//! Include it with `#[path = "support/fake_oauth.rs"] mod fake_oauth;`.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fake"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use postdesk::clock::SharedClock;
use serde_json::json;

pub const CLIENT_ID: &str = "postdesk-test-client";
pub const CLIENT_SECRET: &str = "postdesk-test-secret";

#[derive(Debug, Clone)]
struct AccessGrant {
    username: String,
    expires_at: i64,
}

#[derive(Debug, Default)]
struct FakeState {
    /// refresh token → account
    refresh_tokens: HashMap<String, String>,
    /// access token → account and expiry
    access_tokens: HashMap<String, AccessGrant>,
    /// Each refresh answer carries a new refresh token; the old one dies.
    rotate: bool,
    lifetime_secs: i64,
    counter: u64,
    /// Every refresh request: (refresh token presented, answered OK).
    refreshes: Vec<(String, bool)>,
    /// Every introspection: (token, active).
    introspections: Vec<(String, bool)>,
}

#[derive(Clone)]
pub struct FakeOAuth {
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
    clock: SharedClock,
}

impl FakeOAuth {
    /// Starts the fake; access tokens live `lifetime_secs` on `clock`.
    pub async fn start(clock: SharedClock, lifetime_secs: i64) -> FakeOAuth {
        let state = Arc::new(Mutex::new(FakeState {
            lifetime_secs,
            ..FakeState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeOAuth {
            base_url,
            state,
            clock,
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/introspect", post(introspect))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.base_url)
    }

    /// A new grant for `username`: its refresh token.
    pub fn grant(&self, username: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.counter += 1;
        let token = format!("rt-{}-{}", s.counter, random());
        s.refresh_tokens.insert(token.clone(), username.to_string());
        token
    }

    pub fn set_rotate(&self, rotate: bool) {
        self.state.lock().unwrap().rotate = rotate;
    }

    /// Revokes every grant and every access token issued so far (what an
    /// administrator revoking the app's consent does).
    pub fn revoke_all(&self) {
        let mut s = self.state.lock().unwrap();
        s.refresh_tokens.clear();
        s.access_tokens.clear();
    }

    /// Refresh requests so far: (refresh token presented, answered OK).
    pub fn refreshes(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().refreshes.clone()
    }

    /// Introspections so far: (access token, active).
    pub fn introspections(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().introspections.clone()
    }

    /// Is `refresh_token` currently valid?
    pub fn is_live_refresh_token(&self, refresh_token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .refresh_tokens
            .contains_key(refresh_token)
    }
}

fn random() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

async fn token(
    State(fake): State<FakeOAuth>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let now = fake.clock.now_millis();
    let mut s = fake.state.lock().unwrap();
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        s.refreshes.push((presented, false));
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(username) = s.refresh_tokens.get(&presented).cloned() else {
        s.refreshes.push((presented, false));
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "AADSTS70000: revoked"})),
        )
            .into_response();
    };
    s.refreshes.push((presented.clone(), true));
    s.counter += 1;
    let access = format!("at-{}-{}", s.counter, random());
    let lifetime = s.lifetime_secs;
    s.access_tokens.insert(
        access.clone(),
        AccessGrant {
            username: username.clone(),
            expires_at: now + lifetime * 1000,
        },
    );
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": form.get("scope").cloned().unwrap_or_default(),
    });
    if s.rotate {
        s.refresh_tokens.remove(&presented);
        let rotated = format!("rt-{}-{}", s.counter, random());
        s.refresh_tokens.insert(rotated.clone(), username);
        answer["refresh_token"] = json!(rotated);
    }
    Json(answer).into_response()
}

async fn introspect(
    State(fake): State<FakeOAuth>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let now = fake.clock.now_millis();
    let mut s = fake.state.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    let grant = s
        .access_tokens
        .get(&token)
        .filter(|g| now < g.expires_at)
        .cloned();
    s.introspections.push((token, grant.is_some()));
    match grant {
        Some(g) => Json(json!({"active": true, "username": g.username})).into_response(),
        None => Json(json!({"active": false})).into_response(),
    }
}

/// A private Dovecot + Postfix whose XOAUTH2 logins are checked by a
/// [`FakeOAuth`]; stopped and deleted when dropped.
pub struct OAuthMailSystem {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub smtp_port: u16,
    pub submission_port: u16,
    pub ca: PathBuf,
    pub password: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/harness")
        .join(script)
}

impl OAuthMailSystem {
    /// Starts it (needs root for Postfix, like tests/run.sh).
    pub fn start(fake: &FakeOAuth) -> OAuthMailSystem {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-oauth-mail.")
            .tempdir()
            .unwrap();
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let output = std::process::Command::new("bash")
            .arg(harness("start-mail.sh"))
            .arg(dir.path())
            .env("OAUTH2_INTROSPECTION_URL", fake.introspection_url())
            .env("IMAP_PORT", ports[0].to_string())
            .env("IMAPS_PORT", ports[1].to_string())
            .env("LMTP_PORT", ports[2].to_string())
            .env("SMTP_PORT", ports[3].to_string())
            .env("SUBMISSION_PORT", ports[4].to_string())
            .env("SUBMISSIONS_PORT", ports[5].to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bash runs");
        let system = OAuthMailSystem {
            imap_port: ports[0],
            smtp_port: ports[3],
            submission_port: ports[4],
            ca: dir.path().join("tls/ca.pem"),
            password: "test-pw".into(),
            dir,
        };
        assert!(
            output.status.success(),
            "start-mail.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            system
                .dir
                .path()
                .join("spool/postfix/pid/master.pid")
                .exists(),
            "Postfix did not start (it needs root, like tests/run.sh)"
        );
        system
    }

    /// The connection facts in the shape of the shared harness's.
    pub fn servers(&self) -> crate::common::MailServers {
        crate::common::MailServers {
            dir: self.dir.path().to_path_buf(),
            imap_port: self.imap_port,
            imaps_port: 0,
            smtp_port: self.smtp_port,
            ca: self.ca.clone(),
            password: self.password.clone(),
        }
    }

    /// Kicks every IMAP session of `user` (their clients must sign in again).
    pub fn kick(&self, user: &str) {
        let status = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["kick", user])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("doveadm runs");
        assert!(status.success(), "doveadm kick failed");
    }
}

impl Drop for OAuthMailSystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(harness("stop-mail.sh"))
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
