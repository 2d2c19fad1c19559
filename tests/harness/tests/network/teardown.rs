//! Teardown that never leaks: after `rm -f`, after a SIGKILLed monitor, and for 100 containers
//! started and removed, some at the same time.

use std::collections::BTreeSet;
use std::fs;
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
    // `rm -f` returns once the container is gone and its lease and ports are released; its
    // monitor deletes the veth behind it (the kernel's wait) and then ends.
    berth_harness::eventually("the monitor to end", || {
        monitors_of_id(&id).is_empty().then_some(())
    });
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
/// by one; every address differs and names resolve to them; all are removed (concurrently) and
/// nothing is left.
#[test]
fn a_hundred_containers_no_collision_no_leak() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-stress", "10.234.8.0/24");
    // berth-net's bridge of the network (Docker's inspect names no user network's bridge).
    let bridge = format!("berth-{}", &net["Id"].as_str().expect("network id")[..9]);
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
    let mut by_name = Vec::new();
    for i in 0..100 {
        let ip = lab.berth.inspect(&format!("s{i}"))["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(seen.insert(ip.clone()), "address {ip} given twice");
        by_name.push((format!("s{i}"), ip));
    }
    let links = ip_cmd(&["link", "show", "master", &bridge]).lines().count();
    assert_eq!(links, 100, "one veth per container on {bridge}");
    let published: usize = seen.iter().map(|ip| dnat_elements_for(ip).len()).sum();
    assert_eq!(published, 10);
    // (After the veth count: a `run --rm`'s veth goes after its exit is reported.)
    // The network's DNS answers each name with that container's address: one started by each
    // of the four threads, and the last one started.
    let gateway = "10.234.8.1";
    for (name, ip) in [0, 27, 46, 79, 99].map(|i| &by_name[i]) {
        let ran = lab.berth.run(&[
            "run",
            "--rm",
            "--network",
            "bt-stress",
            IMAGE,
            "nslookup",
            name,
            gateway,
        ]);
        let answered = ran
            .stdout
            .lines()
            .any(|l| l.split_whitespace().last() == Some(ip.as_str()));
        assert!(
            answered,
            "{name} should resolve to {ip}: {}{}",
            ran.stdout, ran.stderr
        );
    }

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
    // The monitors delete the veths once `rm -f` has its answer.
    berth_harness::eventually("the veths to go", || {
        ip_cmd(&["link", "show", "master", &bridge])
            .is_empty()
            .then_some(())
    });
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

/// A running container whose record.json was cut short: `ps -a` skips it with a warning, and
/// `rm -f` removes everything from what the system holds for its id (before: `rm -f` answered
/// "corrupt record" and left the process, mounts, cgroups, veth and lease behind).
#[test]
fn rm_f_of_a_running_container_with_a_corrupt_record_leaves_nothing() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-corrupt", "10.234.9.0/24");
    lab.web("web", &["--network", "bt-corrupt", "-p", "80"]);
    let (id, veth, ip) = attachment(&lab, "web");
    assert_eq!(leftovers(&lab, "bt-corrupt", &id, &veth, &ip).len(), 4);
    let pid = crate::pid_of(&lab, "web");
    let dir = lab.berth.root().join("containers").join(&id);
    let record = dir.join("record.json");
    let text = std::fs::read(&record).expect("record");
    std::fs::write(&record, &text[..text.len() / 2]).expect("truncate the record");

    let ps = lab.berth.run(&["ps", "-a"]);
    assert!(ps.success(), "ps -a: {ps:?}");
    assert!(ps.stderr.contains(&id[..12]), "ps -a warns: {ps:?}");
    lab.berth.ok(&["rm", "-f", "web"]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the init lives on"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
    assert_eq!(
        berth_harness::image::mounts_under(lab.berth.root()),
        Vec::<String>::new()
    );
    assert_eq!(berth_harness::image::cgroup_dirs(&id), Vec::<String>::new());
    assert_eq!(
        leftovers(&lab, "bt-corrupt", &id, &veth, &ip),
        Vec::<String>::new()
    );
    assert_eq!(monitors_of_id(&id), Vec::<i32>::new());
    // The name is free again.
    lab.web("web", &["--network", "bt-corrupt"]);
}

/// The monitor's last record update fails (the record was cut short while the container ran):
/// the attached `run` still gets the exit code, and `--rm` still removes the container and its
/// network (before: the monitor gave up at the failed update, and told nobody).
#[test]
fn a_failed_last_record_update_still_reports_the_exit_and_removes() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-lastword", "10.234.10.0/24");
    let gate = tempfile::tempdir().expect("gate dir");
    let mount = format!("{}:/gate", gate.path().display());
    let script = "until [ -e /gate/go ]; do sleep 0.1; done; exit 7";
    let mut run = lab
        .berth
        .command()
        .args([
            "run",
            "--rm",
            "--name",
            "last",
            "--network",
            "bt-lastword",
            "-v",
            &mount,
        ])
        .args([IMAGE, "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("berth run");
    let (id, veth, ip) = crate::eventually("the container to run", || {
        let ran = lab
            .berth
            .run(&["inspect", "-f", "{{.State.Status}}", "last"]);
        (ran.stdout.trim() == "running").then(|| attachment(&lab, "last"))
    });
    let record = lab
        .berth
        .root()
        .join("containers")
        .join(&id)
        .join("record.json");
    std::fs::write(&record, b"{\"id\": \"").expect("cut the record short");
    std::fs::write(gate.path().join("go"), b"").expect("open the gate");
    let status = run.wait().expect("berth run");
    assert_eq!(status.code(), Some(7));
    assert!(
        !lab.berth.root().join("containers").join(&id).exists(),
        "--rm left the container"
    );
    // `run --rm` returns once the container is gone and its lease released; its monitor
    // deletes the veth behind it (the kernel's wait) and then ends.
    berth_harness::eventually("the monitor to end", || {
        monitors_of_id(&id).is_empty().then_some(())
    });
    assert_eq!(
        leftovers(&lab, "bt-lastword", &id, &veth, &ip),
        Vec::<String>::new()
    );
}

/// A lease whose container is gone (a removal or an attach that never finished) holds its
/// address and keeps the network from being removed until `network disconnect -f <network>
/// <name>` removes it, as Docker's does (before: "No such container", for ever).
#[test]
fn disconnect_force_removes_the_endpoint_of_a_container_that_is_gone() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-ghost", "10.234.14.0/24");
    let id = net["Id"].as_str().expect("Id");
    let ghost = "ef".repeat(32);
    let lease = serde_json::json!({
        "container_id": ghost, "name": "ghost", "hostname": "", "aliases": [],
        "mac": "02:42:0a:ea:0e:09", "veth": "vberthghost0000", "ports": [],
    });
    let file = lab.lease_dir(id).join(format!("10.234.14.9_{ghost}"));
    std::fs::write(&file, lease.to_string()).expect("writing the ghost's lease");
    assert!(lab.network_inspect("bt-ghost")["Containers"][&ghost].is_object());
    let ran = lab
        .berth
        .run(&["network", "disconnect", "bt-ghost", "ghost"]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    lab.berth
        .ok(&["network", "disconnect", "-f", "bt-ghost", "ghost"]);
    assert!(!file.exists(), "the ghost's lease is still there");
    let containers = lab.network_inspect("bt-ghost")["Containers"].clone();
    assert_eq!(
        containers.as_object().map(|c| c.len()),
        Some(0),
        "{containers}"
    );
}

/// A `network connect` killed between writing its lease's temporary and renaming it leaves
/// `.<ip>_<id>.tmp` in the network's lease directory: it goes with the container, which is not
/// reported disconnected from a network it never joined. (On a network of its own: a
/// `--network none` container cannot be connected, and its teardown looks at no leases.)
#[test]
fn a_lease_half_written_by_a_killed_connect_goes_with_its_container() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-halfw", "10.234.37.0/24");
    let net_id = net["Id"].as_str().expect("Id");
    lab.network("bt-hwown", "10.234.38.0/24");
    let ran = lab
        .berth
        .ok(&["run", "-d", "--network", "bt-hwown", IMAGE, "sleep", "1000"]);
    let id = ran.trim();
    let tmp = lab.lease_dir(net_id).join(format!(".10.234.37.9_{id}.tmp"));
    fs::write(&tmp, b"{\"container_id\": ").expect("a killed write's temporary");
    lab.berth.ok(&["rm", "-f", id]);
    assert!(!tmp.exists(), "{} left", tmp.display());
    let format = "{{.Action}} {{.Actor.Attributes.name}}";
    let events = lab.berth.events(&["type=network"], Some(format));
    assert!(!events.contains("disconnect bt-halfw"), "{events}");
}

/// A stale endpoint's removal takes only what is its own: a lease left by a container that is
/// gone names a published port that another container holds now (the claim went with the
/// first removal, the port was given again), and `network disconnect -f` of the stale one
/// leaves the live container's port published. Before, the DNAT element was deleted by its
/// key, the host port alone, whoever it pointed to.
#[test]
fn removing_a_stale_endpoint_leaves_another_containers_port_published() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-stale", "10.234.36.0/24");
    let net_id = net["Id"].as_str().expect("Id");
    let port = "18097";
    lab.berth.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "bt-stale",
        "-p",
        &format!("{port}:80"),
        IMAGE,
        "sleep",
        "1000",
    ]);
    let ip = lab.berth.inspect("holder")["NetworkSettings"]["Networks"]["bt-stale"]["IPAddress"]
        .as_str()
        .expect("holder's address")
        .to_string();
    assert_eq!(dnat_elements_for(&ip).len(), 1, "holder's port published");
    let ghost = "cd".repeat(32);
    let lease = serde_json::json!({
        "container_id": ghost, "name": "stale", "hostname": "", "aliases": [],
        "mac": "02:42:0a:ea:24:09", "veth": "vberthstale0000",
        "ports": [{"host_ip": "", "host_port": 18097, "container_port": 80, "protocol": "tcp"}],
    });
    let file = lab.lease_dir(net_id).join(format!("10.234.36.9_{ghost}"));
    fs::write(&file, lease.to_string()).expect("writing the stale lease");
    lab.berth
        .ok(&["network", "disconnect", "-f", "bt-stale", "stale"]);
    assert!(!file.exists(), "the stale lease is still there");
    assert_eq!(
        dnat_elements_for(&ip).len(),
        1,
        "holder's port {port} lost its DNAT element"
    );
    lab.berth.ok(&["rm", "-f", "holder"]);
}

/// A start whose init fails (a missing program, a working directory that is a file, a sysctl
/// the kernel does not have) after a `network connect` saved while the container was
/// created, with a published port: the record stays as it was (created, Docker's error), and
/// nothing is left of either network (no lease, no claim) nor of the staged record (no temp
/// file beside record.json).
#[test]
fn a_failed_start_with_a_connected_network_leaves_nothing() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-fail-a", "10.234.30.0/24");
    lab.network("bt-fail-b", "10.234.31.0/24");
    let bad: [&[&str]; 3] = [
        &["no-such-program"],
        &["-w", "/etc/passwd", "true"],
        // (A memory node the host lacks was the third, until create refused it.)
        &["--sysctl", "net.ipv4.no_such_sysctl=1", "true"],
    ];
    for (round, how) in bad.iter().enumerate() {
        let name = format!("fail{round}");
        let mut args = vec![
            "create",
            "--name",
            &name,
            "--network",
            "bt-fail-a",
            "-p",
            "80",
        ];
        let (flags, cmd) = how.split_at(how.len() - 1);
        args.extend(flags);
        args.push(IMAGE);
        args.extend(cmd);
        let id = lab.berth.ok(&args).trim().to_string();
        lab.berth.ok(&["network", "connect", "bt-fail-b", &name]);
        let dir = lab.berth.root().join("containers").join(&id);
        let out = lab.berth.run(&["start", &name]);
        assert_eq!(out.code(), Some(1), "round {round}: {out:?}");
        let after = lab.berth.inspect(&name);
        assert_eq!(after["State"]["Status"], "created", "round {round}");
        berth_harness::eventually("the monitor to end", || {
            monitors_of_id(&id).is_empty().then_some(())
        });
        let mut left: Vec<String> = fs::read_dir(&dir)
            .expect("container dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp") || n.ends_with(".staged"))
            .collect();
        left.extend(crate::leases_and_claims(
            &lab,
            &id,
            &["bt-fail-a", "bt-fail-b"],
        ));
        let veths = crate::ip_cmd(&["-o", "link", "show", "type", "veth"]);
        assert_eq!(left, Vec::<String>::new(), "round {round}: {veths}");
        lab.berth.ok(&["rm", "-f", &name]);
    }
}

/// `rm -f` racing a start (sent a few ms after `start` begins, at several offsets, some while
/// the monitor holds the record's lock with the start's record staged): it returns, the
/// container is gone, its monitor ends, and nothing of its network is left.
#[test]
fn rm_f_racing_a_start_leaves_nothing() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-rmrace", "10.234.32.0/24");
    lab.network("bt-rmrace-b", "10.234.33.0/24");
    for round in 0..12u64 {
        let name = format!("rmrace{round}");
        let id = lab
            .berth
            .ok(&[
                "create",
                "--name",
                &name,
                "--network",
                "bt-rmrace",
                "-p",
                "80",
                IMAGE,
                "sleep",
                "1000",
            ])
            .trim()
            .to_string();
        lab.berth.ok(&["network", "connect", "bt-rmrace-b", &name]);
        // The start may fail: the container is removed under it.
        lab.racing_start(&name, round, || {
            lab.berth.ok(&["rm", "-f", &name]);
        });
        berth_harness::eventually("the monitor to end", || {
            monitors_of_id(&id).is_empty().then_some(())
        });
        let mut left = crate::leases_and_claims(&lab, &id, &["bt-rmrace", "bt-rmrace-b"]);
        if lab.berth.root().join("containers").join(&id).exists() {
            left.push("its directory".into());
        }
        assert_eq!(left, Vec::<String>::new(), "round {round}");
    }
}
