//! `berth logout`: forget stored credentials for a registry.

use anyhow::Result;
use berth_image::registry::credentials;
use clap::Args;

use super::login::registry_name;
use super::Context;

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (host[:port]); Docker Hub if omitted
    pub server: Option<String>,
}

pub fn run(_ctx: &Context, args: LogoutArgs) -> Result<()> {
    let server = registry_name(args.server.as_deref());
    if credentials::remove(&server)? {
        outln!("Removing login credentials for {server}");
    } else {
        outln!("Not logged in to {server}");
    }
    Ok(())
}
