//! The runtime's log: runc's `--log` file and `--log-format text|json`, which containerd reads
//! back to report why a runtime command failed, and `--debug`'s lines; in logrus's shapes as
//! runc writes them (`time="2006-01-02T15:04:05Z" level=debug msg="..."`).

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
struct Config {
    path: Option<std::path::PathBuf>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Sets where log lines go (stderr when no path). Only the first call counts.
pub fn init(path: Option<std::path::PathBuf>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config {
        path,
        format,
        debug,
    });
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn debug(msg: &str) {
    if CONFIG.get().map(|c| c.debug).unwrap_or(false) {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let cfg = CONFIG.get();
    let format = cfg.map(|c| c.format).unwrap_or(Format::Text);
    // logrus's default time format is RFC 3339 to the second.
    let now = crate::state::now_rfc3339();
    let time = format!("{}Z", now.split('.').next().unwrap_or(&now));
    let line = match format {
        Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}"),
    };
    match cfg.and_then(|c| c.path.as_ref()) {
        Some(p) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        None if level != "error" => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        None => {}
    }
}
