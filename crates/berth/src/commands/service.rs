//! `berth system service [--time SECS] [URI]`: the Docker Engine API over this data root, for
//! the docker CLI, compose and docker-py (podman's spelling; `DOCKER_HOST=unix:///run/berth/
//! docker.sock`). Containers never depend on it: it can be stopped or killed at any time.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct ServiceArgs {
    /// Seconds without a client before the service exits (0: never)
    #[arg(short, long, default_value_t = 5)]
    pub time: u64,
    /// Require TLS with a client certificate signed by --tlscacert (needed for tcp:// beyond loopback)
    #[arg(long)]
    pub tlsverify: bool,
    /// CA certificate that signs the clients' certificates
    #[arg(long, value_name = "FILE", requires = "tlsverify")]
    pub tlscacert: Option<std::path::PathBuf>,
    /// The service's certificate
    #[arg(long, value_name = "FILE", requires = "tlsverify")]
    pub tlscert: Option<std::path::PathBuf>,
    /// The service's private key
    #[arg(long, value_name = "FILE", requires = "tlsverify")]
    pub tlskey: Option<std::path::PathBuf>,
    /// Where to listen: unix:///path or tcp://ADDRESS:PORT
    #[arg(value_name = "URI", default_value_t = format!("unix://{}", berth_api::listen::default_socket().display()))]
    pub uri: String,
}

pub fn run(ctx: &Context, args: ServiceArgs) -> Result<()> {
    let endpoint = berth_api::listen::Endpoint::parse(&args.uri).map_err(anyhow::Error::msg)?;
    let tls = match (args.tlsverify, args.tlscacert, args.tlscert, args.tlskey) {
        (false, ..) => None,
        (true, Some(ca), Some(cert), Some(key)) => {
            Some(berth_api::listen::TlsFiles { ca, cert, key })
        }
        (true, ..) => anyhow::bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
    };
    berth_api::serve(berth_api::ServiceOptions {
        endpoint,
        tls,
        idle: (args.time > 0).then(|| Duration::from_secs(args.time)),
        engine: ctx.engine()?,
        registry: ctx.registry_options(),
        build: super::version::BUILD,
    })?;
    Ok(())
}
