//! A Docker user's first hour with berth: scripts/install (binaries, completions, man pages,
//! the docker link) and its undoing, scripts/demo, what berth says it is (`--version`,
//! `version`, beside what the docker CLI says of it through `berth system service`), and berth
//! under Docker's name.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, Stdio};

use berth_harness::api::Service;
use berth_harness::image::{berth_bin, Berth, IMAGE};
use berth_harness::{
    have, need_root, run_with_timeout, skipping, target_dir, workspace_root, Ran, BUSYBOX,
    COMMAND_TIMEOUT,
};

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

/// `scripts/install` with the binaries already built (`BERTH_BIN_DIR`), as a user runs it.
fn install(prefix: &Path, args: &[&str]) -> Ran {
    let mut command = Command::new(workspace_root().join("scripts/install"));
    let bins = berth_bin().parent().expect("target/debug").to_path_buf();
    command
        .env("BERTH_BIN_DIR", bins)
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .stdin(Stdio::null());
    run_with_timeout(command, COMMAND_TIMEOUT)
}

/// A shell's stdout; it must succeed.
fn shell(command: &mut Command) -> String {
    let out = command
        .stdin(Stdio::null())
        .output()
        .expect("the shell runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path.clone());
            }
            let rel = path.strip_prefix(dir).expect("under dir");
            found.push(rel.display().to_string());
        }
    }
    found.sort();
    found
}

/// The binaries, completions where bash, zsh and fish look under a prefix, man pages where man
/// looks, the docker link; a second install replaces the first; `--uninstall` takes it all
/// back.
#[test]
fn install_puts_everything_where_shells_and_man_look_and_uninstall_takes_it_back() {
    let prefix = tempfile::tempdir().expect("prefix");
    let p = prefix.path();
    let ran = install(p, &["--docker-shim"]);
    assert!(ran.success(), "install: {}\n{}", ran.stdout, ran.stderr);
    for file in [
        "bin/berth",
        "bin/berth-runc",
        "share/bash-completion/completions/berth",
        "share/zsh/site-functions/_berth",
        "share/fish/vendor_completions.d/berth.fish",
        "share/man/man1/berth.1",
        "share/man/man1/berth-run.1",
        "share/man/man1/berth-container-run.1",
        "share/man/man1/berth-system-service.1",
    ] {
        let all = files_under(p);
        assert!(p.join(file).is_file(), "{file} is missing: {all:#?}");
    }
    let shim = std::fs::read_link(p.join("bin/docker")).expect("bin/docker is a link");
    assert_eq!(shim, Path::new("berth"));
    let version = shell(Command::new(p.join("bin/docker")).arg("--version"));
    assert!(version.starts_with("berth version "), "{version}");
    // The hidden commands have no page.
    assert!(!p.join("share/man/man1/berth-completion.1").exists());
    bash_completes(p);
    zsh_and_fish_complete(p);
    man_reads_the_pages(p);

    // Again: the same files, no more (what the first listed and the second has not goes).
    let before = files_under(p);
    let ran = install(p, &["--docker-shim"]);
    assert!(ran.success(), "install again: {}", ran.stderr);
    assert_eq!(files_under(p), before);

    let ran = install(p, &["--uninstall"]);
    assert!(ran.success(), "uninstall: {}", ran.stderr);
    assert_eq!(files_under(p), Vec::<String>::new());
    let ran = install(p, &["--uninstall"]);
    let said = ran.stderr.contains("nothing installed");
    assert!(!ran.success() && said, "{}", ran.stderr);
}

/// bash loads the completion (as bash-completion does, by name) and offers berth's commands,
/// not the hidden ones.
fn bash_completes(p: &Path) {
    let script = r#"source "$1"; complete -p berth; COMP_WORDS=(berth ""); COMP_CWORD=1; _berth berth "" berth; echo "${COMPREPLY[@]}""#;
    let out = shell(
        Command::new("bash")
            .args(["-c", script, "bash"])
            .arg(p.join("share/bash-completion/completions/berth")),
    );
    assert!(
        out.contains("complete ") && out.contains(" berth\n"),
        "{out}"
    );
    let offered: Vec<&str> = out.lines().last().unwrap_or("").split(' ').collect();
    assert!(
        offered.contains(&"run") && offered.contains(&"system"),
        "{out}"
    );
    assert!(
        !offered.contains(&"__man") && !offered.contains(&"completion"),
        "{out}"
    );
}

/// zsh's compinit finds `_berth` in fpath (where /usr/local/share/zsh/site-functions is); fish
/// finds berth.fish through XDG_DATA_DIRS, berth on PATH, and completes a command.
fn zsh_and_fish_complete(p: &Path) {
    let home = tempfile::tempdir().expect("a home for the shells");
    let zsh = std::fs::read_to_string(p.join("share/zsh/site-functions/_berth")).expect("_berth");
    assert!(zsh.starts_with("#compdef berth"), "{zsh}");
    if have("zsh") {
        let script = r#"fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -d "$2"; print -r -- "$_comps[berth]""#;
        let out = shell(
            Command::new("zsh")
                .args(["-f", "-c", script, "zsh"])
                .arg(p.join("share/zsh/site-functions"))
                .arg(home.path().join("zcompdump")),
        );
        assert_eq!(out.trim(), "_berth");
    } else {
        skipping(format_args!("zsh's check of _berth needs zsh"));
    }
    if have("fish") {
        let path = std::env::var("PATH").unwrap_or_default();
        let out = shell(
            Command::new("fish")
                .env("PATH", format!("{}:{path}", p.join("bin").display()))
                .env("XDG_DATA_DIRS", p.join("share"))
                .env("HOME", home.path())
                .args(["-c", "complete -C'berth sys'"]),
        );
        assert_eq!(out.trim(), "system\tManage berth");
    } else {
        skipping(format_args!("fish's check of berth.fish needs fish"));
    }
}

/// man finds and formats the pages under the prefix; without man, they are roff at least.
fn man_reads_the_pages(p: &Path) {
    let page = std::fs::read_to_string(p.join("share/man/man1/berth-run.1")).expect("page");
    assert!(page.contains("\n.TH berth-run 1 "), "{page}");
    if !have("man") || !have("groff") {
        skipping(format_args!("formatting the man pages needs man and groff"));
        return;
    }
    let out = shell(
        Command::new("man")
            .env("MANPATH", p.join("share/man"))
            .env("MANWIDTH", "80")
            .args(["-P", "cat", "berth-run"]),
    );
    assert!(
        out.contains("berth-run - Create and run a new container"),
        "{out}"
    );
    assert!(out.contains("--rm"), "{out}");
}

/// `--docker-shim` never replaces a docker that is not berth's link, and installs nothing then.
#[test]
fn install_never_replaces_another_docker() {
    let prefix = tempfile::tempdir().expect("prefix");
    let p = prefix.path();
    std::fs::create_dir(p.join("bin")).expect("bin");
    std::fs::write(p.join("bin/docker"), "#!/bin/sh\n").expect("a docker");
    let ran = install(p, &["--docker-shim"]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("bin/docker exists"), "{}", ran.stderr);
    assert_eq!(files_under(p), ["bin", "bin/docker"]);
}

/// scripts/demo on the binaries built already (a release build is minutes the first time):
/// every step runs, and into a pipe it writes plain text, no terminal colours.
#[test]
fn demo_runs_and_writes_plain_text_into_a_pipe() {
    need_root!();
    if !Path::new(BUSYBOX).exists() {
        berth_harness::skip!("needs busybox-static");
    }
    let mut command = Command::new(workspace_root().join("scripts/demo"));
    let bins = berth_bin().parent().expect("target/debug").to_path_buf();
    command
        .env("BERTH_BIN_DIR", bins)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("NO_COLOR")
        .env_remove("KEEP")
        .stdin(Stdio::null());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "demo: {}\n{}", ran.stdout, ran.stderr);
    assert!(
        !ran.stdout.contains('\x1b'),
        "colours into a pipe: {}",
        ran.stdout
    );
    for line in [
        "== A busybox image",
        "<- PID 1 seen from the container",
        "$ berth top --tree lab",
        "F00=BAR",
        "$ berth ns lab",
    ] {
        assert!(ran.stdout.contains(line), "no {line:?} in:\n{}", ran.stdout);
    }
}
