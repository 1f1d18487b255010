//! Reads a server certificate's real expiry and issuer from a live TLS
//! handshake. The chain is deliberately not checked against any roots: an
//! MSP watches internal services with private or self-signed certificates
//! too, and what matters here is the date on the certificate the server
//! presents, not whether we would trust it. The handshake's signatures are
//! still verified, and nothing is sent over the connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

/// What the server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbedCertificate {
    /// The end of the certificate's validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// The issuer's distinguished name (`CN=R11, O=Let's Encrypt, C=US`).
    pub issuer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("`{0}` is not a host name a certificate can be probed at")]
    Host(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server presented no certificate")]
    NoCertificate,
    #[error("the server's certificate cannot be read: {0}")]
    Unreadable(String),
}

/// Whether `name` can be probed: a DNS host name or an IP address.
pub fn is_probe_host(name: &str) -> bool {
    ServerName::try_from(name.to_string()).is_ok()
}

/// Connects to `host:port`, completes a TLS handshake with `host` as the
/// server name, and reads the leaf certificate.
pub async fn probe(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<ProbedCertificate, ProbeError> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| ProbeError::Host(host.into()))?;
    // rustls 0.23.48 deprecates the ring provider for its lack of post-quantum
    // key exchange. This probe only reads a certificate (nothing secret
    // crosses the connection) and every TLS client here is built on ring, so
    // the deprecation does not apply; the allow keeps `cargo update` from
    // turning it into a clippy failure.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Unreadable(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let handshake = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(ProbeError::Connect)?;
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(ProbeError::Handshake)
    };
    let stream = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ProbeError::Timeout(timeout))??;
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or(ProbeError::NoCertificate)?;
    read_certificate(leaf.as_ref())
}

/// The expiry and issuer of a DER certificate.
pub fn read_certificate(der: &[u8]) -> Result<ProbedCertificate, ProbeError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ProbeError::Unreadable(e.to_string()))?;
    let not_after = chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| ProbeError::Unreadable("expiry out of range".into()))?;
    Ok(ProbedCertificate {
        not_after,
        issuer: cert.issuer().to_string(),
    })
}

/// Accepts whatever chain the server presents (see the module docs) but
/// still checks that the handshake was signed by the presented key.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
