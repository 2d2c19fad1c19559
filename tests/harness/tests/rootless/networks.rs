//! User networks of rootless berth: a network namespace of the user's own (with its bridges,
//! berth's nftables table and the networks' DNS servers) where containers on one network
//! resolve and reach each other by name, as on rootless podman's.

use std::os::unix::fs::MetadataExt;

use berth_harness::image::IMAGE;

use crate::user_with_image;

#[test]
fn containers_on_a_user_network_resolve_and_reach_each_other() {
    if !berth_harness::have("slirp4netns") || !berth_harness::have("nft") {
        berth_harness::skip!("needs slirp4netns and nft (scripts/setup)");
    }
    let tun = std::fs::metadata("/dev/net/tun").map(|m| m.mode() & 0o777);
    if tun.ok() != Some(0o666) {
        berth_harness::skip!("needs /dev/net/tun usable by users (scripts/setup makes it 0666)");
    }
    let Some(user) = user_with_image() else {
        return;
    };
    user.ok(&["network", "create", "n1"]);
    let listed = user.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(listed.lines().any(|l| l == "n1"), "{listed}");
    user.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        IMAGE,
        "sh",
        "-c",
        "echo from-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    // The other container finds web by name and fetches from it.
    let got = user.ok(&[
        "run",
        "--rm",
        "--network",
        "n1",
        IMAGE,
        "sh",
        "-c",
        "nslookup web >/dev/null && wget -q -O - http://web/",
    ]);
    assert_eq!(got, "from-web");
    // Out: through the user networks' namespace's slirp4netns, to a server on the host.
    if let Some(ip) = crate::more::host_address() {
        let (url, server) = crate::more::answer_once(ip);
        let got = user.ok(&[
            "run",
            "--rm",
            "--network",
            "n1",
            IMAGE,
            "wget",
            "-q",
            "-O",
            "-",
            &url,
        ]);
        assert_eq!(got, "out");
        server.join().expect("server");
    }
    let inspect = user.ok(&["network", "inspect", "n1"]);
    assert!(inspect.contains("\"web\""), "{inspect}");

    // Not there yet, each said in one line: published ports and connect.
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "-p",
        "8080:80",
        IMAGE,
        "true",
    ]);
    assert!(!ran.success());
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("not supported yet"), "{}", ran.stderr);
    let ran = user.berth(&["network", "connect", "n1", "web"]);
    assert!(!ran.success());
    assert!(ran.stderr.contains("not supported"), "{}", ran.stderr);

    // In use, the network stays; once its containers are gone, it goes.
    assert!(!user.berth(&["network", "rm", "n1"]).success());
    user.ok(&["rm", "-f", "web"]);
    user.ok(&["network", "rm", "n1"]);
    let listed = user.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!listed.lines().any(|l| l == "n1"), "{listed}");
}
