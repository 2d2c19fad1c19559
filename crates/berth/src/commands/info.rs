//! `berth info` (and `system info`): the engine's `info`, laid out as `docker info` prints it,
//! or rendered by `--format` over Docker's `system.Info` field names.

use anyhow::Result;
use berth_engine::info::{Info, CGROUP_ROOT, RUNTIME, VERSION};
use clap::Args;

use super::Context;
use crate::format::{bytes_size, print_formatted};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a Go template ("{{.Containers}}", "{{json .}}")
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Context, args: InfoArgs) -> Result<()> {
    let info =
        berth_engine::info::info(&ctx.engine()?, &ctx.registry_options(), &ctx.config.sources)?;
    print_formatted(
        args.format.as_deref(),
        &serde_json::to_value(&info)?,
        |_| text(&info),
    )?;
    // As docker info: the server's warnings after the text, on stderr.
    if args.format.is_none() {
        for warning in &info.warnings {
            eprintln!("WARNING: {warning}");
        }
    }
    Ok(())
}

/// The text form, laid out as `docker info` prints its Client and Server sections.
fn text(i: &Info) -> String {
    let mut out = format!(
        "Client:\n Version:    {VERSION}\n Context:    default\n Debug Mode: false\n\nServer:\n"
    );
    let mut line = |indent: usize, text: String| out += &format!("{:indent$}{text}\n", "");
    line(1, format!("Containers: {}", i.containers));
    line(2, format!("Running: {}", i.containers_running));
    line(2, format!("Paused: {}", i.containers_paused));
    line(2, format!("Stopped: {}", i.containers_stopped));
    line(1, format!("Images: {}", i.images));
    line(1, format!("Server Version: {}", i.server_version));
    line(1, format!("Storage Driver: {}", i.driver));
    for [key, value] in &i.driver_status {
        line(2, format!("{key}: {value}"));
    }
    line(1, format!("Logging Driver: {}", i.logging_driver));
    line(1, format!("Cgroup Driver: {}", i.cgroup_driver));
    let cgroup = match i.cgroup_setup.as_str() {
        "hybrid" => format!(
            "{} (hybrid: v1 controllers, cgroup2 unified hierarchy at {CGROUP_ROOT}/unified)",
            i.cgroup_version
        ),
        _ => i.cgroup_version.clone(),
    };
    line(1, format!("Cgroup Version: {cgroup}"));
    line(1, format!("Runtimes: {RUNTIME} (in-process)"));
    line(1, format!("Default Runtime: {}", i.default_runtime));
    line(1, "Security Options:".into());
    for option in &i.security_options {
        let mut parts = option.split(',');
        line(
            2,
            parts
                .next()
                .unwrap_or("")
                .trim_start_matches("name=")
                .into(),
        );
        for part in parts {
            if let Some((k, val)) = part.split_once('=') {
                line(3, format!("{}{}: {val}", k[..1].to_uppercase(), &k[1..]));
            }
        }
    }
    line(1, format!("Kernel Version: {}", i.kernel_version));
    line(1, format!("Operating System: {}", i.operating_system));
    line(1, format!("OSType: {}", i.os_type));
    line(1, format!("Architecture: {}", i.architecture));
    line(1, format!("CPUs: {}", i.ncpu));
    let mem = bytes_size(i.mem_total);
    line(1, format!("Total Memory: {mem}"));
    line(1, format!("Name: {}", i.name));
    line(1, format!("Docker Root Dir: {}", i.docker_root_dir));
    line(1, "Debug Mode: false".into());
    line(1, "Experimental: false".into());
    line(1, "Insecure Registries:".into());
    for registry in &i.insecure_registries {
        line(2, registry.clone());
    }
    if !i.registry_config.mirrors.is_empty() {
        line(1, "Registry Mirrors:".into());
        for mirror in &i.registry_config.mirrors {
            line(2, mirror.clone());
        }
    }
    if !i.config_files.is_empty() {
        line(1, "Config Files:".into());
        for file in &i.config_files {
            line(2, file.clone());
        }
    }
    // Daemonless: containers outlive every berth command, as Docker's with live restore.
    line(1, "Live Restore Enabled: true".into());
    if !i.default_address_pools.is_empty() {
        line(1, "Default Address Pools:".into());
        for pool in &i.default_address_pools {
            line(2, format!("Base: {}, Size: {}", pool.base, pool.size));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_printed_in_binary_units_with_four_digits() {
        assert_eq!(bytes_size(8_345_000_000), "7.772GiB");
        assert_eq!(bytes_size(512 * 1024 * 1024), "512MiB");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(16_741_462_016), "15.59GiB");
    }
}
