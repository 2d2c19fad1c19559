//! Where the service listens: a unix socket (the default, `/run/berth/docker.sock`, mode 0660
//! and group `berth` when that group exists, as Docker's socket and its `docker` group), or TCP.
//! TCP on anything but loopback is refused without TLS and client certificates: whoever reaches
//! the API can start privileged containers, so it is root on this machine.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

/// The default socket: `docker.sock` in berth's runtime directory (`/run/berth`, or the user's
/// `$XDG_RUNTIME_DIR/berth` for rootless berth, as podman's rootless socket).
pub fn default_socket() -> PathBuf {
    berth_sys::rootless::run_dir().join("docker.sock")
}

/// Where to listen, from a URI as `DOCKER_HOST` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Endpoint {
    /// `unix:///path`, `tcp://HOST:PORT` (an address: the service does not resolve names).
    pub fn parse(uri: &str) -> Result<Endpoint, String> {
        if let Some(path) = uri.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{uri}: a unix socket path must be absolute (unix:///path)"
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = uri.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            return addr.parse().map(Endpoint::Tcp).map_err(|_| {
                format!("{uri}: expected tcp://ADDRESS:PORT with a numeric address (tcp://127.0.0.1:2375)")
            });
        }
        Err(format!(
            "{uri}: unsupported listen URI: use unix:///path or tcp://ADDRESS:PORT"
        ))
    }
}

/// The files of `--tlsverify`: the CA that signs client certificates, and the server's own.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A bound listener.
pub enum Listener {
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
    Tcp {
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    },
}

/// A connection of either kind.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Its socket: a hijacked stream (attach, exec) polls it to learn that its client hung up
    /// when it has nothing to read from it or write to it.
    fn socket(&self) -> BorrowedFd<'_>;
}

impl Conn for tokio::net::UnixStream {
    fn socket(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl Conn for tokio::net::TcpStream {
    fn socket(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

impl Conn for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn socket(&self) -> BorrowedFd<'_> {
        self.get_ref().0.as_fd()
    }
}

impl Listener {
    /// Binds `endpoint`; refuses TCP beyond loopback without `tls`.
    pub async fn bind(endpoint: &Endpoint, tls: Option<&TlsFiles>) -> Result<Listener, String> {
        match endpoint {
            Endpoint::Unix(path) => {
                if tls.is_some() {
                    return Err("--tlsverify is for tcp:// endpoints; a unix socket is guarded by its mode and group".into());
                }
                bind_unix(path).await
            }
            Endpoint::Tcp(addr) => {
                if !addr.ip().is_loopback() && tls.is_none() {
                    return Err(format!(
                        "tcp://{addr} is not a loopback address: serving the API there needs --tlsverify with --tlscacert, --tlscert and --tlskey (whoever reaches the API is root on this machine)"
                    ));
                }
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("listen on tcp://{addr}: {e}"))?;
                let tls = match tls {
                    Some(files) => Some(acceptor(files)?),
                    None => None,
                };
                Ok(Listener::Tcp { listener, tls })
            }
        }
    }

    /// The next connection (after the TLS handshake, for TLS).
    pub async fn accept(&self) -> std::io::Result<Box<dyn Conn>> {
        match self {
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                Ok(Box::new(stream))
            }
            Listener::Tcp { listener, tls } => {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                match tls {
                    None => Ok(Box::new(stream)),
                    Some(acceptor) => Ok(Box::new(acceptor.accept(stream).await?)),
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn bind_unix(path: &Path) -> Result<Listener, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        // A socket left by a service that died: take it over; one that answers: refuse.
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "{}: another service is listening there: stop it, or give another unix:// path",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("remove stale {}: {e}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("listen on {}: {e}", path.display()))?;
    // A rootless service is its user's alone: whoever reaches it acts as that user.
    let rootless = berth_sys::rootless::is_rootless();
    let mode = if rootless { 0o600 } else { 0o660 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    if rootless {
        // No group: the user's socket stays theirs.
    } else if let Some(gid) = berth_engine::spec::host_group_id("berth") {
        nix::unistd::chown(path, None, Some(gid.into()))
            .map_err(|e| format!("chgrp berth {}: {e}", path.display()))?;
    }
    Ok(Listener::Unix {
        listener,
        path: path.to_path_buf(),
    })
}

/// A TLS acceptor that demands a client certificate signed by the CA, as dockerd's
/// `--tlsverify`.
fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    let certs = |p: &Path| -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
        rustls_pemfile::certs(&mut read(p)?.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not a PEM certificate: {e}", p.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&files.ca)? {
        roots
            .add(ca)
            .map_err(|e| format!("{}: {e}", files.ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("{}: {e}", files.ca.display()))?;
    let key = rustls_pemfile::private_key(&mut read(&files.key)?.as_slice())
        .map_err(|e| format!("{}: {e}", files.key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", files.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key)
        .map_err(|e| format!("{}: {e}", files.cert.display()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_as_docker_host_spells_them() {
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert!(Endpoint::parse("unix://relative").is_err());
        assert!(Endpoint::parse("http://x").is_err());
    }

    #[tokio::test]
    async fn tcp_beyond_loopback_needs_tls() {
        let e = Listener::bind(&Endpoint::parse("tcp://0.0.0.0:0").unwrap(), None)
            .await
            .err()
            .unwrap();
        assert!(e.contains("--tlsverify"), "{e}");
    }
}
