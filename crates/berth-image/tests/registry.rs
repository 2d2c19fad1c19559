//! Pull and push against a real docker-registry on 127.0.0.1: plain, basic auth, token auth,
//! multi-platform indexes, corrupt blobs and cut connections.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_image::archive::import::import;
use berth_image::progress::{LayerState, Progress, Silent};
use berth_image::registry::pull::{pull, PullOptions};
use berth_image::registry::push::{push, PushOptions};
use berth_image::registry::{Body, Client, Credentials, RegistryOptions};
use berth_image::{Error, Image, Platform, Reference, Store};
use common::{rootfs_tar, Auth, HostileRegistry, Registry, Reply, ENDLESS_CAP, PASS, USER};
use oci_spec::image::Digest;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn make_image(store: &Store, marker: &str, extra: usize, name: &str) -> Image {
    let tar = rootfs_tar(marker, extra);
    import(
        store,
        &tar[..],
        &[],
        Some(&Reference::parse(name).unwrap()),
        "test",
    )
    .unwrap()
}

fn creds() -> RegistryOptions {
    RegistryOptions {
        credentials: Some(Credentials {
            username: USER.into(),
            password: PASS.into(),
        }),
        ..Default::default()
    }
}

fn pull_opts(registry: RegistryOptions) -> PullOptions {
    PullOptions {
        registry,
        ..PullOptions::default()
    }
}

fn marker_of(store: &Store, image: &Image) -> String {
    let top = &store.rootfs_layers(image).unwrap()[0];
    std::fs::read_to_string(top.join("etc/marker")).unwrap()
}

fn roundtrip(auth: Auth, options: RegistryOptions) {
    let registry = Registry::start(auth);
    let (_d1, source) = store();
    let image = make_image(&source, "roundtrip", 200_000, "local/busybox:1");
    let target = Reference::parse(&format!("{}/test/busybox:v1", registry.addr)).unwrap();
    // A small chunk size sends the layer in PATCH chunks, the config in one PUT.
    let push_opts = PushOptions {
        chunk_size: 64 << 10,
        registry: options.clone(),
    };
    let digest = push(&source, &image, &target, &push_opts, &Silent).unwrap();
    assert_eq!(digest, image.manifest_digest);
    // Pushed again: every blob already exists.
    push(&source, &image, &target, &push_opts, &Silent).unwrap();

    let (_d2, dest) = store();
    let pulled = pull(&dest, &target, &pull_opts(options), &Silent).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    assert_eq!(pulled.id(), image.id());
    assert_eq!(pulled.repo_tags, vec![target.clone()]);
    assert_eq!(pulled.repo_digests, vec![target.with_digest(digest)]);
    assert_eq!(marker_of(&dest, &pulled), "roundtrip");
    assert_eq!(dest.resolve(&target.to_string()).unwrap().id(), image.id());
}

#[test]
fn push_and_pull_plain() {
    roundtrip(Auth::None, RegistryOptions::default());
}

#[test]
fn push_and_pull_with_basic_auth() {
    roundtrip(Auth::Basic, creds());
}

#[test]
fn push_and_pull_with_token_auth() {
    roundtrip(Auth::Token, creds());
}

#[test]
fn anonymous_pull_from_auth_registry_says_unauthorized() {
    for auth in [Auth::Basic, Auth::Token] {
        let registry = Registry::start(auth);
        let (_d, dest) = store();
        let target = Reference::parse(&format!("{}/test/none:v1", registry.addr)).unwrap();
        let err = pull(
            &dest,
            &target,
            &pull_opts(RegistryOptions::default()),
            &Silent,
        )
        .unwrap_err();
        assert!(matches!(err.root(), Error::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("berth login"), "{err}");
    }
}

#[test]
fn missing_image_is_not_found() {
    let registry = Registry::start(Auth::None);
    let (_d, dest) = store();
    let target = Reference::parse(&format!("{}/nope:v1", registry.addr)).unwrap();
    let err = pull(&dest, &target, &PullOptions::default(), &Silent).unwrap_err();
    assert!(matches!(err.root(), Error::NotFound { .. }), "{err}");
    assert!(dest.images().unwrap().is_empty());
}

#[test]
fn index_pulls_the_requested_platform() {
    let registry = Registry::start(Auth::None);
    let (_d1, source) = store();
    let amd = make_image(&source, "amd64", 0, "local/multi:amd");
    let arm = make_image(&source, "arm64", 0, "local/multi:arm");
    let repo = format!("{}/multi", registry.addr);
    for (image, tag) in [(&amd, "amd"), (&arm, "arm")] {
        push(
            &source,
            image,
            &Reference::parse(&format!("{repo}:{tag}")).unwrap(),
            &PushOptions::default(),
            &Silent,
        )
        .unwrap();
    }
    let entry = |image: &Image, arch: &str| {
        let size = std::fs::metadata(source.blob_path(&image.manifest_digest))
            .unwrap()
            .len();
        serde_json::json!({"mediaType": image.manifest_media_type, "digest": image.manifest_digest.to_string(),
            "size": size, "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")]});
    let bytes = serde_json::to_vec(&index).unwrap();
    let client = Client::new(
        &registry.addr,
        vec!["repository:multi:pull,push".into()],
        &RegistryOptions::default(),
    )
    .unwrap();
    let url = format!("http://{}/v2/multi/manifests/latest", registry.addr);
    let response = client
        .send(
            "PUT",
            &url,
            &[],
            &Body::Bytes(&bytes, "application/vnd.oci.image.index.v1+json"),
        )
        .unwrap();
    assert_eq!(response.status(), 201);

    let reference = Reference::parse(&format!("{repo}:latest")).unwrap();
    for (platform, marker) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        let (_d, dest) = store();
        let options = PullOptions {
            platform: Platform::parse(platform).unwrap(),
            ..PullOptions::default()
        };
        let image = pull(&dest, &reference, &options, &Silent).unwrap();
        assert_eq!(marker_of(&dest, &image), marker);
        // RepoDigests name the index, as Docker's do.
        assert_eq!(
            image.repo_digests[0].digest().unwrap(),
            &berth_image::digest::sha256(&bytes)
        );
    }
    let (_d, dest) = store();
    let options = PullOptions {
        platform: Platform::parse("linux/s390x").unwrap(),
        ..PullOptions::default()
    };
    let err = pull(&dest, &reference, &options, &Silent).unwrap_err();
    assert!(
        matches!(err.root(), Error::NoMatchingPlatform { .. }),
        "{err}"
    );
}

#[test]
fn corrupt_blob_in_registry_is_refused_and_leaves_nothing() {
    let registry = Registry::start(Auth::None);
    let (_d1, source) = store();
    let image = make_image(&source, "corrupt", 100_000, "local/c:1");
    let target = Reference::parse(&format!("{}/c:1", registry.addr)).unwrap();
    push(&source, &image, &target, &PushOptions::default(), &Silent).unwrap();
    let layer = image.manifest.layers()[0].digest().to_string();
    let data = registry.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let (_d2, dest) = store();
    let options = PullOptions {
        retries: 0,
        ..PullOptions::default()
    };
    let err = pull(&dest, &target, &options, &Silent).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("pull {target}: layer {layer}")),
        "{text}"
    );
    assert!(dest.images().unwrap().is_empty());
    assert!(!dest.has_blob(image.manifest.layers()[0].digest()));
    assert_eq!(
        std::fs::read_dir(dest.dir().join("tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
    assert_eq!(
        std::fs::read_dir(dest.dir().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

/// What a cutting proxy saw: connections cut, response bytes relayed, Range requests.
#[derive(Default)]
struct Seen {
    cuts: AtomicUsize,
    served: AtomicUsize,
    ranges: AtomicUsize,
}

/// A TCP proxy that cuts the first `cut` blob connections after `after` bytes of response.
fn cutting_proxy(upstream: String, after: usize, cut: usize) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let seen = seen2.clone();
            std::thread::spawn(move || relay(client, server, after, cut, seen));
        }
    });
    (addr, seen)
}

fn relay(mut client: TcpStream, mut server: TcpStream, after: usize, cut: usize, seen: Arc<Seen>) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let requests = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = c2.read(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            if text.contains("\r\nrange: bytes=") {
                requests.ranges.fetch_add(1, Ordering::SeqCst);
            }
            if n == 0 || s2.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = [0u8; 16384];
    let mut sent = 0;
    while let Ok(n) = server.read(&mut buf) {
        if n == 0 {
            break;
        }
        // Only big responses (layer blobs) are cut, and only the first `cut` of them.
        if sent + n > after && sent < after && seen.cuts.load(Ordering::SeqCst) < cut {
            seen.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = client.write_all(&buf[..after - sent]);
            seen.served.fetch_add(after - sent, Ordering::SeqCst);
            break;
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        seen.served.fetch_add(n, Ordering::SeqCst);
        sent += n;
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
}

#[test]
fn cut_pull_leaves_no_image_and_the_next_pull_completes() {
    let registry = Registry::start(Auth::None);
    let (_d1, source) = store();
    let image = make_image(&source, "cut", 3_000_000, "local/cut:1");
    push(
        &source,
        &image,
        &Reference::parse(&format!("{}/cut:1", registry.addr)).unwrap(),
        &PushOptions::default(),
        &Silent,
    )
    .unwrap();
    let (proxy, seen) = cutting_proxy(registry.addr.clone(), 1_000_000, 1);
    let via_proxy = Reference::parse(&format!("{proxy}/cut:1")).unwrap();

    let (_d2, dest) = store();
    let no_retry = PullOptions {
        retries: 0,
        ..PullOptions::default()
    };
    let err = pull(&dest, &via_proxy, &no_retry, &Silent).unwrap_err();
    assert_eq!(seen.cuts.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.ranges.load(Ordering::SeqCst),
        0,
        "resumed without retries"
    );
    assert!(
        err.root().is_transient(),
        "a cut download should be transient: {err}"
    );
    assert!(
        dest.images().unwrap().is_empty(),
        "partial image after a failed pull"
    );
    assert_eq!(
        std::fs::read_dir(dest.dir().join("layers"))
            .unwrap()
            .count(),
        0
    );

    // The next pull completes; the config fetched the first time is reused.
    let again = pull(&dest, &via_proxy, &no_retry, &Silent).unwrap();
    assert_eq!(again.id(), image.id());
    assert_eq!(marker_of(&dest, &again), "cut");

    // With retries, a cut is invisible to the caller: the download resumes where it was cut
    // (one Range request), so the layer crosses the wire once, not once and a third.
    let (proxy, seen) = cutting_proxy(registry.addr.clone(), 1_000_000, 1);
    let (_d3, dest) = store();
    let image2 = pull(
        &dest,
        &Reference::parse(&format!("{proxy}/cut:1")).unwrap(),
        &PullOptions::default(),
        &Silent,
    )
    .unwrap();
    assert_eq!(seen.cuts.load(Ordering::SeqCst), 1);
    assert_eq!(seen.ranges.load(Ordering::SeqCst), 1);
    let layer_size = image.manifest.layers()[0].size() as usize;
    let served = seen.served.load(Ordering::SeqCst);
    assert!(
        served < layer_size + 100_000,
        "{served} bytes served for a {layer_size}-byte layer: not resumed"
    );
    assert_eq!(image2.id(), image.id());
    assert_eq!(marker_of(&dest, &image2), "cut");
}

/// A 1 MiB tmpfs, unmounted when dropped (even when the test fails).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "berth-test"])
            .arg(dir.path())
            .status()
            .unwrap();
        status.success().then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn full_disk_is_one_clear_error_and_leaves_nothing() {
    let Some(disk) = SmallDisk::mount() else {
        berth_sys::skip!("needs mount (root)");
    };
    let registry = Registry::start(Auth::None);
    let (_d1, source) = store();
    let image = make_image(&source, "full", 4_000_000, "local/full:1");
    let name = Reference::parse(&format!("{}/full:1", registry.addr)).unwrap();
    push(&source, &image, &name, &PushOptions::default(), &Silent).unwrap();

    let root = disk.0.path().join("data");
    let dest = Store::open(&root).unwrap();
    let expected = format!(
        "no space left on device under {}; free space or use --root (",
        root.display()
    );
    let pulled = pull(&dest, &name, &PullOptions::default(), &Silent).unwrap_err();
    let tar = rootfs_tar("full", 4_000_000);
    let imported = import(&dest, &tar[..], &[], None, "test").unwrap_err();
    for err in [pulled, imported] {
        assert!(matches!(err.root(), Error::NoSpace { .. }), "{err}");
        assert!(err.to_string().contains(&expected), "{err}");
        assert!(!err.is_transient(), "a full disk is not retried: {err}");
    }
    assert!(dest.images().unwrap().is_empty());
    for sub in ["tmp", "layers"] {
        let left = std::fs::read_dir(dest.dir().join(sub)).unwrap().count();
        assert_eq!(left, 0, "{sub} not empty after a failed pull");
    }
}

/// Counts the layers a pull retried.
#[derive(Default)]
struct Retries(AtomicUsize);

impl Progress for Retries {
    fn layer(&self, _digest: &Digest, state: LayerState) {
        if matches!(state, LayerState::Retrying { .. }) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A failed pull left no image and no work in progress.
fn no_partial_image(store: &Store, images_before: usize) {
    assert_eq!(
        store.images().unwrap().len(),
        images_before,
        "partial image"
    );
    let tmp = std::fs::read_dir(store.dir().join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "temp files left behind");
}

#[test]
fn declared_size_must_match_the_blob() {
    let registry = Registry::start(Auth::None);
    let (_d1, source) = store();
    let image = make_image(&source, "sizes", 100_000, "local/sizes:1");
    let good = Reference::parse(&format!("{}/sizes:good", registry.addr)).unwrap();
    push(&source, &image, &good, &PushOptions::default(), &Silent).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&source.read_blob(&image.manifest_digest).unwrap()).unwrap();
    let client = Client::new(
        &registry.addr,
        vec!["repository:sizes:pull,push".into()],
        &RegistryOptions::default(),
    )
    .unwrap();
    // The registry stores manifests whose descriptors lie about sizes: the blobs are the
    // right ones (same digests), only the declared sizes are off by one either way.
    let layer = image.manifest.layers()[0].digest().to_string();
    let config = image.id().to_string();
    let cases = [
        ("layer-bigger", "/layers/0/size", 1, &layer),
        ("layer-smaller", "/layers/0/size", -1, &layer),
        ("config-bigger", "/config/size", 1, &config),
        ("config-smaller", "/config/size", -1, &config),
    ];
    let mut lying = Vec::new();
    for (tag, pointer, delta, blob) in cases {
        let mut edited = manifest.clone();
        let size = edited.pointer_mut(pointer).unwrap();
        *size = (size.as_i64().unwrap() + delta).into();
        let bytes = serde_json::to_vec(&edited).unwrap();
        let url = format!("http://{}/v2/sizes/manifests/{tag}", registry.addr);
        let body = Body::Bytes(&bytes, &image.manifest_media_type);
        let response = client.send("PUT", &url, &[], &body).unwrap();
        assert_eq!(response.status(), 201, "{tag}");
        let reference = Reference::parse(&format!("{}/sizes:{tag}", registry.addr)).unwrap();
        lying.push((reference, blob));
    }
    let refused = |dest: &Store, reference: &Reference, blob: &str, images_before: usize| {
        let retries = Retries::default();
        let err = pull(dest, reference, &PullOptions::default(), &retries).unwrap_err();
        assert!(
            matches!(err.root(), Error::SizeMismatch { .. }),
            "{reference}: {err}"
        );
        assert!(err.to_string().contains(blob), "{err}");
        assert_eq!(retries.0.load(Ordering::SeqCst), 0, "a lie is not retried");
        no_partial_image(dest, images_before);
    };
    for (reference, blob) in &lying {
        let (_d, dest) = store();
        refused(&dest, reference, blob, 0);
        assert!(!dest.has_blob(image.manifest.layers()[0].digest()));
    }
    // With the blobs already in the store from an honest pull, the lies are refused all
    // the same: what the store held before does not change the verdict.
    let (_d, dest) = store();
    pull(&dest, &good, &PullOptions::default(), &Silent).unwrap();
    for (reference, blob) in &lying {
        refused(&dest, reference, blob, 1);
    }
}

/// Serves `image` from a hostile registry where `endless` names the one reply that runs on
/// past its content; returns the registry and the reference to pull.
fn hostile_registry(source: &Store, image: &Image, endless: &str) -> (HostileRegistry, Reference) {
    let layer = image.manifest.layers()[0].digest();
    let blob = |digest: &Digest| std::fs::read(source.blob_path(digest));
    let mut routes = HashMap::new();
    let mut route = |path: String, content_type, body: Vec<u8>, name: &str| {
        let endless = name == endless;
        routes.insert(
            path,
            Reply {
                content_type,
                body,
                endless,
            },
        );
    };
    let manifest_type = if image.manifest_media_type.contains("oci") {
        "application/vnd.oci.image.manifest.v1+json"
    } else {
        "application/vnd.docker.distribution.manifest.v2+json"
    };
    route(
        "/v2/endless/manifests/1".into(),
        manifest_type,
        blob(&image.manifest_digest).unwrap(),
        "manifest",
    );
    let octets = "application/octet-stream";
    route(
        format!("/v2/endless/blobs/{}", image.id()),
        octets,
        blob(image.id()).unwrap(),
        "config",
    );
    route(
        format!("/v2/endless/blobs/{layer}"),
        octets,
        blob(layer).unwrap(),
        "layer",
    );
    let registry = HostileRegistry::start(routes);
    let reference = Reference::parse(&format!("{}/endless:1", registry.addr)).unwrap();
    (registry, reference)
}

#[test]
fn hostile_registry_cannot_stream_past_the_declared_size() {
    let (_d1, source) = store();
    let image = make_image(&source, "endless", 200_000, "local/endless:1");
    let layer_size = image.manifest.layers()[0].size();
    let config_size = source.read_blob(image.id()).unwrap().len();
    let cases = [
        (
            "layer",
            format!("more than the {layer_size} bytes the manifest declares"),
        ),
        (
            "config",
            format!("more than the {config_size} bytes the manifest declares"),
        ),
        ("manifest", "larger than 4 MiB".to_string()),
    ];
    for (endless, expected) in cases {
        let (registry, reference) = hostile_registry(&source, &image, endless);
        let (_d2, dest) = store();
        let retries = Retries::default();
        let err = pull(&dest, &reference, &PullOptions::default(), &retries).unwrap_err();
        assert!(err.to_string().contains(&expected), "{endless}: {err}");
        assert_eq!(retries.0.load(Ordering::SeqCst), 0, "{endless}: retried");
        // What crossed the wire is the declared size plus what the sockets buffer, far
        // below what the registry would have sent.
        let sent = registry.sent.load(Ordering::SeqCst);
        assert!(sent < ENDLESS_CAP / 2, "{endless}: {sent} bytes read");
        no_partial_image(&dest, 0);
        assert!(!dest.has_blob(image.manifest.layers()[0].digest()));
    }
}

/// A relay to `upstream` that counts requests carrying an Authorization header and, with
/// `rewrite`, points every Location header of the answers at another address.
fn relay_to(upstream: String, rewrite: Option<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let authorized = Arc::new(AtomicUsize::new(0));
    let seen = authorized.clone();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = c2.read(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    if text.contains("\r\nauthorization:") {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    if s2.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            let rewrite = rewrite.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = server.read(&mut buf) {
                    let mut out = buf[..n].to_vec();
                    if let Some(to) = &rewrite {
                        out = point_locations_at(&out, to);
                    }
                    if client.write_all(&out).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, authorized)
}

/// The answer with every `Location:` header's host replaced by `to` (relative ones made absolute).
fn point_locations_at(answer: &[u8], to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(answer);
    if !text.contains("Location: ") {
        return answer.to_vec();
    }
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| match line.strip_prefix("Location: ") {
            Some(loc) => {
                let path = loc
                    .strip_prefix("http://")
                    .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
                    .unwrap_or(loc);
                format!("Location: http://{to}{path}")
            }
            None => line.to_string(),
        })
        .collect();
    lines.join("\r\n").into_bytes()
}

#[test]
fn credentials_never_go_to_a_host_an_upload_location_names() {
    let registry = Registry::start(Auth::Basic);
    // Another host (by name) in front of the same registry: it only counts credentials.
    let (foreign, foreign_authorized) = relay_to(registry.addr.clone(), None);
    let foreign = foreign.replace("127.0.0.1", "localhost");
    // The hostile registry, as the client knows it: it points every upload's Location at the
    // foreign host.
    let (hostile, _) = relay_to(registry.addr.clone(), Some(foreign.clone()));
    let (_d, source) = store();
    let image = make_image(&source, "leak", 10_000, "local/leak:1");
    let target = Reference::parse(&format!("{hostile}/test/leak:v1")).unwrap();
    let options = PushOptions {
        registry: creds(),
        ..PushOptions::default()
    };
    // It may fail (the foreign host asks for credentials it does not get): what matters is
    // that they were never sent there.
    let _ = push(&source, &image, &target, &options, &Silent);
    assert_eq!(
        foreign_authorized.load(Ordering::SeqCst),
        0,
        "the registry's credentials were sent to {foreign}, named only by an upload Location"
    );
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Serves an image of one layer, `blob` labelled `media_type`, whose config declares `tar`'s
/// digest as the diff ID; returns the registry and the reference to pull.
fn one_layer_registry(tar: &[u8], blob: Vec<u8>, media_type: &str) -> (HostileRegistry, Reference) {
    let layer = sha256_digest(&blob);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": media_type, "digest": layer, "size": blob.len()}],
    }))
    .unwrap();
    let reply = |content_type, body| Reply {
        content_type,
        body,
        endless: false,
    };
    let octets = "application/octet-stream";
    let config_path = format!("/v2/layered/blobs/{}", sha256_digest(&config));
    let routes = HashMap::from([
        (
            "/v2/layered/manifests/1".to_string(),
            reply("application/vnd.oci.image.manifest.v1+json", manifest),
        ),
        (config_path, reply(octets, config)),
        (format!("/v2/layered/blobs/{layer}"), reply(octets, blob)),
    ]);
    let registry = HostileRegistry::start(routes);
    let reference = Reference::parse(&format!("{}/layered:1", registry.addr)).unwrap();
    (registry, reference)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A case: its name, the layer's tar, the blob served, its media type, whether it pulls.
type HostileLayer<'a> = (&'a str, &'a [u8], Vec<u8>, &'a str, bool);

/// Layers a registry may serve, each pulled through the three stages (fetch, inflate,
/// untar): the good ones make an image, the bad ones one error and nothing left behind.
#[test]
fn hostile_layers_pull_or_fail_cleanly() {
    const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    let tar = rootfs_tar("hostile", 300_000);
    let escaping = {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../../escape");
        h.set_cksum();
        builder.append(&h, &b"evil"[..]).unwrap();
        builder.into_inner().unwrap()
    };
    let gz = gzip(&tar);
    let mut trailing = gz.clone();
    trailing.extend_from_slice(&[b'x'; 100_000]);
    let truncated = gz[..gz.len() / 2].to_vec();
    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    let cases: Vec<HostileLayer> = vec![
        ("gzip", &tar, gz.clone(), GZIP, true),
        (
            "zstd",
            &tar,
            zstd,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            true,
        ),
        ("plain labelled gzip", &tar, tar.clone(), GZIP, true),
        ("trailing garbage", &tar, trailing, GZIP, false),
        ("truncated", &tar, truncated, GZIP, false),
        ("unsafe entry", &escaping, gzip(&escaping), GZIP, false),
        ("not a tar", b"hello", gzip(b"hello"), GZIP, false),
    ];
    for (name, tar, blob, media_type, pulls) in cases {
        let (_registry, reference) = one_layer_registry(tar, blob, media_type);
        let (dir, dest) = store();
        let options = PullOptions {
            retries: 0,
            ..PullOptions::default()
        };
        let pulled = pull(&dest, &reference, &options, &Silent);
        if pulls {
            pulled.unwrap_or_else(|e| panic!("{name}: {e}"));
            continue;
        }
        let err = pulled.expect_err(name).to_string();
        assert!(
            err.starts_with(&format!("pull {reference}")),
            "{name}: {err}"
        );
        no_partial_image(&dest, 0);
        let layers = std::fs::read_dir(dest.dir().join("layers"))
            .unwrap()
            .count();
        assert_eq!(layers, 0, "{name}: a layer left behind ({err})");
        assert!(
            !dir.path().parent().unwrap().join("escape").exists(),
            "{name}: wrote outside the store"
        );
    }
}
