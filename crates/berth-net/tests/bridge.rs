//! Real-kernel tests of the bridge driver: real namespaces, real traffic, real rules.
//! Each test uses its own network names and a 10.231.N.0/24 subnet, and a temp data root.

mod common;

use common::*;

use berth_net::{AttachRequest, NetError};

#[test]
fn containers_on_a_user_network_reach_each_other_by_ip_and_name() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let net = t.network("bnt-names", "10.231.1.0/24", false);
    let (web_ns, client_ns) = (Netns::new(), Netns::new());
    let www = tempfile::tempdir().unwrap();
    let web = t.attach(&web_ns, "bnt-names", "web", vec![]);
    let _httpd = web_ns.httpd(www.path(), "hello from web");
    let client = t.attach(&client_ns, "bnt-names", "client", vec![]);

    assert_eq!(web.gateway, Some(net.gateway));
    assert_eq!(
        web.dns,
        Some(net.gateway),
        "user networks get the embedded DNS"
    );
    assert_ne!(web.ip, client.ip);
    let links = client_ns.links();
    assert!(
        links.contains(&"eth0".to_string()) && links.contains(&"lo".to_string()),
        "{links:?}"
    );
    // No IPv6 link-local address on either end of the veth: its chatter would be flooded to
    // every port of the bridge.
    let (_, v6) = client_ns.run(&["ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(!v6.contains("fe80"), "the container's end: {v6}");
    let host_end = client.host_veth.clone().unwrap();
    let v6 = std::process::Command::new("ip")
        .args(["-6", "addr", "show", "dev", &host_end])
        .output()
        .unwrap();
    let v6 = String::from_utf8_lossy(&v6.stdout);
    assert!(!v6.contains("fe80"), "the host's end {host_end}: {v6}");
    let (_, route) = client_ns.run(&["ip", "route", "show", "default"]);
    assert!(route.contains(&format!("via {}", net.gateway)), "{route}");

    let by_ip = client_ns.wget(&format!("http://{}/", web.ip.unwrap()));
    assert_eq!(by_ip.as_deref(), Some("hello from web"));

    // The DNS server was spawned by attach; ask it for every name the container has.
    for name in ["web", "web-host", "web-alias"] {
        let (ok, out) = client_ns.run(&[BUSYBOX, "nslookup", name, &net.gateway.to_string()]);
        assert!(
            ok && out.contains(&web.ip.unwrap().to_string()),
            "{name}: {out}"
        );
    }
    let (ok, _) = client_ns.run(&[
        BUSYBOX,
        "nslookup",
        "nosuchcontainer",
        &net.gateway.to_string(),
    ]);
    assert!(!ok, "an unknown name must not resolve");

    t.store.detach(&web).unwrap();
    let (ok, out) = client_ns.run(&[BUSYBOX, "nslookup", "web", &net.gateway.to_string()]);
    assert!(!ok, "a detached container's name is gone: {out}");
    t.store.detach(&client).unwrap();
}

/// `none` is the runtime's namespace as it made it (its loopback brought up there, as runc
/// does: tests/harness's runtime_engine and clients' podman-over-runc comparison): attach
/// touches nothing in it.
#[test]
fn none_leaves_the_namespace_as_the_runtime_made_it() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let ns = Netns::new();
    let att = t.attach(&ns, "none", "lonely", vec![]);
    assert_eq!(att.ip, None);
    assert_eq!(ns.links(), vec!["lo".to_string()]);
    let (_, lo) = ns.run(&["ip", "-j", "addr", "show", "lo"]);
    assert!(
        !lo.contains("127.0.0.1"),
        "lo of a fresh `ip netns` stays down: {lo}"
    );
    t.store.detach(&att).unwrap();
}

#[test]
fn two_user_networks_are_isolated() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    t.network("bnt-iso-a", "10.231.2.0/24", false);
    t.network("bnt-iso-b", "10.231.3.0/24", false);
    let (a_ns, b_ns, a2_ns) = (Netns::new(), Netns::new(), Netns::new());
    let www = tempfile::tempdir().unwrap();
    let a = t.attach(&a_ns, "bnt-iso-a", "a", vec![]);
    let _httpd = a_ns.httpd(www.path(), "a");
    let b = t.attach(&b_ns, "bnt-iso-b", "b", vec![]);
    let a2 = t.attach(&a2_ns, "bnt-iso-a", "a2", vec![]);
    let url = format!("http://{}/", a.ip.unwrap());
    assert_eq!(
        a2_ns.wget(&url).as_deref(),
        Some("a"),
        "same network reaches"
    );
    assert_eq!(b_ns.wget(&url), None, "another network must not reach");
    for att in [a, b, a2] {
        t.store.detach(&att).unwrap();
    }
}

#[test]
fn published_ports_answer_on_loopback_and_the_bridge_and_leave_nothing_after_detach() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let net = t.network("bnt-ports", "10.231.4.0/24", false);
    t.network("bnt-ports-other", "10.231.5.0/24", false);
    let (web_ns, other_ns) = (Netns::new(), Netns::new());
    let www = tempfile::tempdir().unwrap();
    let web = t.attach(&web_ns, "bnt-ports", "pweb", vec![tcp(0, 80)]);
    let _httpd = web_ns.httpd(www.path(), "published");
    let port = web.ports[0].host_port;
    assert!(port >= 32768, "a free host port was chosen: {port}");

    assert_eq!(
        host_wget(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("published")
    );
    assert_eq!(
        host_wget(&format!("http://{}:{port}/", net.gateway)).as_deref(),
        Some("published")
    );
    // From a container of another network (another host, as far as this one knows).
    let other = t.attach(&other_ns, "bnt-ports-other", "pother", vec![]);
    let other_gw = other.gateway.unwrap();
    assert_eq!(
        other_ns
            .wget(&format!("http://{other_gw}:{port}/"))
            .as_deref(),
        Some("published")
    );

    // The same host port again is refused.
    let again = AttachRequest {
        container_id: "dup".into(),
        network: "bnt-ports".into(),
        netns: other_ns.path.clone(),
        ports: vec![tcp(port, 80)],
        ..Default::default()
    };
    assert!(matches!(
        t.store.attach(&again),
        Err(NetError::PortInUse { .. })
    ));

    let key = format!("{port}");
    assert!(nft_elements("pub_tcp").iter().any(|e| e.contains(&key)));
    let veth = web.host_veth.clone().unwrap();
    assert!(host_links().contains(&veth));
    t.store.detach(&web).unwrap();
    t.store.detach(&web).unwrap();
    assert!(
        !nft_elements("pub_tcp").iter().any(|e| e.contains(&key)),
        "DNAT element removed"
    );
    assert!(!host_links().contains(&veth), "veth removed");
    assert_eq!(host_wget(&format!("http://127.0.0.1:{port}/")), None);
    let leases = t.store.leases(&net).unwrap();
    assert!(
        leases.values().all(|l| l.container_id != web.container_id),
        "lease released"
    );
    t.store.detach(&other).unwrap();
}
