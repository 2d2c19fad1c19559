//! `berth login`: check credentials against a registry and store them.

use std::io::BufRead;

use anyhow::{bail, Context as _, Result};
use berth_image::reference::DOCKER_HUB;
use berth_image::registry::{credentials, login, Credentials};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry (host[:port]); Docker Hub if omitted
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn run(ctx: &Context, args: LoginArgs) -> Result<()> {
    let server = registry_name(args.server.as_deref());
    let mut stdin = std::io::stdin().lock();
    let mut read_line = |what: &str| -> Result<String> {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .with_context(|| format!("read the {what} from standard input"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let username = match args.username {
        Some(u) => u,
        None => read_line("username")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => {
            bail!("--password and --password-stdin are mutually exclusive; give one")
        }
        (Some(p), false) => p,
        (None, _) => read_line("password")?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("login to {server}: a username and a password are required (-u, -p or --password-stdin)");
    }
    let creds = Credentials { username, password };
    login(&server, &creds, &ctx.registry_options())?;
    credentials::save(&server, &creds)?;
    outln!("Login Succeeded");
    Ok(())
}

/// `https://host/v1/` or `host` to the registry name; none means Docker Hub.
pub fn registry_name(server: Option<&str>) -> String {
    let Some(server) = server else {
        return DOCKER_HUB.to_string();
    };
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = s.split('/').next().unwrap_or(s);
    if matches!(host, "index.docker.io" | "registry-1.docker.io") {
        DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}
