//! A registry on loopback for tests that pull and push: Debian's `docker-registry` with its
//! storage in a temp dir, a TCP proxy in front of it that can slow or hold its answers (a pull
//! caught in the middle), and layers of data that does not compress.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{eventually, have, skipping};

/// The user and password of a registry started with `htpasswd`.
pub const USER: &str = "berth";
pub const PASS: &str = "s3cret";

/// Debian's docker-registry on a free loopback port, its storage in a temp dir; killed when
/// dropped. With `htpasswd`, it wants [`USER`]/[`PASS`].
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, the registry part of its images' names.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `None` (the test skipped, or failed under CI) without docker-registry (or htpasswd).
    pub fn start(htpasswd: bool) -> Option<Registry> {
        Registry::start_with(htpasswd, None)
    }

    /// Speaking HTTPS with this certificate and key (PEM files), no authentication.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Option<Registry> {
        Registry::start_with(false, Some((cert, key)))
    }

    fn start_with(
        htpasswd: bool,
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Option<Registry> {
        if !have("docker-registry") || (htpasswd && !have("htpasswd")) {
            skipping(format_args!(
                "needs docker-registry and htpasswd (apache2-utils)"
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("registry dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut auth = String::new();
        if htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASS])
                .output()
                .expect("htpasswd");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).expect("write htpasswd");
            let file = file.display();
            auth = format!("auth:\n  htpasswd:\n    realm: test\n    path: {file}\n");
        }
        let tls = tls.map_or(String::new(), |(cert, key)| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        });
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{tls}{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let registry = Registry {
            child,
            addr,
            _dir: dir,
        };
        eventually("the registry to listen", || {
            TcpStream::connect(&registry.addr).ok().map(|_| ())
        });
        Some(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on (for now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A TCP proxy in front of the registry that counts what it sent and the connections open.
/// While `slow` is set it sends its answers slowly (16 KiB every 20 ms); once it has sent
/// `limit` bytes in all it holds them until the limit is raised: a download caught in the
/// middle for as long as a test needs, however busy the machine.
pub struct SlowProxy {
    pub addr: String,
    pub slow: Arc<AtomicBool>,
    pub limit: Arc<AtomicU64>,
    pub sent: Arc<AtomicU64>,
    pub open: Arc<AtomicUsize>,
}

impl SlowProxy {
    /// A proxy to `upstream`, slow and without a limit.
    pub fn start(upstream: String) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let proxy = SlowProxy {
            addr: listener.local_addr().expect("addr").to_string(),
            slow: Arc::new(AtomicBool::new(true)),
            limit: Arc::new(AtomicU64::new(u64::MAX)),
            sent: Arc::new(AtomicU64::new(0)),
            open: Arc::new(AtomicUsize::new(0)),
        };
        let gate = Gate {
            slow: proxy.slow.clone(),
            limit: proxy.limit.clone(),
            sent: proxy.sent.clone(),
        };
        let open = proxy.open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (gate, open) = (gate.clone(), open.clone());
                open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let (mut from_client, mut to_server) = (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    // The client's end closed: so is the registry's, which then hangs up.
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from_client, &mut to_server);
                        let _ = to_server.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n @ 1..) = server.read(&mut buf) {
                        gate.wait();
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        gate.sent(n);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        proxy
    }
}

/// What decides when a proxy's connection may send.
#[derive(Clone)]
struct Gate {
    slow: Arc<AtomicBool>,
    limit: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl Gate {
    /// Returns once the limit allows more.
    fn wait(&self) {
        while self.sent.load(Ordering::SeqCst) >= self.limit.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        if self.slow.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A tar of one file, `big.bin`, of `len` bytes that do not compress.
pub fn incompressible_tar(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(len as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "big.bin", &data[..])
        .expect("tar entry");
    builder.into_inner().expect("tar")
}
