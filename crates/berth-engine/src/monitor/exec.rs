//! An exec'd process as the monitor runs it: started through berth-runtime from the exec's
//! record (the runtime's middle forks it with CLONE_PARENT, so it is the monitor's child and
//! the subreaper reaps it), its pipes or pty held here and relayed to the one client that
//! started it, in the attach framing; its exit watched by pidfd in the monitor's poll loop,
//! recorded, then sent to the client.

use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags};

use super::client::Client;
use super::proto::{self, AttachOptions, ExecRequest, Kind};
use super::stdio::{self, Input, Read, Stdio};
use crate::engine::Engine;
use crate::error::{short, Error, Result};
use crate::exec::ExecRecord;

/// Past this much output its client has not read, the process's output is no longer read
/// (its writes then block): an exec's client is never dropped for being slow, unlike an
/// attached one, whose container must go on logging.
const CLIENT_BACKLOG: usize = 1 << 20;

/// One exec'd process of the running container.
pub(super) struct Exec {
    pub(super) record: ExecRecord,
    pidfd: OwnedFd,
    stdio: Stdio,
    /// Its output (0 stdout, 1 stderr), each None once it ended: the poll slots keep their
    /// indices for the whole turn of the loop.
    outputs: Vec<(usize, Option<OwnedFd>)>,
    input: Input,
    /// Where its streams go; None when detached, or once the client left.
    client: Option<Client>,
    /// Its exit code, once it exited.
    pub(super) exit: Option<i32>,
    /// A health probe's output, stdout and stderr together, up to `health::MAX_OUTPUT`
    /// bytes and one more if there was more; None for an exec a client asked for.
    pub(super) capture: Option<Vec<u8>>,
}

/// Which of an exec's descriptors a poll slot watches.
#[derive(Clone, Copy)]
pub(super) enum Fd {
    Pidfd,
    Output(usize),
    Client,
    Stdin,
}

impl Exec {
    /// Starts the process of the record `req` names. Whatever fails after the process exists
    /// kills it: nothing runs that nobody watches.
    pub(super) fn start(engine: &Engine, container: &str, req: &ExecRequest) -> Result<Exec> {
        let mut record = crate::exec::load(engine, container, &req.id)?;
        if record.running || record.exit_code.is_some() {
            return Err(Error::Invalid(format!(
                "exec {} has already run: create another",
                short(&record.id)
            )));
        }
        let dir = engine.containers.dir(container);
        let config = &record.config;
        let pending = stdio::prepare(&dir, config.tty, config.attach_stdin && !req.detach)?;
        let opts = berth_runtime::exec::ExecOptions {
            process: record.process.clone(),
            console_socket: pending.console_socket(),
            pid_file: None,
            detach: true,
            preserve_fds: 0,
            ignore_paused: false,
            sub_cgroup: None,
        };
        let spawned = berth_runtime::exec::spawn(&engine.runtime, container, &opts);
        let stdio = pending.finish(spawned.is_ok());
        // Whatever keeps the runtime from starting the process (a missing working directory,
        // say) is the exec's failure to run, as Docker's 126: its exit code, recorded.
        let pid = spawned.map_err(|e| match crate::lifecycle::command_error(e) {
            Error::Runtime(e) => Error::Command {
                code: 126,
                message: e.to_string(),
            },
            e => e,
        })?;
        let started = stdio.and_then(|stdio| {
            let pidfd = berth_sys::process::pidfd_open(pid)
                .map_err(Error::io("pidfd_open the exec'd process in", &dir))?;
            record.running = true;
            record.pid = pid;
            record.pid_start = berth_runtime::state::process_start_time(pid).unwrap_or(0);
            crate::exec::update(engine, &record)?;
            Ok((stdio, pidfd))
        });
        let (mut stdio, pidfd) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return Err(e);
            }
        };
        if let (Some(tty), Some((rows, cols))) = (&stdio.tty, req.size) {
            let _ = berth_sys::pty::set_window_size(tty.as_fd(), rows, cols);
        }
        crate::exec::event(engine, &record, "exec_start", None);
        let outputs = stdio.take_outputs().unwrap_or_default();
        let outputs = outputs.into_iter().map(|(s, fd)| (s, Some(fd))).collect();
        if let Some(fd) = stdio.input_fd() {
            stdio::nonblocking(fd);
        }
        Ok(Exec {
            record,
            pidfd,
            stdio,
            outputs,
            input: Input::default(),
            client: None,
            exit: None,
            capture: None,
        })
    }

    /// `client` gets the streams the record asks for, and the exit code.
    pub(super) fn attach(&mut self, mut client: Client) {
        let config = &self.record.config;
        client.hello = Some(AttachOptions {
            stdin: config.attach_stdin,
            stdout: config.attach_stdout,
            stderr: config.attach_stderr,
            wait: true,
            size: None,
        });
        client.waits = true;
        self.client = Some(client);
    }

    /// The descriptors to poll, each with its slot.
    pub(super) fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>, slots: &mut Vec<Fd>) {
        if self.exit.is_none() {
            fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
            slots.push(Fd::Pidfd);
        }
        let client = self.client.as_ref().filter(|c| !c.gone);
        if client.is_none_or(|c| c.backlog() < CLIENT_BACKLOG) {
            for (i, (_, fd)) in self.outputs.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    slots.push(Fd::Output(i));
                }
            }
        }
        if let Some(c) = client {
            let mut events = c.events();
            if self.input.full() {
                events.remove(PollFlags::POLLIN);
            }
            if !events.is_empty() {
                fds.push(PollFd::new(c.stream.as_fd(), events));
                slots.push(Fd::Client);
            }
        }
        if let (false, Some(fd)) = (self.input.buf.is_empty(), self.stdio.input_fd()) {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
            slots.push(Fd::Stdin);
        }
    }

    /// Acts on what the poll found on one descriptor.
    pub(super) fn ready(&mut self, fd: Fd, revents: PollFlags) {
        match fd {
            // Unless the loop reaped it first, with every other child that exited.
            Fd::Pidfd if self.exit.is_none() => {
                let (pid, start) = (self.record.pid, self.record.pid_start);
                self.exit = Some(super::reap::exit_code(&self.pidfd, pid, start));
            }
            Fd::Pidfd => {}
            Fd::Output(i) => {
                if self.pump(i) == Read::End {
                    if let Some(output) = self.outputs.get_mut(i) {
                        output.1 = None;
                    }
                }
            }
            Fd::Client => {
                if let Some(c) = &mut self.client {
                    if revents.contains(PollFlags::POLLOUT) {
                        c.flush();
                    }
                }
                if revents.intersects(!PollFlags::POLLOUT) {
                    self.client_input();
                }
            }
            Fd::Stdin => self.flush_input(),
        }
    }

    /// Output to the client that asked for it; dropped otherwise.
    #[inline(never)] // its buffer below the serve loop's frame (mod.rs, "Stack")
    fn pump(&mut self, i: usize) -> Read {
        let mut buf = [0u8; 32 * 1024];
        let Some((stream, Some(fd))) = self.outputs.get(i) else {
            return Read::End;
        };
        let read = stdio::read_output(fd, &mut buf);
        if let Read::Data(n) = read {
            let kind = if *stream == 0 {
                Kind::Stdout
            } else {
                Kind::Stderr
            };
            if let Some(c) = self.client.as_mut().filter(|c| c.wants(kind)) {
                c.send(kind, &buf[..n]);
            }
            if let Some(kept) = &mut self.capture {
                // One byte past the limit tells that some was lost.
                let room = (crate::health::MAX_OUTPUT + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        read
    }

    fn client_input(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        let stdin = client.hello.as_ref().is_some_and(|h| h.stdin);
        for (kind, payload) in client.read_frames() {
            match kind {
                Kind::Stdin if stdin => self.input.buf.extend_from_slice(&payload),
                Kind::StdinClose if stdin => self.input.closing = true,
                Kind::Resize => {
                    if let (Some(tty), Some((rows, cols))) =
                        (&self.stdio.tty, proto::parse_resize(&payload))
                    {
                        let _ = berth_sys::pty::set_window_size(tty.as_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
        if client.gone {
            // As with Docker: the process's stdin ends with the client that fed it.
            self.input.closing = true;
            self.client = None;
        }
        self.flush_input();
    }

    fn flush_input(&mut self) {
        if self.input.flush(self.stdio.input_fd()) {
            self.stdio.stdin = None;
        }
    }

    /// A new size for the process's pty (none without -t).
    pub(super) fn resize(&self, rows: u16, cols: u16) {
        if let Some(tty) = &self.stdio.tty {
            let _ = berth_sys::pty::set_window_size(tty.as_fd(), rows, cols);
        }
    }

    /// SIGKILL to the process (a health probe past its timeout).
    pub(super) fn kill(&self) {
        let signal = nix::sys::signal::Signal::SIGKILL as i32;
        let _ = berth_sys::process::pidfd_send_signal(self.pidfd.as_fd(), signal);
    }

    /// After the exit (`code`, if the poll loop did not see it): what output is left, the exit
    /// in the record, then to the client, which is handed back for its last words.
    pub(super) fn finish(mut self, engine: &Engine, code: Option<i32>) -> Option<Client> {
        self.record_exit(engine, code);
        let mut client = self.client.take()?;
        let code = self.record.exit_code.unwrap_or(255);
        client.send(Kind::Exit, &code.to_be_bytes());
        // From now on a plain client: no container output, no exit of the container.
        client.hello = None;
        client.waits = false;
        Some(client)
    }

    /// A health probe's end: its exit code and what it wrote.
    pub(super) fn finish_probe(mut self, engine: &Engine) -> (i32, Vec<u8>) {
        let code = self.record_exit(engine, None);
        (code, self.capture.take().unwrap_or_default())
    }

    /// Reads what output is left and records the exit; returns its code.
    fn record_exit(&mut self, engine: &Engine, code: Option<i32>) -> i32 {
        let code = self.exit.or(code).unwrap_or(255);
        for i in 0..self.outputs.len() {
            if let Some((_, Some(fd))) = self.outputs.get(i) {
                stdio::nonblocking(fd.as_fd());
            }
            while matches!(self.pump(i), Read::Data(_)) {}
        }
        self.record.running = false;
        self.record.exit_code = Some(code);
        if let Err(e) = crate::exec::update(engine, &self.record) {
            eprintln!(
                "berth monitor {}: record the exit of exec {}: {e}",
                short(&self.record.container_id),
                short(&self.record.id)
            );
        }
        crate::exec::event(engine, &self.record, "exec_die", Some(code));
        code
    }
}
