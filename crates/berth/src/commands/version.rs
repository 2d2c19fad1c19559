//! `berth version`: Client and Server sections as `docker version` prints them, or its
//! structure rendered by `--format`. berth is daemonless: the "server" is the engine and the
//! runtime running inside this very process.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::format::print_formatted;

/// Every crate of the workspace shares this version (`version.workspace = true`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a Go template ("{{.Client.Version}}", "{{json .}}")
    #[arg(short, long)]
    pub format: Option<String>,
}

/// The docker CLI's status for a `--format` template that does not parse, in `version` only.
const EXIT_BAD_TEMPLATE: i32 = 64;

pub fn run(args: VersionArgs) -> Result<i32> {
    if let Some(Err(e)) = args.format.as_deref().map(crate::template::parse) {
        eprintln!("berth: template parsing error: {e}");
        return Ok(EXIT_BAD_TEMPLATE);
    }
    print_formatted(args.format.as_deref(), &version_json(), text)?;
    Ok(0)
}

/// Go's name of this machine's architecture (GOARCH), as `docker version` prints it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The kernel's release (`uname -r`).
pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Docker's `types.Version` layout: Client, and Server with its Components.
fn version_json() -> Value {
    let (os, arch, kernel) = (std::env::consts::OS, go_arch(), kernel_version());
    json!({
        "Client": {
            "Platform": {"Name": "berth"},
            "Version": VERSION,
            "Os": os,
            "Arch": arch,
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "berth (daemonless: the engine runs in this process)"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": VERSION,
                    "Details": {
                        "Os": os,
                        "Arch": arch,
                        "KernelVersion": kernel,
                        "Mode": "in-process",
                    },
                },
                {
                    "Name": "berth-runtime",
                    "Version": VERSION,
                    "Details": {"Mode": "in-process (berth-runc for other engines)"},
                },
            ],
            "Version": VERSION,
            "Os": os,
            "Arch": arch,
            "KernelVersion": kernel,
        },
    })
}

/// The text form, aligned as Docker's tabwriter aligns it.
fn text(v: &Value) -> String {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
    let (c, srv) = (&v["Client"], &v["Server"]);
    let mut out = format!("Client: {}\n", s(&c["Platform"]["Name"]));
    field(&mut out, 1, "Version", &s(&c["Version"]));
    field(
        &mut out,
        1,
        "OS/Arch",
        &format!("{}/{}", s(&c["Os"]), s(&c["Arch"])),
    );
    field(&mut out, 1, "Context", &s(&c["Context"]));
    out += &format!("\nServer: {}\n", s(&srv["Platform"]["Name"]));
    for component in srv["Components"].as_array().into_iter().flatten() {
        out += &format!(" {}:\n", s(&component["Name"]));
        field(&mut out, 2, "Version", &s(&component["Version"]));
        let d = &component["Details"];
        if d.get("Os").is_some() {
            field(
                &mut out,
                2,
                "OS/Arch",
                &format!("{}/{}", s(&d["Os"]), s(&d["Arch"])),
            );
            field(&mut out, 2, "Kernel", &s(&d["KernelVersion"]));
        }
        field(&mut out, 2, "Mode", &s(&d["Mode"]));
    }
    out
}

/// One `Name: value` line, indented by `depth` and with the value in Docker's column 20.
fn field(out: &mut String, depth: usize, name: &str, value: &str) {
    let label = format!("{:depth$}{name}:", "");
    *out += &format!("{label:<20}{value}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template;

    #[test]
    fn the_text_has_both_sections_and_docker_template_paths_resolve() {
        let v = version_json();
        let out = text(&v);
        assert!(
            out.starts_with("Client: berth\n Version:           "),
            "{out}"
        );
        assert!(out.contains("\nServer: berth (daemonless"), "{out}");
        assert!(out.contains(" Engine:\n  Version:          "), "{out}");
        assert!(out.contains(" berth-runtime:\n"), "{out}");
        let t = template::parse("{{.Client.Version}} {{.Server.Version}} {{.Server.Os}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), format!("{VERSION} {VERSION} linux"));
    }
}
