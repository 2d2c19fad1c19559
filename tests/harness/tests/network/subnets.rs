//! Subnets picked for user networks made in different data roots at the same time.

use std::collections::BTreeSet;

use crate::Lab;

/// Each data root records its own networks, but their bridges and addresses are the host's:
/// networks made at once in two roots must not be given one subnet (two bridges with one
/// gateway address: a container's DNS server and routes on the other's bridge). Before the
/// pick was serialized across roots, both read the host's addresses before either bridge
/// existed and took the same free subnet.
#[test]
fn networks_made_at_once_in_two_roots_get_different_subnets() {
    crate::need_root!();
    let mut labs = [Lab::new(), Lab::new()];
    const EACH: usize = 4;
    let names: Vec<String> = (0..EACH).map(|i| format!("bt-sub{i}")).collect();
    std::thread::scope(|s| {
        for lab in &labs {
            for name in &names {
                s.spawn(move || lab.berth.ok(&["network", "create", name]));
            }
        }
    });
    let mut subnets = Vec::new();
    for lab in &mut labs {
        for name in &names {
            // The lab removes them whatever the verdict.
            lab.adopt(name);
            let inspect = lab.network_inspect(name);
            let subnet = inspect["IPAM"]["Config"][0]["Subnet"].as_str();
            subnets.push(subnet.expect("Subnet").to_string());
        }
    }
    let distinct: BTreeSet<_> = subnets.iter().collect();
    assert_eq!(
        distinct.len(),
        subnets.len(),
        "a subnet given twice: {subnets:?}"
    );
}
