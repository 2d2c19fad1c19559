//! The parts of the image config a container's process starts from, and Docker's rules for
//! combining them with the request: Entrypoint + Cmd, the environment, the working directory.

use std::path::PathBuf;

use serde_json::Value;

use super::defaults;
use super::SpecError;
use crate::request::RunRequest;

/// `.config` of an OCI or Docker image config; absent and null fields are empty.
#[derive(Debug, Default)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
}

fn list(config: &Value, key: &str) -> Result<Vec<String>, SpecError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| SpecError::ImageConfig {
                reason: format!("config.{key} holds a non-string"),
            }),
        Some(_) => Err(SpecError::ImageConfig {
            reason: format!("config.{key} is not a list"),
        }),
    }
}

fn text(config: &Value, key: &str) -> Result<Option<String>, SpecError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SpecError::ImageConfig {
            reason: format!("config.{key} is not a string"),
        }),
    }
}

impl ImageConfig {
    pub fn parse(image: &Value) -> Result<ImageConfig, SpecError> {
        let config = match image.get("config") {
            None | Some(Value::Null) => return Ok(ImageConfig::default()),
            Some(c) if c.is_object() => c,
            Some(_) => {
                return Err(SpecError::ImageConfig {
                    reason: "config is not an object".into(),
                })
            }
        };
        Ok(ImageConfig {
            env: list(config, "Env")?,
            cmd: list(config, "Cmd")?,
            entrypoint: list(config, "Entrypoint")?,
            working_dir: text(config, "WorkingDir")?.unwrap_or_default(),
            user: text(config, "User")?,
            stop_signal: text(config, "StopSignal")?,
        })
    }

    /// moby's merge: `--entrypoint X` replaces the image's Entrypoint and drops its Cmd;
    /// `--entrypoint ""` clears the Entrypoint but keeps the Cmd; a command after the image
    /// replaces the Cmd.
    pub fn args(&self, req: &RunRequest) -> Result<Vec<String>, SpecError> {
        let (entrypoint, image_cmd) = match req.entrypoint.as_deref() {
            None => (self.entrypoint.clone(), &self.cmd),
            Some("") => (Vec::new(), &self.cmd),
            Some(e) => (vec![e.to_string()], &Vec::new()),
        };
        let cmd = if req.cmd.is_empty() {
            image_cmd.clone()
        } else {
            req.cmd.clone()
        };
        let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if args.is_empty() {
            return Err(SpecError::NoCommand);
        }
        Ok(args)
    }

    /// PATH, HOSTNAME and TERM (with -t), overridden by the image's Env, then by `-e` (a bare
    /// `KEY` removes it, as in moby); HOME from the user's passwd entry unless set.
    pub fn env(&self, req: &RunRequest, hostname: &str, home: &str) -> Vec<String> {
        let mut env = vec![
            format!("PATH={}", defaults::PATH),
            format!("HOSTNAME={hostname}"),
        ];
        if req.tty {
            env.push("TERM=xterm".into());
        }
        for entry in self.env.iter().chain(&req.env) {
            let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
            let pos = env
                .iter()
                .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
            match (pos, entry.contains('=')) {
                (Some(i), true) => env[i] = entry.clone(),
                (Some(i), false) => {
                    env.remove(i);
                }
                (None, true) => env.push(entry.clone()),
                (None, false) => {}
            }
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        env
    }

    /// `-w` (absolute), else the image's WorkingDir (taken from /), else "/".
    pub fn cwd(&self, req: &RunRequest) -> Result<PathBuf, SpecError> {
        if let Some(w) = req.workdir.as_deref().filter(|w| !w.is_empty()) {
            if !w.starts_with('/') {
                return Err(SpecError::invalid(
                    format!("-w {w}"),
                    format!(
                        "the working directory '{w}' is invalid, it needs to be an absolute path"
                    ),
                ));
            }
            return Ok(w.into());
        }
        Ok(PathBuf::from("/").join(&self.working_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> ImageConfig {
        let v = json!({"config": {"Entrypoint": ["/entry"], "Cmd": ["serve", "-v"],
            "Env": ["PATH=/img/bin", "A=1"], "WorkingDir": "app", "User": null}});
        ImageConfig::parse(&v).unwrap()
    }

    fn req(entrypoint: Option<&str>, cmd: &[&str]) -> RunRequest {
        RunRequest {
            entrypoint: entrypoint.map(String::from),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_follow_moby() {
        let i = image();
        assert_eq!(i.args(&req(None, &[])).unwrap(), ["/entry", "serve", "-v"]);
        assert_eq!(i.args(&req(None, &["x"])).unwrap(), ["/entry", "x"]);
        assert_eq!(i.args(&req(Some("/bin/sh"), &[])).unwrap(), ["/bin/sh"]);
        assert_eq!(i.args(&req(Some(""), &[])).unwrap(), ["serve", "-v"]);
        let empty = ImageConfig::default();
        assert!(matches!(
            empty.args(&req(None, &[])),
            Err(SpecError::NoCommand)
        ));
        assert!(matches!(
            empty.args(&req(Some(""), &[])),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn env_overrides_by_key_and_adds_home() {
        let mut r = req(None, &[]);
        r.tty = true;
        r.env = vec!["A=2".into(), "PATH".into(), "B=x=y".into()];
        let env = image().env(&r, "abc", "/root");
        assert_eq!(
            env,
            ["HOSTNAME=abc", "TERM=xterm", "A=2", "B=x=y", "HOME=/root"]
        );
        r.env = vec!["HOME=/h".into()];
        assert_eq!(image().env(&r, "abc", "/root").last().unwrap(), "HOME=/h");
    }

    #[test]
    fn cwd_rules() {
        assert_eq!(image().cwd(&req(None, &[])).unwrap(), PathBuf::from("/app"));
        assert_eq!(
            ImageConfig::default().cwd(&req(None, &[])).unwrap(),
            PathBuf::from("/")
        );
        let mut r = req(None, &[]);
        r.workdir = Some("rel".into());
        assert!(image().cwd(&r).is_err());
    }

    #[test]
    fn damaged_configs_are_refused() {
        assert!(ImageConfig::parse(&json!({"config": {"Cmd": "sh"}})).is_err());
        assert!(ImageConfig::parse(&json!({"config": {"Env": [1]}})).is_err());
        assert!(ImageConfig::parse(&json!({})).is_ok());
    }
}
