//! Not a test: the time of one attach and one detach on a bare namespace, printed for
//! bench/network.sh (`--ignored`). Nothing here asserts on a timing.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
#[ignore = "benchmark: run by bench/network.sh"]
fn attach_detach_cost() {
    let Some(()) = check_tools() else { return };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let t = TestStore::new();
    t.network("bnt-bench", "10.231.20.0/24", false);
    let ns = Netns::new();
    for (label, ports) in [
        ("no ports", vec![]),
        ("one published port", vec![tcp(0, 80)]),
    ] {
        let (mut attach, mut detach) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let start = Instant::now();
            let att = t.attach(&ns, "bnt-bench", "bench", ports.clone());
            attach.push(start.elapsed());
            let start = Instant::now();
            t.store.detach(&att).unwrap();
            detach.push(start.elapsed());
        }
        println!(
            "{label}: attach {} | detach {}  ({runs} runs)",
            summary(&mut attach),
            summary(&mut detach)
        );
    }
}

fn summary(d: &mut [Duration]) -> String {
    d.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = d.iter().map(|x| us(*x)).sum::<f64>() / d.len() as f64;
    format!(
        "median {:.0} us, mean {:.0} us, p95 {:.0} us",
        us(d[d.len() / 2]),
        mean,
        us(d[d.len() * 95 / 100])
    )
}
