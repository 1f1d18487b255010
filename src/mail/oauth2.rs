//! OAuth2 for the mail accounts: XOAUTH2 sign-in to IMAP and SMTP with an
//! access token got from a refresh token.
//!
//! One [`TokenManager`] per grant — a token endpoint, a client and an
//! account — shared by every mailbox and the SMTP sender that use the same
//! grant, so they share one cached access token and one refresh at a time
//! (two refreshes racing with a rotating refresh token would revoke each
//! other). An access token is used until less than 5 minutes or a tenth of
//! its lifetime, whichever is less, remain; then it is refreshed.
//!
//! A refresh token the endpoint rotates is stored, encrypted, in the
//! database before the new access token is used, and wins over the
//! configured one from then on — until a *different* token is configured
//! (a new grant), which wins again. When the endpoint answers
//! `invalid_grant` the grant is revoked: the credential's metric drops to 0,
//! `/readyz` names its mailboxes, and the operators (`[[staff]]`) get one
//! mail per refused refresh token, queued in the transaction that records
//! the revocation. The callers (IMAP watcher, outbox sender) keep retrying
//! with their backoff; a new token in the config (or in
//! `refresh_token_file`, read at every refresh) recovers the grant.
//!
//! Tokens never reach a log, an error message or the database in clear.
//!
//! Several replicas sharing one grant each refresh on their own; with a
//! rotating endpoint that needs the leases of issue 6 (not built yet).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use ring::aead;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::{Millis, SharedClock};
use crate::config::{Config, LinkKey, OAuth2Config};
use crate::db::{oauth_tokens, Db, DbError};
use crate::domain::EmailAddress;
use crate::mail::outgoing::{MailRequest, Mailer, QueueError};
use crate::metrics::Metrics;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Refresh when less than this remains of an access token...
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// ...or less than 1/this of its lifetime.
const REFRESH_FRACTION: i64 = 10;
/// When the endpoint does not say how long a token lives.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The endpoint refused the refresh token (`invalid_grant`): revoked,
    /// expired, or the user's password changed. A new grant is needed.
    #[error("OAuth2 grant `{credential}` was refused by the token endpoint (invalid_grant): a new refresh token is needed")]
    Revoked { credential: String },
    /// The endpoint answered with another OAuth2 error (e.g. `invalid_client`).
    #[error("OAuth2 token endpoint of `{credential}` answered HTTP {status}: {error}")]
    Refused {
        credential: String,
        status: u16,
        error: String,
    },
    /// The endpoint could not be reached or answered nonsense: try later.
    #[error("OAuth2 token endpoint of `{credential}`: {message}")]
    Endpoint { credential: String, message: String },
    #[error("OAuth2 `{credential}`: {source}")]
    RefreshToken {
        credential: String,
        source: crate::config::oauth2::RefreshTokenError,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("queueing the operators' notice: {0}")]
    Queue(#[from] QueueError),
}

/// An access token, to be used before it expires. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The XOAUTH2 initial response (Google's and Microsoft's SASL mechanism).
pub fn xoauth2_response(user: &str, token: &AccessToken) -> String {
    format!("user={user}\x01auth=Bearer {}\x01\x01", token.0)
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    /// Refresh from this time on.
    refresh_at: Millis,
}

/// Whom to tell about a revoked grant.
#[derive(Clone)]
pub struct Notices {
    pub mailer: Mailer,
    pub operators: Vec<EmailAddress>,
    pub outbox_ready: Arc<Notify>,
}

/// Access tokens of one grant.
pub struct TokenManager {
    /// Name in logs, metrics and mails: the first mailbox using it, or `smtp`.
    name: String,
    /// Mailbox names (and `smtp`) that sign in with it.
    used_by: Vec<String>,
    /// The account signed in as (never logged).
    username: String,
    grant_key: String,
    settings: OAuth2Config,
    http: reqwest::Client,
    db: Db,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    notices: Notices,
    cipher: TokenCipher,
    /// Held across a refresh: one refresh at a time.
    cache: tokio::sync::Mutex<Option<Cached>>,
    revoked: AtomicBool,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("name", &self.name)
            .field("used_by", &self.used_by)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer, as far as it is read.
enum Grant {
    Issued {
        access_token: AccessToken,
        lifetime: Duration,
        refresh_token: Option<String>,
    },
    InvalidGrant,
}

impl TokenManager {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn used_by(&self) -> &[String] {
        &self.used_by
    }

    /// The account to sign in as.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// True from an `invalid_grant` until a refresh succeeds again.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// A valid access token: the cached one, or a fresh one when it is near
    /// its expiry.
    pub async fn access_token(&self) -> Result<AccessToken, OAuthError> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now_millis();
        if let Some(c) = cache.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(c.token.clone());
        }
        *cache = None;
        let fresh = self.refresh(now).await;
        self.metrics
            .oauth_refreshes(
                &self.name,
                match &fresh {
                    Ok(_) => "ok",
                    Err(OAuthError::Revoked { .. }) => "invalid_grant",
                    Err(_) => "error",
                },
            )
            .inc();
        let cached = fresh?;
        let token = cached.token.clone();
        *cache = Some(cached);
        Ok(token)
    }

    /// The server refused `token` although it should be valid (revoked
    /// early, or the clocks disagree): the next sign-in refreshes.
    pub async fn forget(&self, token: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == token) {
            *cache = None;
        }
    }

    /// Reads the stored state of the grant (revoked or not) at startup.
    pub async fn load(&self) -> Result<(), OAuthError> {
        let configured = self.configured_refresh_token()?;
        let mut conn = self.db.conn().await?;
        let stored = oauth_tokens::get(&mut conn, &self.grant_key).await?;
        let current = self.current_refresh_token(&configured, stored.as_ref());
        let revoked = stored
            .and_then(|s| s.revoked_fingerprint)
            .is_some_and(|fp| fp == fingerprint(&current));
        self.set_revoked(revoked);
        Ok(())
    }

    fn set_revoked(&self, revoked: bool) {
        self.revoked.store(revoked, Ordering::SeqCst);
        self.metrics
            .oauth_grant_valid(&self.name)
            .set(i64::from(!revoked));
    }

    fn configured_refresh_token(&self) -> Result<String, OAuthError> {
        self.settings
            .configured_refresh_token()
            .map_err(|source| OAuthError::RefreshToken {
                credential: self.name.clone(),
                source,
            })
    }

    /// The stored (rotated) refresh token if it descends from the configured
    /// one and can be decrypted, else the configured one.
    fn current_refresh_token(
        &self,
        configured: &str,
        stored: Option<&oauth_tokens::StoredGrant>,
    ) -> String {
        let Some(stored) = stored else {
            return configured.to_string();
        };
        if stored.origin_fingerprint != fingerprint(configured) {
            // A different token was configured since: a new grant.
            return configured.to_string();
        }
        match stored.refresh_token.as_deref() {
            None => configured.to_string(),
            Some(sealed) => match self.cipher.open(sealed, &self.grant_key) {
                Some(token) => token,
                None => {
                    tracing::warn!(
                        credential = %self.name,
                        "the stored refresh token cannot be decrypted (were [[links.keys]] \
                         replaced?); using the configured one"
                    );
                    configured.to_string()
                }
            },
        }
    }

    async fn refresh(&self, now: Millis) -> Result<Cached, OAuthError> {
        let configured = self.configured_refresh_token()?;
        let origin = fingerprint(&configured);
        let stored = {
            let mut conn = self.db.conn().await?;
            oauth_tokens::get(&mut conn, &self.grant_key).await?
        };
        let refresh_token = self.current_refresh_token(&configured, stored.as_ref());
        match self.request(&refresh_token).await? {
            Grant::InvalidGrant => {
                self.record_revoked(&origin, &fingerprint(&refresh_token), now)
                    .await?;
                Err(OAuthError::Revoked {
                    credential: self.name.clone(),
                })
            }
            Grant::Issued {
                access_token,
                lifetime,
                refresh_token: rotated,
            } => {
                let mut conn = self.db.conn().await?;
                match rotated.filter(|r| *r != refresh_token) {
                    // Durable before the new access token is used: the old
                    // refresh token may already be dead.
                    Some(rotated) => {
                        let sealed = self.cipher.seal(&rotated, &self.grant_key);
                        oauth_tokens::save_rotated(
                            &mut conn,
                            &self.grant_key,
                            &self.name,
                            &origin,
                            &sealed,
                            now,
                        )
                        .await?;
                        tracing::info!(credential = %self.name, "OAuth2 refresh token rotated and saved");
                    }
                    None => {
                        oauth_tokens::clear_revoked(&mut conn, &self.grant_key, now).await?;
                    }
                }
                if self.is_revoked() {
                    tracing::info!(credential = %self.name, "OAuth2 grant works again");
                }
                self.set_revoked(false);
                let lifetime_ms = lifetime.as_millis() as i64;
                let margin =
                    (REFRESH_MARGIN.as_millis() as i64).min(lifetime_ms / REFRESH_FRACTION);
                Ok(Cached {
                    token: access_token,
                    refresh_at: now + lifetime_ms - margin,
                })
            }
        }
    }

    /// Marks the grant revoked; the first time for this refresh token, the
    /// operators' mail is queued in the same transaction.
    async fn record_revoked(
        &self,
        origin: &str,
        refused: &str,
        now: Millis,
    ) -> Result<(), OAuthError> {
        self.set_revoked(true);
        let mut tx = self.db.begin().await?;
        let first =
            oauth_tokens::mark_revoked(&mut tx, &self.grant_key, &self.name, origin, refused, now)
                .await?;
        if first {
            tracing::error!(
                credential = %self.name,
                used_by = ?self.used_by,
                "OAuth2 grant revoked (invalid_grant): a new refresh token must be configured"
            );
            if self.notices.operators.is_empty() {
                tracing::warn!(credential = %self.name, "no [[staff]] to tell about the revoked grant");
            } else {
                let data = json!({
                    "credential": self.name,
                    "used_by": self.used_by.join(", "),
                    "account": self.username,
                    "provider": self.settings.provider.as_str(),
                });
                self.notices
                    .mailer
                    .queue(
                        &mut tx,
                        MailRequest::notice(
                            "oauth-revoked",
                            "oauth_revoked",
                            data,
                            self.notices.operators.clone(),
                        ),
                        now,
                    )
                    .await?;
            }
        }
        tx.commit().await.map_err(DbError::from)?;
        if first {
            self.notices.outbox_ready.notify_one();
        }
        Ok(())
    }

    /// One refresh-token grant request (RFC 6749 §6).
    async fn request(&self, refresh_token: &str) -> Result<Grant, OAuthError> {
        let endpoint = |message: String| OAuthError::Endpoint {
            credential: self.name.clone(),
            message,
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &self.settings.client_id),
        ];
        if let Some(secret) = &self.settings.client_secret {
            form.push(("client_secret", secret));
        }
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(&self.settings.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            // reqwest's message names the URL, never the form.
            .map_err(|e| endpoint(format!("request failed: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| endpoint(format!("reading the answer: {e}")))?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| endpoint(format!("HTTP {status}: the answer is not JSON")))?;
        if !status.is_success() {
            let error = value
                .get("error")
                .and_then(|e| e.as_str())
                .filter(|e| e.bytes().all(|b| b.is_ascii_graphic()) && e.len() <= 64)
                .unwrap_or("(no error code)")
                .to_string();
            if error == "invalid_grant" {
                return Ok(Grant::InvalidGrant);
            }
            if status.is_server_error() {
                return Err(endpoint(format!("HTTP {status}: {error}")));
            }
            return Err(OAuthError::Refused {
                credential: self.name.clone(),
                status: status.as_u16(),
                error,
            });
        }
        parse_issued(&value).map_err(|m| endpoint(format!("HTTP {status}: {m}")))
    }
}

/// Reads a successful token answer into typed values.
fn parse_issued(value: &serde_json::Value) -> Result<Grant, String> {
    let token_text = |name: &str| -> Result<Option<String>, String> {
        match value.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s))
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(format!("`{name}` is not a token")),
        }
    };
    let access_token = token_text("access_token")?.ok_or("no `access_token` in the answer")?;
    if let Some(kind) = value.get("token_type").and_then(|t| t.as_str()) {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(format!("token_type `{kind}` is not Bearer"));
        }
    }
    // A number, or (some servers) a string of digits.
    let lifetime = match value.get("expires_in") {
        None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
        Some(v) => {
            let secs = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|s| *s > 0)
                .ok_or("`expires_in` is not a number of seconds")?;
            Duration::from_secs(secs)
        }
    };
    Ok(Grant::Issued {
        access_token: AccessToken(access_token),
        lifetime,
        refresh_token: token_text("refresh_token")?,
    })
}

/// Hex SHA-256 of a refresh token: recognises a token without storing it.
fn fingerprint(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"postdesk oauth2 refresh token\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// The grant's identity: token endpoint, client and account.
fn grant_key(settings: &OAuth2Config, username: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        settings.token_url.as_str(),
        settings.client_id.as_str(),
        &username.to_ascii_lowercase(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    hex::encode(h.finalize())
}

/// Encrypts stored refresh tokens (ChaCha20-Poly1305) under keys derived
/// from `[[links.keys]]`: the first seals, any opens, so a key rotation that
/// keeps the old key listed keeps the stored token readable.
struct TokenCipher {
    keys: Vec<(String, aead::LessSafeKey)>,
    rng: ring::rand::SystemRandom,
}

const SEALED_PREFIX: &str = "v1";

impl TokenCipher {
    fn new(link_keys: &[LinkKey]) -> Self {
        let keys = link_keys
            .iter()
            .map(|k| {
                let mut mac = Hmac::<Sha256>::new_from_slice(&k.secret)
                    .expect("HMAC takes keys of any length");
                mac.update(b"postdesk oauth2 refresh token encryption v1");
                let derived = mac.finalize().into_bytes();
                let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &derived)
                    .expect("a 32-byte key");
                (k.id.clone(), aead::LessSafeKey::new(key))
            })
            .collect();
        Self {
            keys,
            rng: ring::rand::SystemRandom::new(),
        }
    }

    /// `v1.<key id>.<base64url(nonce | ciphertext | tag)>`, bound to `aad`.
    fn seal(&self, plain: &str, aad: &str) -> String {
        use ring::rand::SecureRandom;
        // Config validation guarantees at least one link key.
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; aead::NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system random generator works");
        let mut data = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad.as_bytes()),
            &mut data,
        )
        .expect("sealing a short token cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!(
            "{SEALED_PREFIX}.{id}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    fn open(&self, sealed: &str, aad: &str) -> Option<String> {
        let mut parts = sealed.splitn(3, '.');
        if parts.next()? != SEALED_PREFIX {
            return None;
        }
        let id = parts.next()?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next()?)
            .ok()?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(aead::NONCE_LEN);
        let (_, key) = self.keys.iter().find(|(k, _)| k == id)?;
        let mut data = data.to_vec();
        let plain = key
            .open_in_place(
                aead::Nonce::try_assume_unique_for_key(nonce).ok()?,
                aead::Aad::from(aad.as_bytes()),
                &mut data,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// Every grant of the configuration, each with its one manager.
#[derive(Debug, Default)]
pub struct OAuthGrants {
    managers: Vec<Arc<TokenManager>>,
    /// mailbox name → index into `managers`
    mailboxes: Vec<(String, usize)>,
    smtp: Option<usize>,
}

impl OAuthGrants {
    /// One manager per distinct grant among the mailboxes and `[smtp]`.
    pub fn build(
        config: &Config,
        db: &Db,
        clock: &SharedClock,
        metrics: &Arc<Metrics>,
        notices: Notices,
    ) -> Result<OAuthGrants, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("postdesk/", env!("CARGO_PKG_VERSION")))
            // A token answer is never a redirect; following one would carry
            // the refresh token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OAuthError::Endpoint {
                credential: "(all)".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let mut grants = OAuthGrants::default();
        // Who signs in with which grant: `None` is `[smtp]`.
        let users = config
            .mailboxes
            .iter()
            .filter_map(|m| {
                Some((
                    Some(m.name.as_str()),
                    m.oauth2.as_ref()?,
                    m.username.as_str(),
                ))
            })
            .chain(
                config
                    .smtp
                    .oauth2
                    .as_ref()
                    .map(|o| (None, o, config.smtp.username.as_deref().unwrap_or_default())),
            );
        let mut keys: Vec<String> = Vec::new();
        let mut parts: Vec<(OAuth2Config, String, Vec<String>)> = Vec::new();
        for (mailbox, settings, username) in users {
            let key = grant_key(settings, username);
            let i = match keys.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    keys.push(key);
                    parts.push((settings.clone(), username.to_string(), Vec::new()));
                    parts.len() - 1
                }
            };
            match mailbox {
                Some(name) => {
                    parts[i].2.push(name.to_string());
                    grants.mailboxes.push((name.to_string(), i));
                }
                None => {
                    parts[i].2.push("smtp".to_string());
                    grants.smtp = Some(i);
                }
            }
        }
        for (grant_key, (settings, username, used_by)) in keys.into_iter().zip(parts) {
            let manager = TokenManager {
                name: used_by[0].clone(),
                used_by,
                username,
                grant_key,
                settings,
                http: http.clone(),
                db: db.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                notices: notices.clone(),
                cipher: TokenCipher::new(&config.link_keys),
                cache: tokio::sync::Mutex::new(None),
                revoked: AtomicBool::new(false),
            };
            manager.set_revoked(false);
            grants.managers.push(Arc::new(manager));
        }
        Ok(grants)
    }

    /// Reads each grant's stored state (revoked or not).
    pub async fn load(&self) -> Result<(), OAuthError> {
        for m in &self.managers {
            m.load().await?;
        }
        Ok(())
    }

    pub fn for_mailbox(&self, name: &str) -> Option<Arc<TokenManager>> {
        self.mailboxes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| self.managers[*i].clone())
    }

    pub fn for_smtp(&self) -> Option<Arc<TokenManager>> {
        self.smtp.map(|i| self.managers[i].clone())
    }

    pub fn all(&self) -> &[Arc<TokenManager>] {
        &self.managers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(ids: &[(&str, &str)]) -> TokenCipher {
        TokenCipher::new(
            &ids.iter()
                .map(|(id, secret)| LinkKey {
                    id: id.to_string(),
                    secret: secret.as_bytes().to_vec(),
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_row() {
        let c = cipher(&[("new", "secret-new-0123456789abcdef0123456789")]);
        let sealed = c.seal("1//refresh-token", "grant-a");
        assert!(!sealed.contains("refresh-token"), "{sealed}");
        assert_eq!(
            c.open(&sealed, "grant-a").as_deref(),
            Some("1//refresh-token")
        );
        assert_eq!(c.open(&sealed, "grant-b"), None, "bound to its row");
        // After a rotation that keeps the old key listed, it still opens.
        let rotated = cipher(&[
            ("newer", "secret-newer-0123456789abcdef012345678"),
            ("new", "secret-new-0123456789abcdef0123456789"),
        ]);
        assert_eq!(
            rotated.open(&sealed, "grant-a").as_deref(),
            Some("1//refresh-token")
        );
        let other = cipher(&[("new", "another-secret-0123456789abcdef01234")]);
        assert_eq!(other.open(&sealed, "grant-a"), None);
    }

    #[test]
    fn token_answers_become_typed_values() {
        let ok = parse_issued(&json!({"access_token": "at-1", "token_type": "Bearer",
            "expires_in": "120", "refresh_token": "rt-2"}))
        .unwrap();
        let Grant::Issued {
            access_token,
            lifetime,
            refresh_token,
        } = ok
        else {
            panic!("issued")
        };
        assert_eq!(access_token.secret(), "at-1");
        assert_eq!(lifetime, Duration::from_secs(120));
        assert_eq!(refresh_token.as_deref(), Some("rt-2"));
        assert!(parse_issued(&json!({"token_type": "Bearer"})).is_err());
        assert!(parse_issued(&json!({"access_token": "a b"})).is_err());
        assert!(parse_issued(&json!({"access_token": "a", "token_type": "mac"})).is_err());
        assert!(format!("{:?}", AccessToken("at-secret".into())).contains("redacted"));
    }

    #[test]
    fn the_xoauth2_response_has_the_sasl_shape() {
        assert_eq!(
            xoauth2_response("a@example.test", &AccessToken("tok".into())),
            "user=a@example.test\x01auth=Bearer tok\x01\x01"
        );
    }
}
