//! `/_ping`, `/version`, `/info`: what a client asks first, to negotiate and to know the engine.

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use super::{Routed, State};
use crate::respond::{self, Reply};
use crate::router::Call;

pub async fn route(_state: &Arc<State>, call: Call) -> Routed {
    let segs: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    Break(match (call.method.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => ping(&call),
        ("GET", ["version"]) => version(),
        _ => return Continue(call),
    })
}

/// `GET|HEAD /_ping`: `OK`, with the headers clients negotiate from (the version header is on
/// every answer).
fn ping(call: &Call) -> Reply {
    let body = if call.method == hyper::Method::HEAD {
        respond::empty()
    } else {
        respond::full("OK")
    };
    Ok(respond::builder(200)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Builder-Version", "1")
        .body(body)
        .expect("static headers are valid"))
}

/// `GET /version`: Docker's `types.Version`, for the service itself (the engine it serves is
/// the same code, in this process).
fn version() -> Reply {
    let os = std::env::consts::OS;
    let arch = go_arch();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = env!("CARGO_PKG_VERSION");
    respond::json(
        200,
        &serde_json::json!({
            "Platform": {"Name": "berth"},
            "Components": [{
                "Name": "Engine",
                "Version": v,
                "Details": {
                    "ApiVersion": crate::version::MAX.to_string(),
                    "MinAPIVersion": crate::version::MIN.to_string(),
                    "Os": os,
                    "Arch": arch,
                    "KernelVersion": kernel,
                },
            }],
            "Version": v,
            "ApiVersion": crate::version::MAX.to_string(),
            "MinAPIVersion": crate::version::MIN.to_string(),
            "GitCommit": "",
            "GoVersion": "",
            "Os": os,
            "Arch": arch,
            "KernelVersion": kernel,
            "BuildTime": "",
        }),
    )
}

/// Go's name of this machine's architecture (GOARCH), as Docker reports it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
