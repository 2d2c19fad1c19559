//! `exec`: the process from `--process` (a process.json read as runc reads it) or from the
//! container's own process and the flags; every failure past parsing exits 255, as runc's.

use anyhow::{bail, Context, Result};
use berth_runtime::container;
use berth_runtime::exec::ExecOptions;
use berth_runtime::state::Root;
use serde_json::Value;

use crate::cli::ExecArgs;

/// runc's exit status for an `exec` that failed before the process ran (`fatalWithCode(err,
/// 255)`): a missing container, program or pid file directory, a paused container.
pub const FAILED: i32 = 255;

/// A process with a terminal and no --console-socket gets berth-runc's own relay (tty.rs).
pub fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    let process = match &a.process {
        Some(path) => read_process_file(path)?,
        None => exec_process_from_args(root, a)?,
    };
    let console = if a.detach {
        None
    } else {
        crate::commands::check_attached_console(a.console_socket.is_some())?;
        let terminal = process.terminal() == Some(true);
        terminal.then(crate::tty::Console::new).transpose()?
    };
    let opts = ExecOptions {
        process,
        console_socket: console
            .as_ref()
            .map(crate::tty::Console::path)
            .or_else(|| a.console_socket.clone()),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: sub_cgroup(&a.cgroup)?,
    };
    let Some(console) = console else {
        return Ok(berth_runtime::exec::exec(root, &a.id, &opts)?);
    };
    let pid = berth_runtime::exec::spawn(root, &a.id, &opts)?;
    crate::tty::wait(console.accept().map(Some), pid)
}

/// runc's rule: the container's own process is the template, and the flags override it.
fn exec_process_from_args(root: &Root, a: &ExecArgs) -> Result<oci_spec::runtime::Process> {
    if a.command.is_empty() {
        bail!(
            "exec needs a command: berth-runc exec <id> <command> [args...], or --process <file>"
        );
    }
    let c = container::load(root, &a.id)?;
    let mut p = c.record.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: uid must be a number"))?,
        );
        user.set_gid(
            gid.parse()
                .with_context(|| format!("--user {u:?}: gid must be a number"))?,
        );
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            // runc's names are the config's, "CAP_SYS_PTRACE"; "SYS_PTRACE" is taken too.
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(full))
                    .with_context(|| format!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// A process.json as runc's Go decoding takes it: a field that is missing or null keeps its
/// zero value (`user` is uid 0, gid 0), where oci-spec's serde makes `user` and `cwd`
/// mandatory and refuses a null; then runc's own checks, in its words (validateProcessSpec).
fn read_process_file(path: &std::path::Path) -> Result<oci_spec::runtime::Process> {
    let data =
        std::fs::read(path).with_context(|| format!("read process file {}", path.display()))?;
    let mut value: Value = serde_json::from_slice(&data)
        .with_context(|| format!("parse process file {}", path.display()))?;
    drop_nulls(&mut value);
    let Value::Object(fields) = &mut value else {
        bail!("process file {}: not a JSON object", path.display());
    };
    fields
        .entry("user")
        .or_insert_with(|| serde_json::json!({}));
    let cwd = fields
        .get("cwd")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if cwd.is_empty() {
        bail!("Cwd property must not be empty");
    }
    if !cwd.starts_with('/') {
        bail!("Cwd must be an absolute path");
    }
    let no_args = fields
        .get("args")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if no_args {
        bail!("args must not be empty");
    }
    serde_json::from_value(value).with_context(|| format!("parse process file {}", path.display()))
}

/// Removes every null member of every object: Go leaves such a field as it was.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// `--cgroup [<controller>:]<path>`, as runc takes it: a path below the container's cgroup, the
/// last one given winning. A path for some controllers only is refused: berth-runc moves the
/// process into one cgroup path in every hierarchy.
fn sub_cgroup(values: &[String]) -> Result<Option<std::path::PathBuf>> {
    let mut sub = None;
    for value in values {
        let (controllers, path) = value.split_once(':').unwrap_or(("", value));
        let clean: std::path::PathBuf = std::path::Path::new(path)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let escapes = clean
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)));
        if path.is_empty() || escapes {
            bail!("{path} is not a sub cgroup path");
        }
        if !controllers.is_empty() {
            bail!(
                "--cgroup {value}: a sub-cgroup for some controllers only is not supported by \
                 berth-runc; give --cgroup {path} (the same path in every hierarchy)"
            );
        }
        sub = Some(clean);
    }
    Ok(sub)
}
