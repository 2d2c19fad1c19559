//! Docker's rules for the container's process from the image config (oci-spec's, as the store
//! read it) and the request: Entrypoint + Cmd, the environment, the working directory.

use std::path::PathBuf;

use oci_spec::image::Config;

use super::defaults;
use super::SpecError;
use crate::request::RunRequest;

/// moby's merge: `--entrypoint X` replaces the image's Entrypoint and drops its Cmd;
/// `--entrypoint ""` clears the Entrypoint but keeps the Cmd; a command after the image
/// replaces the Cmd.
pub fn args(image: Option<&Config>, req: &RunRequest) -> Result<Vec<String>, SpecError> {
    let list = |v: Option<&Vec<String>>| v.cloned().unwrap_or_default();
    let image_entrypoint = list(image.and_then(|c| c.entrypoint().as_ref()));
    let image_cmd = list(image.and_then(|c| c.cmd().as_ref()));
    let (entrypoint, image_cmd) = match req.entrypoint.as_deref() {
        None => (image_entrypoint, image_cmd),
        Some(e) if e.iter().all(String::is_empty) => (Vec::new(), image_cmd),
        Some(e) => (e.to_vec(), Vec::new()),
    };
    let cmd = if req.cmd.is_empty() {
        image_cmd
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
pub fn env(image: Option<&Config>, req: &RunRequest, hostname: &str, home: &str) -> Vec<String> {
    let mut env = vec![
        format!("PATH={}", defaults::PATH),
        format!("HOSTNAME={hostname}"),
    ];
    if req.tty {
        env.push("TERM=xterm".into());
    }
    let image_env = image.and_then(|c| c.env().as_ref()).into_iter().flatten();
    for entry in image_env.chain(&req.env) {
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
pub fn cwd(image: Option<&Config>, req: &RunRequest) -> Result<PathBuf, SpecError> {
    if let Some(w) = req.workdir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            return Err(SpecError::invalid(
                format!("-w {w}"),
                format!("the working directory '{w}' is invalid, it needs to be an absolute path"),
            ));
        }
        return Ok(w.into());
    }
    let dir = image.and_then(|c| c.working_dir().as_deref()).unwrap_or("");
    Ok(PathBuf::from("/").join(dir))
}

/// The image's USER, if it names one.
pub fn user(image: Option<&Config>) -> Option<&str> {
    image
        .and_then(|c| c.user().as_deref())
        .filter(|u| !u.is_empty())
}

/// What Docker's inspect shows as the container's `Config`: moby merges the image's config
/// into the request at create (daemon/commit.go `merge`), and the process's own additions
/// (HOSTNAME, HOME, TERM) are not part of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Shown {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// moby's merge: the request's Entrypoint, else the image's; its Cmd, else the image's when
/// no Entrypoint was asked for (`--entrypoint ""` keeps it, as [`args`] does); `-e` first,
/// then the image's variables it does not name (a bare `-e KEY` names one, and removes it);
/// `-w` and `-u` over the image's WorkingDir and User; `--label` over the image's Labels,
/// `--stop-signal` over its StopSignal.
pub fn shown(image: Option<&Config>, req: &RunRequest) -> Shown {
    let image_list = |v: Option<&Vec<String>>| v.filter(|v| !v.is_empty()).cloned();
    let entrypoint = req
        .entrypoint
        .clone()
        .or_else(|| image_list(image.and_then(|c| c.entrypoint().as_ref())));
    let cmd = if !req.cmd.is_empty() {
        Some(req.cmd.clone())
    } else if req
        .entrypoint
        .as_deref()
        .is_some_and(|e| !e.iter().all(String::is_empty))
    {
        None
    } else {
        image_list(image.and_then(|c| c.cmd().as_ref()))
    };
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let named: Vec<String> = req.env.iter().map(|e| key(e)).collect();
    let mut env: Vec<String> = req
        .env
        .iter()
        .filter(|e| e.contains('='))
        .cloned()
        .collect();
    let image_env = image.and_then(|c| c.env().as_ref()).into_iter().flatten();
    env.extend(image_env.filter(|e| !named.contains(&key(e))).cloned());
    let or_image = |asked: &Option<String>, image: Option<&String>| {
        asked
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| image.cloned())
            .unwrap_or_default()
    };
    Shown {
        entrypoint,
        cmd,
        env,
        working_dir: or_image(&req.workdir, image.and_then(|c| c.working_dir().as_ref())),
        user: or_image(&req.user, image.and_then(|c| c.user().as_ref())),
        labels: labels(image, req),
        stop_signal: stop_signal(image, req),
    }
}

/// The image's Labels with `--label` over them: the container's labels, as inspect shows them
/// and `ps --filter label=` matches them.
pub fn labels(
    image: Option<&Config>,
    req: &RunRequest,
) -> std::collections::BTreeMap<String, String> {
    image
        .and_then(|c| c.labels().clone())
        .into_iter()
        .flatten()
        .chain(req.labels.clone())
        .collect()
}

/// `--stop-signal`, else the image's STOPSIGNAL: the signal `stop` sends, the one `kill`
/// treats as a stop, the one inspect shows.
pub fn stop_signal(image: Option<&Config>, req: &RunRequest) -> Option<String> {
    req.stop_signal
        .clone()
        .or_else(|| image.and_then(|c| c.stop_signal().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Config {
        serde_json::from_str(
            r#"{"Entrypoint": ["/entry"], "Cmd": ["serve", "-v"],
            "Env": ["PATH=/img/bin", "A=1"], "WorkingDir": "app", "User": null}"#,
        )
        .unwrap()
    }

    fn req(entrypoint: Option<&str>, cmd: &[&str]) -> RunRequest {
        RunRequest {
            entrypoint: entrypoint.map(|e| vec![e.to_string()]),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_follow_moby() {
        let i = Some(image());
        let i = i.as_ref();
        assert_eq!(args(i, &req(None, &[])).unwrap(), ["/entry", "serve", "-v"]);
        assert_eq!(args(i, &req(None, &["x"])).unwrap(), ["/entry", "x"]);
        assert_eq!(args(i, &req(Some("/bin/sh"), &[])).unwrap(), ["/bin/sh"]);
        assert_eq!(args(i, &req(Some(""), &[])).unwrap(), ["serve", "-v"]);
        // The API's Entrypoint is a list: several words, or none to clear the image's.
        let words = RunRequest {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: vec!["echo hi".into()],
            ..Default::default()
        };
        assert_eq!(args(i, &words).unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let none = RunRequest {
            entrypoint: Some(Vec::new()),
            ..Default::default()
        };
        assert_eq!(args(i, &none).unwrap(), ["serve", "-v"]);
        assert!(matches!(
            args(None, &req(None, &[])),
            Err(SpecError::NoCommand)
        ));
        assert!(matches!(
            args(None, &req(Some(""), &[])),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn shown_merges_the_image_as_moby_does() {
        let i = Some(image());
        let i = i.as_ref();
        let plain = shown(i, &req(None, &[]));
        assert_eq!(
            plain,
            Shown {
                entrypoint: Some(vec!["/entry".into()]),
                cmd: Some(vec!["serve".into(), "-v".into()]),
                env: vec!["PATH=/img/bin".into(), "A=1".into()],
                working_dir: "app".into(),
                user: String::new(),
                labels: Default::default(),
                stop_signal: None,
            }
        );
        let mut r = req(Some("/bin/sh"), &[]);
        r.env = vec!["A=2".into(), "PATH".into(), "B=x=y".into()];
        r.user = Some("nobody".into());
        r.workdir = Some("/w".into());
        let asked = shown(i, &r);
        assert_eq!(asked.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(asked.cmd, None);
        assert_eq!(asked.env, ["A=2", "B=x=y"]);
        assert_eq!(
            (asked.working_dir.as_str(), asked.user.as_str()),
            ("/w", "nobody")
        );
        assert_eq!(shown(i, &req(Some(""), &[])).cmd, plain.cmd);
        assert_eq!(
            shown(i, &req(None, &["x"])).cmd,
            Some(vec!["x".to_string()])
        );
        let none = shown(None, &req(None, &["true"]));
        assert_eq!((none.entrypoint, none.env.len()), (None, 0));
    }

    #[test]
    fn env_overrides_by_key_and_adds_home() {
        let mut r = req(None, &[]);
        r.tty = true;
        r.env = vec!["A=2".into(), "PATH".into(), "B=x=y".into()];
        let i = image();
        let env = env(Some(&i), &r, "abc", "/root");
        assert_eq!(
            env,
            ["HOSTNAME=abc", "TERM=xterm", "A=2", "B=x=y", "HOME=/root"]
        );
        r.env = vec!["HOME=/h".into()];
        assert_eq!(
            super::env(Some(&i), &r, "abc", "/root").last().unwrap(),
            "HOME=/h"
        );
    }

    #[test]
    fn cwd_rules() {
        let i = image();
        assert_eq!(
            cwd(Some(&i), &req(None, &[])).unwrap(),
            PathBuf::from("/app")
        );
        assert_eq!(cwd(None, &req(None, &[])).unwrap(), PathBuf::from("/"));
        let mut r = req(None, &[]);
        r.workdir = Some("rel".into());
        assert!(cwd(Some(&i), &r).is_err());
        assert_eq!(user(Some(&i)), None);
    }
}
