//! `GET /containers/{id}/top` and `stats`: the engine's process listing and its readings of
//! a container's cgroups, as Docker's JSON.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_engine::stats::{self, Sample};
use berth_engine::{lifecycle, top};
use serde_json::{json, Value};

use super::State;
use crate::respond::{self, Reply};
use crate::router::Call;

/// `GET /containers/{id}/top?ps_args=`: `{"Titles", "Processes"}`.
pub async fn top(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let args: Vec<String> = call
        .query
        .get("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let listing = state
        .blocking(move |s| Ok(top::top(&s.engine, &key, &args)?))
        .await?;
    respond::json(
        200,
        &json!({"Titles": listing.titles, "Processes": listing.processes}),
    )
}

/// How long apart the two readings of a single answer are (its CPU use is their difference).
const PRIME: Duration = Duration::from_millis(500);
/// How often a stream reads again, as Docker's collector does.
const INTERVAL: Duration = Duration::from_secs(1);

/// `GET /containers/{id}/stats?stream=&one-shot=`: one reading (after a first one to measure
/// the CPU against, unless `one-shot`), or one a second until the client goes away or the
/// container is removed.
pub async fn stats(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let stream = call
        .query
        .get("stream")
        .is_none_or(|_| call.query.flag("stream"));
    let one_shot = call.query.flag("one-shot");
    // Found before the head is sent: an unknown container is a 404.
    let id = state
        .blocking(move |s| Ok(s.engine.containers.find(&key)?.id))
        .await?;
    let (tx, body) = respond::channel();
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let engine = &state.engine;
        let mut before: Option<(Sample, SystemTime)> = None;
        let mut first = true;
        loop {
            // Removed: the stream ends.
            let loaded = engine.containers.load(&id);
            let Ok(record) = loaded.and_then(|r| lifecycle::refresh(engine, r)) else {
                return;
            };
            let now = (stats::sample(engine, &record), SystemTime::now());
            if !stream && !one_shot && first {
                first = false;
                before = Some(now);
                std::thread::sleep(PRIME);
                continue;
            }
            let frame = frame(&record, &now, before.as_ref());
            if tx.blocking_send(format!("{frame}\n").into()).is_err() || !stream {
                return;
            }
            before = Some(now);
            std::thread::sleep(INTERVAL);
        }
    });
    Ok(respond::builder(200)
        .header("Content-Type", "application/json")
        .body(body)
        .expect("static headers are valid"))
}

/// Docker's `StatsResponse`: what the docker CLI's `stats` reads (CPU against the previous
/// reading, memory, block and network I/O, pids).
fn frame(
    record: &berth_engine::records::Record,
    (now, read): &(Sample, SystemTime),
    before: Option<&(Sample, SystemTime)>,
) -> Value {
    let time = |t: Option<&SystemTime>| {
        t.map_or("0001-01-01T00:00:00Z".to_string(), |t| {
            humantime::format_rfc3339_nanos(*t).to_string()
        })
    };
    let cpus = stats::online_cpus();
    let cpu = |s: Option<&Sample>| {
        json!({
            "cpu_usage": {"total_usage": s.map_or(0, |s| s.cpu), "usage_in_kernelmode": 0,
                          "usage_in_usermode": 0},
            "system_cpu_usage": s.map_or(0, |s| s.system),
            "online_cpus": cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    let blkio = |op: &str, value: u64| json!({"major": 0, "minor": 0, "op": op, "value": value});
    json!({
        "name": format!("/{}", record.name),
        "id": record.id,
        "read": time(Some(read)),
        "preread": time(before.map(|(_, t)| t)),
        "pids_stats": {"current": now.pids},
        "blkio_stats": {
            "io_service_bytes_recursive": [blkio("read", now.block.0), blkio("write", now.block.1)],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(Some(now)),
        "precpu_stats": cpu(before.map(|(s, _)| s)),
        // The usage without the page cache the kernel can drop, as the engine reads it.
        "memory_stats": {"usage": now.mem, "stats": {}, "limit": now.mem_limit},
        "networks": {"eth0": {
            "rx_bytes": now.net.0, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
            "tx_bytes": now.net.1, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
        }},
    })
}
