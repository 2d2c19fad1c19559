//! `version`: Docker's `types.Version` for berth, what `docker version` shows as its Server
//! section and the API's `GET /version` answers. berth is daemonless: the "server" is the engine
//! and the runtime running in the caller's own process, so both carry the caller's build.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::info::{RUNTIME, VERSION};

/// What the binary knows of its own build (its build script sets it): the engine is a library
/// and cannot tell which commit or compiler made the program it is linked into.
#[derive(Debug, Clone, Copy, Default)]
pub struct Build {
    /// The short git commit, empty when built outside a git clone.
    pub git_commit: &'static str,
    /// rustc's version, `1.89.0`.
    pub rust_version: &'static str,
}

/// The Engine API versions served, newest and oldest (berth-api's range).
#[derive(Debug, Clone)]
pub struct ApiRange {
    pub max: String,
    pub min: String,
}

/// Docker's `types.Version`, under its field names, with `RustVersion` where Docker has
/// `GoVersion` (left empty: no Go here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub platform: Platform,
    pub components: Vec<Component>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub rust_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    pub name: String,
}

/// One part of the server (`Engine`, the runtime), its details a string map as Docker's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// The platform's name: the docker CLI prints it after `Server:`.
pub const PLATFORM: &str = "berth (daemonless: the engine runs in the calling process)";

/// The server's version: the Engine component as Docker's daemon describes itself, and the
/// runtime as Docker lists runc.
pub fn version(build: &Build, api: &ApiRange) -> Version {
    let (os, arch, kernel) = (std::env::consts::OS, go_arch(), kernel_version());
    let engine = BTreeMap::from(
        [
            ("ApiVersion", api.max.as_str()),
            ("MinAPIVersion", api.min.as_str()),
            ("GitCommit", build.git_commit),
            ("GoVersion", ""),
            ("RustVersion", build.rust_version),
            ("Os", os),
            ("Arch", arch),
            ("KernelVersion", &kernel),
            ("Experimental", "false"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let runtime = BTreeMap::from([("GitCommit".to_string(), build.git_commit.to_string())]);
    Version {
        platform: Platform {
            name: PLATFORM.into(),
        },
        components: vec![
            Component {
                name: "Engine".into(),
                version: VERSION.into(),
                details: engine,
            },
            Component {
                name: RUNTIME.into(),
                version: VERSION.into(),
                details: runtime,
            },
        ],
        version: VERSION.into(),
        api_version: api.max.clone(),
        min_api_version: api.min.clone(),
        git_commit: build.git_commit.into(),
        go_version: String::new(),
        rust_version: build.rust_version.into(),
        os: os.into(),
        arch: arch.into(),
        kernel_version: kernel,
    }
}

/// Go's name of this machine's architecture (GOARCH), as Docker reports it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_component_carries_the_api_range_and_the_build() {
        let build = Build {
            git_commit: "abc1234",
            rust_version: "1.89.0",
        };
        let v = version(
            &build,
            &ApiRange {
                max: "1.50".into(),
                min: "1.24".into(),
            },
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["ApiVersion"], "1.50");
        assert_eq!(json["MinAPIVersion"], "1.24");
        assert_eq!(json["Components"][0]["Name"], "Engine");
        assert_eq!(json["Components"][0]["Details"]["GitCommit"], "abc1234");
        assert_eq!(json["Components"][0]["Details"]["RustVersion"], "1.89.0");
        assert_eq!(json["Components"][1]["Name"], RUNTIME);
        assert_eq!(json["Os"], "linux");
    }
}
