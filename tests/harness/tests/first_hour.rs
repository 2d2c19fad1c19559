//! A Docker user's first hour with berth: what it says it is (`--version`, `version`, beside
//! what the docker CLI says of it through `berth system service`), and berth under Docker's
//! name.
#![forbid(unsafe_code)]

use std::process::{Command, Stdio};

use berth_harness::api::Service;
use berth_harness::image::{berth_bin, Berth, IMAGE};
use berth_harness::{need_root, run_with_timeout, COMMAND_TIMEOUT};

/// `berth --version` and `-v` as `docker --version` (`Docker version 28.2.2, build e6534b4`):
/// the name, the version and the short commit it was built from.
#[test]
fn version_flag_says_what_dockers_says() {
    let Some(service) = Service::start() else {
        return;
    };
    let line = service.berth.ok(&["--version"]);
    assert_eq!(service.berth.ok(&["-v"]), line);
    let version = service
        .berth
        .ok(&["version", "--format", "{{.Client.Version}}"]);
    let commit = service
        .berth
        .ok(&["version", "--format", "{{.Client.GitCommit}}"]);
    let expected = match commit.as_str() {
        "" => format!("berth version {version}"),
        c => format!("berth version {version}, build {c}"),
    };
    assert_eq!(line, expected);
    assert!(
        commit.is_empty() || (commit.len() == 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "a short commit: {commit:?}"
    );
}

/// `berth version`'s Server section is what the docker CLI prints of berth's service, line for
/// line, but for Go's version and the build time (berth has Rust's and records none).
#[test]
fn version_shows_the_server_as_the_docker_cli_sees_it() {
    let Some(service) = Service::start() else {
        return;
    };
    let docker = service.docker_ok(&["version"]);
    let berth = service.berth.ok(&["version"]);
    let server = |text: &str, skip: &[&str]| -> Vec<String> {
        let start = text.find("\nServer:").unwrap_or(text.len());
        text[start..]
            .lines()
            .filter(|l| !l.is_empty() && !skip.iter().any(|s| l.trim_start().starts_with(s)))
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    let from_docker = server(&docker, &["Go version:", "Built:"]);
    assert!(from_docker.len() > 4, "docker version: {docker}");
    assert_eq!(
        server(&berth, &["Rust version:"]),
        from_docker,
        "berth version:\n{berth}\ndocker version:\n{docker}"
    );
    // The API version is the service's newest, the Rust version the compiler's: at least the
    // workspace's rust-version.
    assert!(berth.contains("  API version:      1.50 (minimum version 1.24)\n"));
    let rust = service
        .berth
        .ok(&["version", "--format", "{{.Client.RustVersion}}"]);
    let minor = rust.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
    assert!(
        rust.starts_with("1.") && minor >= Some(89),
        "Rust version: {rust:?}"
    );
}

/// scripts/install's `--docker-shim`: berth through a link named `docker`, so that scripts
/// calling `docker` work unchanged. It is berth (same commands, same data root); the command
/// lines its usage errors and help quote are the ones typed, `docker ...`.
#[test]
fn berth_named_docker_is_berth() {
    need_root!();
    let berth = Berth::new();
    let bin = tempfile::tempdir().expect("a directory for the link");
    let docker = bin.path().join("docker");
    std::os::unix::fs::symlink(berth_bin(), &docker).expect("the docker link");
    let run = |args: &[&str]| {
        let mut command = Command::new(&docker);
        command.env("BERTH_ROOT", berth.root()).args(args);
        command.stdin(Stdio::null());
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    let ran = run(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert!(ran.success(), "docker run: {}", ran.stderr);
    assert_eq!(ran.stdout, "hi\n");
    let ran = run(&["run", "-d", "--name", "shimmed", IMAGE, "sleep", "1000"]);
    assert!(ran.success(), "docker run -d: {}", ran.stderr);
    let ps = run(&["ps", "--format", "{{.Names}}"]).ok();
    assert_eq!(ps, "shimmed\n");
    // The same containers as berth's own name sees.
    assert_eq!(berth.ok(&["ps", "--format", "{{.Names}}"]), "shimmed");
    // Usage, as typed.
    let ran = run(&["rm"]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert_eq!(
        ran.stderr.trim(),
        "docker: 'docker rm' requires at least 1 argument; see 'docker rm --help'"
    );
    let help = run(&["run", "--help"]).ok();
    assert!(help.contains("Usage: docker run "), "{help}");
    // Errors of the engine say who answered.
    let ran = run(&["rm", "nosuch"]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with("berth: ") && ran.stderr.contains("No such container: nosuch"),
        "{}",
        ran.stderr
    );
    // And what it is, whatever its name.
    assert!(run(&["--version"]).ok().starts_with("berth version "));
}
