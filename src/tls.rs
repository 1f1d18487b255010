//! TLS client set-up shared by the IMAP watcher and the SMTP sender: the
//! public web PKI roots, plus an operator-supplied CA file (a private CA, or the
//! test harness's throw-away CA).

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
}

pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let err = |message: String| TlsError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Runs a TLS handshake over `tcp` for `host`.
pub async fn wrap(
    tcp: TcpStream,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TlsError> {
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName(host.into()))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(TlsError::Handshake)
}
