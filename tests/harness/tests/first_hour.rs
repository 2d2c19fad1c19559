//! A Docker user's first hour with berth: what it says it is (`--version`, `version`, beside
//! what the docker CLI says of it through `berth system service`).
#![forbid(unsafe_code)]

use berth_harness::api::Service;

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
