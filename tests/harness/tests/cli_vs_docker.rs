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
        // (Not ps: the docker CLI first runs a ps template over an empty container.)
        &[
            "images",
            "--format",
            "{{slice .ID 0 5}} {{slice .Repository 1 3}}",
        ],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    service.berth.ok(&["rm", "-f", "sized"]);
}

#[test]
fn system_df_formats_are_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "used", IMAGE, "sleep", "600"]);
    for args in [
        &["system", "df", "--format", "json"][..],
        &[
            "system",
            "df",
            "--format",
            "{{.Type}}: {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}",
        ],
        &["system", "df", "--format", "table {{.Type}}\t{{.Size}}"],
        &["system", "df", "--format", "table"],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    service.berth.ok(&["rm", "-f", "used"]);
}

#[test]
fn network_filters_formats_and_prune_filters_are_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["network", "create", "--label", "team=a", "labelled"]);
    service.berth.ok(&["network", "create", "plain"]);
    for args in [
        &["network", "ls", "--filter", "label=team=a"][..],
        &[
            "network",
            "ls",
            "-f",
            "name=pla",
            "--format",
            "{{.Name}} {{.Driver}}",
        ],
        &["network", "ls", "--format", "table {{.Name}}\t{{.Scope}}"],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}}",
            "labelled",
            "plain",
        ],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    // A prune's filters: only the labelled network goes.
    let pruned = service
        .berth
        .ok(&["network", "prune", "-f", "--filter", "label=team=a"]);
    assert_eq!(pruned.trim(), "Deleted Networks:\nlabelled");
    let names = service
        .berth
        .ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        names.contains("plain") && !names.contains("labelled"),
        "{names}"
    );
    // Images and containers take until=; a filter no prune knows is refused before anything.
    service
        .berth
        .ok(&["image", "prune", "-f", "--filter", "until=1h"]);
    service
        .berth
        .ok(&["container", "prune", "-f", "--filter", "until=1s"]);
    let ran = service
        .berth
        .run(&["system", "prune", "-f", "--filter", "bogus=1"]);
    assert_eq!(ran.code(), Some(1));
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    service.berth.ok(&["network", "rm", "plain"]);
}

/// `search` of a registry on loopback reads its catalog; both CLIs print the same table, and
/// Docker Hub, out of reach here, is one line saying so.
#[test]
fn search_reads_a_registrys_catalog() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = berth_harness::registry::Registry::start(false) else {
        return;
    };
    for repo in ["tools/busybox", "other/thing", "busyness"] {
        let name = format!("{}/{repo}:1", registry.addr);
        service.berth.ok(&["tag", IMAGE, &name]);
        service.berth.ok(&["push", &name]);
    }
    let term = format!("{}/busy", registry.addr);
    let (berth, docker) = both(&service, &["search", &term]);
    assert_eq!(berth, docker);
    let names: Vec<&str> = berth
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            format!("{}/busyness", registry.addr),
            format!("{}/tools/busybox", registry.addr)
        ]
    );
    let (berth, docker) = both(&service, &["search", "--limit", "1", &term]);
    assert_eq!(berth, docker);
    assert_eq!(berth.lines().count(), 2);
    let ran = service.berth.run(&["search", "busybox"]);
    assert_eq!(ran.code(), Some(1));
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}
