//! How berth reaches registries, as its configuration says: credential helpers (`credsStore`,
//! `credHelpers` in a Docker config file: the docker CLI logs in through one, and berth then
//! pushes and pulls with what it stored; `berth login` and `logout` store and erase through
//! one named in berth's own file), and `/etc/berth/config.toml`'s data root, insecure
//! registries and Hub mirrors.
#![forbid(unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_harness::api::Service;
use berth_harness::image::IMAGE;
use berth_harness::registry::{Registry, PASS, USER};
use berth_harness::{run_with_input, run_with_timeout, Ran, COMMAND_TIMEOUT};

/// A helper speaking Docker's protocol, keeping what it is given in files beside it.
const HELPER: &str = r#"#!/usr/bin/python3
import hashlib, json, os, sys
store = os.path.join(os.path.dirname(os.path.abspath(__file__)), "store")
os.makedirs(store, exist_ok=True)
data = sys.stdin.read()
def at(url):
    return os.path.join(store, hashlib.sha256(url.strip().encode()).hexdigest())
if sys.argv[1] == "store":
    entry = json.loads(data)
    with open(at(entry["ServerURL"]), "w") as f:
        f.write(data)
elif sys.argv[1] == "get":
    if not os.path.exists(at(data)):
        print("credentials not found in native keychain")
        sys.exit(1)
    print(open(at(data)).read())
elif sys.argv[1] == "erase":
    if os.path.exists(at(data)):
        os.remove(at(data))
"#;

/// `dir` with the helper `docker-credential-berthtest` in it; the PATH that finds it.
fn install_helper(dir: &Path) -> String {
    let helper = dir.join("docker-credential-berthtest");
    std::fs::write(&helper, HELPER).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn stored(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("store")).map_or(0, |d| d.count())
}

#[test]
fn credentials_go_through_the_helper_a_config_names() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(true) else {
        return;
    };
    let helpers = tempfile::tempdir().unwrap();
    let path = install_helper(helpers.path());
    let docker_config = service.dir().join("client-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        r#"{"credsStore": "berthtest"}"#,
    )
    .unwrap();
    // The docker CLI logs in (through the service) and stores the secret in the helper.
    let mut login = service.client("docker");
    login
        .env("PATH", &path)
        .args(["login", "-u", USER, "--password-stdin", &registry.addr]);
    let ran = run_with_input(login, PASS.as_bytes());
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(stored(helpers.path()), 1);
    let file = std::fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(
        !file.contains(PASS),
        "the secret is in the helper only: {file}"
    );

    // berth, reading the same Docker config, pushes and pulls with it.
    let berth_file = helpers.path().join("berth-auth.json");
    let berth = |args: &[&str]| -> Ran {
        let mut command: Command = service.berth.command();
        command
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &docker_config)
            .env("BERTH_AUTH_FILE", &berth_file)
            .args(args);
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let name = format!("{}/private/busybox:1", registry.addr);
    service.berth.ok(&["tag", IMAGE, &name]);
    let pushed = berth(&["push", &name]);
    assert!(pushed.success(), "{}", pushed.stderr);
    service.berth.ok(&["rmi", &name]);
    let pulled = berth(&["pull", &name]);
    assert!(pulled.success(), "{}", pulled.stderr);

    // berth's own file names the helper for this registry: login and logout go through it.
    let erase = run_with_timeout(
        {
            let mut c = service.client("docker");
            c.env("PATH", &path).args(["logout", &registry.addr]);
            c
        },
        COMMAND_TIMEOUT,
    );
    assert!(erase.success(), "{}", erase.stderr);
    assert_eq!(stored(helpers.path()), 0);
    std::fs::write(
        &berth_file,
        format!(r#"{{"credHelpers": {{"{}": "berthtest"}}}}"#, registry.addr),
    )
    .unwrap();
    let mut login: Command = service.berth.command();
    login
        .env("PATH", &path)
        .env("DOCKER_CONFIG", helpers.path().join("no-docker-config"))
        .env("BERTH_AUTH_FILE", &berth_file)
        .args(["login", "-u", USER, "--password-stdin", &registry.addr]);
    let ran = run_with_input(login, PASS.as_bytes());
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(stored(helpers.path()), 1);
    assert!(!std::fs::read_to_string(&berth_file).unwrap().contains(PASS));
    service.berth.ok(&["rmi", &name]);
    let pulled = berth(&["pull", &name]);
    assert!(pulled.success(), "{}", pulled.stderr);
    let out = berth(&["logout", &registry.addr]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(stored(helpers.path()), 0);
}

/// The configuration file: its data root, insecure registries and Hub mirrors are in force
/// (a pull of `busybox` comes from the mirror on loopback: this machine has no Hub), and
/// `info` says what is and which file said it. A key berth does not know is refused, named.
#[test]
fn the_configuration_file_sets_root_registries_and_mirrors() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let source = berth_harness::image::Berth::new();
    let mirrored = format!("{}/library/busybox:latest", registry.addr);
    source.ok(&["tag", IMAGE, &mirrored]);
    source.ok(&["push", &mirrored]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "data-root = \"{}\"\ninsecure-registries = [\"registry.lan:5000\"]\nregistry-mirrors = [\"http://{}\"]\n",
            root.display(),
            registry.addr
        ),
    )
    .unwrap();
    let berth = |args: &[&str]| -> Ran {
        let mut command = Command::new(berth_harness::image::berth_bin());
        command
            .env_remove("BERTH_ROOT")
            .env("BERTH_CONFIG", &file)
            .args(args);
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let pulled = berth(&["pull", "busybox"]);
    assert!(pulled.success(), "{}", pulled.stderr);
    assert!(root.join("images").exists() || std::fs::read_dir(&root).unwrap().count() > 0);
    let images = berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.stdout.trim(), "busybox:latest");
    let info = berth(&["info"]);
    assert!(info.success(), "{}", info.stderr);
    for want in [
        format!("Docker Root Dir: {}", root.display()),
        "registry.lan:5000".to_string(),
        format!("Registry Mirrors:\n  http://{}/", registry.addr),
        format!("Config Files:\n  {}", file.display()),
    ] {
        assert!(info.stdout.contains(&want), "{want:?} in:\n{}", info.stdout);
    }
    // The command line wins over the file.
    let elsewhere = dir.path().join("elsewhere");
    let images = berth(&["--root", elsewhere.to_str().unwrap(), "images", "-q"]);
    assert_eq!(images.stdout, "");
    std::fs::write(&file, "registry-mirror = \"x\"\n").unwrap();
    let refused = berth(&["images"]);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("config.toml") && refused.stderr.contains("registry-mirror"),
        "{}",
        refused.stderr
    );
}

/// The configuration's defaults for containers: a log driver and ulimits, each under what the
/// container asks for itself.
#[test]
fn the_configuration_sets_containers_defaults() {
    let berth = berth_harness::image::Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "log-driver = \"none\"\ndefault-ulimits = [\"nofile=1024:2048\"]\n",
    )
    .unwrap();
    let run = |args: &[&str]| -> Ran {
        let mut command = berth.command();
        command.env("BERTH_CONFIG", &file).args(args);
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let ran = run(&["run", "--rm", IMAGE, "sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!(ran.stdout, "1024\n2048\n", "{}", ran.stderr);
    let ran = run(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512",
        IMAGE,
        "sh",
        "-c",
        "ulimit -n",
    ]);
    assert_eq!(ran.stdout, "512\n", "{}", ran.stderr);
    assert!(run(&["create", "--name", "quiet", IMAGE, "true"]).success());
    assert!(run(&[
        "create",
        "--name",
        "logged",
        "--log-driver",
        "json-file",
        IMAGE,
        "true"
    ])
    .success());
    let driver = |name: &str| berth.inspect(name)["HostConfig"]["LogConfig"]["Type"].clone();
    assert_eq!(driver("quiet"), "none");
    assert_eq!(driver("logged"), "json-file");
    std::fs::write(&file, "default-ulimits = [\"nofile=lots\"]\n").unwrap();
    let refused = run(&["create", IMAGE, "true"]);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("config.toml: default-ulimits"),
        "{}",
        refused.stderr
    );
}

/// Removes the default network a configuration gave a data root of its own: its bridge, its
/// rules and its record (a default network cannot be removed with `network rm`, as Docker's).
struct OwnBridge(&'static str, &'static [&'static str], std::path::PathBuf);

impl Drop for OwnBridge {
    fn drop(&mut self) {
        let networks = self.2.join("network");
        for entry in std::fs::read_dir(&networks).into_iter().flatten().flatten() {
            let record = std::fs::read(entry.path().join("network.json"));
            let record: serde_json::Value = record
                .ok()
                .and_then(|r| serde_json::from_slice(&r).ok())
                .unwrap_or_default();
            if record["name"] == "bridge" {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let _ = Command::new("ip").args(["link", "del", self.0]).status();
        let same = format!("{{ \"{0}\" . \"{0}\" }}", self.0);
        let _ = Command::new("nft")
            .args(["delete", "element", "ip", "berth", "same", &same])
            .status();
        for subnet in self.1 {
            let element = format!("{{ {subnet} }}");
            let _ = Command::new("nft")
                .args(["delete", "element", "ip", "berth", "subnets", &element])
                .status();
        }
    }
}

#[test]
fn the_configuration_addresses_the_networks() {
    let berth = berth_harness::image::Berth::new();
    let root = berth.root().to_path_buf();
    let _cleanup = OwnBridge("bt-cfg0", &["10.213.7.0/24", "10.213.8.0/24"], root);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let pools = "default-address-pools = [{ base = \"10.214.0.0/16\", size = 24 }]\n";
    let config = |bip: &str| {
        let text = format!("bridge = \"bt-cfg0\"\nbip = \"{bip}\"\n{pools}");
        std::fs::write(&file, text).unwrap();
    };
    let run = |args: &[&str]| -> Ran {
        let mut command = berth.command();
        command.env("BERTH_CONFIG", &file).args(args);
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let addr = "ip -4 -o addr show eth0 | awk '{print $4}'; ip route | awk '/default/ {print $3}'";
    config("10.213.7.1/24");
    let ran = run(&["run", "--rm", IMAGE, "sh", "-c", addr]);
    assert_eq!(ran.stdout, "10.213.7.2/24\n10.213.7.1\n", "{}", ran.stderr);

    // User networks are cut from the pools.
    assert!(run(&["network", "create", "cut"]).success());
    let ran = run(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "cut",
    ]);
    assert_eq!(ran.stdout.trim(), "10.214.0.0/24", "{}", ran.stderr);
    assert!(run(&["network", "rm", "cut"]).success());
    let info = run(&["info"]);
    assert!(
        info.stdout
            .contains("Default Address Pools:\n  Base: 10.214.0.0/16, Size: 24\n"),
        "{}",
        info.stdout
    );

    // A new bip waits while a container uses the default network, then applies.
    assert!(run(&["run", "-d", "--name", "holder", IMAGE, "sleep", "1000"]).success());
    config("10.213.8.1/24");
    let info = run(&["info"]);
    assert!(
        info.stderr.contains(
            "WARNING: the default network keeps 10.213.7.1/24 while containers use it; bip 10.213.8.1/24 applies once none does"
        ),
        "{}",
        info.stderr
    );
    let ran = run(&["run", "--rm", IMAGE, "sh", "-c", addr]);
    assert_eq!(ran.stdout, "10.213.7.3/24\n10.213.7.1\n", "{}", ran.stderr);
    assert!(run(&["rm", "-f", "holder"]).success());
    let ran = run(&["run", "--rm", IMAGE, "sh", "-c", addr]);
    assert_eq!(ran.stdout, "10.213.8.2/24\n10.213.8.1\n", "{}", ran.stderr);
    assert_eq!(run(&["info"]).stderr, "");

    // A bad value names its file and the key.
    config("10.213.8.0/24");
    let refused = run(&["run", "--rm", IMAGE, "true"]);
    assert_eq!(refused.status.code(), Some(125), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("config.toml: bip \"10.213.8.0/24\""),
        "{}",
        refused.stderr
    );
}

/// A registry over HTTPS, its certificate signed by an authority of the test's own (the name
/// `registry.test` resolved to loopback by an /etc/hosts bound in a mount namespace of the
/// command's own: loopback names are plain HTTP, as in Docker). berth trusts what the system's
/// store says (here `SSL_CERT_FILE`, which Go's and rustls' clients read too): it pushes and
/// pulls through it, and without that authority refuses the registry, naming the certificate,
/// and keeps nothing. The authorities are loaded at the first TLS connection, not when the
/// client is made (registry/tls.rs): this is that path working.
#[test]
fn an_https_registry_is_trusted_as_the_systems_authorities_say() {
    if !berth_harness::have("openssl") || !berth_harness::have("unshare") {
        berth_harness::skipping(format_args!("needs openssl and unshare"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = |f: &str| dir.path().join(f);
    let openssl = |args: &[&str]| {
        let mut command = Command::new("openssl");
        command.current_dir(dir.path()).args(args);
        let ran = run_with_timeout(command, COMMAND_TIMEOUT);
        assert!(ran.success(), "openssl {args:?}: {}", ran.stderr);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        "-subj",
        "/CN=berth test authority",
        "-days",
        "2",
        "-keyout",
        "ca.key",
    ];
    openssl(&[&["req", "-x509"], &ec[..], &ca[..], &["-out", "ca.crt"]].concat());
    let srv = [
        "-subj",
        "/CN=registry.test",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
    ];
    openssl(&[&["req"], &ec[..], &srv[..]].concat());
    std::fs::write(at("san.ext"), "subjectAltName=DNS:registry.test\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "srv.crt",
    ]);
    let Some(registry) = Registry::start_tls(&at("srv.crt"), &at("srv.key")) else {
        return;
    };
    std::fs::write(at("hosts"), "127.0.0.1 registry.test\n").unwrap();
    let port = registry.addr.rsplit(':').next().unwrap();
    let name = format!("registry.test:{port}/tls/busybox:1");
    let local = berth_harness::image::Berth::new();
    local.ok(&["tag", IMAGE, &name]);
    let berth = |args: &[&str], trusted: bool| -> Ran {
        let mut command = Command::new("unshare");
        command
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
            .arg(at("hosts"))
            .arg(berth_harness::image::berth_bin())
            .arg("--root")
            .arg(local.root())
            .args(args);
        if trusted {
            command.env("SSL_CERT_FILE", at("ca.crt"));
        } else {
            command.env_remove("SSL_CERT_FILE");
        }
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let pushed = berth(&["push", &name], true);
    assert!(pushed.success(), "{}", pushed.stderr);
    local.ok(&["rmi", &name]);
    let refused = berth(&["pull", &name], false);
    assert!(!refused.success(), "pulled from an untrusted registry");
    assert!(
        refused.stderr.to_lowercase().contains("certificate"),
        "{}",
        refused.stderr
    );
    let images = local.ok(&["images", "-q", &name]);
    assert_eq!(images.trim(), "", "an image was kept from the refused pull");
    let pulled = berth(&["pull", &name], true);
    assert!(pulled.success(), "{}", pulled.stderr);
    let images = local.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains(&name[..]), "{images}");
}
