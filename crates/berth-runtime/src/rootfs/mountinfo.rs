//! /proc/self/mountinfo read for one question: which mount holds a path, and is it shared.

use std::path::{Path, PathBuf};

/// The mount that holds `path` in `info` (mountinfo text): its mount point, the longest one
/// that is `path` or an ancestor of it (the last listed, the top one, when mounts are stacked),
/// and whether it is shared (a `shared:N` optional field).
pub fn holder(info: &str, path: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| PathBuf::from(unescape(p))) else {
            continue;
        };
        if !path.starts_with(&point) {
            continue;
        }
        let shared = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:"));
        let longer = best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len());
        if longer {
            best = Some((point, shared));
        }
    }
    best
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:50 / /tmp/a\\040b rw,relatime - tmpfs t rw
41 40 0:51 / /tmp/a\\040b/bundle rw,relatime shared:7 master:2 - tmpfs t rw
42 41 0:52 / /tmp/a\\040b/bundle rw,relatime - tmpfs t rw
";

    #[test]
    fn the_longest_enclosing_mount_point_holds_the_path() {
        let holder = |p: &str| holder(INFO, Path::new(p)).unwrap();
        assert_eq!(holder("/srv/rootfs"), (PathBuf::from("/"), true));
        assert_eq!(holder("/tmp/a b/x"), (PathBuf::from("/tmp/a b"), false));
        // Stacked on one point: the last listed is on top.
        assert_eq!(
            holder("/tmp/a b/bundle/rootfs"),
            (PathBuf::from("/tmp/a b/bundle"), false)
        );
        // A sibling that only shares a prefix of the name does not hold it.
        assert_eq!(holder("/tmp/a bc"), (PathBuf::from("/"), true));
    }
}
