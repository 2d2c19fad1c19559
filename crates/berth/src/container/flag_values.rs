//! The values of `run`'s flags, each parsed into what `RunRequest` holds, with Docker's
//! syntax and one error line naming the flag when it does not parse.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};
use berth_engine::request::{DeviceLimit, DeviceRequest, MountRequest};

pub(super) fn env(flags: &[String], files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("--env-file {file}"))?;
        for line in file_lines(&text) {
            push_env(&mut out, line);
        }
    }
    for e in flags {
        push_env(&mut out, e);
    }
    Ok(out)
}

/// `KEY=VALUE` as is; a bare `KEY` takes the caller's value, or is dropped if unset (Docker).
fn push_env(out: &mut Vec<String>, e: &str) {
    if e.contains('=') {
        out.push(e.to_string());
    } else if let Ok(v) = std::env::var(e) {
        out.push(format!("{e}={v}"));
    }
}

/// The lines of an `--env-file` or `--label-file` as the docker CLI reads them: a UTF-8 byte
/// order mark dropped, each line's leading white space (not its trailing: a value keeps it),
/// blank lines and `#` comments skipped.
fn file_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `--label-file`s' lines (Docker's: blank lines and `#` comments skipped, `KEY=VALUE` or a
/// bare `KEY`), then the `--label`s, which win over the files' for the same key.
pub(super) fn labels(files: &[String], flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut all = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("--label-file {file}"))?;
        for line in file_lines(&text) {
            let key = line.split_once('=').map_or(line, |(k, _)| k);
            if key.contains(char::is_whitespace) {
                bail!("--label-file {file}: label {key:?} contains whitespace");
            }
            all.push(line.to_string());
        }
    }
    all.extend(flags.iter().cloned());
    key_values("--label", &all)
}

pub(super) fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if (flag == "--label" || flag == "--annotation") && !kv.is_empty() => {
                Ok((kv.clone(), String::new()))
            }
            _ => Err(anyhow!("{flag} {kv:?}: use key=value")),
        })
        .collect()
}

/// Docker's sizes (go-units' `RAMInBytes`): `512`, `64k`, `100m`, `1.5g`, binary units up to
/// `p`, with an optional `b` or `ib`. A size that does not fit in 63 bits is refused, as is
/// anything but a plain positive number: no wrapping, clamping or "no limit" by accident.
pub fn bytes(s: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let lower = lower.strip_suffix('i').unwrap_or(lower);
    let unit = lower.char_indices().last().and_then(|(i, c)| {
        let shift = match c {
            'k' => 10,
            'm' => 20,
            'g' => 30,
            't' => 40,
            'p' => 50,
            _ => return None,
        };
        Some((i, shift))
    });
    let (num, shift) = match unit {
        Some((i, shift)) => (&lower[..i], shift),
        None => (lower, 0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    let plain = num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && num.bytes().any(|b| b.is_ascii_digit());
    let n: f64 = match num.parse() {
        Ok(n) if plain => n,
        _ => return Err(invalid()),
    };
    let size = n * (1u64 << shift) as f64;
    if size >= 2f64.powi(63) {
        return Err(format!(
            "{}: too large, the largest size is 8 EiB",
            invalid()
        ));
    }
    if size < 1.0 {
        return Err(format!("{}: give a size of at least one byte", invalid()));
    }
    Ok(size as i64)
}

/// [`bytes`] for `flag`, with Docker's line for a value it refuses.
pub fn size(flag: &str, s: &str) -> Result<i64> {
    bytes(s).map_err(|e| anyhow!("invalid argument {s:?} for {flag:?} flag: {e}"))
}

/// `--cpus` as docker/cli's NanoCPUs reads it: a decimal number with at most nine decimals
/// (`inf`, `nan` and `1e3` are no numbers of CPUs). Whether the host has that many is the
/// engine's check.
pub fn cpus(s: &str) -> std::result::Result<f64, String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !decimal(int) || !decimal(frac) || int.len() + frac.len() == 0 {
        return Err(format!("failed to parse {s} as a rational number"));
    }
    if frac.trim_end_matches('0').len() > 9 {
        return Err("value is too precise".into());
    }
    s.parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
pub fn swap_bytes(s: &str) -> std::result::Result<i64, String> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        bytes(s)
    }
}

pub(super) fn swap(s: &str) -> Result<i64> {
    swap_bytes(s).map_err(|e| anyhow!("invalid argument {s:?} for \"--memory-swap\" flag: {e}"))
}

pub(super) fn time_offsets(items: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (clock, secs) = item.split_once('=').ok_or_else(|| {
            anyhow!("--time-offset {item:?}: use monotonic=SECS or boottime=SECS")
        })?;
        if clock != "monotonic" && clock != "boottime" {
            bail!("--time-offset {item:?}: the clock is monotonic or boottime");
        }
        let secs = secs
            .parse()
            .map_err(|_| anyhow!("--time-offset {item:?}: SECS must be a whole number"))?;
        out.insert(clock.to_string(), secs);
    }
    Ok(out)
}

/// `--disable-content-trust=false` (run, create, build): berth checks images by their digests,
/// it has no Docker Content Trust signatures to verify, so asking for them is refused.
pub fn content_trust(disabled: bool) -> Result<()> {
    if !disabled {
        bail!("--disable-content-trust=false: berth verifies images by digest, not by Docker Content Trust signatures; drop it");
    }
    Ok(())
}

/// `--cpu-rt-period`, `--cpu-rt-runtime` (run, create, update): whether real-time CPU time is
/// asked for. Numbers, as the docker CLI parses them (a bad one is a flag error); 0 is Docker's
/// "not set", which its daemon takes.
pub fn realtime(period: &Option<String>, runtime: &Option<String>) -> Result<bool> {
    let mut asked = false;
    for (flag, v) in [("--cpu-rt-period", period), ("--cpu-rt-runtime", runtime)] {
        if let Some(s) = v {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{flag} {s:?}: not a valid number"))?;
            asked |= n != 0;
        }
    }
    Ok(asked)
}

/// What a block device limit's value is, to parse it as Docker's CLI does.
#[derive(Clone, Copy)]
pub(super) enum Per {
    /// Bytes a second, with Docker's units (`1mb`).
    Bytes,
    /// Operations a second.
    Ops,
    /// A weight, 10 to 1000.
    Weight,
}

/// `--device-read-bps /dev/sda:1mb` and its kin: a device node's path under /dev and a value.
pub(super) fn device_limits(flag: &str, items: &[String], per: Per) -> Result<Vec<DeviceLimit>> {
    let (form, example) = match per {
        Per::Bytes => ("<number>[<unit>] (unit kb, mb or gb)", "1mb"),
        Per::Ops => ("<number>", "1000"),
        Per::Weight => ("<weight> (10 to 1000)", "200"),
    };
    let limit = |item: &String| {
        let bad = || anyhow!("{flag} {item:?}: use <device-path>:{form}, e.g. /dev/sda:{example}");
        let (path, value) = item.split_once(':').ok_or_else(bad)?;
        if !path.starts_with("/dev/") {
            return Err(bad());
        }
        let value = match per {
            Per::Bytes => bytes(value).ok().and_then(|b| u64::try_from(b).ok()),
            Per::Ops => value.parse().ok(),
            Per::Weight => value.parse::<u16>().ok().map(u64::from),
        };
        Ok(DeviceLimit {
            path: path.to_string(),
            value: value.ok_or_else(bad)?,
        })
    };
    items.iter().map(limit).collect()
}

pub(super) fn device(d: &str) -> Result<DeviceRequest> {
    let parts: Vec<&str> = d.split(':').collect();
    let (host, cont, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if p.chars().all(|c| "rwm".contains(c)) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("--device {d:?}: use /dev/x[:/dev/y[:rwm]]"),
    };
    if !host.starts_with('/') || !cont.starts_with('/') || !perms.chars().all(|c| "rwm".contains(c))
    {
        bail!("--device {d:?}: use absolute paths and permissions from rwm");
    }
    Ok(DeviceRequest {
        host_path: host.into(),
        container_path: cont.into(),
        permissions: perms.into(),
    })
}

/// Each value of a flag that stands for several (`-p 9000-9001`, `--expose 7000-7002`), parsed
/// and laid end to end.
pub(super) fn flat<T>(
    values: &[String],
    parse: impl Fn(&str) -> berth_engine::Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(parse(v)?);
    }
    Ok(out)
}

pub(super) fn mount(spec: &str) -> Result<MountRequest> {
    let mut m = MountRequest {
        kind: "volume".into(),
        source: String::new(),
        target: String::new(),
        read_only: false,
        options: Vec::new(),
    };
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => m.kind = v.to_string(),
            "source" | "src" => m.source = v.to_string(),
            "target" | "destination" | "dst" => m.target = v.to_string(),
            "readonly" | "ro" => m.read_only = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" => m.options.push(v.to_string()),
            "tmpfs-size" => m.options.push(format!("size={v}")),
            "tmpfs-mode" => m.options.push(format!("mode={v}")),
            "volume-nocopy" if v.is_empty() || v == "true" || v == "1" => {
                m.options.push("nocopy".into())
            }
            "volume-nocopy" => {}
            _ => bail!("--mount {spec:?}: unknown field {k:?}"),
        }
    }
    berth_engine::options::check_mount(&m, &format!("--mount {spec:?}"))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ulimits() {
        assert_eq!(size("-m", "64m").unwrap(), 64 << 20);
        assert!(size("-m", "lots").is_err());
        let u = berth_engine::options::ulimit("nofile=10:20").unwrap();
        assert_eq!((u.soft, u.hard), (10, 20));
        assert!(berth_engine::options::ulimit("nofile=20:10").is_err());
    }

    #[test]
    fn sizes_and_cpus_refuse_what_docker_refuses() {
        assert_eq!(bytes("1.5k"), Ok(1536));
        assert_eq!(bytes("2GiB"), Ok(2 << 30));
        assert_eq!(bytes("7"), Ok(7));
        for bad in [
            "-5",
            "inf",
            "nan",
            "1e3",
            "",
            "k",
            "0",
            "99999999999999999999999",
            "99999999999g",
        ] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(swap_bytes("-1"), Ok(-1));
        assert_eq!(cpus("1.5"), Ok(1.5));
        assert_eq!(cpus("-1"), Ok(-1.0), "the range is the engine's to check");
        for bad in ["inf", "nan", "1e3", "", ".", "1/2", "0.0000000001"] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }
}
