//! `--expose`, `-P` and port ranges: what inspect, `port` and `ps` say of them, and traffic
//! through the host ports they publish.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use berth_harness::image::image_tar;
use serde_json::{json, Value};

use crate::{dnat_elements_for, eventually, http_get, Lab};

/// Docker's ephemeral range, from which `-P` and `-p PORT` take host ports.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// `run -d` of busybox httpd on each of `ports`, each answering "hello from <port>".
fn web_on(lab: &Lab, name: &str, flags: &[&str], image: &str, ports: &[u16]) {
    let mut script = String::new();
    for p in ports {
        script.push_str(&format!(
            "mkdir -p /tmp/{p}; echo hello from {p} > /tmp/{p}/index.html; httpd -p {p} -h /tmp/{p}; "
        ));
    }
    script.push_str("exec sleep 1000");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[image, "sh", "-c", &script]);
    lab.berth.ok(&args);
}

/// `NetworkSettings.Ports` as container port -> [(HostIp, HostPort)], `null` as none.
fn published(v: &Value) -> BTreeMap<String, Vec<(String, u16)>> {
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    ports
        .into_iter()
        .map(|(k, b)| {
            let bindings = b.as_array().cloned().unwrap_or_default();
            let hosts = bindings.iter().map(|b| {
                let port = b["HostPort"].as_str().and_then(|p| p.parse().ok());
                (
                    b["HostIp"].as_str().unwrap_or("").to_string(),
                    port.unwrap_or(0),
                )
            });
            (k, hosts.collect())
        })
        .collect()
}

fn answers(port: u16, body: &str) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let what = format!("{body} on 127.0.0.1:{port}");
    assert_eq!(eventually(&what, || http_get(addr, "/index.html")), body);
}

/// `count` consecutive ports free for tcp and udp on every address, from a base of this
/// process's own so that tests running at once look in different places.
fn free_run(count: u16, from: u16) -> u16 {
    let free = |p: u16| {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok()
            && UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok()
    };
    let base = from + (std::process::id() % 500) as u16 * 20;
    (base..base + 2000)
        .find(|b| (*b..*b + count).all(free))
        .expect("a run of free ports")
}

/// The image's EXPOSE and `--expose` (a range and a udp port) are stored and shown as Docker
/// shows them; `-P` publishes each on its own free port of Docker's ephemeral range on
/// 0.0.0.0, and traffic reaches the container through them. (Before: ExposedPorts listed
/// only `-p`'s ports, and `--expose` was no flag.)
#[test]
fn expose_and_publish_all_publish_every_exposed_port() {
    crate::need_root!();
    let lab = Lab::new();
    let image = "exposed:1";
    let tar = image_tar();
    let tar = tar.to_str().expect("tar path");
    lab.berth
        .ok(&["import", "--change", "EXPOSE 8080", tar, image]);
    let flags = ["--expose", "7000-7002", "--expose", "53/udp", "-P"];
    web_on(&lab, "web", &flags, image, &[8080, 7001]);
    let v = lab.berth.inspect("web");
    let keys = ["53/udp", "7000/tcp", "7001/tcp", "7002/tcp", "8080/tcp"];
    let exposed: BTreeMap<&str, Value> = keys.iter().map(|k| (*k, json!({}))).collect();
    assert_eq!(
        v["Config"]["ExposedPorts"],
        json!(exposed),
        "{}",
        v["Config"]
    );
    assert_eq!(v["HostConfig"]["PublishAllPorts"], true);
    assert_eq!(
        v["HostConfig"]["PortBindings"],
        json!({}),
        "-P binds nothing itself"
    );
    let ports = published(&v);
    assert_eq!(
        ports.keys().map(String::as_str).collect::<Vec<_>>(),
        keys,
        "{ports:?}"
    );
    let mut host_ports = BTreeSet::new();
    for (key, hosts) in &ports {
        let [(ip, port)] = hosts.as_slice() else {
            panic!("{key}: one binding each: {hosts:?}");
        };
        assert_eq!(ip, "0.0.0.0", "{key}");
        assert!(EPHEMERAL.contains(port), "{key} on {port}");
        let proto = key.split('/').nth(1).unwrap_or("");
        assert!(
            host_ports.insert((*port, proto)),
            "{key}: {port} taken twice"
        );
    }
    // `port` lists the same, in Docker's natural order.
    let lines: Vec<String> = ports
        .iter()
        .map(|(k, h)| format!("{k} -> 0.0.0.0:{}", h[0].1))
        .collect();
    let mut want = lines.clone();
    want.sort_by_key(|l| l.split('/').next().and_then(|p| p.parse::<u16>().ok()));
    assert_eq!(lab.berth.ok(&["port", "web"]), want.join("\n"));
    let ps = lab
        .berth
        .ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=web"]);
    let web = ports["8080/tcp"][0].1;
    assert!(ps.contains(&format!("0.0.0.0:{web}->8080/tcp")), "{ps}");
    answers(web, "hello from 8080");
    answers(ports["7001/tcp"][0].1, "hello from 7001");
    assert_eq!(
        lab.berth.ok(&["port", "web", "8080"]),
        format!("0.0.0.0:{web}")
    );
    // Without -P, exposed ports are listed unpublished: `null` in inspect, bare in ps.
    lab.berth.ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--expose",
        "7000-7002",
        image,
        "sleep",
        "1000",
    ]);
    let v = lab.berth.inspect("quiet");
    let ports = &v["NetworkSettings"]["Ports"];
    assert_eq!(ports["7001/tcp"], Value::Null, "{ports}");
    assert_eq!(ports["8080/tcp"], Value::Null, "{ports}");
    let ps = lab
        .berth
        .ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=quiet"]);
    assert_eq!(ps, "7000-7002/tcp, 8080/tcp");
    let ran = lab.berth.run(&["port", "quiet", "7001"]);
    assert_eq!(ran.code(), Some(1));
    assert!(
        ran.stderr
            .contains("no public port '7001' published for quiet"),
        "{}",
        ran.stderr
    );
    lab.berth.ok(&["rm", "-f", "web", "quiet"]);
    lab.berth.ok(&["rmi", image]);
}

/// `-p A-B:C-D` publishes each port on its own; `-p A-B:80` takes the first free port of
/// the range (the first is held here); `-p 127.0.0.1:A-B:A-B/udp` publishes udp on that
/// address alone, grouped in ps as Docker groups it. (Before: a range was no port spec.)
#[test]
fn port_ranges_publish_each_port_and_choose_from_a_host_range() {
    crate::need_root!();
    let lab = Lab::new();
    let pair = free_run(2, 20000);
    let choose = free_run(5, pair + 2);
    let udp = free_run(2, choose + 5);
    let held = TcpListener::bind((Ipv4Addr::UNSPECIFIED, choose)).expect("hold a port");
    let pair_spec = format!("{pair}-{}:9000-9001", pair + 1);
    let choose_spec = format!("{choose}-{}:80", choose + 4);
    // On the same ports inside: ps groups them, as Docker does.
    let udp_spec = format!("127.0.0.1:{udp}-{u1}:{udp}-{u1}/udp", u1 = udp + 1);
    let flags = ["-p", &pair_spec, "-p", &choose_spec, "-p", &udp_spec];
    web_on(
        &lab,
        "ranges",
        &flags,
        berth_harness::image::IMAGE,
        &[9000, 9001, 80],
    );
    let v = lab.berth.inspect("ranges");
    let ports = published(&v);
    let any = |port: u16| vec![("0.0.0.0".to_string(), port)];
    let local = |port: u16| vec![("127.0.0.1".to_string(), port)];
    assert_eq!(ports["9000/tcp"], any(pair));
    assert_eq!(ports["9001/tcp"], any(pair + 1));
    assert_eq!(
        ports["80/tcp"],
        any(choose + 1),
        "the first free port of the range"
    );
    assert_eq!(ports[&format!("{udp}/udp")], local(udp));
    assert_eq!(ports[&format!("{}/udp", udp + 1)], local(udp + 1));
    let bindings = &v["HostConfig"]["PortBindings"];
    let range = format!("{choose}-{}", choose + 4);
    assert_eq!(
        bindings["80/tcp"],
        json!([{"HostIp": "", "HostPort": range}])
    );
    let key = format!("{}/udp", udp + 1);
    assert_eq!(bindings[&key][0]["HostPort"], (udp + 1).to_string());
    answers(pair, "hello from 9000");
    answers(pair + 1, "hello from 9001");
    answers(choose + 1, "hello from 80");
    let ip = v["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let udp_rules = dnat_elements_for(&ip);
    assert_eq!(
        udp_rules
            .iter()
            .filter(|e| e.contains("\"127.0.0.1\""))
            .count(),
        2,
        "the udp ports' DNAT on 127.0.0.1: {udp_rules:?}"
    );
    let ps = lab
        .berth
        .ok(&["ps", "--format", "{{.Ports}}", "--filter", "name=ranges"]);
    let want = format!(
        "127.0.0.1:{udp}-{u1}->{udp}-{u1}/udp, 0.0.0.0:{}->80/tcp, 0.0.0.0:{pair}->9000/tcp, 0.0.0.0:{}->9001/tcp",
        choose + 1,
        pair + 1,
        u1 = udp + 1,
    );
    assert_eq!(ps, want);
    drop(held);
    // Ranges of two lengths are Docker's error, before anything is made.
    let ran = lab.berth.run(&[
        "run",
        "--rm",
        "-p",
        "19000-19002:9000-9001",
        berth_harness::image::IMAGE,
        "true",
    ]);
    assert_eq!(ran.code(), Some(125));
    assert!(
        ran.stderr.contains(
            "invalid ranges specified for container and host Ports: 9000-9001 and 19000-19002"
        ),
        "{}",
        ran.stderr
    );
    let ran = lab.berth.run(&[
        "run",
        "--rm",
        "--expose",
        "7002-7000",
        berth_harness::image::IMAGE,
        "true",
    ]);
    assert_eq!(ran.code(), Some(125));
    assert!(
        ran.stderr.contains("invalid range format for --expose: 7002-7000, error: invalid range specified for port: 7002-7000"),
        "{}",
        ran.stderr
    );
    lab.berth.ok(&["rm", "-f", "ranges"]);
}

/// A host port another container holds: `run` fails with Docker's words and code (125), and
/// the second container stays created, as Docker's does, with nothing of its network left.
#[test]
fn a_taken_host_port_is_refused_in_dockers_words() {
    crate::need_root!();
    let lab = Lab::new();
    let port = free_run(1, 24000);
    let spec = format!("127.0.0.1:{port}:80");
    let image = berth_harness::image::IMAGE;
    lab.berth.ok(&[
        "run", "-d", "--name", "first", "-p", &spec, image, "sleep", "1000",
    ]);
    let second = lab.berth.run(&[
        "run", "-d", "--name", "second", "-p", &spec, image, "sleep", "1000",
    ]);
    assert_eq!(second.status.code(), Some(125), "{second:?}");
    let line = format!("Bind for 127.0.0.1:{port} failed: port is already allocated");
    assert!(second.stderr.contains(&line), "{}", second.stderr);
    assert_eq!(lab.berth.inspect("second")["State"]["Status"], "created");
    lab.berth.ok(&["rm", "-f", "first"]);
    lab.berth.ok(&["start", "second"]);
    lab.berth.ok(&["rm", "-f", "second"]);
}
