//! The Docker Engine API (`berth system service`) driven by its real clients: the docker CLI
//! (28.x, API 1.50, negotiating down), and curl for what clients never send. Each test has its
//! own service and data root.
#![forbid(unsafe_code)]

use berth_harness::api::Service;
use berth_harness::image::IMAGE;
use serde_json::Value;

#[test]
fn docker_version_and_info_come_from_the_service() {
    let Some(service) = Service::start() else {
        return;
    };
    let server = service.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(server, "1.50");
    let info: Value = serde_json::from_str(&service.docker_ok(&["info", "--format", "json"]))
        .expect("info is JSON");
    assert_eq!(
        info["DockerRootDir"].as_str(),
        service.berth.root().to_str(),
        "{info}"
    );
    assert_eq!(info["Images"], 1, "{info}");
    // An old client's path, and none at all, reach the same handler.
    for path in ["/v1.24/version", "/version"] {
        let ran = service.curl(&["-sf", &format!("http://d{path}")]);
        assert!(ran.success(), "{path}: {}", ran.stderr);
        let v: Value = serde_json::from_str(&ran.stdout).expect("version JSON");
        assert_eq!(v["ApiVersion"], "1.50");
    }
}

#[test]
fn errors_are_docker_json_with_its_statuses() {
    let Some(service) = Service::start() else {
        return;
    };
    let code = |args: &[&str]| {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        service.curl(&all).stdout
    };
    assert_eq!(code(&["http://d/no/such/route"]), "404");
    let ran = service.curl(&["-s", "http://d/no/such/route"]);
    let body: Value = serde_json::from_str(&ran.stdout).expect("error JSON");
    assert_eq!(body["message"], "page not found");
    // A version beyond the service's, and one below its minimum.
    assert_eq!(code(&["http://d/v9.99/version"]), "400");
    assert_eq!(code(&["http://d/v1.12/version"]), "400");
    // Malformed filters, a body that is not JSON, a body too large to be a request.
    assert_eq!(code(&["http://d/events?filters=%7Bx"]), "400");
    assert_eq!(code(&["-XPOST", "-d", "{not json", "http://d/auth"]), "400");
    let huge = service.dir().join("huge");
    std::fs::write(&huge, vec![b' '; 5 << 20]).unwrap();
    let at = format!("@{}", huge.display());
    assert_eq!(
        code(&["-XPOST", "--data-binary", &at, "http://d/auth"]),
        "413"
    );
    // The service is still there.
    service.docker_ok(&["version"]);
}

#[test]
fn events_stream_what_the_command_line_does() {
    let Some(service) = Service::start() else {
        return;
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = now();
    service
        .berth
        .ok(&["create", "--name", "evented", IMAGE, "true"]);
    service.berth.ok(&["rm", "evented"]);
    // The stream ends at --until: a second from now, once both are in the log.
    let until = now() + 1;
    let out = service.docker_ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=evented",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["container create evented", "container destroy evented"],
        "{out}"
    );
}
