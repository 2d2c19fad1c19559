//! A busybox-like root in a temporary directory, and the inputs of `spec::build` around it,
//! shared by the spec tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_engine::request::{NsMode, RunRequest};
use berth_engine::spec::{self, Built, EtcFiles, HostLimits, SpecError, SpecInputs};
use oci_spec::runtime::Mount;
use serde_json::{json, Value};

pub const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                          app:x:1000:1000:App:/home/app:/bin/sh\n";
pub const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\n";

/// A root with /etc/passwd and /etc/group, and the other inputs; removed on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub image: Value,
    pub etc: EtcFiles,
    pub joins: BTreeMap<String, PathBuf>,
    pub volumes: BTreeMap<String, PathBuf>,
    pub limits: HostLimits,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
        let etc = EtcFiles {
            hosts: dir.path().join("hosts"),
            hostname: dir.path().join("hostname"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        let image = json!({"architecture": "amd64", "os": "linux", "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "",
        }});
        Fixture {
            dir,
            image,
            etc,
            joins: BTreeMap::new(),
            volumes: BTreeMap::new(),
            limits: HostLimits {
                hard: BTreeMap::from([("nofile".to_string(), 4096)]),
            },
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The image config as the store reads it: oci-spec's, whose required fields a test's
    /// JSON may leave out.
    pub fn image_config(&self) -> oci_spec::image::ImageConfiguration {
        let mut image = self.image.clone();
        let defaults = [
            ("architecture", json!("amd64")),
            ("os", json!("linux")),
            ("rootfs", json!({"type": "layers", "diff_ids": []})),
        ];
        for (key, value) in defaults {
            if let Some(map) = image.as_object_mut() {
                map.entry(key).or_insert(value);
            }
        }
        serde_json::from_value(image).expect("an image config oci-spec reads")
    }

    pub fn build(&self, req: &RunRequest) -> Result<Built, SpecError> {
        let rootfs = self.rootfs();
        let image = self.image_config();
        spec::build(&SpecInputs {
            id: ID,
            request: req,
            image_config: &image,
            rootfs: &rootfs,
            etc: &self.etc,
            joins: &self.joins,
            volumes: &self.volumes,
            cgroups_path: "/berth/0123456789ab",
            host_rlimits: &self.limits,
            // Used only with a private user namespace (`--userns private`).
            userns: Some(berth_engine::userns::IdMap {
                host_id: 100_000,
                size: 65_536,
                copied: false,
            }),
        })
    }

    /// Builds, and checks the runtime accepts the spec as it will read it from config.json.
    pub fn build_ok(&self, req: &RunRequest) -> Built {
        let built = self
            .build(req)
            .unwrap_or_else(|e| panic!("build failed: {e}"));
        let text = serde_json::to_string(&built.spec).unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        if let Err(e) = berth_runtime::plan::plan(&spec, self.dir.path()) {
            panic!("the runtime refuses the spec: {e}");
        }
        built
    }
}

/// Docker's defaults for a request, as the command line sets them.
pub fn request() -> RunRequest {
    RunRequest {
        image: "busybox".into(),
        userns: NsMode::Host,
        timens: NsMode::Host,
        ..Default::default()
    }
}

pub fn mount<'a>(built: &'a Built, dest: &str) -> &'a Mount {
    let mounts = built.spec.mounts().as_ref().unwrap();
    mounts
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

pub fn options(built: &Built, dest: &str) -> Vec<String> {
    mount(built, dest).options().clone().unwrap_or_default()
}

pub fn destinations(built: &Built) -> Vec<String> {
    let mounts = built.spec.mounts().as_ref().unwrap();
    mounts
        .iter()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect()
}

pub fn env(built: &Built) -> Vec<String> {
    built
        .spec
        .process()
        .as_ref()
        .unwrap()
        .env()
        .clone()
        .unwrap()
}

pub fn args(built: &Built) -> Vec<String> {
    built
        .spec
        .process()
        .as_ref()
        .unwrap()
        .args()
        .clone()
        .unwrap()
}

pub fn linux(built: &Built) -> &oci_spec::runtime::Linux {
    built.spec.linux().as_ref().unwrap()
}
