//! Registry credentials in Docker's config.json format: berth's own file (written by
//! `berth login`) is read first, then Docker's `~/.docker/config.json`. Where a file names a
//! credential helper (`credHelpers` for the registry, else `credsStore`), the secret lives in
//! the helper: `docker-credential-<name> get|store|erase`, Docker's protocol (a server URL or
//! a `{ServerURL, Username, Secret}` JSON on stdin, JSON back on stdout).

use std::fs;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;

/// A user name and password (or token) for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Docker files Hub credentials under its old index URL.
fn key_for(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// `https://host/v1/` and `host` both name the registry `host`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if matches!(
        host,
        "index.docker.io" | "registry-1.docker.io" | "docker.io"
    ) {
        DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}

/// berth's own credentials file: `$BERTH_AUTH_FILE`, else `$XDG_CONFIG_HOME/berth/config.json`,
/// else `~/.config/berth/config.json`.
pub fn berth_auth_file() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTH_AUTH_FILE") {
        return PathBuf::from(path);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"));
    config.join("berth/config.json")
}

fn docker_config_file() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".docker"))
        .join("config.json")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn read_config(path: &PathBuf) -> Result<Value> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            object: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::io("read credentials", path)(e)),
    }
}

/// The stored credentials for `registry`, if any file has them.
pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
    for path in [berth_auth_file(), docker_config_file()] {
        let config = read_config(&path)?;
        if let Some(helper) = helper_for(&config, registry) {
            if let Some(creds) = helper_get(&helper, registry)? {
                return Ok(Some(creds));
            }
        }
        let Some(auths) = config["auths"].as_object() else {
            continue;
        };
        for (key, entry) in auths {
            if normalize_key(key) != normalize_key(registry) {
                continue;
            }
            if let Some(creds) = decode_entry(entry) {
                return Ok(Some(creds));
            }
        }
    }
    Ok(None)
}

fn decode_entry(entry: &Value) -> Option<Credentials> {
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(Credentials {
            username: user.into(),
            password: pass.into(),
        });
    }
    let (user, pass) = (entry["username"].as_str()?, entry["password"].as_str()?);
    Some(Credentials {
        username: user.into(),
        password: pass.into(),
    })
}

/// Stores credentials in berth's file (0600, written atomically), keeping other entries; in
/// the file's credential helper if it names one (the file then keeps an empty entry, as
/// Docker's does).
pub fn save(registry: &str, credentials: &Credentials) -> Result<PathBuf> {
    let path = berth_auth_file();
    let mut config = read_config(&path)?;
    let entry = match helper_for(&config, registry) {
        Some(helper) => {
            let input = json!({
                "ServerURL": key_for(registry),
                "Username": credentials.username,
                "Secret": credentials.password,
            });
            call_helper(&helper, "store", &input.to_string())?;
            json!({})
        }
        None => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", credentials.username, credentials.password));
            json!({ "auth": auth })
        }
    };
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    config["auths"][key_for(registry)] = entry;
    write_config(&path, &config)?;
    Ok(path)
}

/// Removes berth's stored credentials for `registry`; false if there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let path = berth_auth_file();
    let mut config = read_config(&path)?;
    if let Some(helper) = helper_for(&config, registry) {
        // Nothing stored there is not a failure: the file's entry may still go.
        let _ = call_helper(&helper, "erase", &key_for(registry));
    }
    let Some(auths) = config["auths"].as_object_mut() else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|key, _| normalize_key(key) != normalize_key(registry));
    if auths.len() == before {
        return Ok(false);
    }
    write_config(&path, &config)?;
    Ok(true)
}

/// The helper a config file names for `registry`: its `credHelpers` entry, else `credsStore`.
fn helper_for(config: &Value, registry: &str) -> Option<String> {
    let named = config["credHelpers"].as_object().and_then(|helpers| {
        helpers
            .iter()
            .find(|(key, _)| normalize_key(key) == normalize_key(registry))
            .and_then(|(_, h)| h.as_str())
    });
    named
        .or_else(|| config["credsStore"].as_str())
        .filter(|h| !h.is_empty())
        .map(String::from)
}

/// `docker-credential-<helper> get`: the credentials, or None where the helper has none.
fn helper_get(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let out = match call_helper(helper, "get", &key_for(registry)) {
        Ok(out) => out,
        // The protocol's word for "nothing stored here".
        Err(Error::Auth { reason, .. }) if reason.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let answer: Value = serde_json::from_str(&out).map_err(|source| Error::Json {
        object: format!("docker-credential-{helper} get"),
        source,
    })?;
    match (answer["Username"].as_str(), answer["Secret"].as_str()) {
        (Some(user), Some(secret)) if !secret.is_empty() => Ok(Some(Credentials {
            username: user.into(),
            password: secret.into(),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout, or its own
/// words for why it failed.
fn call_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| Error::Auth {
        registry: program.clone(),
        reason,
    };
    if helper.contains('/') {
        return Err(failed("a helper's name cannot hold '/'".into()));
    }
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("{action}: cannot run it ({e}): is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(format!("{action}: write its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("{action}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let said = if said.is_empty() { stdout } else { said };
        return Err(failed(format!("{action}: {said}")));
    }
    Ok(stdout)
}

fn write_config(path: &PathBuf, config: &Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(Error::io("create temp file in", dir))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(Error::io("chmod", tmp.path().to_path_buf()))?;
    let bytes = serde_json::to_vec_pretty(config).unwrap_or_default();
    tmp.write_all(&bytes)
        .map_err(Error::io("write", tmp.path().to_path_buf()))?;
    tmp.persist(path).map_err(|e| Error::Io {
        step: "rename into place",
        path: path.clone(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("localhost:5000"), "localhost:5000");
        assert_eq!(normalize_key("https://quay.io"), "quay.io");
        let e = json!({"auth": base64::engine::general_purpose::STANDARD.encode("u:p:q")});
        assert_eq!(
            decode_entry(&e),
            Some(Credentials {
                username: "u".into(),
                password: "p:q".into()
            })
        );
    }
}
