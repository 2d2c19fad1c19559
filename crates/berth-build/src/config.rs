//! The image config a build writes, as Docker writes it. oci-spec's `ImageConfiguration` has no
//! Healthcheck, Shell or OnBuild (Docker's extensions that `docker inspect` and buildah read),
//! so this one type models the document the builder reads from its base and writes back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{}`: the value of an ExposedPorts or Volumes entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's Healthcheck: the engine's type, which runs what the build writes.
pub use berth_engine::health::HealthConfig;

/// Docker's `config`: what a container of the image starts with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub shell: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub on_build: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
}

/// `null` read as the empty value, as Go writes nil maps and slices.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<String>,
}

/// The image config document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The config of `FROM scratch` on this host's platform.
    pub fn scratch() -> ImageConfig {
        let host = berth_image::Platform::host();
        ImageConfig {
            architecture: host.architecture,
            os: host.os,
            variant: host.variant,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            },
            ..ImageConfig::default()
        }
    }

    /// The value of `name` in Env.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .filter_map(|e| e.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Sets `name=value` in Env, replacing an earlier value in place.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        match self
            .config
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
        {
            Some(e) => *e = entry,
            None => self.config.env.push(entry),
        }
    }

    pub fn add_history(&mut self, created: &str, created_by: String, empty_layer: bool) {
        self.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by),
            author: None,
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_configs_with_nulls_and_writes_only_what_is_set() {
        let doc = r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["sh"],
            "Labels":null,"OnBuild":null,"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1}},
            "rootfs":{"type":"layers","diff_ids":[]},"history":[{"created_by":"x","empty_layer":true}]}"#;
        let mut c: ImageConfig = serde_json::from_str(doc).unwrap();
        assert!(c.config.env.is_empty());
        c.set_env("PATH", "/bin");
        c.set_env("PATH", "/usr/bin");
        assert_eq!(c.config.env, ["PATH=/usr/bin"]);
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["config"]["Cmd"], serde_json::json!(["sh"]));
        assert!(out["config"].get("Labels").is_none());
        assert_eq!(out["config"]["Healthcheck"]["Interval"], 1);
        assert_eq!(out["history"][0]["empty_layer"], true);
    }
}
