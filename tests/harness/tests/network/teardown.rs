//! Teardown that never leaks: after `rm -f`, after a SIGKILLed monitor, and for 100 containers
//! started and removed, some at the same time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread;

use crate::{attachment, dnat_elements_for, ip_cmd, leftovers, monitors_of_id, Lab};
use berth_harness::image::IMAGE;

#[test]
fn rm_f_leaves_no_veth_element_lease_or_claim() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-rm", "10.234.4.0/24");
    lab.web("web", &["--network", "bt-rm", "-p", "80"]);
    let (id, veth, ip) = attachment(&lab, "web");
    // The check must see what it later says is gone.
    let before = leftovers(&lab, "bt-rm", &id, &veth, &ip);
    assert_eq!(
        before.len(),
        4,
        "veth, DNAT element, lease, claim: {before:?}"
    );
    lab.berth.ok(&["rm", "-f", "web"]);
    assert_eq!(
        leftovers(&lab, "bt-rm", &id, &veth, &ip),
        Vec::<String>::new()
    );
    // And the network can go now.
    lab.berth.ok(&["network", "rm", "bt-rm"]);
    lab.berth
        .ok(&["network", "create", "--subnet", "10.234.4.0/24", "bt-rm"]);
}

#[test]
fn rm_f_after_the_monitor_was_sigkilled_leaves_nothing() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-kill", "10.234.5.0/24");
    lab.web("web", &["--network", "bt-kill", "-p", "80"]);
    lab.web("dflt", &["-p", "80"]);
    for name in ["web", "dflt"] {
        let (id, veth, ip) = attachment(&lab, name);
        let net = if name == "web" { "bt-kill" } else { "bridge" };
        assert_eq!(leftovers(&lab, net, &id, &veth, &ip).len(), 4);
        let monitors = monitors_of_id(&id);
        assert_eq!(monitors.len(), 1, "one monitor for {name}: {monitors:?}");
        nix_kill(monitors[0]);
        lab.berth.ok(&["rm", "-f", name]);
        assert_eq!(leftovers(&lab, net, &id, &veth, &ip), Vec::<String>::new());
    }
}

fn nix_kill(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// 100 containers on one network: four threads start 20 each at once, then 20 more start one
/// by one; every address differs; all are removed (concurrently) and nothing is left.
#[test]
fn a_hundred_containers_no_collision_no_leak() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-stress", "10.234.8.0/24");
    let bridge = net["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .expect("bridge name")
        .to_string();
    let links_before = ip_cmd(&["link", "show", "master", &bridge]).lines().count();
    assert_eq!(links_before, 0);
    let lab = Arc::new(lab);
    let start = |lab: &Lab, i: usize| {
        let name = format!("s{i}");
        let mut args = vec!["run", "-d", "--name", &name, "--network", "bt-stress"];
        if i.is_multiple_of(10) {
            args.extend_from_slice(&["-p", "80"]);
        }
        args.extend_from_slice(&[IMAGE, "sleep", "1000"]);
        lab.berth.ok(&args);
    };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let lab = Arc::clone(&lab);
            thread::spawn(move || (0..20).for_each(|k| start(&lab, t * 20 + k)))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("starter"));
    (80..100).for_each(|i| start(&lab, i));

    let leases = lab.network_inspect("bt-stress")["Containers"].clone();
    let ips: BTreeSet<String> = leases
        .as_object()
        .expect("Containers")
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ips.len(), 100, "100 leases, all different: {leases}");
    let mut seen = BTreeSet::new();
    for i in 0..100 {
        let ip = lab.berth.inspect(&format!("s{i}"))["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(seen.insert(ip.clone()), "address {ip} given twice");
    }
    let links = ip_cmd(&["link", "show", "master", &bridge]).lines().count();
    assert_eq!(links, 100, "one veth per container on {bridge}");
    let published: usize = seen.iter().map(|ip| dnat_elements_for(ip).len()).sum();
    assert_eq!(published, 10);

    let removers: Vec<_> = (0..4)
        .map(|t| {
            let lab = Arc::clone(&lab);
            thread::spawn(move || {
                let names: Vec<String> = (0..25).map(|k| format!("s{}", t * 25 + k)).collect();
                let mut args = vec!["rm", "-f"];
                args.extend(names.iter().map(String::as_str));
                lab.berth.ok(&args);
            })
        })
        .collect();
    removers
        .into_iter()
        .for_each(|t| t.join().expect("remover"));
    assert_eq!(ip_cmd(&["link", "show", "master", &bridge]), "");
    let left: usize = seen.iter().map(|ip| dnat_elements_for(ip).len()).sum();
    assert_eq!(left, 0, "DNAT elements left");
    let leases = lab.network_inspect("bt-stress")["Containers"].clone();
    assert_eq!(leases.as_object().map(|m| m.len()), Some(0), "{leases}");
    let claims = std::fs::read_to_string("/run/berth/network/ports.json").unwrap_or_default();
    assert!(
        !seen.iter().any(|ip| claims.contains(&format!("\"{ip}\""))),
        "claims left"
    );
}
