//! Docker's option syntax that the command line's flags and the API's fields share: a `-v`
//! spec (the API's `Binds`), a `--tmpfs` spec (`Tmpfs`), namespace modes (`--pid`,
//! `PidMode`...), the network mode, the restart policy; each parsed into what `RunRequest`
//! holds, with one error line naming the option.

use crate::error::{Error, Result};
use crate::request::{IpcShm, MountRequest, NsMode, RestartPolicy, RunRequest, Ulimit};

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// `--pid`, `--uts`... : "" (the default: private, or the host's with `default_host`),
/// `private`, `host` or `container:<name|id>`.
pub fn ns_mode(flag: &str, v: Option<&str>, default_host: bool) -> Result<NsMode> {
    Ok(match v {
        None | Some("") if default_host => NsMode::Host,
        None | Some("" | "private") => NsMode::Private,
        Some("host") => NsMode::Host,
        Some(v) => match v.strip_prefix("container:") {
            Some(c) if !c.is_empty() => NsMode::Container(c.to_string()),
            _ => {
                return Err(invalid(format!(
                    "{flag} {v:?}: use host, private or container:<name|id>"
                )))
            }
        },
    })
}

/// `--ipc` (the API's `IpcMode`), as Docker takes it: "" or `private` (the default: the
/// container's own namespace and /dev/shm), `shareable` (its /dev/shm on the host, for others
/// to join), `none` (no /dev/shm), `host` or `container:<name|id>`.
pub fn ipc_mode(v: Option<&str>) -> Result<(NsMode, IpcShm)> {
    let shm = match v {
        Some("shareable") => IpcShm::Shareable,
        Some("none") => IpcShm::None,
        _ => IpcShm::Private,
    };
    if shm != IpcShm::Private {
        return Ok((NsMode::Private, shm));
    }
    ns_mode("--ipc", v, false)
        .map(|mode| (mode, shm))
        .map_err(|_| {
            invalid(format!(
                "--ipc {:?}: use private, shareable, none, host or container:<name|id>",
                v.unwrap_or_default()
            ))
        })
}

/// `--restart`: `no`, `on-failure[:N]`, `always` or `unless-stopped`.
/// `--ulimit name=soft[:hard]` (-1 or `unlimited` for no limit), as Docker writes it.
pub fn ulimit(u: &str) -> Result<Ulimit> {
    let bad = || {
        Error::Invalid(format!(
            "--ulimit {u:?}: use name=soft[:hard], e.g. nofile=1024:2048"
        ))
    };
    let (name, limits) = u.split_once('=').ok_or_else(bad)?;
    let parse = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            Ok(u64::MAX)
        } else {
            s.parse().map_err(|_| bad())
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (parse(s)?, parse(h)?),
        None => (parse(limits)?, parse(limits)?),
    };
    if soft > hard {
        return Err(Error::Invalid(format!(
            "--ulimit {u:?}: the soft limit is above the hard one"
        )));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

pub fn restart(s: &str) -> Result<RestartPolicy> {
    Ok(match s.split_once(':') {
        None if s == "no" || s.is_empty() => RestartPolicy::No,
        None if s == "always" => RestartPolicy::Always,
        None if s == "unless-stopped" => RestartPolicy::UnlessStopped,
        None if s == "on-failure" => RestartPolicy::OnFailure { max_retries: 0 },
        Some(("on-failure", n)) => RestartPolicy::OnFailure {
            max_retries: n.parse().map_err(|_| {
                invalid(format!("--restart {s:?}: the retry count must be a number"))
            })?,
        },
        _ => {
            return Err(invalid(format!(
                "--restart {s:?}: use no, on-failure[:N], always or unless-stopped"
            )))
        }
    })
}

/// Docker's container options that berth has no use for, each refused in one line, the same
/// from the command line and the API: the OCI runtime (`--runtime`, `HostConfig.Runtime`:
/// berth has its own, runc's equal, so `runc` is taken as a name for it), the isolation
/// technology (Linux has only `default`, in Docker's daemon's words), storage options (a size
/// needs overlay on xfs with project quotas, which berth does not set up), a parent cgroup,
/// a volume driver other than local, legacy links, and real-time CPU time (`--cpu-rt-period`,
/// `--cpu-rt-runtime`, `CpuRealtimePeriod`/`CpuRealtimeRuntime`, at create and update: a
/// real-time group's budget is a v1 kernel option berth does not give containers).
#[derive(Debug, Default)]
pub struct Unused<'a> {
    pub runtime: Option<&'a str>,
    pub isolation: Option<&'a str>,
    pub storage_opt: Option<&'a std::collections::BTreeMap<String, String>>,
    pub cgroup_parent: Option<&'a str>,
    pub volume_driver: Option<&'a str>,
    pub links: &'a [String],
    /// A real-time period or runtime given (not 0).
    pub realtime: bool,
}

/// A value given, not empty.
fn given(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.is_empty())
}

impl Unused<'_> {
    pub fn refuse(&self) -> Result<()> {
        if let Some(r) = given(self.runtime).filter(|r| !matches!(*r, "runc" | "berth-runc")) {
            return Err(invalid(format!(
                "--runtime {r}: berth runs every container with its own runtime (berth-runc, runc's command line); drop --runtime"
            )));
        }
        // Docker compares the name without regard to case.
        if let Some(i) = given(self.isolation).filter(|i| !i.eq_ignore_ascii_case("default")) {
            return Err(invalid(format!(
                "Invalid isolation: {i:?} - linux only supports 'default'"
            )));
        }
        if let Some(key) = self.storage_opt.and_then(|o| o.keys().next()) {
            return Err(invalid(format!(
                "--storage-opt {key}: berth's overlay has no per-container size limit (Docker's needs overlay over xfs with 'pquota'); drop it"
            )));
        }
        if let Some(parent) = given(self.cgroup_parent) {
            return Err(invalid(format!(
                "--cgroup-parent {parent}: berth places each container's cgroup itself; drop it"
            )));
        }
        if let Some(d) = given(self.volume_driver).filter(|d| *d != "local") {
            return Err(invalid(format!(
                "--volume-driver {d}: berth has only the local volume driver; drop it"
            )));
        }
        if self.realtime {
            return Err(invalid(
                "--cpu-rt-period, --cpu-rt-runtime: berth gives containers no real-time CPU time; drop them".into(),
            ));
        }
        if let Some(link) = self.links.first() {
            return Err(invalid(format!(
                "--link {link}: berth has no container links: put the containers on a user network, where they reach each other by name"
            )));
        }
        Ok(())
    }
}

/// `--network`: `bridge` (also "" and `default`), `none`, `host`, `container:<name|id>`, or a
/// user network's name; sets the request's namespace and network.
pub fn network_mode(req: &mut RunRequest, net: &str) -> Result<()> {
    req.network = "bridge".into();
    match net {
        "host" => req.netns = NsMode::Host,
        "" | "default" | "bridge" => {}
        "none" => req.network = "none".into(),
        n if n.starts_with("container:") => {
            req.netns = ns_mode("--network", Some(n), false)?;
            req.network = String::new();
        }
        n => req.network = n.to_string(),
    }
    Ok(())
}

/// `-v src:dst[:opts]`: a host path (absolute) is a bind; a name is a named volume; a lone
/// `/dst` is an anonymous volume. An empty part is refused (docker/cli's `ParseVolume`), so
/// `-v :/x` is no anonymous volume by accident. A missing bind source is made at start.
pub fn volume(v: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = v.split(':').collect();
    if v.is_empty() {
        return Err(invalid(
            "-v \"\": invalid empty volume spec; use src:dst[:ro|rw,...]".into(),
        ));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid(format!(
            "-v {v:?}: invalid spec: {v}: empty section between colons; use src:dst[:ro|rw,...]"
        )));
    }
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(invalid(format!(
                "-v {v:?}: invalid spec: {v}: too many colons; use src:dst[:ro|rw,...]"
            )))
        }
    };
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "-v {v:?}: the destination {dst:?} must be an absolute path"
        )));
    }
    let kind = if src.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    let mut m = MountRequest {
        kind: kind.into(),
        source: src.to_string(),
        target: dst.to_string(),
        read_only: false,
        options: Vec::new(),
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => m.read_only = true,
            "rw" | "z" | "Z" => {}
            "nocopy" if m.kind == "volume" => m.options.push(o.to_string()),
            "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => m.options.push(p.to_string()),
            _ => return Err(invalid(format!("-v {v:?}: unknown option {o:?}"))),
        }
    }
    Ok(m)
}

/// The bind propagations Docker takes.
pub const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `--tmpfs /path[:opts]`.
pub fn tmpfs(t: &str) -> Result<MountRequest> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        return Err(invalid(format!("--tmpfs {t:?}: the path must be absolute")));
    }
    Ok(MountRequest {
        kind: "tmpfs".into(),
        source: String::new(),
        target: dst.to_string(),
        read_only: false,
        options: opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// A `--mount` (the API's `Mounts`) as Docker checks it: a known type, an absolute target, a
/// bind's source that exists (unlike `-v`, `--mount` never makes it). `what` names the option
/// in the message.
pub fn check_mount(m: &MountRequest, what: &str) -> Result<()> {
    if !["bind", "volume", "tmpfs"].contains(&m.kind.as_str()) {
        return Err(invalid(format!("{what}: type is bind, volume or tmpfs")));
    }
    if !m.target.starts_with('/') {
        return Err(invalid(format!("{what}: target must be an absolute path")));
    }
    if m.kind == "bind" && !std::path::Path::new(&m.source).exists() {
        return Err(invalid(format!(
            "{what}: bind source path does not exist: {}",
            m.source
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_and_modes() {
        let v = volume("data:/data:ro").unwrap();
        assert_eq!((v.kind.as_str(), v.read_only), ("volume", true));
        assert_eq!(volume("/host:/data").unwrap().kind, "bind");
        assert!(volume("data:rel").is_err());
        assert!(volume(":/x").is_err() && volume("/x:").is_err() && volume("").is_err());
        assert!(volume("a:/x:ro:z").is_err());
        assert_eq!(
            ns_mode("--pid", Some("container:web"), false).unwrap(),
            NsMode::Container("web".into())
        );
        assert!(ns_mode("--pid", Some("container:"), false).is_err());
        assert_eq!(ns_mode("--userns", None, true).unwrap(), NsMode::Host);
        assert_eq!(
            ipc_mode(Some("")).unwrap(),
            (NsMode::Private, IpcShm::Private)
        );
        assert_eq!(ipc_mode(None).unwrap(), (NsMode::Private, IpcShm::Private));
        assert_eq!(
            ipc_mode(Some("shareable")).unwrap(),
            (NsMode::Private, IpcShm::Shareable)
        );
        assert_eq!(
            ipc_mode(Some("none")).unwrap(),
            (NsMode::Private, IpcShm::None)
        );
        assert_eq!(
            ipc_mode(Some("host")).unwrap(),
            (NsMode::Host, IpcShm::Private)
        );
        assert_eq!(
            ipc_mode(Some("container:db")).unwrap(),
            (NsMode::Container("db".into()), IpcShm::Private)
        );
        let bad = ipc_mode(Some("sharable")).unwrap_err().to_string();
        assert!(
            bad.contains("--ipc \"sharable\": use private, shareable"),
            "{bad}"
        );
        // Only --ipc has a shareable mode, as in Docker.
        assert!(ns_mode("--pid", Some("shareable"), false).is_err());
        assert_eq!(tmpfs("/run:size=64m").unwrap().options, ["size=64m"]);
        assert!(tmpfs("run").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(restart("").unwrap(), RestartPolicy::No);
        assert!(restart("sometimes").is_err() && restart("on-failure:x").is_err());
    }

    #[test]
    fn network_modes() {
        let mut req = RunRequest::default();
        network_mode(&mut req, "container:web").unwrap();
        assert_eq!(
            (req.netns.clone(), req.network.as_str()),
            (NsMode::Container("web".into()), "")
        );
        let mut req = RunRequest::default();
        network_mode(&mut req, "default").unwrap();
        assert_eq!(req.network, "bridge");
        network_mode(&mut req, "backend").unwrap();
        assert_eq!(req.network, "backend");
    }
}
