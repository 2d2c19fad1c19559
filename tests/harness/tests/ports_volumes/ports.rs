//! Ports through the docker CLI and the service, against `berth` (traffic through them is
//! network.rs's).

use std::net::{Ipv4Addr, TcpListener};

use berth_harness::api::Service;
use berth_harness::image::IMAGE;

/// A free run of `count` tcp ports on every address.
fn free_run(count: u16) -> u16 {
    let free = |p: u16| TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok();
    let base = 30000 + (std::process::id() % 500) as u16 * 20;
    (base..base + 2000)
        .find(|b| (*b..*b + count).all(free))
        .expect("a run of free ports")
}

/// The docker CLI's `--expose` ranges, `-P` and `-p A-B:80` reach the engine through the
/// API's ExposedPorts, PublishAllPorts and a HostPort range, and come back as from `berth`:
/// the same Config and HostConfig for the same flags, the same `port` and `ps` for the same
/// container through either CLI. Docker's own refusal of mismatched ranges is berth's.
/// (Before: ExposedPorts was dropped and a HostPort range refused.)
#[test]
fn the_docker_cli_exposes_and_publishes_as_berth_does() {
    crate::need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    let base = free_run(4);
    let range = format!("{base}-{}:80", base + 3);
    let flags = [
        "--expose",
        "7100-7101",
        "--expose",
        "53/udp",
        "-P",
        "-p",
        &range,
    ];
    let run = |name: &'static str| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&[IMAGE, "sleep", "1000"]);
        args
    };
    service.docker_ok(&run("d1"));
    berth.ok(&run("b1"));
    for template in [
        "{{json .Config.ExposedPorts}}",
        "{{json .HostConfig.PortBindings}}",
        "{{.HostConfig.PublishAllPorts}}",
    ] {
        let docker = service.docker_ok(&["inspect", "-f", template, "d1"]);
        assert_eq!(docker, berth.ok(&["inspect", "-f", template, "b1"]));
        assert_eq!(docker, berth.ok(&["inspect", "-f", template, "d1"]));
    }
    let exposed = berth.ok(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "d1"]);
    assert_eq!(
        exposed,
        r#"{"53/udp":{},"7100/tcp":{},"7101/tcp":{},"80/tcp":{}}"#
    );
    let host_ports = |name: &str| {
        let port = berth.ok(&["port", name, "80"]);
        port.rsplit(':').next().and_then(|p| p.parse::<u16>().ok())
    };
    assert_eq!(host_ports("d1"), Some(base), "the first port of the range");
    assert_eq!(host_ports("b1"), Some(base + 1), "the next free one");
    for name in ["d1", "b1"] {
        assert_eq!(
            service.docker_ok(&["port", name]),
            berth.ok(&["port", name])
        );
        let ps = ["ps", "--format", "{{.Ports}}", "--filter"];
        let filter = format!("name={name}");
        let mut args = ps.to_vec();
        args.push(&filter);
        assert_eq!(service.docker_ok(&args), berth.ok(&args));
    }
    assert_eq!(
        service.docker_ok(&["ps", "--format", "table {{.Names}}\t{{.Ports}}"]),
        berth.ok(&["ps", "--format", "table {{.Names}}\t{{.Ports}}"])
    );
    let docker = service.docker(&["run", "--rm", "-p", "19000-19002:9000-9001", IMAGE, "true"]);
    let ours = berth.run(&["run", "--rm", "-p", "19000-19002:9000-9001", IMAGE, "true"]);
    assert_eq!((docker.code(), ours.code()), (Some(125), Some(125)));
    let words = "invalid ranges specified for container and host Ports: 9000-9001 and 19000-19002";
    assert!(docker.stderr.contains(words), "{}", docker.stderr);
    assert!(ours.stderr.contains(words), "{}", ours.stderr);
    berth.ok(&["rm", "-f", "d1", "b1"]);
}
