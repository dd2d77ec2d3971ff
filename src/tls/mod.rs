//! The TLS client side of promcore's outgoing HTTP (scrapes of `https` targets, `https`
//! Alertmanagers): turns a `tls_config` into a rustls client configuration (CA file or the
//! system pool, client certificate for mutual TLS, server name, protocol versions, ALPN
//! `http/1.1`) and wraps a connected TCP stream in a TLS session.
//!
//! It loads files only when asked ([`TlsClient::load`]: at configuration load, to refuse an
//! unusable file with the field's path, and when a scrape loop or notifier set starts); it
//! never logs key material and never speaks HTTP.

mod error;
mod insecure;
mod stream;

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use thiserror::Error;

use crate::config::tls::{TlsConfig, TlsVersion};

pub use self::error::{io_reason, tls_reason};
pub use self::stream::ClientStream;

/// Why a `tls_config` cannot be used; `field` is relative to `tls_config`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{reason}")]
pub struct TlsSetupError {
    pub field: &'static str,
    pub reason: String,
}

/// A loaded `tls_config`, shared by the connections of one job or Alertmanager set.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// `server_name`, when set, replaces the target's host for SNI and verification.
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Reads the files of `cfg` (already validated) and builds the client configuration.
    pub fn load(cfg: &TlsConfig) -> Result<TlsClient, TlsSetupError> {
        let provider = Arc::new(crypto_provider());
        let versions = protocol_versions(cfg)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsSetupError {
                field: "min_version",
                reason: e.to_string(),
            })?;
        let builder = if cfg.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(insecure::SkipVerify::new(provider)))
        } else {
            let roots = if cfg.ca_file.is_empty() {
                system_roots()
            } else {
                Arc::new(ca_roots(&cfg.ca_file)?)
            };
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsSetupError {
                    field: "ca_file",
                    reason: format!("unable to use specified CA cert {}: {e}", cfg.ca_file),
                })?;
            builder.with_webpki_verifier(verifier)
        };
        let mut config = if cfg.cert_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            let (chain, key) = client_identity(cfg)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsSetupError {
                    field: "cert_file",
                    reason: format!(
                        "unable to use specified client cert ({}) & key ({}): {e}",
                        cfg.cert_file, cfg.key_file
                    ),
                })?
        };
        // Prometheus's transport speaks HTTP/1.1 to targets (HTTP/2 is off for scrapes).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = if cfg.server_name.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(cfg.server_name.clone()).map_err(|e| TlsSetupError {
                    field: "server_name",
                    reason: format!("invalid server name {:?}: {e}", cfg.server_name),
                })?,
            )
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Runs the handshake over `tcp` for a target whose host (no port) is `host`. The error
    /// is Go's wording of the failure.
    pub async fn connect(
        &self,
        host: &str,
        tcp: glommio::net::TcpStream,
    ) -> Result<ClientStream, String> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => ServerName::try_from(host.to_string())
                .map_err(|e| format!("tls: invalid server name {host:?}: {e}"))?,
        };
        let connector = futures_rustls::TlsConnector::from(self.config.clone());
        connector
            .connect(name, tcp)
            .await
            .map(|s| ClientStream::Tls(Box::new(s)))
            .map_err(|e| io_reason(&e))
    }
}

/// ring rather than rustls's preferred aws-lc-rs, which needs cmake and a longer C build on
/// every machine that builds promcore. ring has no post-quantum key exchange (hence rustls's
/// deprecation note); neither has Go 1.19's TLS, which Prometheus 2.42 targets use.
#[allow(deprecated)]
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn protocol_versions(
    cfg: &TlsConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    // rustls has no TLS 1.0/1.1: a lower minimum means "from TLS 1.2" here.
    let min = cfg.min_version.unwrap_or(TlsVersion::Tls12);
    let max = cfg.max_version.unwrap_or(TlsVersion::Tls13);
    let mut versions = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(TlsSetupError {
            field: "max_version",
            reason: format!("max_version {max} is lower than min_version {min}"),
        });
    }
    Ok(versions)
}

/// The system's CA pool, read once per process as Go's `SystemCertPool` is. A certificate
/// that does not parse is skipped, as Go skips it.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

/// Go's `os.Open` error text: `open /x: no such file or directory`.
fn open_reason(path: &str, e: &io::Error) -> String {
    format!("open {path}: {}", crate::scrape::client::os_reason(e))
}

fn ca_roots(path: &str) -> Result<RootCertStore, TlsSetupError> {
    let fail = |reason: String| TlsSetupError {
        field: "ca_file",
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| {
        fail(format!(
            "unable to load specified CA cert {path}: {}",
            open_reason(path, &e)
        ))
    })?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let added = cert.ok().and_then(|c| store.add(c).ok());
        if added.is_none() {
            return Err(fail(format!("unable to use specified CA cert {path}")));
        }
    }
    if store.is_empty() {
        return Err(fail(format!("unable to use specified CA cert {path}")));
    }
    Ok(store)
}

fn client_identity(
    cfg: &TlsConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let fail = |field: &'static str, why: String| TlsSetupError {
        field,
        reason: format!(
            "unable to use specified client cert ({}) & key ({}): {why}",
            cfg.cert_file, cfg.key_file
        ),
    };
    let cert_pem = std::fs::read(&cfg.cert_file)
        .map_err(|e| fail("cert_file", open_reason(&cfg.cert_file, &e)))?;
    let key_pem = std::fs::read(&cfg.key_file)
        .map_err(|e| fail("key_file", open_reason(&cfg.key_file, &e)))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| fail("cert_file", format!("tls: {e}")))?;
    if chain.is_empty() {
        return Err(fail(
            "cert_file",
            "tls: failed to find any PEM data in certificate input".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        fail(
            "key_file",
            "tls: failed to find any PEM data in key input".into(),
        )
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests;
