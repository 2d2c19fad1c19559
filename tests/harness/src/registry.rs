//! Debian's docker-registry on loopback, the registry every test pulls from and pushes to
//! (there is no other network).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use crate::{eventually, have, skipping};

/// Debian's docker-registry on a free loopback port, its storage in a temp dir; killed when
/// dropped. With `htpasswd`, it wants `USER`/`PASS`.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

pub const USER: &str = "berth";
pub const PASS: &str = "s3cret";

impl Registry {
    pub fn start(htpasswd: bool) -> Option<Registry> {
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
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
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

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
