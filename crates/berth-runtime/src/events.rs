//! `events`: a container's statistics and OOM notifications as runc's event stream.

use serde::Serialize;

/// runc's event (`types.Event`): its fields in the Go struct's order (tools match the text),
/// `data` left out when there is none (an `oom` event).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<berth_cgroups::Stats>,
}

impl<'a> Event<'a> {
    pub fn stats(id: &'a str, stats: berth_cgroups::Stats) -> Self {
        Event {
            kind: "stats",
            id,
            data: Some(stats),
        }
    }

    pub fn oom(id: &'a str) -> Self {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}

/// How often `watch` looks at the OOM counter between two stats events.
const OOM_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// runc's `events` without `--stats`: a stats event every `interval`, and an `oom` event each
/// time the kernel's OOM killer kills in the container's cgroup, to `emit` until it returns
/// false. As runc, a container that has stopped is refused, and stats that cannot be read
/// later (the container went away) are passed to `emit_error` and the watch goes on.
pub fn watch(
    root: &crate::state::Root,
    id: &str,
    interval: std::time::Duration,
    mut emit: impl FnMut(&Event) -> bool,
    mut emit_error: impl FnMut(&crate::Error),
) -> crate::Result<()> {
    use crate::cgroup::CgroupManager;
    let c = crate::container::load(root, id)?;
    if c.status == crate::state::Status::Stopped {
        return Err(crate::Error::Status {
            id: id.to_string(),
            status: c.status,
            what: "events needs a running container",
        });
    }
    let cg = crate::cgroup::open(&c.record.cgroup_path)?;
    let mut kills = cg.oom_kills().unwrap_or(0);
    let mut next_stats = std::time::Instant::now() + interval;
    loop {
        let now = std::time::Instant::now();
        std::thread::sleep(next_stats.saturating_duration_since(now).min(OOM_POLL));
        if let Ok(n) = cg.oom_kills() {
            if n > kills && !emit(&Event::oom(id)) {
                return Ok(());
            }
            kills = kills.max(n);
        }
        if std::time::Instant::now() >= next_stats {
            next_stats += interval;
            match crate::container::stats(root, id) {
                Ok(s) => {
                    if !emit(&Event::stats(id, s)) {
                        return Ok(());
                    }
                }
                Err(e) => emit_error(&e),
            }
        }
    }
}

/// A Go duration as runc's `--interval` takes it: "5s", "100ms", "1m30s", "1.5s".
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    (total > 0.0).then(|| std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = std::time::Duration::from_millis;
        assert_eq!(parse_duration("5s"), Some(ms(5000)));
        assert_eq!(parse_duration("100ms"), Some(ms(100)));
        assert_eq!(parse_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
        for bad in ["", "5", "s", "0s", "5x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
