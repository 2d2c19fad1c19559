//! berth's own CLI beside the docker CLI, both on one data root: the docker CLI talks to
//! `berth system service`, so its output is Docker's client formatting of berth's state, and
//! berth's CLI must print the same for the same state.
#![forbid(unsafe_code)]

use berth_harness::api::Service;
use berth_harness::image::IMAGE;

/// `args` through both CLIs: (berth's stdout, docker's stdout), both successful.
fn both(service: &Service, args: &[&str]) -> (String, String) {
    (service.berth.ok(args), service.docker_ok(args))
}

#[test]
fn ps_size_is_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "sized", IMAGE, "sleep", "600"]);
    service.berth.ok(&[
        "exec",
        "sized",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /five-k",
    ]);
    // No CREATED or STATUS column: two calls a moment apart may word the age differently.
    for args in [
        &[
            "ps",
            "-s",
            "--format",
            "table {{.ID}}\t{{.Names}}\t{{.Size}}",
        ][..],
        &["ps", "--size", "--format", "{{.Names}} {{.Size}}"],
        &["ps", "--format", "{{.Size}}"],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    service.berth.ok(&["rm", "-f", "sized"]);
}
