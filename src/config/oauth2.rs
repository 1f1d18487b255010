//! `[mailbox.oauth2]` and `[smtp.oauth2]`: signing in to the mail servers
//! with XOAUTH2 and an OAuth2 refresh token instead of a password. Providers
//! `microsoft` and `google` are presets (token endpoint, scope, and the IMAP
//! and SMTP servers); `custom` names its token endpoint itself.
//!
//! The refresh token may come from a file (`refresh_token_file`): that file
//! is read again whenever the token is needed, so an operator recovers a
//! revoked grant by writing a new token into it, without a restart.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Who issues the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuth2Provider {
    /// Microsoft 365 / Exchange Online (Entra ID).
    Microsoft,
    /// Google Workspace / Gmail.
    Google,
    /// Any other OAuth2 server (`token_url` required).
    Custom,
}

impl OAuth2Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Microsoft => "microsoft",
            Self::Google => "google",
            Self::Custom => "custom",
        }
    }

    /// The provider's IMAP server: host, port (implicit TLS).
    pub fn imap_server(self) -> Option<(&'static str, u16)> {
        match self {
            Self::Microsoft => Some(("outlook.office365.com", 993)),
            Self::Google => Some(("imap.gmail.com", 993)),
            Self::Custom => None,
        }
    }

    /// The provider's SMTP submission server: host, port (STARTTLS).
    pub fn smtp_server(self) -> Option<(&'static str, u16)> {
        match self {
            Self::Microsoft => Some(("smtp.office365.com", 587)),
            Self::Google => Some(("smtp.gmail.com", 587)),
            Self::Custom => None,
        }
    }

    fn default_scope(self) -> Option<&'static str> {
        match self {
            // One token serves both: IMAP and SMTP live on the same resource.
            Self::Microsoft => Some(
                "https://outlook.office.com/IMAP.AccessAsUser.All \
                 https://outlook.office.com/SMTP.Send offline_access",
            ),
            Self::Google => Some("https://mail.google.com/"),
            Self::Custom => None,
        }
    }
}

/// Where the refresh token comes from.
#[derive(Clone)]
enum RefreshTokenSource {
    Inline(String),
    /// Read at every use; `key` is the config key, for messages.
    File {
        path: PathBuf,
        key: String,
    },
}

/// A validated OAuth2 grant of a mail account.
#[derive(Clone)]
pub struct OAuth2Config {
    pub provider: OAuth2Provider,
    /// The token endpoint (https; plain http only for localhost).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Space-separated scopes asked for; `None`: the grant's own.
    pub scope: Option<String>,
    refresh_token: RefreshTokenSource,
}

impl std::fmt::Debug for OAuth2Config {
    // Never print secrets, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Config")
            .field("provider", &self.provider)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The configured refresh token could not be read.
#[derive(Debug, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct RefreshTokenError {
    pub key: String,
    pub message: String,
}

impl OAuth2Config {
    /// The configured refresh token, read again from its file if it has one.
    pub fn configured_refresh_token(&self) -> Result<String, RefreshTokenError> {
        match &self.refresh_token {
            RefreshTokenSource::Inline(token) => Ok(token.clone()),
            RefreshTokenSource::File { path, key } => read_token_file(path, key),
        }
    }
}

fn read_token_file(path: &PathBuf, key: &str) -> Result<String, RefreshTokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| RefreshTokenError {
        key: key.to_string(),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let token = text.trim().to_string();
    if !is_token_text(&token) {
        return Err(RefreshTokenError {
            key: key.to_string(),
            message: format!(
                "{} must hold one refresh token (printable ASCII, no spaces)",
                path.display()
            ),
        });
    }
    Ok(token)
}

/// A token as OAuth2 servers issue them (RFC 6749 appendix A: VSCHAR).
fn is_token_text(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    provider: String,
    /// Microsoft only: the directory (tenant) ID or domain; default `common`.
    tenant: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    refresh_token_file: Option<PathBuf>,
    token_url: Option<String>,
    scope: Option<String>,
}

fn parse_provider(s: &str) -> Result<OAuth2Provider, String> {
    match s.trim() {
        "microsoft" => Ok(OAuth2Provider::Microsoft),
        "google" => Ok(OAuth2Provider::Google),
        "custom" => Ok(OAuth2Provider::Custom),
        other => Err(format!("`{other}` is not one of microsoft, google, custom")),
    }
}

/// Is `url` acceptable for a token endpoint: https, or http on loopback.
pub(super) fn is_secure_or_local(url: &str) -> bool {
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| {
            url.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    (url.starts_with("https://") && url.len() > "https://".len()) || local
}

/// Validates `raw` found at `at` (e.g. `mailbox[0].oauth2`).
pub(super) fn validate(
    raw: RawOAuth2,
    at: &str,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<OAuth2Config, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let provider = parse_provider(&raw.provider).map_err(|e| err(&key("provider"), e))?;
    if raw.tenant.is_some() && provider != OAuth2Provider::Microsoft {
        return Err(err(
            &key("tenant"),
            "only for provider = \"microsoft\"".into(),
        ));
    }
    let token_url = match (raw.token_url.map(|u| u.trim().to_string()), provider) {
        (Some(url), _) => url,
        (None, OAuth2Provider::Microsoft) => {
            let tenant = raw.tenant.as_deref().map(str::trim).unwrap_or("common");
            if tenant.is_empty()
                || !tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            {
                return Err(err(
                    &key("tenant"),
                    format!("`{tenant}` is not a tenant ID or domain"),
                ));
            }
            format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
        }
        (None, OAuth2Provider::Google) => "https://oauth2.googleapis.com/token".into(),
        (None, OAuth2Provider::Custom) => {
            return Err(err(
                &key("token_url"),
                "missing: provider = \"custom\" needs the token endpoint's address".into(),
            ))
        }
    };
    if !is_secure_or_local(&token_url) {
        return Err(err(
            &key("token_url"),
            "must be an https:// address (plain http:// only for localhost)".into(),
        ));
    }
    let client_id = raw.client_id.trim().to_string();
    if !is_token_text(&client_id) {
        return Err(err(&key("client_id"), "must not be empty".into()));
    }
    let client_secret = raw
        .client_secret
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let refresh_token = match (raw.refresh_token, raw.refresh_token_file) {
        (Some(_), Some(_)) => {
            return Err(err(
                &key("refresh_token_file"),
                "set refresh_token or refresh_token_file, not both".into(),
            ))
        }
        (Some(token), None) => {
            let token = token.trim().to_string();
            if !is_token_text(&token) {
                return Err(err(
                    &key("refresh_token"),
                    "must be one token (printable ASCII, no spaces)".into(),
                ));
            }
            RefreshTokenSource::Inline(token)
        }
        (None, Some(path)) => {
            let file_key = key("refresh_token_file");
            read_token_file(&path, &file_key).map_err(|e| err(&e.key, e.message))?;
            RefreshTokenSource::File {
                path,
                key: file_key,
            }
        }
        (None, None) => {
            return Err(err(
                &key("refresh_token"),
                "missing: give refresh_token (or refresh_token_file, or the environment \
                 variable)"
                    .into(),
            ))
        }
    };
    let scope = raw
        .scope
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .or_else(|| provider.default_scope().map(str::to_string));
    Ok(OAuth2Config {
        provider,
        token_url,
        client_id,
        client_secret,
        scope,
        refresh_token,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Config, TlsMode};
    use super::*;

    /// A config whose mailbox section is `mailbox` and smtp section `smtp`.
    fn load(mailbox: &str, smtp: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let text = format!(
            r#"
[database]
url = "sqlite://x.db"
[storage]
dir = "/tmp/pd"
[[mailbox]]
name = "support"
address = "support@example.test"
username = "support@example.test"
{mailbox}
[smtp]
from = "Support <support@example.test>"
{smtp}
[web]
listen = "127.0.0.1:8080"
base_url = "http://localhost:8080/"
[[links.keys]]
id = "k1"
secret = "0123456789abcdef0123456789abcdef"
"#
        );
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_with_env(&text, "test.toml", &env)
    }

    fn error(mailbox: &str, smtp: &str) -> String {
        load(mailbox, smtp, &[]).unwrap_err().to_string()
    }

    const PLAIN_SMTP: &str = "host = \"127.0.0.1\"";

    #[test]
    fn microsoft_presets_fill_servers_endpoint_and_scope() {
        let c = load(
            "[mailbox.oauth2]\nprovider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\n\
             client_id = \"app-1\"\nrefresh_token = \"rt-1\"",
            "auth = \"oauth2\"\nusername = \"support@example.test\"\n\
             [smtp.oauth2]\nprovider = \"microsoft\"\nclient_id = \"app-1\"",
            &[("POSTDESK__SMTP__OAUTH2__REFRESH_TOKEN", "rt-env")],
        )
        .unwrap();
        let m = &c.mailboxes[0];
        assert_eq!(
            (m.imap_host.as_str(), m.imap_port),
            ("outlook.office365.com", 993)
        );
        assert_eq!(m.imap_tls, TlsMode::Tls);
        assert!(m.password.is_empty());
        let o = m.oauth2.as_ref().unwrap();
        assert_eq!(
            o.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(o
            .scope
            .as_deref()
            .unwrap()
            .contains("IMAP.AccessAsUser.All"));
        assert_eq!(o.configured_refresh_token().unwrap(), "rt-1");
        assert_eq!(
            (c.smtp.host.as_str(), c.smtp.port),
            ("smtp.office365.com", 587)
        );
        assert_eq!(c.smtp.tls, TlsMode::StartTls);
        let s = c.smtp.oauth2.as_ref().unwrap();
        assert!(s.token_url.contains("/common/"), "default tenant");
        assert_eq!(s.configured_refresh_token().unwrap(), "rt-env");
        assert!(
            !format!("{c:?}").contains("rt-1"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn google_and_custom_grants_load() {
        let c = load(
            "auth = \"oauth2\"\n[mailbox.oauth2]\nprovider = \"google\"\nclient_id = \"g\"\n\
             client_secret = \"s\"\nrefresh_token = \"1//r\"",
            PLAIN_SMTP,
            &[],
        )
        .unwrap();
        let m = &c.mailboxes[0];
        assert_eq!(m.imap_host, "imap.gmail.com");
        let o = m.oauth2.as_ref().unwrap();
        assert_eq!(o.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(o.scope.as_deref(), Some("https://mail.google.com/"));
        assert!(c.smtp.oauth2.is_none());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rt");
        std::fs::write(&file, "rt-from-file\n").unwrap();
        let c = load(
            &format!(
                "imap_host = \"mail.example.test\"\n[mailbox.oauth2]\nprovider = \"custom\"\n\
                 client_id = \"c\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
                 refresh_token_file = \"{}\"",
                file.display()
            ),
            PLAIN_SMTP,
            &[],
        )
        .unwrap();
        let o = c.mailboxes[0].oauth2.clone().unwrap();
        assert_eq!(o.scope, None);
        assert_eq!(o.configured_refresh_token().unwrap(), "rt-from-file");
        // The file is read again at every use: a new grant needs no restart.
        std::fs::write(&file, "rt-new").unwrap();
        assert_eq!(o.configured_refresh_token().unwrap(), "rt-new");
    }

    #[test]
    fn oauth2_errors_name_file_and_key() {
        let custom = "imap_host = \"h\"\n[mailbox.oauth2]\nprovider = \"custom\"\nclient_id = \"c\"\nrefresh_token = \"r\"";
        assert_eq!(
            error(custom, PLAIN_SMTP),
            "test.toml: key `mailbox[0].oauth2.token_url`: missing: provider = \"custom\" needs the token endpoint's address"
        );
        let e = error(
            "[mailbox.oauth2]\nprovider = \"yahoo\"\nclient_id = \"c\"\nrefresh_token = \"r\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2.provider`: `yahoo`"),
            "{e}"
        );
        let e = error(
            "imap_host = \"h\"\n[mailbox.oauth2]\nprovider = \"custom\"\nclient_id = \"c\"\n\
             refresh_token = \"r\"\ntoken_url = \"http://idp.example.test/token\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2.token_url`: must be an https://"),
            "{e}"
        );
        let e = error(
            "[mailbox.oauth2]\nprovider = \"google\"\nclient_id = \"c\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2.refresh_token`: missing"),
            "{e}"
        );
        let e = error("imap_host = \"h\"\nauth = \"oauth2\"", PLAIN_SMTP);
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2`: missing"),
            "{e}"
        );
        let e = error("imap_host = \"h\"", PLAIN_SMTP);
        assert!(
            e.starts_with("test.toml: key `mailbox[0].password`: missing"),
            "{e}"
        );
        let e = error(
            "imap_host = \"h\"\nauth = \"kerberos\"\npassword = \"p\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with(
                "test.toml: key `mailbox[0].auth`: `kerberos` is not one of password, oauth2"
            ),
            "{e}"
        );
        let e = error(
            "imap_host = \"h\"\npassword = \"p\"",
            "[smtp.oauth2]\nprovider = \"google\"\nclient_id = \"c\"\nrefresh_token = \"r\"",
        );
        assert!(
            e.starts_with("test.toml: key `smtp.username`: missing"),
            "{e}"
        );
        let e = error(
            "imap_host = \"h\"\npassword = \"p\"\n[mailbox.oauth2]\nprovider = \"google\"\nclient_id = \"c\"\ntenant = \"t\"\nrefresh_token = \"r\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2.tenant`: only for"),
            "{e}"
        );
        let e = error(
            "imap_host = \"h\"\n[mailbox.oauth2]\nprovider = \"google\"\nclient_id = \"c\"\n\
             refresh_token_file = \"/nonexistent/rt\"",
            PLAIN_SMTP,
        );
        assert!(
            e.starts_with("test.toml: key `mailbox[0].oauth2.refresh_token_file`: cannot read"),
            "{e}"
        );
    }
}
