//! Unpacking against hand-made tarballs: every escape is refused or contained, whiteouts
//! become overlay whiteouts, special files and metadata survive.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::unpack::unpack_layer;
use berth_image::Error;

/// Builds a tar with raw names, bypassing the tar crate's own path checks.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, None, data, 0o644)
    }
    fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, None, b"", 0o755)
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Symlink, Some(target), b"", 0o777)
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Link, Some(target), b"", 0o644)
    }
    fn bytes(&mut self) -> Vec<u8> {
        self.0
            .get_mut()
            .clone()
            .into_iter()
            .chain(std::iter::repeat_n(0, 1024))
            .collect()
    }
}

fn unpack(tar: &mut Tar) -> (tempfile::TempDir, Result<u64, Error>) {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let result = unpack_layer(&tar.bytes()[..], &dest, "test");
    (outer, result)
}

fn only_layer_written(outer: &Path) {
    let names: Vec<_> = fs::read_dir(outer)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("layer")],
        "something was written outside the layer"
    );
}

#[test]
fn dotdot_is_refused() {
    let (outer, result) = unpack(Tar::new().file("../evil", b"x"));
    assert!(
        matches!(
            result,
            Err(Error::UnsafeEntry {
                reason: "path escapes the layer",
                ..
            })
        ),
        "{result:?}"
    );
    only_layer_written(outer.path());
    let (outer, result) = unpack(Tar::new().dir("a/").file("a/../../evil", b"x"));
    assert!(result.is_err());
    only_layer_written(outer.path());
}

#[test]
fn absolute_path_is_contained() {
    let (outer, result) = unpack(Tar::new().file("/etc/evil", b"x"));
    result.unwrap();
    assert_eq!(fs::read(outer.path().join("layer/etc/evil")).unwrap(), b"x");
}

#[test]
fn write_through_symlink_is_refused() {
    let target = tempfile::tempdir().unwrap();
    let t = target.path().to_str().unwrap().to_string();
    let (outer, result) = unpack(Tar::new().symlink("escape", &t).file("escape/evil", b"x"));
    assert!(
        matches!(
            result,
            Err(Error::UnsafeEntry {
                reason: "path goes through a symlink",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(!target.path().join("evil").exists());
    only_layer_written(outer.path());
    let (_outer, result) = unpack(Tar::new().symlink("up", "..").file("up/evil", b"x"));
    assert!(result.is_err());
}

#[test]
fn hardlink_out_is_refused() {
    let (outer, result) = unpack(Tar::new().hardlink("passwd", "../../../../etc/passwd"));
    assert!(
        matches!(result, Err(Error::UnsafeEntry { .. })),
        "{result:?}"
    );
    only_layer_written(outer.path());
    let (_o, result) = unpack(Tar::new().hardlink("passwd", "/etc/passwd"));
    assert!(
        matches!(
            result,
            Err(Error::UnsafeEntry {
                reason: "hardlink target does not exist in the layer",
                ..
            })
        ),
        "{result:?}"
    );
    let (_o, result) = unpack(
        Tar::new()
            .symlink("l", "/etc")
            .hardlink("passwd", "l/passwd"),
    );
    assert!(
        matches!(
            result,
            Err(Error::UnsafeEntry {
                reason: "path goes through a symlink",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn symlink_then_file_replaces_the_symlink() {
    let (outer, result) = unpack(Tar::new().symlink("f", "/etc/passwd").file("f", b"mine"));
    result.unwrap();
    let f = outer.path().join("layer/f");
    assert!(fs::symlink_metadata(&f).unwrap().is_file());
    assert_eq!(fs::read(f).unwrap(), b"mine");
}

#[test]
fn hardlinks_inside_work() {
    let (outer, result) = unpack(
        Tar::new()
            .dir("bin/")
            .file("bin/busybox", b"elf")
            .hardlink("bin/sh", "bin/busybox"),
    );
    assert_eq!(result.unwrap(), 3);
    let a = fs::metadata(outer.path().join("layer/bin/busybox")).unwrap();
    let b = fs::metadata(outer.path().join("layer/bin/sh")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let (outer, result) = unpack(
        Tar::new()
            .dir("etc/")
            .file("etc/.wh.motd", b"")
            .dir("var/")
            .file("var/.wh..wh..opq", b""),
    );
    result.unwrap();
    let layer = outer.path().join("layer");
    let motd = fs::symlink_metadata(layer.join("etc/motd")).unwrap();
    assert!(motd.file_type().is_char_device());
    assert_eq!(motd.rdev(), 0);
    assert!(!layer.join("etc/.wh.motd").exists());
    let opaque = rustix::fs::lgetxattr(
        layer.join("var"),
        "trusted.overlay.opaque",
        &mut [0u8; 8][..],
    );
    assert_eq!(
        opaque.ok(),
        Some(1),
        "opaque xattr (needs root for trusted.*)"
    );
    assert!(!layer.join("var/.wh..wh..opq").exists());
}

#[test]
fn devices_fifos_setuid_and_long_names() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut t = Tar::new();
    t.entry("null", tar::EntryType::Char, None, b"", 0o666);
    t.entry("fifo", tar::EntryType::Fifo, None, b"", 0o600);
    t.entry("su", tar::EntryType::Regular, None, b"x", 0o4755);
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    t.0.append_data(&mut h, &long, &b"long"[..]).unwrap();
    let (outer, result) = unpack(&mut t);
    result.unwrap();
    let layer = outer.path().join("layer");
    assert!(fs::symlink_metadata(layer.join("null"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(fs::symlink_metadata(layer.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::metadata(layer.join("su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(fs::read(layer.join(&long)).unwrap(), b"long");
}

#[test]
fn truncated_tar_is_an_error() {
    let mut t = Tar::new();
    t.file("a", &[7u8; 5000]);
    let bytes = t.bytes();
    let dir = tempfile::tempdir().unwrap();
    let result = unpack_layer(&bytes[..2000], dir.path(), "test");
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn directory_times_never_land_outside() {
    // A directory entry whose parent is later replaced by a link out of the layer: its time,
    // set at the end, must not go through that link to the host.
    let host = tempfile::tempdir().unwrap();
    fs::create_dir(host.path().join("b")).unwrap();
    let before = fs::metadata(host.path().join("b")).unwrap().mtime();
    let link = host.path().to_str().unwrap();
    let (outer, result) = unpack(Tar::new().dir("a/").dir("a/b/").symlink("a", link));
    result.unwrap();
    assert_eq!(
        fs::metadata(host.path().join("b")).unwrap().mtime(),
        before,
        "a layer set the time of a host directory"
    );
    assert!(fs::symlink_metadata(outer.path().join("layer/a"))
        .unwrap()
        .is_symlink());
    // The same through a whiteout that removes the directory.
    let (_outer, result) = unpack(
        Tar::new()
            .dir("a/")
            .dir("a/b/")
            .file(".wh.a", b"")
            .symlink("a", link),
    );
    result.unwrap();
    assert_eq!(fs::metadata(host.path().join("b")).unwrap().mtime(), before);
}

#[test]
fn whiteouts_naming_dotdot_are_refused() {
    for name in [".wh..", ".wh...", "a/.wh..."] {
        let (outer, result) = unpack(Tar::new().dir("a/").file(name, b""));
        assert!(
            matches!(result, Err(Error::UnsafeEntry { .. })),
            "{name}: {result:?}"
        );
        only_layer_written(outer.path());
    }
    // An opaque marker whose directory climbs out is refused; one at the top is the layer's.
    let (outer, result) = unpack(Tar::new().file("../.wh..wh..opq", b""));
    assert!(
        matches!(result, Err(Error::UnsafeEntry { .. })),
        "{result:?}"
    );
    only_layer_written(outer.path());
    let (outer, result) = unpack(Tar::new().file("a/../../.wh..wh..opq", b""));
    assert!(
        matches!(result, Err(Error::UnsafeEntry { .. })),
        "{result:?}"
    );
    only_layer_written(outer.path());
    let host = tempfile::tempdir().unwrap();
    let link = host.path().to_str().unwrap();
    let (_outer, result) = unpack(Tar::new().symlink("l", link).file("l/.wh..wh..opq", b""));
    assert!(
        matches!(result, Err(Error::UnsafeEntry { .. })),
        "{result:?}"
    );
    let (_outer, result) = unpack(Tar::new().symlink("l", link).file("l/.wh.x", b""));
    assert!(
        matches!(result, Err(Error::UnsafeEntry { .. })),
        "{result:?}"
    );
}

#[test]
fn hardlink_to_a_link_out_links_the_link() {
    // A hard link to a symlink that points out of the layer is a second name for the symlink,
    // never for the host file it names.
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret");
    fs::write(&secret, b"host").unwrap();
    let (outer, result) = unpack(
        Tar::new()
            .symlink("out", secret.to_str().unwrap())
            .hardlink("copy", "out"),
    );
    result.unwrap();
    let copy = fs::symlink_metadata(outer.path().join("layer/copy")).unwrap();
    assert!(copy.is_symlink(), "the hard link followed the symlink");
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
}

/// Files get exactly the owner and mode their entries ask for, whatever the umask and the
/// directory they land in would have given them (unpacking skips chown and chmod only where
/// a new file is born with the entry's values).
#[test]
fn owners_and_modes_are_the_entries_whatever_the_umask_and_setgid_dirs() {
    fn owned(t: &mut Tar, name: &str, kind: tar::EntryType, mode: u32, uid: u64, gid: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(1);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_600_000_000);
        let data: &[u8] = if kind == tar::EntryType::Directory {
            b""
        } else {
            b"x"
        };
        h.set_size(data.len() as u64);
        t.0.append_data(&mut h, name, data).unwrap();
    }
    // /proc/self belongs to the process's effective user.
    let root = fs::metadata("/proc/self").unwrap().uid() == 0;
    let mut t = Tar::new();
    owned(&mut t, "plain", tar::EntryType::Regular, 0o644, 0, 0);
    // Bits a 022 umask takes away at creation.
    owned(&mut t, "shared", tar::EntryType::Regular, 0o666, 0, 0);
    owned(&mut t, "private", tar::EntryType::Regular, 0o600, 0, 0);
    owned(&mut t, "user", tar::EntryType::Regular, 0o640, 1000, 1001);
    // A setgid directory of group 1234: a file made in it would get that group.
    owned(&mut t, "sgid", tar::EntryType::Directory, 0o2775, 0, 1234);
    owned(&mut t, "sgid/f", tar::EntryType::Regular, 0o644, 0, 0);
    owned(&mut t, "after", tar::EntryType::Regular, 0o644, 0, 0);
    let (outer, result) = unpack(&mut t);
    result.unwrap();
    let layer = outer.path().join("layer");
    let meta = |name: &str| fs::metadata(layer.join(name)).unwrap();
    for (name, mode) in [
        ("plain", 0o644),
        ("shared", 0o666),
        ("private", 0o600),
        ("user", 0o640),
        ("sgid", 0o2775),
        ("sgid/f", 0o644),
        ("after", 0o644),
    ] {
        assert_eq!(meta(name).mode() & 0o7777, mode, "mode of {name}");
    }
    if root {
        for (name, owner) in [
            ("plain", (0, 0)),
            ("user", (1000, 1001)),
            ("sgid", (0, 1234)),
            ("sgid/f", (0, 0)),
            ("after", (0, 0)),
        ] {
            let m = meta(name);
            assert_eq!((m.uid(), m.gid()), owner, "owner of {name}");
        }
    }
}
