//! `update`: new resource limits and restart policy for one or more containers, with the
//! values parsed as `run` parses them (every value checked before any container is touched).

use std::str::FromStr;

use anyhow::{anyhow, Result};
use berth_engine::update::Update;
use clap::Args;

use super::flag_values::{size, swap};
use super::manage::each;
use crate::commands::Context;

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long = "cpu-rt-period", hide = true)]
    pub cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime", hide = true)]
    pub cpu_rt_runtime: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Context, args: UpdateArgs) -> Result<i32> {
    // The docker CLI parses the numbers as flags (125) and the restart policy after (1).
    let mut update = parse(&args).map_err(crate::cli::FlagError)?;
    update.restart = args
        .restart
        .as_deref()
        .map(berth_engine::options::restart)
        .transpose()?;
    // Refused by Docker's daemon for each container, as the API refuses them (exit 1).
    let realtime = berth_engine::options::Unused {
        realtime: super::flag_values::realtime(&args.cpu_rt_period, &args.cpu_rt_runtime)
            .map_err(crate::cli::FlagError)?,
        ..Default::default()
    };
    // The docker CLI counts a flag given as 0 (Docker's unset) as a flag.
    let rt_given = args.cpu_rt_period.is_some() || args.cpu_rt_runtime.is_some();
    if update.is_empty() && !rt_given {
        anyhow::bail!("update: give one or more flags to change, such as --memory or --restart");
    }
    let engine = ctx.engine()?;
    let mut warnings = Vec::new();
    let code = each(&args.containers, |key| {
        realtime.refuse()?;
        warnings.extend(berth_engine::update::update(&engine, key, &update)?.warnings);
        Ok(Some(key.to_string()))
    })?;
    // As the docker CLI: the daemon's warnings on stdout, after the names, as they are.
    if !warnings.is_empty() {
        outln!("{}", warnings.join("\n"));
    }
    Ok(code)
}

/// The flags as an engine `Update`; Docker's 0 for `--blkio-weight` and `--cpu-shares` is
/// "leave as it is".
fn parse(a: &UpdateArgs) -> Result<Update> {
    let sized = |flag: &str, v: &Option<String>| v.as_deref().map(|s| size(flag, s)).transpose();
    let cpus = number::<f64>("--cpus", &a.cpus)?;
    if let Some(c) = cpus.filter(|c| !c.is_finite() || *c <= 0.0) {
        return Err(anyhow!(
            "--cpus {c}: give a positive number of CPUs such as 1.5"
        ));
    }
    Ok(Update {
        memory: sized("--memory", &a.memory)?,
        memory_reservation: sized("--memory-reservation", &a.memory_reservation)?,
        memory_swap: a.memory_swap.as_deref().map(swap).transpose()?,
        cpus,
        cpu_shares: number("--cpu-shares", &a.cpu_shares)?.filter(|s| *s != 0),
        cpu_period: number("--cpu-period", &a.cpu_period)?,
        cpu_quota: number("--cpu-quota", &a.cpu_quota)?,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: number("--pids-limit", &a.pids_limit)?,
        blkio_weight: number("--blkio-weight", &a.blkio_weight)?.filter(|w| *w != 0),
        restart: None,
    })
}

fn number<T: FromStr>(flag: &str, v: &Option<String>) -> Result<Option<T>> {
    v.as_deref()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| anyhow!("{flag} {s:?}: not a valid number"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::request::RestartPolicy;

    #[test]
    fn values_parse_as_run_parses_them() {
        let args = UpdateArgs {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some("-1".into()),
            blkio_weight: Some("0".into()),
            restart: Some("on-failure:3".into()),
            ..Default::default()
        };
        let u = parse(&args).unwrap();
        assert_eq!(
            (
                u.memory,
                u.memory_swap,
                u.cpus,
                u.pids_limit,
                u.blkio_weight
            ),
            (Some(64 << 20), Some(-1), Some(0.5), Some(-1), None)
        );
        // The restart policy is read after the numbers (run), as the docker CLI reads it.
        assert_eq!(u.restart, None);
        assert_eq!(
            berth_engine::options::restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        let e = berth_engine::options::restart("sometimes").unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        for bad in [
            UpdateArgs {
                memory: Some("lots".into()),
                ..Default::default()
            },
            UpdateArgs {
                cpus: Some("-2".into()),
                ..Default::default()
            },
            UpdateArgs {
                pids_limit: Some("ten".into()),
                ..Default::default()
            },
        ] {
            let e = parse(&bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
