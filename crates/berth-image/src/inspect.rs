//! Docker-compatible views of an image: `image inspect` JSON, sizes and history rows.

use serde_json::{json, Value};

use crate::store::{Image, Store};

impl Image {
    /// The image's size as Docker reports it: the sum of its unpacked layers.
    pub fn size(&self, store: &Store) -> u64 {
        self.diff_ids()
            .unwrap_or_default()
            .iter()
            .map(|d| store.layer_size(d))
            .sum()
    }

    /// When the image was built, from its config (RFC 3339).
    pub fn created(&self) -> Option<std::time::SystemTime> {
        let created = self.config.created().as_deref()?;
        humantime::parse_rfc3339_weak(created.trim_end_matches('Z').split('+').next()?)
            .ok()
            .or_else(|| humantime::parse_rfc3339(created).ok())
    }
}

/// `docker image inspect`'s object for one image.
pub fn docker_inspect(store: &Store, image: &Image) -> Value {
    // What oci-spec read, if the raw config has values JSON cannot hold.
    let config = image
        .config_json()
        .unwrap_or_else(|_| serde_json::to_value(&image.config).unwrap_or_default());
    let layers = store.rootfs_layers(image).unwrap_or_default();
    let lower: Vec<String> = layers
        .iter()
        .skip(1)
        .map(|p| p.display().to_string())
        .collect();
    let mut graph = json!({"Name": "overlay", "Data": {"MergedDir": null}});
    if let Some(top) = layers.first() {
        graph["Data"] = json!({"UpperDir": top.display().to_string(), "LowerDir": lower.join(":")});
    }
    json!({
        "Id": image.id().to_string(),
        "RepoTags": image.repo_tags.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config["history"].as_array().and_then(|h| h.last()).and_then(|h| h["comment"].as_str()).unwrap_or(""),
        "Created": config["created"].as_str().unwrap_or("0001-01-01T00:00:00Z"),
        "DockerVersion": config["docker_version"].as_str().unwrap_or(""),
        "Author": config["author"].as_str().unwrap_or(""),
        "Config": docker_config(&config["config"]),
        "Architecture": config["architecture"],
        "Variant": config.get("variant").cloned().unwrap_or(Value::Null),
        "Os": config["os"],
        "Size": image.size(store),
        "GraphDriver": graph,
        "RootFS": {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {
            "mediaType": image.manifest_media_type,
            "digest": image.manifest_digest.to_string(),
            "size": store.read_blob(&image.manifest_digest).map(|b| b.len()).unwrap_or(0),
        },
    })
}

/// An image config's `config` (or legacy `container_config`) as Docker prints it: these keys
/// always, null when unset.
pub fn docker_config(config: &Value) -> Value {
    let mut out = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": null,
    });
    if let (Some(out), Some(config)) = (out.as_object_mut(), config.as_object()) {
        for (k, v) in config {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}
