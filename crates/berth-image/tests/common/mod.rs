//! Test support: a real docker-registry on 127.0.0.1 (plain, htpasswd or token auth), a tiny
//! token server, and images made from busybox. Everything is torn down by Drop, even when a
//! test fails.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

pub const USER: &str = "berth";
pub const PASS: &str = "s3cret";

pub enum Auth {
    None,
    Basic,
    Token,
}

/// A docker-registry process with its storage in a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    _token_server: Option<TokenServer>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let (auth_yaml, token_server) = match auth {
            Auth::None => (String::new(), None),
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASS])
                    .output()
                    .expect("htpasswd (apache2-utils)");
                fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
                let path = dir.path().join("htpasswd");
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                        path.display()
                    ),
                    None,
                )
            }
            Auth::Token => {
                let server = TokenServer::start(dir.path());
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    server.addr,
                    dir.path().join("cert.pem").display()
                );
                (yaml, Some(server))
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry");
        let registry = Registry {
            child,
            addr,
            dir,
            _token_server: token_server,
        };
        let deadline = Instant::now() + berth_sys::test_support::scaled(Duration::from_secs(20));
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The registry's own file for a blob, to corrupt it behind its back.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

/// A token server for distribution's token auth: checks basic credentials, signs an RS256
/// JWT with openssl, and puts the certificate in the x5c header.
pub struct TokenServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl req");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve_token(stream, &key, &x5c);
                }
            }
        });
        TokenServer { addr, stop }
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn serve_token(mut stream: TcpStream, key: &Path, x5c: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        let expected = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
        );
        if line.to_ascii_lowercase().starts_with("authorization:")
            && line[14..].trim().eq_ignore_ascii_case(&expected)
        {
            authorized = true;
        }
    }
    if !authorized {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = percent_decode(scope);
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 {
                let actions: Vec<&str> = parts[2].split(',').collect();
                access.push(
                    serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                );
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({"iss": "test-issuer", "sub": USER, "aud": "test-registry", "exp": now + 600,
        "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())?;
    let mut signature = Vec::new();
    openssl.stdout.take().unwrap().read_to_end(&mut signature)?;
    openssl.wait()?;
    let body =
        serde_json::json!({"token": format!("{signing_input}.{}", b64url(&signature))}).to_string();
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A small rootfs tar: busybox plus a marker file, and extra bytes to make layers bigger.
pub fn rootfs_tar(marker: &str, extra: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, name, data).unwrap();
    };
    add(
        "bin/busybox",
        &fs::read("/bin/busybox").expect("busybox-static"),
        0o755,
    );
    add("etc/marker", marker.as_bytes(), 0o644);
    if extra > 0 {
        // Incompressible filler, deterministic per marker.
        let mut x: u64 = marker.bytes().fold(1469598103934665603, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
        let data: Vec<u8> = (0..extra)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        add("var/filler", &data, 0o644);
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    builder.append_link(&mut h, "bin/sh", "busybox").unwrap();
    builder.into_inner().unwrap()
}

/// What a [`HostileRegistry`] answers for one path.
pub struct Reply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// After the body, garbage until the client hangs up (or `ENDLESS_CAP` bytes, so a client
    /// that never stops still lets the test end).
    pub endless: bool,
}

/// Where an endless reply gives up.
pub const ENDLESS_CAP: u64 = 64 << 20;

/// A registry that lies: fixed replies by path, without Content-Length (the body runs to the
/// close), and a count of the bytes the client accepted.
pub struct HostileRegistry {
    pub addr: String,
    pub sent: Arc<std::sync::atomic::AtomicU64>,
}

impl HostileRegistry {
    pub fn start(routes: std::collections::HashMap<String, Reply>) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (routes, counter) = (Arc::new(routes), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, counter) = (routes.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = serve_hostile(stream, &routes, &counter);
                });
            }
        });
        HostileRegistry { addr, sent }
    }
}

fn serve_hostile(
    mut stream: TcpStream,
    routes: &std::collections::HashMap<String, Reply>,
    sent: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let Some(reply) = routes.get(path) else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
        reply.content_type
    )?;
    stream.write_all(&reply.body)?;
    sent.fetch_add(reply.body.len() as u64, Ordering::SeqCst);
    let garbage = [b'x'; 64 << 10];
    let mut extra = 0;
    while reply.endless && extra < ENDLESS_CAP {
        stream.write_all(&garbage)?;
        sent.fetch_add(garbage.len() as u64, Ordering::SeqCst);
        extra += garbage.len() as u64;
    }
    Ok(())
}
