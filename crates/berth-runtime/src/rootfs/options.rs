//! Mount options of the spec (`ro`, `nosuid`, `rbind`, `rslave`, `rro`, ...) turned into mount(2)
//! flags, propagation flags, recursive mount attributes and the filesystem's data string.

use berth_sys::mount as attr;
use nix::mount::MsFlags;

/// A spec mount's options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself (and the read-only remount of binds).
    pub flags: MsFlags,
    /// Flags cleared by an option (`rw`, `suid`, ...), so a remount does not keep them.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount (`rslave`, `private`, ...).
    pub propagation: Vec<MsFlags>,
    /// Attributes set on the mount and every mount below it (`rro`, `rnosuid`, ...).
    pub recursive: Recursive,
    /// Options the kernel's filesystem takes as data (`mode=755`, `size=65536k`, ...).
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: Recursive::default(),
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Parses the options of one mount. `idmap` and `ridmap` are refused: berth does not yet create
/// idmapped mounts, and silently ignoring them would give wrong ownership.
pub fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut out = MountOptions::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                out.propagation
                    .push(propagation(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            other if recursive_attr(other).is_some() => {
                out.recursive.add(opt);
                continue;
            }
            "idmap" | "ridmap" => {
                return Err(format!(
                    "mount option {opt:?} (idmapped mounts) is not supported yet"
                ))
            }
            other => {
                out.data.push(other.to_string());
                continue;
            }
        };
        out.flags |= set;
        out.flags &= !clear;
        out.cleared |= clear;
    }
    Ok(out)
}

/// mount_setattr(2) attributes for a mount's tree, as runc takes them (its recAttrFlags): the
/// `ATTR_*` bits to set and to clear, and the options that asked, for errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recursive {
    pub set: u64,
    pub clear: u64,
    pub names: Vec<String>,
}

impl Recursive {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn add(&mut self, name: &str) {
        let Some((clear, bit)) = recursive_attr(name) else {
            return;
        };
        if clear {
            self.clear |= bit;
            self.set &= !bit;
        } else {
            self.set |= bit;
            self.clear &= !bit;
            if bit & attr::ATTR_ATIME == bit {
                // An access-time mode replaces the mode: mount_setattr wants the whole field
                // cleared with it (and relatime is the mode 0, nothing to set).
                self.clear |= attr::ATTR_ATIME;
            }
        }
        self.names.push(name.to_string());
    }
}

/// Whether the recursive option `name` clears its attribute, and the attribute.
fn recursive_attr(name: &str) -> Option<(bool, u64)> {
    Some(match name {
        "rro" => (false, attr::ATTR_RDONLY),
        "rrw" => (true, attr::ATTR_RDONLY),
        "rnosuid" => (false, attr::ATTR_NOSUID),
        "rsuid" => (true, attr::ATTR_NOSUID),
        "rnodev" => (false, attr::ATTR_NODEV),
        "rdev" => (true, attr::ATTR_NODEV),
        "rnoexec" => (false, attr::ATTR_NOEXEC),
        "rexec" => (true, attr::ATTR_NOEXEC),
        "rnodiratime" => (false, attr::ATTR_NODIRATIME),
        "rdiratime" => (true, attr::ATTR_NODIRATIME),
        "rrelatime" => (false, attr::ATTR_RELATIME),
        "rnorelatime" => (true, attr::ATTR_RELATIME),
        "rnoatime" => (false, attr::ATTR_NOATIME),
        "ratime" => (true, attr::ATTR_NOATIME),
        "rstrictatime" => (false, attr::ATTR_STRICTATIME),
        "rnostrictatime" => (true, attr::ATTR_STRICTATIME),
        "rnosymfollow" => (false, attr::ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, attr::ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The propagation flags of a propagation name (`rslave` → MS_SLAVE|MS_REC).
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = opts(&["ro", "rw", "rbind"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC));
    }

    #[test]
    fn recursive_attributes_are_runcs() {
        let o = opts(&["rbind", "rro", "rnosuid", "rexec", "rnoatime"]);
        assert!(o.data.is_empty(), "{o:?}");
        assert_eq!(
            o.recursive.set,
            attr::ATTR_RDONLY | attr::ATTR_NOSUID | attr::ATTR_NOATIME
        );
        assert_eq!(o.recursive.clear, attr::ATTR_NOEXEC | attr::ATTR_ATIME);
        // A later option undoes an earlier one; relatime is the access-time mode 0.
        let o = opts(&["rro", "rrw", "rrelatime"]);
        assert_eq!(o.recursive.set, 0);
        assert_eq!(o.recursive.clear, attr::ATTR_RDONLY | attr::ATTR_ATIME);
        assert!(opts(&["ro"]).recursive.is_empty());
    }

    #[test]
    fn idmap_is_refused_with_a_reason() {
        let err = parse(&["idmap".to_string()]).unwrap_err();
        assert!(err.contains("idmapped"), "{err}");
    }
}
