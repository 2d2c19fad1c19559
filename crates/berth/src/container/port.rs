//! `port`: the published ports of a container, from its network attachment.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// The published ports as (container "80/tcp", host "0.0.0.0:8080").
pub fn mappings(network: &Value) -> Vec<(String, String)> {
    let Some(ports) = network.get("ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .map(|p| {
            let get = |k: &str| {
                p.get(k)
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            let ip = get("host_ip");
            let ip = if ip.is_empty() {
                "0.0.0.0".to_string()
            } else {
                ip
            };
            (
                format!("{}/{}", get("container_port"), get("protocol")),
                format!("{ip}:{}", get("host_port")),
            )
        })
        .collect()
}

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, ...`.
pub fn ports_text(network: &Value) -> String {
    mappings(network)
        .iter()
        .map(|(c, h)| format!("{h}->{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(ctx: &Context, args: PortArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    let network = record.network.unwrap_or(Value::Null);
    let want = args.port.map(|p| {
        if p.contains('/') {
            p
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (c, h) in mappings(&network) {
        match &want {
            Some(w) if *w == c => {
                outln!("{h}");
                found = true;
            }
            Some(_) => {}
            None => {
                outln!("{c} -> {h}");
                found = true;
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        anyhow::bail!("no public port '{w}' published for {}", args.container);
    }
    Ok(0)
}
