//! The container's health check as its monitor runs it: no thread, no process while no probe
//! runs, only a deadline in the poll loop (serve.rs). At the deadline the probe starts as an
//! exec with no client (exec.rs), its output kept; past its timeout it is killed. Its result
//! goes into `State.Health` in the record by Docker's rules (crate::health), with a
//! `health_status: <status>` event on each change; the next probe is due an interval after.

use std::time::{Duration, Instant};

use super::exec::Exec;
use super::proto::ExecRequest;
use crate::engine::Engine;
use crate::error::short;
use crate::events::{self, Event};
use crate::exec::ExecConfig;
use crate::health::{self, Health, HealthConfig, Probe};
use crate::records;

/// The probes of one run of the container.
pub(super) struct Checker {
    config: HealthConfig,
    command: Vec<String>,
    /// When the container started: the start period counts from there.
    started: Instant,
    health: Health,
    /// When the next probe starts; None while one runs.
    next: Option<Instant>,
    running: Option<Running>,
}

/// The probe that runs: its exec's id, when it started, when it is killed.
struct Running {
    exec_id: String,
    start: String,
    started: Instant,
    kill_at: Option<Instant>,
    timed_out: bool,
}

impl Checker {
    /// The checker for a container whose (merged) config runs a probe, from the state
    /// [`Checker::initial`] made; None otherwise.
    pub(super) fn new(
        config: Option<&HealthConfig>,
        shell: &[String],
        health: Option<Health>,
    ) -> Option<Checker> {
        let config = config.filter(|c| c.probes())?.clone();
        let command = config.command(shell)?;
        let started = Instant::now();
        let mut checker = Checker {
            config,
            command,
            started,
            health: health.unwrap_or_else(Health::starting),
            next: None,
            running: None,
        };
        checker.next = Some(started + checker.interval());
        Some(checker)
    }

    /// The state a run of the container starts with, for its record: starting, no failures,
    /// the log of the runs before kept (as Docker keeps it).
    pub(super) fn initial(
        config: Option<&HealthConfig>,
        before: Option<&Health>,
    ) -> Option<Health> {
        config.filter(|c| c.probes() && c.command(&[]).is_some())?;
        Some(Health {
            log: before.map(|h| h.log.clone()).unwrap_or_default(),
            ..Health::starting()
        })
    }

    fn in_start_period(&self, at: Instant) -> bool {
        at.saturating_duration_since(self.started) < self.config.start_period()
    }

    /// Docker's: within the start period, the start interval while starting (but no later
    /// than the period's end); else the interval.
    fn interval(&self) -> Duration {
        let elapsed = self.started.elapsed();
        let Some(left) = self
            .config
            .start_period()
            .checked_sub(elapsed)
            .filter(|d| !d.is_zero())
        else {
            return self.config.interval();
        };
        if left < self.config.interval() {
            left
        } else if self.health.status == health::STARTING {
            self.config.start_interval()
        } else {
            self.config.interval()
        }
    }

    /// The loop's next deadline: the next probe, or the running one's timeout.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match &self.running {
            Some(r) => r.kill_at,
            None => self.next,
        }
    }

    /// At the deadline: kills the probe past its timeout, or starts the next one (pushed on
    /// `execs` for the loop to watch). A probe that cannot start is a failed result.
    pub(super) fn tick(&mut self, engine: &Engine, id: &str, execs: &mut Vec<Exec>) {
        let now = Instant::now();
        if let Some(r) = &mut self.running {
            if r.kill_at.is_some_and(|t| now >= t) {
                r.kill_at = None;
                r.timed_out = true;
                let found = execs.iter().find(|e| e.record.id == r.exec_id);
                found.inspect(|e| e.kill());
            }
            return;
        }
        if self.next.is_none_or(|t| now < t) {
            return;
        }
        // Docker probes no paused container: the next one is due an interval later.
        if engine
            .containers
            .load(id)
            .is_ok_and(|r| r.state.status == crate::records::Status::Paused)
        {
            self.next = now.checked_add(self.interval());
            return;
        }
        self.next = None;
        let start = records::now();
        match start_probe(engine, id, &self.command) {
            Ok(exec) => {
                self.running = Some(Running {
                    exec_id: exec.record.id.clone(),
                    start,
                    started: now,
                    kill_at: now.checked_add(self.config.timeout()),
                    timed_out: false,
                });
                execs.push(exec);
            }
            Err(e) => {
                let probe = Probe {
                    start,
                    end: records::now(),
                    exit_code: -1,
                    output: e.to_string(),
                };
                self.result(engine, id, probe, now);
            }
        }
    }

    /// Whether `exec` is the running probe.
    pub(super) fn owns(&self, exec: &Exec) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.exec_id == exec.record.id)
    }

    /// The probe ended: its result recorded, the next one due.
    pub(super) fn finished(&mut self, engine: &Engine, id: &str, exec: Exec) {
        let Some(r) = self.running.take() else {
            return;
        };
        let (code, mut output) = exec.finish_probe(engine);
        let truncated = output.len() > health::MAX_OUTPUT;
        output.truncate(health::MAX_OUTPUT);
        let mut output = String::from_utf8_lossy(&output).into_owned();
        if truncated {
            output.push_str("...");
        }
        let mut exit_code = i64::from(code);
        if r.timed_out {
            let timeout = health::go_duration(self.config.timeout());
            output = match output.is_empty() {
                true => format!("Health check exceeded timeout ({timeout})"),
                false => format!("Health check exceeded timeout ({timeout}): {output}"),
            };
            exit_code = -1;
        }
        let probe = Probe {
            start: r.start,
            end: records::now(),
            exit_code,
            output,
        };
        self.result(engine, id, probe, r.started);
    }

    fn result(&mut self, engine: &Engine, id: &str, probe: Probe, started: Instant) {
        let in_start = self.in_start_period(started);
        let changed = self.health.record(probe, self.config.retries(), in_start);
        let health = self.health.clone();
        match engine
            .containers
            .update(id, |r| r.state.health = Some(health))
        {
            Ok(()) => {}
            Err(e) => eprintln!("berth monitor {}: record a health check: {e}", short(id)),
        }
        if let Some(status) = changed {
            if let Ok(record) = engine.containers.load(id) {
                let event = Event::container(&record, format!("health_status: {status}"));
                events::record(engine, event);
            }
        }
        self.next = Instant::now().checked_add(self.interval());
        // What the probe's exec allocated is given back: an idle monitor stays as small.
        berth_sys::process::trim_heap();
    }
}

/// The probe's exec: created as any exec (Docker's health checks are execs too), started
/// with no client, its output kept.
fn start_probe(engine: &Engine, id: &str, command: &[String]) -> crate::error::Result<Exec> {
    let config = ExecConfig {
        cmd: command.to_vec(),
        attach_stdout: true,
        attach_stderr: true,
        ..ExecConfig::default()
    };
    let record = crate::exec::create(engine, id, config)?;
    let req = ExecRequest {
        id: record.id,
        detach: true,
        size: None,
    };
    let mut exec = Exec::start(engine, id, &req)?;
    exec.capture = Some(Vec::new());
    Ok(exec)
}
