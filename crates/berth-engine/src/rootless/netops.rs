//! User networks' changes asked for by a threaded front end (the API service): such a process
//! may not fork into the user networks' namespace (ARCHITECTURE principle 6), so the change
//! runs in `berth __netns`, a fresh single-threaded process started by exec, which forks into
//! it as the CLI does ([`super::netns::run`]). Request and answer cross as JSON.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::network::{self, CreateRequest};

/// A change of the user networks, as `berth __netns` reads it.
#[derive(Debug, Serialize, Deserialize)]
pub enum NetworkOp {
    Create(CreateRequest),
    Remove(String),
    /// `network prune`'s filters as `key=value` pairs.
    Prune(Vec<String>),
}

impl NetworkOp {
    /// The change, made here (inside the namespace, or forking into it).
    fn apply(&self, engine: &Engine) -> Result<Value> {
        let value = match self {
            NetworkOp::Create(req) => serde_json::to_value(network::create(engine, req)?),
            NetworkOp::Remove(name) => serde_json::to_value(network::remove(engine, name)?),
            NetworkOp::Prune(pairs) => {
                let filters = Filters::parse(pairs, network::PRUNE_FILTERS)?;
                serde_json::to_value(network::prune(engine, &filters)?)
            }
        };
        value.map_err(|e| Error::Invalid(format!("rootless: encode the answer: {e}")))
    }
}

/// Runs `op` in the user networks' namespace: forking into it from a single-threaded
/// process, through `berth __netns` from a threaded one.
pub fn run<T: DeserializeOwned>(engine: &Engine, op: NetworkOp) -> Result<T> {
    let single = berth_sys::process::thread_count().is_ok_and(|n| n == 1);
    let value = if single {
        super::netns::run(|| op.apply(engine))?
    } else {
        through_child(engine, &op)?
    };
    serde_json::from_value(value)
        .map_err(|e| Error::Invalid(format!("rootless: the user networks' answer: {e}")))
}

/// `berth __netns`: one [`NetworkOp`] on stdin, `Result<answer, message>` on stdout.
pub fn serve(engine: &Engine) -> i32 {
    let answer: std::result::Result<Value, String> =
        serde_json::from_reader::<_, NetworkOp>(std::io::stdin())
            .map_err(|e| format!("berth __netns: read the request: {e}"))
            .and_then(|op| super::netns::run(|| op.apply(engine)).map_err(|e| e.to_string()));
    i32::from(serde_json::to_writer(std::io::stdout(), &answer).is_err())
}

fn through_child(engine: &Engine, op: &NetworkOp) -> Result<Value> {
    let mut cmd = Command::new(&engine.exe);
    cmd.arg("--root")
        .arg(&engine.root)
        .arg("__netns")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    engine.config.pass_files(&mut cmd);
    let mut child = cmd.spawn().map_err(Error::io("start", &engine.exe))?;
    let request = serde_json::to_vec(op)
        .map_err(|e| Error::Invalid(format!("rootless: encode the request: {e}")))?;
    let sent = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&request));
    let out = child
        .wait_with_output()
        .map_err(Error::io("wait for", &engine.exe))?;
    if let Some(Err(e)) = sent {
        return Err(Error::io("send the request to", &engine.exe)(e));
    }
    match serde_json::from_slice::<std::result::Result<Value, String>>(&out.stdout) {
        Ok(answer) => answer.map_err(Error::Invalid),
        Err(_) => Err(Error::Invalid(format!(
            "rootless: berth __netns ended without an answer ({})",
            out.status
        ))),
    }
}
