//! `berth version`: Client and Server sections as `docker version` prints them, or its
//! structure rendered by `--format`. berth is daemonless: the "server" is the engine and the
//! runtime running inside this very process, described as `berth system service` describes
//! them to the docker CLI.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use berth_engine::version::Build;

use crate::format::print_formatted;

/// Every crate of the workspace shares this version (`version.workspace = true`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What follows the name in `berth --version`: `version 0.1.0, build 1a2b3c4`, as Docker's.
pub const VERSION_LINE: &str = env!("BERTH_VERSION_LINE");

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

/// The binary's build (crates/berth/build.rs), which the engine reports as its own.
pub const BUILD: Build = Build {
    git_commit: env!("BERTH_GIT_COMMIT"),
    rust_version: env!("BERTH_RUST_VERSION"),
};

/// Docker's `version` structure: the Client (this command line) and the Server, which for
/// berth is the engine in this same process, as `GET /version` of `berth system service`
/// describes it.
fn version_json() -> Value {
    let server = berth_engine::version::version(&BUILD, &berth_api::version::range());
    // Strings and a string map: nothing that could fail to serialise.
    let server = serde_json::to_value(server).unwrap_or_default();
    json!({
        "Client": {
            "Platform": {"Name": "berth"},
            "Version": VERSION,
            "GitCommit": BUILD.git_commit,
            "RustVersion": BUILD.rust_version,
            "Os": std::env::consts::OS,
            "Arch": berth_engine::version::go_arch(),
            "Context": "default",
        },
        "Server": server,
    })
}

/// The text form: the docker CLI's template, line for line, with Rust's version where it
/// names Go's and without the build time (berth's build does not record one).
fn text(v: &Value) -> String {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
    let (c, srv) = (&v["Client"], &v["Server"]);
    let mut out = format!("Client: {}\n", s(&c["Platform"]["Name"]));
    field(&mut out, 1, "Version", &s(&c["Version"]));
    field(&mut out, 1, "Rust version", &s(&c["RustVersion"]));
    field(&mut out, 1, "Git commit", &s(&c["GitCommit"]));
    let os_arch = |x: &Value| format!("{}/{}", s(&x["Os"]), s(&x["Arch"]));
    field(&mut out, 1, "OS/Arch", &os_arch(c));
    field(&mut out, 1, "Context", &s(&c["Context"]));
    out += &format!("\nServer: {}\n", s(&srv["Platform"]["Name"]));
    for component in srv["Components"].as_array().into_iter().flatten() {
        out += &format!(" {}:\n", s(&component["Name"]));
        field(&mut out, 2, "Version", &s(&component["Version"]));
        let d = &component["Details"];
        if component["Name"] == "Engine" {
            let api = format!(
                "{} (minimum version {})",
                s(&d["ApiVersion"]),
                s(&d["MinAPIVersion"])
            );
            field(&mut out, 2, "API version", &api);
            field(&mut out, 2, "Rust version", &s(&d["RustVersion"]));
            field(&mut out, 2, "Git commit", &s(&d["GitCommit"]));
            field(&mut out, 2, "OS/Arch", &os_arch(d));
            field(&mut out, 2, "Experimental", &s(&d["Experimental"]));
        } else {
            // As Docker lists runc's: every detail, by name.
            for (key, value) in d.as_object().into_iter().flatten() {
                field(&mut out, 2, key, &s(value));
            }
        }
    }
    out
}

/// One `Name: value` line, indented by `depth`, the value where Docker's tabwriter puts it:
/// column 20, or one space after a longer name.
fn field(out: &mut String, depth: usize, name: &str, value: &str) {
    let label = format!("{:depth$}{name}:", "");
    *out += &format!("{label:<19} {value}\n");
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
