//! SMTP sessions for the outbox sender, through lettre's connection type.
//!
//! We open the TCP stream ourselves to set `TCP_NODELAY`: lettre 0.11 does not,
//! and Nagle's algorithm with delayed ACKs stalls every message ~40 ms, which
//! caps a session at ~23 mails/s.
//!
//! With `[smtp] auth = "oauth2"` a session signs in with XOAUTH2 and an
//! access token of the grant's [`TokenManager`]; a refused or revoked token
//! fails the session like any connection error, and the outbox retries later.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::oauth2::{OAuthError, TokenManager};
use crate::config::{SmtpConfig, TlsMode};

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("SMTP connect to {host}:{port}: {message}")]
    Connect {
        host: String,
        port: u16,
        message: String,
    },
    #[error("SMTP: {0}")]
    Protocol(#[from] lettre::transport::smtp::Error),
    #[error("SMTP: {0}")]
    Address(String),
    /// No access token for XOAUTH2 (endpoint down, or the grant revoked).
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

impl SmtpError {
    /// A 5xx answer: sending again will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SmtpError::Protocol(e) if e.is_permanent())
            || matches!(self, SmtpError::Address(_))
    }
}

/// Implicit-TLS stream in a shape lettre accepts as an existing transport.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// Opens SMTP sessions as configured.
#[derive(Clone)]
pub struct SmtpConnector {
    config: SmtpConfig,
    hello: ClientId,
    /// Signs in with XOAUTH2 when `[smtp] auth = "oauth2"`.
    tokens: Option<Arc<TokenManager>>,
}

impl SmtpConnector {
    pub fn new(config: SmtpConfig) -> Self {
        let hello = ClientId::Domain(config.from.email.domain().to_string());
        Self {
            config,
            hello,
            tokens: None,
        }
    }

    /// Signs in with access tokens of `tokens` (the grant of `[smtp.oauth2]`).
    pub fn with_oauth(mut self, tokens: Option<Arc<TokenManager>>) -> Self {
        self.tokens = tokens;
        self
    }

    fn connect_error(&self, message: impl ToString) -> SmtpError {
        SmtpError::Connect {
            host: self.config.host.clone(),
            port: self.config.port,
            message: message.to_string(),
        }
    }

    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let c = &self.config;
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            TcpStream::connect((c.host.as_str(), c.port)),
        )
        .await
        .map_err(|_| self.connect_error("timed out"))?
        .map_err(|e| self.connect_error(e))?;
        tcp.set_nodelay(true).map_err(|e| self.connect_error(e))?;
        let mut conn = match c.tls {
            TlsMode::Tls => {
                let tls_config = crate::tls::client_config(c.ca_file.as_deref())
                    .map_err(|e| self.connect_error(e))?;
                let tls = crate::tls::wrap(tcp, &c.host, tls_config)
                    .await
                    .map_err(|e| self.connect_error(e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsTcp(tls)), &self.hello)
                    .await?
            }
            TlsMode::StartTls => {
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                let mut params = TlsParameters::builder(c.host.clone());
                if let Some(ca) = &c.ca_file {
                    let pem = std::fs::read(ca)
                        .map_err(|e| self.connect_error(format!("CA file: {e}")))?;
                    params = params.add_root_certificate(
                        Certificate::from_pem(&pem)
                            .map_err(|e| self.connect_error(format!("CA file: {e}")))?,
                    );
                }
                let params = params.build_rustls().map_err(|e| self.connect_error(e))?;
                conn.starttls(params, &self.hello).await?;
                conn
            }
            TlsMode::None => {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        match (&c.oauth2, &self.tokens) {
            (Some(_), Some(tokens)) => {
                let user = c.username.clone().unwrap_or_default();
                let token = tokens.access_token().await?;
                let signed_in = conn
                    .auth(
                        &[Mechanism::Xoauth2],
                        &Credentials::new(user, token.secret().to_string()),
                    )
                    .await;
                if let Err(e) = signed_in {
                    // Refused although unexpired: the next try gets a new one.
                    tokens.forget(&token).await;
                    conn.abort().await;
                    return Err(e.into());
                }
            }
            (Some(_), None) => {
                return Err(
                    self.connect_error("[smtp] signs in with OAuth2 and has no token manager")
                )
            }
            (None, _) => {
                if let (Some(user), Some(password)) = (&c.username, &c.password) {
                    conn.auth(
                        &[Mechanism::Plain, Mechanism::Login],
                        &Credentials::new(user.clone(), password.clone()),
                    )
                    .await?;
                }
            }
        }
        Ok(conn)
    }
}

/// Sends one message over an open session. `before_commit` runs once the
/// whole message is on the wire and only the final `.` is left to write —
/// the point after which the server has the mail even if we die (see
/// `jobs::send_journal`). It does not run when sending fails earlier.
///
/// This is lettre's `send` split open at that point; the commands are still
/// lettre's. Like lettre, a failed transaction aborts the session, so the
/// next mail opens a fresh one.
pub async fn send(
    conn: &mut AsyncSmtpConnection,
    envelope_from: &str,
    recipients: &[String],
    raw: &[u8],
    before_commit: impl FnOnce(),
) -> Result<(), SmtpError> {
    let result = transaction(conn, envelope_from, recipients, raw, before_commit).await;
    if result.is_err() {
        conn.abort().await;
    }
    result
}

async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope_from: &str,
    recipients: &[String],
    raw: &[u8],
    before_commit: impl FnOnce(),
) -> Result<(), SmtpError> {
    let from: Address = envelope_from
        .parse()
        .map_err(|e| SmtpError::Address(format!("envelope sender: {e}")))?;
    let to = recipients
        .iter()
        .map(|r| {
            r.parse::<Address>()
                .map_err(|e| SmtpError::Address(format!("recipient: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(Some(from), to).map_err(|e| SmtpError::Address(e.to_string()))?;
    let mut options = Vec::new();
    if !envelope_from.is_ascii() || recipients.iter().any(|r| !r.is_ascii()) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SmtpError::Address(
                "a non-ASCII address, and the server does not offer SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SmtpError::Address(
                "8-bit message content, and the server does not offer 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await?;
    for rcpt in envelope.to() {
        conn.command(Rcpt::new(rcpt.clone(), vec![])).await?;
    }
    conn.command(Data).await?;
    // lettre asks the iterator for the next part after writing (and flushing)
    // the previous one, and writes the final `.` as soon as it is exhausted.
    let mut before_commit = Some(before_commit);
    let parts = std::iter::once(raw).chain(std::iter::from_fn(|| {
        if let Some(f) = before_commit.take() {
            f();
        }
        None
    }));
    conn.message_iter(parts).await?;
    Ok(())
}
