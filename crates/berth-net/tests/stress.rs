//! Many attaches and detaches, some concurrent: no address collision, nothing left behind.

mod common;

use std::collections::HashSet;
use std::sync::Mutex;

use berth_net::NetError;
use common::*;

#[test]
fn hundred_attach_detach_four_at_a_time_collide_on_nothing_and_leak_nothing() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let net = t.network("bnt-stress", "10.231.10.0/24", false);
    let in_use = Mutex::new(HashSet::new());
    let veths = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for thread in 0..4 {
            let (t, in_use, veths) = (&t, &in_use, &veths);
            s.spawn(move || {
                let ns = Netns::new();
                for i in 0..25 {
                    let ports = if i % 5 == 0 { vec![tcp(0, 80)] } else { vec![] };
                    let att = t.attach(&ns, "bnt-stress", &format!("s{thread}-{i}"), ports);
                    let ip = att.ip.unwrap();
                    assert!(
                        in_use.lock().unwrap().insert(ip),
                        "{ip} given twice at once"
                    );
                    assert!(ns.links().contains(&"eth0".to_string()));
                    veths.lock().unwrap().push(att.host_veth.clone().unwrap());
                    in_use.lock().unwrap().remove(&ip);
                    t.store.detach(&att).unwrap();
                }
            });
        }
    });
    assert_eq!(veths.lock().unwrap().len(), 100);
    assert!(
        t.store.leases(&net).unwrap().is_empty(),
        "every lease released"
    );
    let links = host_links();
    let left: Vec<_> = veths
        .lock()
        .unwrap()
        .iter()
        .filter(|v| links.contains(v))
        .cloned()
        .collect();
    assert!(left.is_empty(), "veths left: {left:?}");
    let elems = nft_elements("pub_tcp");
    assert!(
        !elems.iter().any(|e| e.contains("10.231.10.")),
        "DNAT elements left: {elems:?}"
    );
}

#[test]
fn detach_after_the_namespace_is_gone_still_cleans_up() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let net = t.network("bnt-gone", "10.231.11.0/24", false);
    let ns = Netns::new();
    let att = t.attach(&ns, "bnt-gone", "ghost", vec![tcp(0, 80)]);
    assert!(matches!(
        t.store.remove_network("bnt-gone"),
        Err(NetError::InUse { .. })
    ));
    drop(ns); // the monitor was SIGKILLed and the container died with it
    t.store.detach(&att).unwrap();
    assert!(t.store.leases(&net).unwrap().is_empty());
    assert!(!host_links().contains(att.host_veth.as_ref().unwrap()));
    let port = att.ports[0].host_port.to_string();
    assert!(!nft_elements("pub_tcp")
        .iter()
        .any(|e| e.contains("10.231.11.") && e.contains(&port)));
    t.store.remove_network("bnt-gone").unwrap();
    assert!(
        !host_links().contains(&net.bridge),
        "bridge removed with its network"
    );
    assert!(matches!(
        t.store.network("bnt-gone"),
        Err(NetError::NotFound(_))
    ));
}

/// Containers attached in parallel and all up at once: each gets an address of its own, and
/// the network's DNS answers every one's name with that address (each lease is a file of its
/// own, which the DNS server reads as the directory changes).
#[test]
fn parallel_attaches_get_distinct_addresses_and_their_names_resolve() {
    let Some(()) = check_tools() else { return };
    let t = TestStore::new();
    let net = t.network("bnt-par", "10.231.12.0/24", false);
    let namespaces: Vec<Netns> = (0..24).map(|_| Netns::new()).collect();
    let atts = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (thread, chunk) in namespaces.chunks(6).enumerate() {
            let (t, atts) = (&t, &atts);
            s.spawn(move || {
                for (i, ns) in chunk.iter().enumerate() {
                    let name = format!("p{thread}-{i}");
                    let att = t.attach(ns, "bnt-par", &name, vec![]);
                    atts.lock().unwrap().push((name, att));
                }
            });
        }
    });
    let atts = atts.into_inner().unwrap();
    let ips: HashSet<_> = atts.iter().map(|(_, a)| a.ip.unwrap()).collect();
    assert_eq!(ips.len(), 24, "24 containers, 24 addresses: {ips:?}");
    assert_eq!(t.store.leases(&net).unwrap().len(), 24);
    let gateway = net.gateway.to_string();
    for (name, att) in &atts {
        let (ok, out) = namespaces[0].run(&[BUSYBOX, "nslookup", name, &gateway]);
        let ip = att.ip.unwrap().to_string();
        let answered = out
            .lines()
            .any(|l| l.split_whitespace().last() == Some(ip.as_str()));
        assert!(ok && answered, "{name} should resolve to {ip}: {out}");
    }
    for (_, att) in &atts {
        t.store.detach(att).unwrap();
    }
    assert!(t.store.leases(&net).unwrap().is_empty());
    let (ok, out) = namespaces[0].run(&[BUSYBOX, "nslookup", "p0-0", &gateway]);
    assert!(!ok, "a detached container's name is gone: {out}");
}
