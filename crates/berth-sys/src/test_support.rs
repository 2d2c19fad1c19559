//! The two rules every berth test keeps, black-box harness or not: a skip fails where it would
//! hide a gap (CI), and a deadline stretches with the machine's load. Built only for tests (the
//! `test-support` feature, which the crates' dev-dependencies turn on); tests/harness re-exports
//! it, so there is one copy of each rule. Nothing here is unsafe, and the normal build of
//! berth-sys (what the binaries link) leaves this module out.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Prints `skipped: <why>` and returns from the calling test: tests never pass silently.
/// Where every test must run (see [`skips_fail`]) it fails the test instead. A helper that
/// returns a value calls [`skipping`] and returns it.
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::test_support::skipping(format_args!($($why)+));
        return;
    }};
}

/// What [`skip!`] does before it returns: prints `skipped: <why>`, or fails the test when
/// [`skips_fail`].
pub fn skipping(why: std::fmt::Arguments) {
    assert!(
        !skips_fail(),
        "{why}: this run must not skip (CI or BERTH_REQUIRE_ROOT is set): provide it, \
         or unset both to let the test skip"
    );
    println!("skipped: {why}");
}

/// True where a skipped test would hide a gap: under CI (`CI`, as CI services set it) or with
/// `BERTH_REQUIRE_ROOT`, which scripts/test sets. There the machine is meant to have root and
/// every tool, so a missing one fails the test. Empty, `0` and `false` count as unset.
pub fn skips_fail() -> bool {
    ["CI", "BERTH_REQUIRE_ROOT"]
        .iter()
        .any(|name| is_set(std::env::var(name).ok().as_deref()))
}

fn is_set(value: Option<&str>) -> bool {
    !matches!(value.map(str::trim), None | Some("" | "0" | "false"))
}

/// `base` stretched to this machine: multiplied by [`timeout_scale`]. Every deadline a test
/// enforces goes through it.
pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(timeout_scale())
}

/// How much slower than an idle machine this one is now: `$BERTH_TEST_TIMEOUT_SCALE` if set
/// (a positive number), else the runnable load per CPU (the 1-minute load average over the
/// CPUs we may use), never below 1. Read afresh at each deadline, as the load changes.
pub fn timeout_scale() -> f64 {
    let env = std::env::var("BERTH_TEST_TIMEOUT_SCALE").ok();
    let load = std::fs::read_to_string("/proc/loadavg").ok();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    scale_from(env.as_deref(), load.as_deref(), cpus)
}

fn scale_from(env: Option<&str>, loadavg: Option<&str>, cpus: usize) -> f64 {
    if let Some(value) = env.map(str::trim).filter(|v| !v.is_empty()) {
        let scale = value.parse::<f64>().unwrap_or(f64::NAN);
        assert!(
            scale.is_finite() && scale > 0.0,
            "BERTH_TEST_TIMEOUT_SCALE={value}: give a positive number (2 doubles every deadline)"
        );
        return scale;
    }
    let load = loadavg
        .and_then(|l| l.split_whitespace().next())
        .and_then(|l| l.parse::<f64>().ok())
        .unwrap_or(0.0);
    (load / cpus.max(1) as f64).clamp(1.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_with_the_load_per_cpu_or_the_environment() {
        let load = Some("5.00 3.00 1.00 3/200 1234\n");
        assert_eq!(scale_from(None, load, 2), 2.5);
        assert_eq!(
            scale_from(None, Some("0.40 0.1 0.1 1/9 9"), 2),
            1.0,
            "never below 1"
        );
        assert_eq!(scale_from(None, None, 2), 1.0, "no /proc/loadavg");
        assert_eq!(scale_from(Some("3"), load, 2), 3.0, "the environment wins");
        assert_eq!(
            scale_from(Some("0.5"), load, 2),
            0.5,
            "and may shorten them"
        );
        assert_eq!(scale_from(Some(""), load, 2), 2.5, "empty is unset");
    }

    #[test]
    fn a_timeout_scale_that_is_not_a_positive_number_is_refused() {
        for bad in ["0", "-1", "lots", "inf"] {
            let refused = std::panic::catch_unwind(|| scale_from(Some(bad), None, 2));
            assert!(refused.is_err(), "{bad}");
        }
    }

    #[test]
    fn skips_fail_where_ci_or_berth_require_root_says_so() {
        for unset in [None, Some(""), Some("0"), Some("false"), Some(" ")] {
            assert!(!is_set(unset), "{unset:?}");
        }
        for set in ["1", "true", "yes"] {
            assert!(is_set(Some(set)), "{set}");
        }
    }
}
