//! Docker's health checks: the config (the image's `config.Healthcheck`, Docker's extension
//! that oci-spec's ImageConfiguration drops, merged with the run's flags or the API's
//! Config.Healthcheck), the state a probe's results make (`State.Health`) and Docker's rules
//! for it. The monitor runs the probes (monitor/health.rs); this module is pure.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's `HealthConfig`, durations in nanoseconds, 0 for "the default" (or, from an image
/// whose config has more, the image's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`; empty: the image's.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    pub interval: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    pub timeout: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    pub start_period: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `null` read as the empty value, as Go's clients (docker-py, compose) send unset fields.
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's defaults (daemon/health.go).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: i64 = 3;
/// A probe's output kept, stdout and stderr together.
pub const MAX_OUTPUT: usize = 4096;
/// The results kept in `State.Health.Log`.
pub const MAX_LOG: usize = 5;

fn or_default(nanos: i64, default: Duration) -> Duration {
    match u64::try_from(nanos) {
        Ok(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

impl HealthConfig {
    /// Whether this config runs a probe: a test other than NONE.
    pub fn probes(&self) -> bool {
        !self.test.is_empty() && self.test[0] != "NONE"
    }

    /// The probe's command as an exec runs it; None for a test Docker would not run.
    /// CMD-SHELL runs in `shell` (the container's `Config.Shell`), `/bin/sh -c` when empty.
    pub fn command(&self, shell: &[String]) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD") if self.test.len() > 1 => Some(self.test[1..].to_vec()),
            Some("CMD-SHELL") if self.test.len() > 1 => {
                let default = ["/bin/sh".to_string(), "-c".to_string()];
                let shell = if shell.is_empty() {
                    &default[..]
                } else {
                    shell
                };
                Some(shell.iter().chain(&self.test[1..]).cloned().collect())
            }
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        or_default(self.start_period, Duration::ZERO)
    }

    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, DEFAULT_START_INTERVAL)
    }

    pub fn retries(&self) -> i64 {
        if self.retries > 0 {
            self.retries
        } else {
            DEFAULT_RETRIES
        }
    }

    /// The daemon's refusals (daemon/container.go validateHealthCheck).
    pub fn check(&self) -> Result<()> {
        let durations = [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ];
        for (name, d) in durations {
            if d != 0 && d < 1_000_000 {
                return Err(Error::Invalid(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if self.retries < 0 {
            return Err(Error::Invalid(
                "Retries in Healthcheck cannot be negative".into(),
            ));
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(()),
            Some("CMD" | "CMD-SHELL") if self.test.len() > 1 => Ok(()),
            Some(kind) => Err(Error::Invalid(format!(
                "Healthcheck Test {kind:?}: give [\"CMD\", args...], [\"CMD-SHELL\", command] or [\"NONE\"]"
            ))),
        }
    }
}

/// Docker's merge of the container's config over the image's: the container's fields win
/// where set; a container without one takes the image's.
pub fn merge(container: Option<HealthConfig>, image: Option<HealthConfig>) -> Option<HealthConfig> {
    let Some(image) = image else {
        return container;
    };
    let Some(mut c) = container else {
        return Some(image);
    };
    if c.test.is_empty() {
        c.test = image.test;
    }
    let fields = [
        (&mut c.interval, image.interval),
        (&mut c.timeout, image.timeout),
        (&mut c.start_period, image.start_period),
        (&mut c.start_interval, image.start_interval),
        (&mut c.retries, image.retries),
    ];
    for (mine, theirs) in fields {
        if *mine == 0 {
            *mine = theirs;
        }
    }
    Some(c)
}

/// The image's `config.Healthcheck` and `config.Shell` from the raw image config document.
pub fn from_image_config(raw: &[u8]) -> (Option<HealthConfig>, Vec<String>) {
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
    let config = &v["config"];
    let health = serde_json::from_value(config["Healthcheck"].clone()).ok();
    let shell = serde_json::from_value(config["Shell"].clone()).unwrap_or_default();
    (health, shell)
}

/// Docker's `State.Health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// "starting", "healthy" or "unhealthy".
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<Probe>,
}

/// One probe's result, as `State.Health.Log` keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    /// 0 healthy; anything else a failure (-1: it could not run, or timed out).
    pub exit_code: i64,
    pub output: String,
}

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

impl Health {
    pub fn starting() -> Health {
        Health {
            status: STARTING.into(),
            ..Health::default()
        }
    }

    /// Docker's handleProbeResult: the result logged (the last five kept), the streak and the
    /// status moved. A failure while starting and within the start period (`in_start_period`:
    /// the probe began that soon after the container) does not count. Returns the new status
    /// if it changed.
    pub fn record(&mut self, probe: Probe, retries: i64, in_start_period: bool) -> Option<String> {
        let old = self.status.clone();
        let ok = probe.exit_code == 0;
        self.log.push(probe);
        if self.log.len() > MAX_LOG {
            self.log.drain(..self.log.len() - MAX_LOG);
        }
        if ok {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        (self.status != old).then(|| self.status.clone())
    }
}

/// Go's time.ParseDuration, in nanoseconds: "30s", "1m30s", "500ms", "-1s", "0".
pub fn parse_duration(s: &str) -> Option<i64> {
    let (sign, body) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Some(0);
    }
    if body.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some((sign * total) as i64)
}

/// Go's Duration.String for a positive duration: "30s", "1m30s", "1.5s", "500ms".
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = match nanos {
            n if n < 1_000 => return format!("{n}ns"),
            n if n < 1_000_000 => ("µs", 1_000u128),
            _ => ("ms", 1_000_000u128),
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let secs = nanos / 1_000_000_000;
    let (h, m) = (secs / 3600, secs / 60 % 60);
    let s = fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `n / scale` with its fraction, trailing zeros dropped.
fn fraction(n: u128, scale: u128) -> String {
    let (whole, frac) = (n / scale, n % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_parses_and_prints_them() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
        for (nanos, text) in [
            (1_000_000_000u64, "1s"),
            (90_000_000_000, "1m30s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (3_600_000_000_000, "1h0m0s"),
        ] {
            assert_eq!(go_duration(Duration::from_nanos(nanos)), text);
        }
    }

    #[test]
    fn nulls_read_as_unset() {
        let h: HealthConfig =
            serde_json::from_str(r#"{"Test": ["CMD", "true"], "Interval": null, "Retries": null}"#)
                .unwrap_or_default();
        assert_eq!((h.test.len(), h.interval, h.retries), (2, 0, 0));
    }

    #[test]
    fn the_containers_fields_win_over_the_images() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5,
            retries: 2,
            ..HealthConfig::default()
        };
        let mine = HealthConfig {
            interval: 7,
            ..HealthConfig::default()
        };
        let merged = merge(Some(mine), Some(image.clone())).unwrap_or_default();
        assert_eq!(merged.test, image.test);
        assert_eq!((merged.interval, merged.retries), (7, 2));
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        assert!(!merge(Some(none), Some(image)).unwrap_or_default().probes());
    }

    #[test]
    fn failures_count_after_the_start_period_and_turn_unhealthy_at_retries() {
        let probe = |code| Probe {
            exit_code: code,
            ..Probe::default()
        };
        let mut h = Health::starting();
        assert_eq!(h.record(probe(1), 2, true), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(probe(1), 2, false), None);
        assert_eq!(h.record(probe(1), 2, false), Some(UNHEALTHY.into()));
        assert_eq!(h.record(probe(0), 2, false), Some(HEALTHY.into()));
        assert_eq!(h.failing_streak, 0);
        for _ in 0..6 {
            h.record(probe(0), 2, false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }
}
