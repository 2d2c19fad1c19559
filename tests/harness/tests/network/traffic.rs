//! Real traffic: names and aliases, published ports, hairpin, none, container:, isolation.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use berth_harness::image::IMAGE;

use crate::{eventually, http_get, netns_inode, pid_of, Lab};

#[test]
fn user_network_resolves_names_and_aliases_and_inspect_shows_it() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-dns", "10.234.1.0/24");
    lab.web("web", &["--network", "bt-dns", "--network-alias", "www"]);
    let flags = ["--network", "bt-dns"];
    assert_eq!(
        lab.fetch_eventually(&flags, "http://web/index.html"),
        "hello from web"
    );
    assert_eq!(
        lab.fetch(&flags, "http://www/index.html").as_deref(),
        Some("hello from web"),
        "the alias must resolve too"
    );
    assert_eq!(lab.fetch(&flags, "http://nosuchname/index.html"), None);

    let v = lab.berth.inspect("web");
    let ns = &v["NetworkSettings"];
    let ip = ns["Networks"]["bt-dns"]["IPAddress"].as_str().unwrap_or("");
    assert!(ip.starts_with("10.234.1."), "Networks.bt-dns: {ns}");
    assert_eq!(ns["IPAddress"], ip, "{ns}");
    assert_eq!(ns["Networks"]["bt-dns"]["Gateway"], "10.234.1.1");

    let refused = lab.berth.run(&["network", "rm", "bt-dns"]);
    assert!(
        !refused.success(),
        "network rm of a network in use must fail"
    );
    assert!(refused.stderr.contains("bt-dns"), "{}", refused.stderr);
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
}

#[test]
fn published_ports_answer_on_loopback_the_bridge_and_hairpin() {
    crate::need_root!();
    let lab = Lab::new();
    lab.web("web", &["-p", "80"]);
    let port_out = lab.berth.ok(&["port", "web"]);
    let port: u16 = port_out
        .lines()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .and_then(|l| l.rsplit(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("berth port web: {port_out}"));
    assert!(
        port >= 32768,
        "-p 80 picks a port from the ephemeral range: {port}"
    );
    let v = lab.berth.inspect("web");
    let gateway: Ipv4Addr = v["NetworkSettings"]["Gateway"]
        .as_str()
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("Gateway: {}", v["NetworkSettings"]));
    let want = Some("hello from web".to_string());
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(
        eventually("the published port on 127.0.0.1", || {
            http_get(local, "/index.html")
        }),
        "hello from web"
    );
    let bridge = SocketAddr::from((gateway, port));
    assert_eq!(
        http_get(bridge, "/index.html"),
        want,
        "on the bridge address"
    );
    let url = format!("http://{gateway}:{port}/index.html");
    assert_eq!(lab.fetch(&[], &url), want, "from another container");
    // Hairpin: from the container's own namespace to its own published port.
    let pid = pid_of(&lab, "web").to_string();
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", "timeout", "5"])
        .args([berth_harness::BUSYBOX, "wget", "-q", "-O", "-", &url])
        .output()
        .expect("nsenter");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from web",
        "hairpin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.berth.ok(&["rm", "-f", "web"]);
    assert_eq!(http_get(local, "/index.html"), None, "the port outlived rm");
}

#[test]
fn none_has_only_loopback() {
    crate::need_root!();
    let lab = Lab::new();
    let links = lab.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let up = lab.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]);
    assert!(up.contains("lo:") && up.contains("UP"), "lo is up: {up}");
}

#[test]
fn container_mode_shares_the_interface() {
    crate::need_root!();
    let lab = Lab::new();
    lab.berth
        .ok(&["run", "-d", "--name", "ca", IMAGE, "sleep", "1000"]);
    lab.berth.ok(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "container:ca",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let (pa, pb) = (pid_of(&lab, "ca"), pid_of(&lab, "cb"));
    assert_ne!(pa, pb);
    assert_eq!(netns_inode(pa), netns_inode(pb));
    let ip_a = lab.berth.inspect("ca")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!ip_a.is_empty());
    let seen = lab.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "container:cb",
        IMAGE,
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(seen.contains(&format!("inet {ip_a}/")), "{seen}");
}

#[test]
fn two_user_networks_cannot_reach_each_other() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-iso-a", "10.234.2.0/24");
    lab.network("bt-iso-b", "10.234.3.0/24");
    lab.web("web", &["--network", "bt-iso-a"]);
    let ip = lab.berth.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let url = format!("http://{ip}/index.html");
    // The same request from the server's own network answers, so a failure below is isolation.
    assert_eq!(
        lab.fetch_eventually(&["--network", "bt-iso-a"], &url),
        "hello from web"
    );
    assert_eq!(lab.fetch(&["--network", "bt-iso-b"], &url), None);
    assert_eq!(lab.fetch(&[], &url), None, "from the default bridge");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-conn", "10.234.6.0/24");
    lab.web("srv", &["--network", "bt-conn"]);
    lab.berth
        .ok(&["run", "-d", "--name", "c1", IMAGE, "sleep", "1000"]);
    lab.berth
        .ok(&["network", "connect", "--alias", "side", "bt-conn", "c1"]);
    let again = lab.berth.run(&["network", "connect", "bt-conn", "c1"]);
    assert!(!again.success(), "connecting twice must fail");

    let pid = pid_of(&lab, "c1").to_string();
    let in_c1 = |args: &[&str]| {
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n"])
            .args(args)
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let addrs = in_c1(&["ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(addrs.contains("inet 10.234.6."), "eth1: {addrs}");
    let v = lab.berth.inspect("c1");
    let nets = &v["NetworkSettings"]["Networks"];
    assert!(nets["bt-conn"]["IPAddress"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.234.6.")));
    assert!(nets["bridge"]["IPAddress"]
        .as_str()
        .is_some_and(|ip| !ip.is_empty()));
    // Reached by its alias from the joined network, and reaching that network's server.
    assert_eq!(
        lab.fetch_eventually(&["--network", "bt-conn"], "http://srv/index.html"),
        "hello from srv"
    );
    let ping = lab.berth.run(&[
        "run",
        "--rm",
        "--network",
        "bt-conn",
        IMAGE,
        "ping",
        "-c1",
        "-W5",
        "side",
    ]);
    assert!(ping.success(), "ping side: {}{}", ping.stdout, ping.stderr);

    let record = crate::record_of(&lab, "c1");
    let veth = record["networks"][0]["host_veth"]
        .as_str()
        .expect("the joined network's veth")
        .to_string();
    let id = record["id"].as_str().unwrap_or_default().to_string();
    lab.berth.ok(&["network", "disconnect", "bt-conn", "c1"]);
    assert_eq!(in_c1(&["ip", "-o", "link", "show", "eth1"]), "");
    assert_eq!(crate::ip_cmd(&["link", "show", &veth]), "");
    assert!(lab.network_inspect("bt-conn")["Containers"]
        .get(&id)
        .is_none());

    // Joined again, then removed: the second interface goes with the container.
    lab.berth.ok(&["network", "connect", "bt-conn", "c1"]);
    assert_ne!(crate::ip_cmd(&["link", "show", &veth]), "");
    lab.berth.ok(&["rm", "-f", "c1"]);
    // Deleted by the monitor once `rm -f` has its answer (the kernel's wait is behind it).
    berth_harness::eventually("the monitor to end", || {
        crate::monitors_of_id(&id).is_empty().then_some(())
    });
    assert_eq!(crate::ip_cmd(&["link", "show", &veth]), "");
    assert!(lab.network_inspect("bt-conn")["Containers"]
        .get(&id)
        .is_none());
}

/// The IPv4 addresses (`10.234.7.2/24`) of `dev` in the network namespace of `pid`.
fn addrs_in(pid: i32, dev: &str) -> Vec<String> {
    let pid = pid.to_string();
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", "ip", "-4", "-o", "addr", "show", dev])
        .output()
        .expect("nsenter");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "inet")
        .map(|w| w[1].to_string())
        .collect()
}

/// Docker keeps a container's networks: one connected while it is created is joined at its
/// start and after a restart; the network it was created on, disconnected while stopped, is
/// left at the next start (its mode stays) until connected again.
/// A `network connect` that lands while the container starts (saved to its record after the
/// monitor read it, before the container runs) is joined, not lost: before, the monitor
/// attached from its older copy of the record and wrote that copy's networks back, so the
/// container ran without the network `inspect` said it had (about 1 try in 8 here). The
/// connect is sent a few ms after `start` begins, at a few offsets; wherever it lands (before
/// the start, during it, after it) the container must end up on both networks.
#[test]
fn a_network_connected_while_the_container_starts_is_joined() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-race-a", "10.234.15.0/24");
    lab.network("bt-race-b", "10.234.16.0/24");
    for round in 0..12 {
        let name = format!("race{round}");
        lab.berth.ok(&[
            "create",
            "--name",
            &name,
            "--network",
            "bt-race-a",
            IMAGE,
            "sleep",
            "1000",
        ]);
        let started = lab.racing_start(&name, round, || {
            lab.berth.ok(&["network", "connect", "bt-race-b", &name]);
        });
        assert!(started, "start {name}");
        let pid = pid_of(&lab, &name);
        let eth1 = eventually_addrs(pid, "eth1");
        assert!(
            eth1.iter().any(|a| a.starts_with("10.234.16.")),
            "round {round}: connected during its start, yet not on bt-race-b: {eth1:?}"
        );
        let nets = lab.berth.inspect(&name)["NetworkSettings"]["Networks"].clone();
        assert!(
            nets["bt-race-b"]["IPAddress"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.234.16.")),
            "round {round}: {nets}"
        );
        lab.berth.ok(&["rm", "-f", &name]);
    }
}

/// A `network disconnect` that lands while the container starts (it was connected while
/// created) is not lost: wherever it lands, the container ends up off that network, in its
/// interfaces, in `inspect` and in the network's leases, as with Docker.
#[test]
fn a_network_disconnected_while_the_container_starts_is_left() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-drace-a", "10.234.34.0/24");
    lab.network("bt-drace-b", "10.234.35.0/24");
    for round in 0..12 {
        let name = format!("drace{round}");
        let id = lab
            .berth
            .ok(&[
                "create",
                "--name",
                &name,
                "--network",
                "bt-drace-a",
                IMAGE,
                "sleep",
                "1000",
            ])
            .trim()
            .to_string();
        lab.berth.ok(&["network", "connect", "bt-drace-b", &name]);
        let started = lab.racing_start(&name, round, || {
            lab.berth
                .ok(&["network", "disconnect", "bt-drace-b", &name]);
        });
        assert!(started, "start {name}");
        let pid = pid_of(&lab, &name);
        let eth1 = eventually("eth1 gone", || {
            let addrs = addrs_in(pid, "eth1");
            addrs.is_empty().then_some(addrs)
        });
        assert!(eth1.is_empty(), "round {round}: still on bt-drace-b");
        let nets = lab.berth.inspect(&name)["NetworkSettings"]["Networks"].clone();
        assert!(nets.get("bt-drace-b").is_none(), "round {round}: {nets}");
        assert!(
            lab.network_inspect("bt-drace-b")["Containers"]
                .get(&id)
                .is_none(),
            "round {round}: a lease left on bt-drace-b"
        );
        lab.berth.ok(&["rm", "-f", &name]);
    }
}

/// The container's addresses on `dev`, once it has any (a connect after the start attaches
/// live, a moment after the command returns).
fn eventually_addrs(pid: i32, dev: &str) -> Vec<String> {
    eventually(&format!("addresses on {dev}"), || {
        let addrs = addrs_in(pid, dev);
        (!addrs.is_empty()).then_some(addrs)
    })
}

#[test]
fn networks_connected_while_stopped_are_joined_at_every_start() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-keep-a", "10.234.7.0/24");
    lab.network("bt-keep-b", "10.234.12.0/24");
    lab.berth.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "bt-keep-a",
        IMAGE,
        "sleep",
        "1000",
    ]);
    lab.berth
        .ok(&["network", "connect", "--alias", "late", "bt-keep-b", "c1"]);
    let again = lab.berth.run(&["network", "connect", "bt-keep-b", "c1"]);
    assert!(!again.success(), "connecting twice must fail");
    let networks = |lab: &Lab| lab.berth.inspect("c1")["NetworkSettings"]["Networks"].clone();
    let nets = networks(&lab);
    assert_eq!(nets["bt-keep-b"]["Aliases"][0], "late", "{nets}");
    assert_eq!(
        nets["bt-keep-b"]["IPAddress"], "",
        "not joined before its start"
    );
    assert!(nets.get("bt-keep-a").is_some(), "{nets}");
    let on = |net: &str| {
        let filter = format!("network={net}");
        lab.berth
            .ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", &filter])
    };
    assert_eq!(on("bt-keep-b"), "c1", "ps sees the configured network");

    let on_both = |lab: &Lab| {
        let pid = pid_of(lab, "c1");
        let (eth0, eth1) = (addrs_in(pid, "eth0"), addrs_in(pid, "eth1"));
        assert!(eth0.iter().any(|a| a.starts_with("10.234.7.")), "{eth0:?}");
        assert!(eth1.iter().any(|a| a.starts_with("10.234.12.")), "{eth1:?}");
        let ping = [
            "run",
            "--rm",
            "--network",
            "bt-keep-b",
            IMAGE,
            "ping",
            "-c1",
            "-W5",
            "late",
        ];
        let ran = lab.berth.run(&ping);
        assert!(ran.success(), "ping late: {}{}", ran.stdout, ran.stderr);
    };
    lab.berth.ok(&["start", "c1"]);
    on_both(&lab);
    let nets = networks(&lab);
    assert!(nets["bt-keep-b"]["IPAddress"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.234.12.")));
    lab.berth.ok(&["stop", "-t", "1", "c1"]);
    lab.berth.ok(&["start", "c1"]);
    on_both(&lab);

    // Disconnected from its mode's network while stopped: the next start joins b alone.
    lab.berth.ok(&["stop", "-t", "1", "c1"]);
    lab.berth.ok(&["network", "disconnect", "bt-keep-a", "c1"]);
    let v = lab.berth.inspect("c1");
    assert_eq!(v["HostConfig"]["NetworkMode"], "bt-keep-a");
    assert!(v["NetworkSettings"]["Networks"].get("bt-keep-a").is_none());
    assert_eq!(on("bt-keep-a"), "");
    let gone = lab.berth.run(&["network", "disconnect", "bt-keep-a", "c1"]);
    assert!(!gone.success(), "disconnecting twice must fail");
    lab.berth.ok(&["start", "c1"]);
    let pid = pid_of(&lab, "c1");
    let eth0 = addrs_in(pid, "eth0");
    assert!(eth0.iter().any(|a| a.starts_with("10.234.12.")), "{eth0:?}");
    assert_eq!(addrs_in(pid, "eth1"), Vec::<String>::new());
    // Connected again while it runs, and kept for the next start.
    lab.berth.ok(&["network", "connect", "bt-keep-a", "c1"]);
    let eth1 = addrs_in(pid, "eth1");
    assert!(eth1.iter().any(|a| a.starts_with("10.234.7.")), "{eth1:?}");
    lab.berth.ok(&["stop", "-t", "1", "c1"]);
    lab.berth.ok(&["start", "c1"]);
    on_both(&lab);
}

/// Removes the nft table `ip <name>` on drop.
struct HostTable(&'static str);

impl Drop for HostTable {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", self.0])
            .status();
    }
}

fn nft(args: &[&str]) {
    let status = Command::new("nft").args(args).status().expect("nft");
    assert!(status.success(), "nft {args:?}");
}

#[test]
fn a_host_forward_policy_of_drop_is_reported() {
    crate::need_root!();
    let lab = Lab::new();
    lab.berth
        .ok(&["run", "-d", "--name", "before", IMAGE, "sleep", "1000"]);
    let warnings = |name: &str| crate::record_of(&lab, name)["network"]["warnings"].to_string();
    assert!(
        !warnings("before").contains("bt_hostfw"),
        "{}",
        warnings("before")
    );
    // A host firewall whose forward policy is drop; its one rule accepts everything, so that
    // the other tests' traffic is not dropped meanwhile.
    let _table = HostTable("bt_hostfw");
    nft(&["add", "table", "ip", "bt_hostfw"]);
    nft(&[
        "add",
        "chain",
        "ip",
        "bt_hostfw",
        "fchain",
        "{ type filter hook forward priority 10; policy drop; }",
    ]);
    nft(&["add", "rule", "ip", "bt_hostfw", "fchain", "accept"]);
    let ran = lab.berth.run(&[
        "run", "-d", "--name", "after", "-p", "80", IMAGE, "sleep", "1000",
    ]);
    assert!(ran.success(), "{}", ran.stderr);
    let w = warnings("after");
    assert!(
        w.contains("ip bt_hostfw fchain") && w.contains("policy drop"),
        "no warning about the host's forward policy: {w}"
    );
    assert!(
        ran.stderr.contains("WARNING:") && ran.stderr.contains("policy drop"),
        "run says it too: {}",
        ran.stderr
    );
    // In the foreground, of a --rm container whose record may be gone before the client
    // reads it: the monitor tells the warnings with the start.
    let ran = lab.berth.run(&["run", "--rm", "-p", "80", IMAGE, "true"]);
    assert!(ran.success(), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("WARNING:") && ran.stderr.contains("policy drop"),
        "run --rm says it too: {}",
        ran.stderr
    );
}

/// A renamed container answers to its new name on its networks, and no longer to the old one
/// (before: the DNS kept answering to the old name, from the leases).
#[test]
fn a_renamed_container_answers_to_its_new_name() {
    crate::need_root!();
    let mut lab = Lab::new();
    lab.network("bt-rename", "10.234.11.0/24");
    lab.web("old", &["--network", "bt-rename"]);
    let flags = ["--network", "bt-rename"];
    assert_eq!(
        lab.fetch_eventually(&flags, "http://old/index.html"),
        "hello from old"
    );
    lab.berth.ok(&["rename", "old", "new"]);
    assert_eq!(
        lab.fetch(&flags, "http://new/index.html").as_deref(),
        Some("hello from old")
    );
    assert_eq!(lab.fetch(&flags, "http://old/index.html"), None);
    let id = lab.berth.inspect("new")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let leases = &lab.network_inspect("bt-rename")["Containers"];
    assert_eq!(leases[&id]["Name"], "new", "{leases}");
}

/// Damaged files in a network's lease directory (what a crash or a hand can leave: an empty
/// file, garbage, a FIFO, a symlink to /dev/zero) are no lease anyone reads: names still
/// resolve, `network inspect` still answers, and nothing hangs or reads without end (before:
/// inspect failed on the empty file, hung on the FIFO and ran out of memory on the symlink, and
/// the DNS server, stuck on them too, never learnt a new container's name).
#[test]
fn damaged_lease_files_leave_names_and_inspect_working() {
    crate::need_root!();
    let mut lab = Lab::new();
    let net = lab.network("bt-damaged", "10.234.13.0/24");
    let id = net["Id"].as_str().expect("Id");
    let dir = lab.lease_dir(id);
    let name = |n: u8| dir.join(format!("10.234.13.{n}_{}", "ab".repeat(32)));
    let _damaged = Damaged((200..=203).map(name).collect());
    std::fs::write(name(200), b"").expect("empty lease");
    std::fs::write(name(201), b"{garbage").expect("garbage lease");
    let fifo = Command::new("mkfifo")
        .arg(name(202))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::os::unix::fs::symlink("/dev/zero", name(203)).expect("symlink lease");

    lab.web("web", &["--network", "bt-damaged"]);
    let flags = ["--network", "bt-damaged"];
    assert_eq!(
        lab.fetch_eventually(&flags, "http://web/index.html"),
        "hello from web"
    );
    let web = lab.berth.inspect("web")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let v = lab.network_inspect("bt-damaged");
    let containers = v["Containers"].as_object().expect("Containers");
    assert_eq!(
        containers.keys().collect::<Vec<_>>(),
        vec![&web],
        "{containers:?}"
    );
}

/// Removes the damaged leases before the network is (its `rm` would count them otherwise).
struct Damaged(Vec<std::path::PathBuf>);

impl Drop for Damaged {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}
