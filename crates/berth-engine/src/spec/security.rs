//! Capabilities (`--cap-add`, `--cap-drop`, `--privileged`) and seccomp (`--security-opt
//! seccomp=...`), as moby's `oci/caps` and `profiles/seccomp` resolve them.

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp};
use serde_json::{Map, Value};

use super::defaults::CAPABILITIES;
use super::SpecError;
use crate::request::{RunRequest, SeccompChoice};

/// The capabilities this host can grant: its bounding set, as oci-spec names.
pub fn host_capabilities() -> Vec<Capability> {
    let mut caps: Vec<Capability> = berth_runtime::capabilities::host_bounding()
        .iter()
        .filter_map(|c| parse_name(&c.to_string()))
        .collect();
    // Each name made once: sorting by a key made at every comparison formatted ~450 names for
    // 41 capabilities, at each spec's build (the CLI's check and the monitor's).
    caps.sort_by_cached_key(|c| c.to_string());
    caps
}

/// "net_admin", "CAP_NET_ADMIN" -> NetAdmin; None for an unknown name.
fn parse_name(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    Capability::from_str(upper.strip_prefix("CAP_").unwrap_or(&upper)).ok()
}

/// The flag's names as capabilities; `ALL` stays apart as a flag of its own.
fn parse_list(flag: &str, names: &[String]) -> Result<(bool, Vec<Capability>), SpecError> {
    let mut all = false;
    let mut caps = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("ALL") || name.eq_ignore_ascii_case("CAP_ALL") {
            all = true;
            continue;
        }
        let cap = parse_name(name).ok_or_else(|| {
            SpecError::invalid(
                format!("{flag} {name}"),
                format!("unknown capability: {name:?}; see capabilities(7) for the names"),
            )
        })?;
        caps.push(cap);
    }
    Ok((all, caps))
}

/// The container's bounding set (moby `TweakCapabilities`): every host capability when
/// privileged; otherwise Docker's 14, minus the drops, plus the adds, with `ALL` on either side.
pub fn bounding(req: &RunRequest, host: &[Capability]) -> Result<Vec<Capability>, SpecError> {
    if req.privileged {
        return Ok(host.to_vec());
    }
    let (add_all, adds) = parse_list("--cap-add", &req.cap_add)?;
    let (drop_all, drops) = parse_list("--cap-drop", &req.cap_drop)?;
    let chosen: Vec<Capability> = if add_all {
        host.iter()
            .filter(|c| !drops.contains(c))
            .copied()
            .collect()
    } else if drop_all {
        adds.clone()
    } else {
        let kept = CAPABILITIES.iter().filter(|c| !drops.contains(c)).copied();
        kept.chain(adds.iter().copied()).collect()
    };
    if let Some(missing) = adds.iter().find(|c| !host.contains(c)) {
        return Err(SpecError::invalid(
            format!("--cap-add {missing}"),
            "this host's bounding set lacks it, so berth cannot grant it; drop the flag",
        ));
    }
    let mut seen = BTreeSet::new();
    Ok(chosen
        .into_iter()
        .filter(|c| seen.insert(c.to_string()))
        .collect())
}

/// The five sets (moby `SetCapabilities`): root gets bounding, effective and permitted; any
/// other user only the bounding set, as execve would leave it. Inheritable and ambient stay
/// empty (CVE-2022-24769).
pub fn capabilities(bounding: &[Capability], uid: u32) -> LinuxCapabilities {
    let set: std::collections::HashSet<Capability> = bounding.iter().copied().collect();
    let mut caps = LinuxCapabilities::default();
    let root_set = if uid == 0 {
        set.clone()
    } else {
        Default::default()
    };
    caps.set_bounding(Some(set))
        .set_effective(Some(root_set.clone()))
        .set_permitted(Some(root_set))
        .set_inheritable(Some(Default::default()))
        .set_ambient(Some(Default::default()));
    caps
}

/// The seccomp filter: none when privileged or unconfined, Docker's default profile for the
/// container's bounding set, or the user's profile in Docker's format.
pub fn seccomp(
    req: &RunRequest,
    bounding: &[Capability],
) -> Result<Option<LinuxSeccomp>, SpecError> {
    if req.privileged {
        return Ok(None);
    }
    match &req.seccomp {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::Default => Ok(Some(berth_runtime::seccomp::docker_default_profile(
            bounding,
        ))),
        SeccompChoice::Profile(json) => profile(json, bounding, host_arch()).map(Some),
    }
}

fn profile_error(reason: impl std::fmt::Display) -> SpecError {
    SpecError::invalid(
        "--security-opt seccomp",
        format!("{reason}; give a profile in Docker's seccomp JSON format"),
    )
}

/// libseccomp's name of this host's architecture, as Docker's `archMap` spells it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// Docker's profile format turned into the OCI one: `archMap` resolved for `arch`, `name`
/// folded into `names`, rules kept only when their `includes`/`excludes` (caps, arches) hold
/// for this container, and Docker-only keys dropped.
pub fn profile(json: &str, bounding: &[Capability], arch: &str) -> Result<LinuxSeccomp, SpecError> {
    let doc: Value = serde_json::from_str(json).map_err(profile_error)?;
    let obj = doc
        .as_object()
        .ok_or_else(|| profile_error("not a JSON object"))?;
    let mut out = Map::new();
    for key in [
        "defaultAction",
        "defaultErrnoRet",
        "flags",
        "listenerPath",
        "listenerMetadata",
    ] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("architectures".into(), architectures(obj, arch).into());
    let mut rules = Vec::new();
    for rule in obj
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(rule) = oci_rule(rule, bounding, arch)? {
            rules.push(rule);
        }
    }
    out.insert("syscalls".into(), rules.into());
    serde_json::from_value(Value::Object(out)).map_err(profile_error)
}

fn architectures(obj: &Map<String, Value>, arch: &str) -> Vec<Value> {
    if let Some(list) = obj.get("architectures").and_then(Value::as_array) {
        return list.clone();
    }
    let maps = obj.get("archMap").and_then(Value::as_array);
    for m in maps.into_iter().flatten() {
        if m.get("architecture").and_then(Value::as_str) == Some(arch) {
            let mut list = vec![Value::from(arch)];
            if let Some(sub) = m.get("subArchitectures").and_then(Value::as_array) {
                list.extend(sub.iter().cloned());
            }
            return list;
        }
    }
    Vec::new()
}

/// One syscall rule in OCI form, or None when its conditions exclude this container.
fn oci_rule(rule: &Value, bounding: &[Capability], arch: &str) -> Result<Option<Value>, SpecError> {
    let rule = rule
        .as_object()
        .ok_or_else(|| profile_error("a syscalls entry is not an object"))?;
    let has_cap = |v: &Value| {
        v.as_str()
            .and_then(parse_name)
            .is_some_and(|c| bounding.contains(&c))
    };
    let has_arch = |v: &Value| v.as_str() == Some(arch);
    let list = |cond: &str, key: &str| -> Vec<Value> {
        let found = rule
            .get(cond)
            .and_then(|c| c.get(key))
            .and_then(Value::as_array);
        found.cloned().unwrap_or_default()
    };
    let (inc_caps, inc_arches) = (list("includes", "caps"), list("includes", "arches"));
    if !inc_caps.iter().all(has_cap) || !(inc_arches.is_empty() || inc_arches.iter().any(has_arch))
    {
        return Ok(None);
    }
    if list("excludes", "caps").iter().any(has_cap)
        || list("excludes", "arches").iter().any(has_arch)
    {
        return Ok(None);
    }
    let mut names: Vec<Value> = rule
        .get("names")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(name) = rule.get("name") {
        names.push(name.clone());
    }
    let mut out = Map::new();
    out.insert("names".into(), names.into());
    for key in ["action", "errnoRet", "args"] {
        if let Some(v) = rule.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    Ok(Some(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(add: &[&str], drop: &[&str]) -> RunRequest {
        RunRequest {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn host() -> Vec<Capability> {
        let mut h = CAPABILITIES.to_vec();
        h.extend([Capability::SysAdmin, Capability::NetAdmin]);
        h
    }

    #[test]
    fn add_and_drop_with_or_without_prefix() {
        let b = bounding(&req(&["net_admin"], &["CAP_CHOWN", "mknod"]), &host()).unwrap();
        assert_eq!(b.len(), 13);
        assert!(b.contains(&Capability::NetAdmin) && !b.contains(&Capability::Chown));
    }

    #[test]
    fn all_on_either_side() {
        let b = bounding(&req(&["ALL"], &["SYS_ADMIN"]), &host()).unwrap();
        assert_eq!(b.len(), 15);
        let b = bounding(&req(&["KILL"], &["all"]), &host()).unwrap();
        assert_eq!(b, vec![Capability::Kill]);
    }

    #[test]
    fn unknown_or_ungrantable_capabilities_are_refused() {
        let e = bounding(&req(&["FLY"], &[]), &host())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--cap-add FLY: unknown capability"), "{e}");
        let e = bounding(&req(&["SYS_RESOURCE"], &[]), &host())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bounding set lacks it"), "{e}");
    }

    #[test]
    fn non_root_gets_only_the_bounding_set() {
        let c = capabilities(&CAPABILITIES, 1000);
        assert_eq!(c.bounding().as_ref().unwrap().len(), 14);
        assert!(c.effective().as_ref().unwrap().is_empty());
        assert!(c.permitted().as_ref().unwrap().is_empty());
        let c = capabilities(&CAPABILITIES, 0);
        assert_eq!(c.effective().as_ref().unwrap().len(), 14);
        assert!(c.inheritable().as_ref().unwrap().is_empty());
    }

    #[test]
    fn docker_profile_format_is_resolved() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
          "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
          "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","comment":"x"},
            {"name":"mount","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["SCMP_ARCH_X86_64"]}}]}"#;
        let p = profile(json, &CAPABILITIES, "SCMP_ARCH_X86_64").unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert_eq!(v["syscalls"].as_array().unwrap().len(), 1);
        let p = profile(json, &[Capability::SysAdmin], "SCMP_ARCH_X86_64").unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["syscalls"][1]["names"], serde_json::json!(["mount"]));
        assert!(profile("[1]", &CAPABILITIES, "x").is_err());
        assert!(profile("{\"defaultAction\":\"NOPE\"}", &CAPABILITIES, "x").is_err());
    }
}
