//! Black-box tests of hostile image archives: `berth load` of docker- and oci-archives whose
//! names or links lead out of the archive to host files, refused with one line and exit 1
//! (Docker's `docker load` status for a bad archive) storing nothing, each beside a control,
//! the same archive with its link kept inside, which loads; and `berth import` of a layer
//! that reaches for a host directory through a link.
//!
//! Needs `cargo build -p berth` beforehand. Each test has its own empty data root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use berth_harness::image::berth_bin;
use berth_harness::{run_with_timeout, Ran, COMMAND_TIMEOUT};
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A tar built entry by entry with raw names, so tests can write what the tar crate refuses.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(1_600_000_000);
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).expect("tar entry");
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Tar {
        self.entry(name, tar::EntryType::Regular, "", data)
    }

    fn dir(self, name: &str) -> Tar {
        self.entry(name, tar::EntryType::Directory, "", b"")
    }

    fn symlink(self, name: &str, target: &str) -> Tar {
        self.entry(name, tar::EntryType::Symlink, target, b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Tar {
        self.entry(name, tar::EntryType::Link, target, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().expect("tar end")
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// A one-layer image's parts: the layer tar, its config, and a docker-archive manifest.json
/// naming them `config.json` and `layer/layer.tar` (tagged `hostile:1`).
struct Parts {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn parts() -> Parts {
    let layer = Tar::new()
        .file("hello", b"hello from the archive\n")
        .bytes();
    let config = json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}});
    let manifest = json!([{"Config": "config.json", "RepoTags": ["hostile:1"],
        "Layers": ["layer/layer.tar"]}]);
    Parts {
        layer,
        config: serde_json::to_vec(&config).unwrap(),
        manifest: serde_json::to_vec(&manifest).unwrap(),
    }
}

/// The same image as an oci-archive's parts: the manifest and the index.json naming it.
fn oci_parts(parts: &Parts) -> (Vec<u8>, Vec<u8>) {
    let descriptor = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": sha256(bytes), "size": bytes.len()});
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &parts.config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &parts.layer)]});
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["annotations"] = json!({"io.containerd.image.name": "docker.io/library/hostile:oci",
        "org.opencontainers.image.ref.name": "oci"});
    let index = json!({"schemaVersion": 2, "manifests": [entry]});
    (manifest, serde_json::to_vec(&index).unwrap())
}

/// A directory on the host that archives reach for.
struct Host(TempDir);

impl Host {
    fn new() -> Host {
        Host(
            tempfile::Builder::new()
                .prefix("berth-host-")
                .tempdir()
                .expect("host dir"),
        )
    }

    /// Writes `bytes` to `name` here; returns its absolute path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.path().join(name);
        fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }
}

/// An empty data root.
struct Root(TempDir);

impl Root {
    fn new() -> Root {
        assert!(
            berth_bin().exists(),
            "{} is missing: run `cargo build -p berth` first",
            berth_bin().display()
        );
        Root(
            tempfile::Builder::new()
                .prefix("berth-hostile-")
                .tempdir()
                .expect("data root"),
        )
    }

    fn berth(&self, args: &[&str]) -> Ran {
        let mut command = Command::new(berth_bin());
        command
            .arg("--root")
            .arg(self.0.path())
            .args(args)
            .stdin(Stdio::null());
        run_with_timeout(command, COMMAND_TIMEOUT)
    }

    /// `berth load -i` of `archive`, written to a file of its own.
    fn load(&self, archive: Vec<u8>) -> Ran {
        let file = tempfile::NamedTempFile::new().unwrap();
        fs::write(file.path(), archive).unwrap();
        self.berth(&["load", "-i", file.path().to_str().unwrap()])
    }

    /// The entries of a directory of the store.
    fn store_entries(&self, sub: &str) -> Vec<String> {
        let dir = self.0.path().join("image").join(sub);
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// Loading `archive` into an empty root fails with one line that contains `says` and exit
/// status 1, and stores nothing: no image, no blob (host content least of all), no layer,
/// nothing left in the temp directory.
fn refused(archive: Vec<u8>, says: &str) {
    let root = Root::new();
    let ran = root.load(archive);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert_eq!(lines.len(), 1, "one line: {ran:?}");
    assert!(lines[0].contains(says), "wanted {says:?}: {ran:?}");
    let images = root.berth(&["images", "-q"]).ok();
    assert_eq!(images.trim(), "", "an image was left after a refused load");
    for sub in ["blobs/sha256", "layers", "tmp"] {
        assert_eq!(
            root.store_entries(sub),
            Vec::<String>::new(),
            "{sub} after {says}"
        );
    }
}

/// Loading `archive` into an empty root succeeds and names `loaded`.
fn loads(archive: Vec<u8>, loaded: &str) {
    let out = Root::new().load(archive).ok();
    assert!(out.contains(&format!("Loaded image: {loaded}")), "{out}");
}

const OUT: &str = "leads out of the archive";

#[test]
fn manifest_json_linking_to_a_host_file_is_refused() {
    let p = parts();
    let host = Host::new();
    let host_manifest = host.file("manifest.json", &p.manifest);
    let archive = |link: &str| {
        Tar::new()
            .file("config.json", &p.config)
            .file("layer/layer.tar", &p.layer)
            .file("real.json", &p.manifest)
            .symlink("manifest.json", link)
            .bytes()
    };
    refused(
        archive(&host_manifest),
        &format!("\"manifest.json\": {OUT}"),
    );
    loads(archive("real.json"), "hostile:1");
}

#[test]
fn layer_linking_to_a_host_tar_is_refused() {
    let p = parts();
    let host = Host::new();
    let host_layer = host.file("layer.tar", &p.layer);
    let archive = |entry: Tar| {
        entry
            .file("manifest.json", &p.manifest)
            .file("config.json", &p.config)
            .file("other/layer.tar", &p.layer)
            .bytes()
    };
    refused(
        archive(Tar::new().symlink("layer/layer.tar", &host_layer)),
        &format!("\"layer/layer.tar\": {OUT}"),
    );
    refused(
        archive(Tar::new().hardlink("layer/layer.tar", &host_layer)),
        "\"layer/layer.tar\": a hard link out of the archive",
    );
    // Docker's own archives link a layer saved twice to its first copy, relatively.
    loads(
        archive(Tar::new().symlink("layer/layer.tar", "../other/layer.tar")),
        "hostile:1",
    );
}

#[test]
fn config_linking_to_a_host_file_is_refused() {
    let p = parts();
    let host = Host::new();
    let host_config = host.file("config.json", &p.config);
    let archive = |link: &str| {
        Tar::new()
            .file("manifest.json", &p.manifest)
            .file("layer/layer.tar", &p.layer)
            .file("blobs/config", &p.config)
            .symlink("config.json", link)
            .bytes()
    };
    refused(archive(&host_config), &format!("\"config.json\": {OUT}"));
    loads(archive("blobs/config"), "hostile:1");
}

#[test]
fn dotdot_in_archive_names_is_refused() {
    let p = parts();
    let host = Host::new();
    let host_layer = host.file("layer.tar", &p.layer);
    let good = || {
        Tar::new()
            .file("manifest.json", &p.manifest)
            .file("config.json", &p.config)
    };
    // An entry whose own name climbs out (tar skips it silently; Docker refuses it).
    refused(
        good()
            .file("layer/layer.tar", &p.layer)
            .file("../escape.json", b"{}")
            .bytes(),
        "\"../escape.json\": its name climbs out of the archive",
    );
    // A relative link that climbs past the archive's top to the host.
    let climb = format!("{}{}", "../".repeat(16), host_layer.trim_start_matches('/'));
    refused(
        good().symlink("layer/layer.tar", &climb).bytes(),
        &format!("\"layer/layer.tar\": {OUT}"),
    );
    // A name in manifest.json that climbs out.
    let manifest = json!([{"Config": "config.json", "RepoTags": ["hostile:1"],
        "Layers": [format!("../../{}", host_layer.trim_start_matches('/'))]}]);
    refused(
        Tar::new()
            .file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
            .file("config.json", &p.config)
            .bytes(),
        "its name climbs out of the archive",
    );
}

#[test]
fn oci_archive_links_to_host_files_are_refused() {
    let p = parts();
    let (manifest, index) = oci_parts(&p);
    let host = Host::new();
    let blob = |bytes: &[u8]| format!("blobs/sha256/{}", hex(&sha256(bytes)));
    // The index and the layer blob as `links` has them; the rest of the layout as it is.
    let archive = |links: &dyn Fn(Tar) -> Tar| {
        let mut tar = Tar::new().file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        for bytes in [&p.config, &manifest] {
            tar = tar.file(&blob(bytes), bytes);
        }
        links(tar.file("spare/layer", &p.layer)).bytes()
    };
    let layer = blob(&p.layer);
    let host_index = host.file("index.json", &index);
    refused(
        archive(&|t| t.symlink("index.json", &host_index).file(&layer, &p.layer)),
        &format!("\"index.json\": {OUT}"),
    );
    let host_layer = host.file("layer.tar", &p.layer);
    refused(
        archive(&|t| t.file("index.json", &index).symlink(&layer, &host_layer)),
        &format!("\"{layer}\": {OUT}"),
    );
    loads(
        archive(&|t| {
            t.file("index.json", &index)
                .symlink(&layer, "../../spare/layer")
        }),
        "hostile:oci",
    );
}

#[test]
fn import_never_touches_a_host_directory() {
    // A directory, then a link of the same name to a host directory: the directory's time,
    // set once the layer is written, must not go through the link.
    let host = Host::new();
    let victim = host.0.path().join("b");
    fs::create_dir(&victim).unwrap();
    let before = fs::metadata(&victim).unwrap().mtime();
    let layer = Tar::new()
        .dir("a/")
        .dir("a/b/")
        .symlink("a", host.0.path().to_str().unwrap())
        .bytes();
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), layer).unwrap();
    Root::new()
        .berth(&["import", file.path().to_str().unwrap(), "hostile:import"])
        .ok();
    assert_eq!(
        fs::metadata(&victim).unwrap().mtime(),
        before,
        "import set the time of a host directory"
    );
}
