//! TLS to registries, with the system's certificate authorities loaded at the first TLS
//! connection rather than when the client is made: a pull from an http registry (a local one,
//! `--insecure-registry`) reads no certificate, where loading them cost a cold pull ~150 file
//! reads (the bundle and every hashed link in /etc/ssl/certs) before its first request.

use std::sync::{Arc, OnceLock};

use ureq::rustls;
use ureq::{ReadWrite, TlsConnector};

/// ureq's TLS connector with the system's roots (rustls-native-certs, as ureq's own
/// `native-certs` feature would load them), loaded once per process, on first use.
pub(crate) struct SystemRoots;

impl SystemRoots {
    fn config(&self) -> &'static Result<Arc<rustls::ClientConfig>, rustls::Error> {
        static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> = OnceLock::new();
        CONFIG.get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            // As ureq: what cannot be read or parsed is left out, and a connection to a
            // registry whose authority is missing fails with the certificate's error.
            if let Ok(certs) = rustls_native_certs::load_native_certs() {
                roots.add_parsable_certificates(certs);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
    }
}

impl TlsConnector for SystemRoots {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ReadWrite>,
    ) -> Result<Box<dyn ReadWrite>, ureq::Error> {
        match self.config() {
            Ok(config) => config.connect(dns_name, io),
            Err(e) => Err(std::io::Error::other(format!("TLS configuration: {e}")).into()),
        }
    }
}
