//! Container lifecycle as the CLI drives it: create a record, start (spawn the monitor and talk
//! to it), stop, kill, wait, pause, remove — and recovery when a monitor died.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_sys::signal::SignalNumber;
use oci_spec::image::ImageConfiguration;

use berth_sys::process::SessionSpawn;

use crate::attach::{self, AttachOptions, Session};
use crate::engine::Engine;
use crate::error::{short, Error, Result};
use crate::events::{self, Event};
use crate::monitor::proto::{Kind, StopRequest};
use crate::records::{self, Owner, Record, State, Status};
use crate::request::{MountRequest, NsMode, RunRequest};

/// The image a container is made from: its id and config (see `images::resolve_or_pull`).
pub struct ImageRef<'a> {
    pub id: String,
    pub config: &'a ImageConfiguration,
    /// The config as stored, for what oci-spec's type leaves out (Docker's Healthcheck and
    /// Shell).
    pub config_raw: &'a [u8],
}

impl<'a> ImageRef<'a> {
    /// The store's image, as a container is made from it.
    pub fn of(image: &'a berth_image::store::Image) -> ImageRef<'a> {
        ImageRef {
            id: image.id().to_string(),
            config: &image.config,
            config_raw: &image.config_raw,
        }
    }
}

/// Makes the container's record (status "created"): a fresh id, a free name, its volumes
/// (anonymous ones for the image's VOLUMEs), the cidfile. Parse, validate, then act: the
/// request is checked and its config.json built against the image before anything is made,
/// so a bad flag leaves nothing behind; a step that fails after that undoes the ones before.
pub fn create(engine: &Engine, req: RunRequest, image: &ImageRef<'_>) -> Result<Record> {
    create_with(engine, req, image, NewId::new()?)
}

/// [`create`], as the container `fresh` (whose monitor may be waiting: [`spawn_monitor`]).
pub fn create_with(
    engine: &Engine,
    mut req: RunRequest,
    image: &ImageRef<'_>,
    fresh: NewId,
) -> Result<Record> {
    engine.config.apply_defaults(&mut req)?;
    validate(engine, &req)?;
    crate::rootless::check(&req)?;
    let mut warnings = crate::spec::discard_unsupported(&mut req, crate::spec::Knobs::of_host);
    warnings.extend(crate::rootless::limit_warning(&req)?);
    crate::volumes::from_containers(engine, &mut req)?;
    let NewId { id, random } = fresh;
    let anonymous = anonymous_volumes(&mut req, image.config, &random);
    crate::ports::merge_exposed(&mut req, image.config);
    let (image_health, image_shell) = image_health(image);
    req.healthcheck = crate::health::merge(req.healthcheck.take(), image_health);
    if req.shell.is_empty() {
        req.shell = image_shell;
    }
    let dir = engine.containers.dir(&id);
    // The check mounts the root in the container's directory: gone again if anything fails.
    let discard = |e: Error| {
        let _ = std::fs::remove_dir_all(&dir);
        e
    };
    let (userns, _reservation) = match req.userns {
        NsMode::Private | NsMode::Container(_) => {
            let layers = crate::bundle::layers_of(engine, &image.id, image.config)?;
            crate::userns::allocate(engine, &id, &req, &layers).map_err(discard)?
        }
        NsMode::Host => (None, crate::userns::Reservation::none()),
    };
    // Not with a user namespace: its layers are mounted through longer paths (an idmapped
    // view, or shifted copies that keep no ACLs), which `init_layer_for` does not measure.
    let init_layer = match userns {
        Some(_) => false,
        None => crate::bundle::init_layer_for(engine, &id, image).map_err(discard)?,
    };
    crate::bundle::check(engine, &id, &req, userns, image, init_layer).map_err(discard)?;
    let _names = engine.containers.lock_names().map_err(discard)?;
    let name = reserve_name(engine, &req, &id, &random).map_err(discard)?;
    let release = |e: Error| {
        engine.containers.release_name(&name, &id);
        discard(e)
    };
    if let Some(path) = &req.cidfile {
        write_cidfile(path, &id).map_err(release)?;
    }
    let record = Record {
        hostname: req
            .hostname
            .clone()
            .unwrap_or_else(|| short(&id).to_string()),
        id: id.clone(),
        name: name.clone(),
        created: records::now(),
        image: req.image.clone(),
        image_id: image.id.clone(),
        request: req,
        state: State::default(),
        network: None,
        anonymous_volumes: anonymous,
        networks: Vec::new(),
        warnings,
        userns,
        init_layer,
    };
    if let Err(e) = engine.containers.save(&record) {
        if let Some(path) = &record.request.cidfile {
            let _ = std::fs::remove_file(path);
        }
        return Err(release(e));
    }
    // Volumes exist from create on, as Docker makes them (`volume ls` shows them at once).
    let volumes = record.request.mounts.iter().filter(|m| m.kind == "volume");
    for m in volumes {
        if let Err(e) = crate::volumes::ensure(engine, &m.source) {
            // The volume's error says why; a failed cleanup is no news to the caller.
            let _ = remove_all(engine, &record);
            return Err(e);
        }
    }
    events::record(engine, Event::container(&record, "create"));
    Ok(record)
}

/// The image's HEALTHCHECK and SHELL: Docker's `config.Healthcheck` and `config.Shell`,
/// which oci-spec's ImageConfiguration drops, read from the config document as stored.
fn image_health(image: &ImageRef<'_>) -> (Option<crate::health::HealthConfig>, Vec<String>) {
    crate::health::from_image_config(image.config_raw)
}

/// The asked-for name, or a generated free one, taken for `id`. Call under `lock_names`.
fn reserve_name(engine: &Engine, req: &RunRequest, id: &str, random: &[u8]) -> Result<String> {
    let containers = &engine.containers;
    let Some(n) = &req.name else {
        // A generated name (`adjective_surname`) is never an id's prefix: the names index
        // alone says whether it is taken (`find` would list every container to look).
        let name = crate::names::generate(&random[30..], |n| containers.name_taken(n));
        containers.reserve_name(&name, id)?;
        return Ok(name);
    };
    match containers.reserve_name(n, id)? {
        None => Ok(n.clone()),
        Some(other) => Err(Error::Invalid(format!(
            "the container name \"/{n}\" is already in use by container \"{other}\": remove or rename that container"
        ))),
    }
}

/// Docker's refusals before a container exists, for what needs no image: the request's own
/// values, then what it names on this host (the containers whose namespaces it joins, its
/// network). `create` runs it first; a caller about to pull an image runs it before the pull.
pub fn validate(engine: &Engine, req: &RunRequest) -> Result<()> {
    req.check()?;
    let joins = [
        ("--pid", &req.pid),
        ("--ipc", &req.ipc),
        ("--uts", &req.uts),
        ("--userns", &req.userns),
        ("--cgroupns", &req.cgroupns),
        ("--network", &req.netns),
        ("--timens", &req.timens),
    ];
    for (flag, mode) in joins {
        if let NsMode::Container(c) = mode {
            engine.containers.find(c).map_err(|e| {
                Error::Invalid(format!(
                    "{flag} container:{c}: {e}; name an existing container (berth ps -a)"
                ))
            })?;
        }
    }
    let user_network = !["", "bridge", "none"].contains(&req.network.as_str());
    if req.netns == NsMode::Private && user_network {
        crate::network::store(engine)?
            .network(&req.network)
            .map_err(|e| {
                Error::Invalid(format!(
                    "--network {n}: {e}; create it with berth network create {n}",
                    n = req.network
                ))
            })?;
    }
    Ok(())
}

fn write_cidfile(path: &str, id: &str) -> Result<()> {
    use std::io::Write;
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Invalid(format!(
                "container ID file found, make sure the other container isn't running or delete {path}"
            )),
            _ => Error::Io {
                step: "create cidfile",
                path: path.into(),
                source: e,
            },
        })?;
    f.write_all(id.as_bytes())
        .map_err(Error::io("write cidfile", path))
}

/// Anonymous volumes get names: `-v /dst` and the image's VOLUMEs not covered by a mount
/// (Docker's behaviour). Returns the names, which `rm -v` and `--rm` remove.
fn anonymous_volumes(
    req: &mut RunRequest,
    config: &ImageConfiguration,
    random: &[u8],
) -> Vec<String> {
    let image_volumes = config.config().as_ref().and_then(|c| c.volumes().as_ref());
    for target in image_volumes.into_iter().flatten() {
        if !req.mounts.iter().any(|m| &m.target == target) {
            req.mounts.push(MountRequest {
                kind: "volume".into(),
                source: String::new(),
                target: target.clone(),
                read_only: false,
                options: Vec::new(),
            });
        }
    }
    let mut names = Vec::new();
    for (i, m) in req.mounts.iter_mut().enumerate() {
        if m.kind != "volume" || !m.source.is_empty() {
            continue;
        }
        let name = crate::volumes::anonymous_name(random, i);
        m.source = name.clone();
        names.push(name);
    }
    names
}

/// A container [`start`] started.
pub struct Started {
    /// Its record as it was before the start (read by [`start`]; [`start_created`]'s own).
    pub record: Record,
    /// The session with its monitor, attached as asked.
    pub session: Session,
    /// What the start warned about (its primary network's warnings), as the monitor told:
    /// `run` prints them, as Docker's does.
    pub warnings: Vec<String>,
}

/// Starts a created or exited container: spawns its monitor, this session its first client
/// (attached as `options` asks), and returns once the container runs (or with the reason it
/// could not).
pub fn start(engine: &Engine, key: &str, options: &AttachOptions) -> Result<Started> {
    let record = refresh(engine, engine.containers.find(key)?)?;
    if record.state.status.is_live() {
        return Err(Error::state(&record.id, "is already running"));
    }
    start_record(engine, record, options, None)
}

/// A monitor spawned before its container's record exists: `run` spawns it first, so that its
/// start (the exec, the binary's own start) runs beside the image's resolution and the
/// record's creation, on another core, rather than after them. It waits for its first client
/// to speak before it touches the container's directory; [`start_created`] starts it, and
/// dropped unused it sees its socket end, leaves without a trace and is waited for.
pub struct Spawned {
    id: String,
    socket: Option<UnixStream>,
    /// The monitor's pid, our child.
    child: Option<i32>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        drop(self.socket.take());
        if let Some(pid) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(pid);
            while nix::sys::wait::waitpid(pid, None) == Err(nix::errno::Errno::EINTR) {}
        }
    }
}

/// A fresh container id, for [`spawn_monitor`] then [`create_with`].
pub struct NewId {
    id: String,
    random: [u8; 32],
}

impl NewId {
    pub fn new() -> Result<NewId> {
        let (id, random) = crate::names::new_id()?;
        Ok(NewId { id, random })
    }
}

/// Spawns the monitor of the container `id` will be, waiting to be asked (see [`Spawned`]).
pub fn spawn_monitor(engine: &Engine, id: &NewId) -> Result<Spawned> {
    let (socket, child) = spawn(engine, &id.id, None)?;
    Ok(Spawned {
        id: id.id.clone(),
        socket: Some(socket),
        child,
    })
}

/// Spawns `berth __monitor <id>`, its stdin the other end of our socketpair; returns ours and,
/// unless the monitor was detached (nobody's child), its pid. A monitor touches nothing of
/// the container's before its first client speaks: with a `hello` (its record is there), that
/// is said before the monitor exists, and it goes on at once; without (`run`: spawned before
/// the record), it waits. Nothing in its environment or command line says which (with
/// --init the container's PID 1 is a fork of the monitor, whose environ the container reads).
fn spawn(
    engine: &Engine,
    id: &str,
    hello: Option<&AttachOptions>,
) -> Result<(UnixStream, Option<i32>)> {
    let (mut ours, theirs) = UnixStream::pair().map_err(Error::io("socketpair for", "monitor"))?;
    if let Some(hello) = hello {
        crate::monitor::proto::write_json(&mut ours, Kind::Start, hello)
            .map_err(Error::io("talk to the monitor of", short(id)))?;
    }
    let mut cmd = Command::new(&engine.exe);
    cmd.arg("--root").arg(&engine.root).arg("__monitor").arg(id);
    // A clean environment: with --init the container's PID 1 is a fork of the monitor,
    // whose environ and cmdline the container can read.
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("BERTH_EXE", &engine.exe)
        // No per-thread cache of freed chunks (glibc's tcache, 7 of each size): what the start
        // freed would stay cached, scattered over the heap, and keep 80 KiB of an idle
        // monitor's 120 KiB heap from being given back (malloc_trim leaves cached chunks be).
        // The start is as fast without it (alternating runs; bench/README.md).
        .env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
    // Rootless berth finds its runtime directory (the runtime's state) from the one, and its
    // overlay's choice (rootless/fuse.rs) from the other.
    for key in ["XDG_RUNTIME_DIR", "BERTH_OVERLAY"] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    // The configuration files the front end read (their names only: the monitor reads them
    // again for the network's addressing at each start of the container).
    engine.config.pass_files(&mut cmd);
    // Its own session from its first instruction: neither the monitor nor the container it
    // starts keeps the caller's terminal (which a container could otherwise write to, or
    // type into with TIOCSTI), and no signal from that terminal reaches them.
    let spawned = if engine.detach_monitors {
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .arg0("berth");
        berth_sys::process::spawn_detached(&mut cmd).map(|()| None)
    } else {
        // The monitor outlives us; once it has its container it is not ours to wait for (init
        // reaps it once we exit). posix_spawn rather than std's spawn, which forks for its
        // pre-exec closure (berth_sys::process::spawn_in_new_session).
        let argv: Vec<&OsStr> = std::iter::once(OsStr::new("berth"))
            .chain(cmd.get_args())
            .collect();
        let env: Vec<(&OsStr, &OsStr)> = cmd
            .get_envs()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        let spawned = berth_sys::process::spawn_in_new_session(&SessionSpawn {
            program: Path::new(cmd.get_program()),
            argv: &argv,
            env: &env,
            stdin: theirs.as_fd(),
        });
        // The monitor's end of the socketpair closed here, so that a monitor that ends before
        // it answers is an end of file, not a wait for good.
        drop(theirs);
        spawned.map(Some)
    };
    // The detached command holds the monitor's end of the socketpair (its stdin): closed too.
    drop(cmd);
    let child = spawned.map_err(Error::io("spawn the monitor", engine.exe.clone()))?;
    Ok((ours, child))
}

/// [`start`] of the container `run` has just made (`record`, as [`create_with`] returned it:
/// not read again) by the monitor spawned for it. Should another client start or remove it
/// meanwhile, that one's monitor (or `rm`) owns the container and ours refuses with "is busy"
/// (`own_for_start`) where a read of the record would have said "is already running".
pub fn start_created(
    engine: &Engine,
    record: Record,
    options: &AttachOptions,
    spawned: Spawned,
) -> Result<Started> {
    start_record(engine, record, options, Some(spawned))
}

/// Starts `record` through the monitor `spawned` for it, or through one spawned here.
fn start_record(
    engine: &Engine,
    record: Record,
    options: &AttachOptions,
    spawned: Option<Spawned>,
) -> Result<Started> {
    // The monitor spawned for this container is ours from now on (its child not waited
    // for, as one spawned here); one spawned for another is dropped.
    let early = spawned.filter(|s| s.id == record.id).and_then(|mut s| {
        s.child = None;
        s.socket.take()
    });
    // Before the hello: the monitor's `start` event must not come first.
    if options.stdin || options.stdout || options.stderr {
        events::record(engine, Event::container(&record, "attach"));
    }
    let mut session = match early {
        Some(socket) => {
            let mut session = Session::new(socket);
            session
                .send(Kind::Start, options)
                .map_err(Error::io("talk to the monitor of", short(&record.id)))?;
            session
        }
        None => Session::new(spawn(engine, &record.id, Some(options))?.0),
    };
    match attach::answer(&mut session) {
        attach::Answer::Started(warnings) => Ok(Started {
            record,
            session,
            warnings,
        }),
        attach::Answer::Refused(e) => Err(e),
        attach::Answer::Silent => Err(Error::state(
            &record.id,
            format!(
                "the monitor stopped before the container started: see {}",
                engine
                    .containers
                    .dir(&record.id)
                    .join("monitor.log")
                    .display()
            ),
        )),
    }
}

/// Every container, each [`refresh`]ed (oldest first), and those whose record is unreadable.
pub fn list(engine: &Engine) -> Result<records::Listing> {
    let mut listing = engine.containers.all()?;
    listing.records = listing
        .records
        .into_iter()
        .map(|r| refresh(engine, r))
        .collect::<Result<_>>()?;
    Ok(listing)
}

/// Is the record's monitor still there? If not, the record is repaired (Docker never shows a
/// running container nobody watches): exited if its init is gone too.
pub fn refresh(engine: &Engine, record: Record) -> Result<Record> {
    let st = &record.state;
    if !st.status.is_live() || records::alive(st.monitor_pid, st.monitor_start) {
        return Ok(record);
    }
    if records::alive(st.pid, st.pid_start) {
        return Ok(record);
    }
    recover(engine, &record)?;
    engine.containers.load(&record.id)
}

/// Cleans up after a monitor that died: kills what is left, deletes the runtime state,
/// unmounts, and records the exit as unknown, with whatever the cleanup could not undo. A
/// container whose owner lock is held has a monitor (or an `rm`) at work: left alone.
pub fn recover(engine: &Engine, record: &Record) -> Result<()> {
    let _owner = match engine.containers.try_own(&record.id)? {
        Owner::Us(lock) => lock,
        Owner::Other(_) => return Ok(()),
    };
    let errors = teardown(engine, &record.id, Some(record));
    let mut error = String::from("the container's monitor died; its exit status is unknown");
    if !errors.is_empty() {
        error = format!("{error}; cleanup: {}", errors.join("; "));
    }
    engine.containers.update(&record.id, |r| {
        if r.state.status.is_live() {
            r.state.status = Status::Exited;
            r.state.exit_code = 255;
            r.state.pid = 0;
            r.state.finished_at = records::now();
            r.state.error = error;
            r.network = None;
            r.networks.clear();
        }
    })
}

/// Everything the system holds for container `id` but its files: the runtime's state and
/// processes, its cgroups, its network, its mounts. From the record where there is one, and
/// from what the system itself says (a record may be lost, or behind); every step tried,
/// errors returned.
pub(crate) fn teardown(engine: &Engine, id: &str, record: Option<&Record>) -> Vec<String> {
    let mut errors = Vec::new();
    // A `network connect` racing us either finished (its lease is seen) or finds the init dead.
    let _record_lock = engine.containers.lock(id);
    match berth_runtime::container::delete(&engine.runtime, id, true) {
        Ok(()) => {}
        // Never created, or deleted already (a monitor got that far).
        Err(berth_runtime::Error::NotFound(_)) => {}
        Err(e) => errors.push(e.to_string()),
    }
    errors.extend(crate::leftovers::cgroups(id));
    errors.extend(crate::network::detach(engine, id, record));
    errors.extend(crate::leftovers::unmount_under(&engine.containers.dir(id)));
    errors.extend(crate::volumes::local::release_all(engine, id, record));
    crate::exec::forget_all(engine, id);
    errors
}

fn collect(id: &str, errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::state(id, format!("cleanup: {}", errors.join("; "))))
    }
}

/// Stops a container: its stop signal, SIGKILL after `timeout` seconds. Stopped already: fine.
pub fn stop(
    engine: &Engine,
    key: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<Record> {
    let record = refresh(engine, engine.containers.find(key)?)?;
    if !record.state.status.is_live() {
        return Ok(record);
    }
    // As moby's containerStop, once the container is found running: a signal it cannot parse
    // is refused (the monitor would fall back to the stop signal).
    if let Some(s) = signal.filter(|s| !s.is_empty()) {
        checked_signal(s)?;
    }
    if !records::alive(record.state.monitor_pid, record.state.monitor_start) {
        recover(engine, &record)?;
        return engine.containers.load(&record.id);
    }
    let timeout = timeout.or(record.request.stop_timeout).unwrap_or(10);
    let req = StopRequest {
        timeout,
        signal: signal.unwrap_or_default().to_string(),
        remove: false,
        volumes: false,
    };
    let sent = attach::connect(engine, &record.id).and_then(|mut session| {
        session
            .send(Kind::Stop, &req)
            .map_err(Error::io("send stop to the monitor of", short(&record.id)))?;
        session.wait_exit()
    });
    if sent.is_err() {
        // The container exited on its own meanwhile and the monitor is finishing.
        wait(engine, &record.id)?;
    }
    // Docker's stop returns once the container can be started again: the monitor reports
    // the exit before its teardown, so wait for it to let go of the container.
    wait_released(engine, &record.id);
    events::record(engine, Event::container(&record, "stop"));
    engine.containers.load(&record.id).or(Ok(record))
}

/// `restart`: stops the container if it runs, then starts it, detached.
pub fn restart(
    engine: &Engine,
    key: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<Record> {
    let record = stop(engine, key, timeout, signal)?;
    let Started { record, .. } = start(engine, &record.id, &AttachOptions::default())?;
    events::record(engine, Event::container(&record, "restart"));
    Ok(record)
}

/// Sends a signal to the container's init.
pub fn kill(engine: &Engine, key: &str, signal: &str) -> Result<Record> {
    let record = refresh(engine, engine.containers.find(key)?)?;
    let sig = checked_signal(signal)?;
    if !record.state.status.is_live() {
        return Err(Error::state(&record.id, "is not running"));
    }
    // moby's killWithSignal: SIGKILL, the container's stop signal, or any signal where it has
    // none of its own, ends it as `stop` does: its restart policy does not bring it back, and
    // a paused container is thawed so that the signal, queued while frozen, reaches it.
    let ends = sig == SignalNumber::KILL || stop_signal(engine, &record).is_none_or(|s| s == sig);
    if ends {
        engine.containers.update(&record.id, |r| {
            if r.state.status.is_live() {
                r.state.manually_stopped = true;
            }
        })?;
    }
    // Between two runs of its restart policy there is no process: moby marks it to exit and
    // sends nothing. Here the monitor's wait for the next run is ended, as `stop` ends it.
    if record.state.status == Status::Restarting {
        if ends {
            stop(engine, &record.id, Some(0), None)?;
        }
        return Ok(record);
    }
    berth_runtime::container::kill(&engine.runtime, &record.id, sig, false)?;
    let signo = sig.get().to_string();
    events::record(
        engine,
        Event::container(&record, "kill").with("signal", signo),
    );
    // The runtime thaws a paused container for SIGKILL itself; for another signal, thawed
    // here. A process gone meanwhile (the runtime then finds it stopped) needs nothing.
    if ends && record.state.status == Status::Paused {
        if sig != SignalNumber::KILL {
            if let Err(e) = berth_runtime::container::resume(&engine.runtime, &record.id) {
                let paused = berth_runtime::container::load(&engine.runtime, &record.id)
                    .is_ok_and(|c| c.status == berth_runtime::state::Status::Paused);
                if paused {
                    return Err(e.into());
                }
            }
        }
        engine.containers.update(&record.id, |r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running;
            }
        })?;
        events::record(engine, Event::container(&record, "unpause"));
    }
    Ok(record)
}

/// The signal named, or Docker's refusal of it.
fn checked_signal(signal: &str) -> Result<SignalNumber> {
    SignalNumber::parse(signal).ok_or_else(|| {
        Error::Invalid(format!(
            "invalid signal {signal:?}: use a name such as KILL or a number"
        ))
    })
}

/// The stop signal the container was given (`--stop-signal`, else the image's STOPSIGNAL),
/// if any.
fn stop_signal(engine: &Engine, record: &Record) -> Option<SignalNumber> {
    let image = crate::bundle::image_config(engine, record);
    SignalNumber::parse(&crate::spec::process::stop_signal(
        image.as_ref(),
        &record.request,
    )?)
}

/// Waits for the container to exit (at once if it is not running) and returns its code.
pub fn wait(engine: &Engine, key: &str) -> Result<i32> {
    let code = crate::wait::until(engine, key, crate::wait::Condition::NotRunning, &|| false)?;
    Ok(code.unwrap_or_default())
}

pub fn pause(engine: &Engine, key: &str, pause: bool) -> Result<Record> {
    let record = refresh(engine, engine.containers.find(key)?)?;
    let want = if pause {
        Status::Running
    } else {
        Status::Paused
    };
    if record.state.status != want {
        return Err(Error::state(
            &record.id,
            if pause {
                "is not running"
            } else {
                "is not paused"
            },
        ));
    }
    if pause {
        berth_runtime::container::pause(&engine.runtime, &record.id)?;
    } else {
        berth_runtime::container::resume(&engine.runtime, &record.id)?;
    }
    engine.containers.update(&record.id, |r| {
        if r.state.status.is_live() {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        }
    })?;
    let action = if pause { "pause" } else { "unpause" };
    events::record(engine, Event::container(&record, action));
    Ok(record)
}

/// `rm`: refuses a running container unless `force`; then removes everything the system holds
/// for its id. A container whose record is corrupt, or a directory a killed `create` left
/// without one, is removed from what the system says.
pub fn remove(engine: &Engine, key: &str, force: bool, volumes: bool) -> Result<()> {
    let (id, record) = match engine.containers.find(key) {
        Ok(r) => (r.id.clone(), Some(r)),
        Err(Error::CorruptRecord { id, .. }) => (id, None),
        Err(Error::NoSuchContainer(_))
            if key.len() == 64 && records::is_hex(key) && engine.containers.dir(key).is_dir() =>
        {
            (key.to_string(), None)
        }
        Err(e) => return Err(e),
    };
    if force && removed_by_monitor(engine, &id, record.as_ref(), volumes) {
        return Ok(());
    }
    let _owner = own_for_removal(engine, &id, force)?;
    // The monitor, if there was one, had the last word on the record.
    let record = engine.containers.load(&id).ok().or(record);
    if !force && runs(engine, &id) {
        return Err(Error::state(&id, RUNNING));
    }
    let mut errors = teardown(engine, &id, record.as_ref());
    if volumes {
        // A corrupt record loses the list, not the names: they follow from the id.
        let anonymous = match &record {
            Some(r) => r.anonymous_volumes.clone(),
            None => crate::volumes::anonymous_of(engine, &id),
        };
        errors.extend(remove_volumes(engine, &anonymous));
    }
    if let Err(e) = engine
        .containers
        .remove(&id, record.as_ref().map(|r| r.name.as_str()))
    {
        errors.push(e.to_string());
    }
    let event = match &record {
        Some(r) => Event::container(r, "destroy"),
        None => Event::new(events::Kind::Container, "destroy", &id),
    };
    events::record(engine, event);
    collect(&id, errors)
}

const RUNNING: &str = "cannot remove a running container: stop it first or use --force";

/// `rm -f` of a running container: its monitor kills it and removes it as it does for `--rm`,
/// and answers once the container is gone from every listing and its name is free; the
/// teardown that only the container's id reaches (runtime state, cgroups, mounts, files, the
/// veth) it finishes after. False, and nothing done but the kill, where the container did not
/// go that way (no monitor, one that was not running it, or one from before `remove`): the
/// caller removes it.
fn removed_by_monitor(engine: &Engine, id: &str, record: Option<&Record>, volumes: bool) -> bool {
    // The record `remove` just found (read again, it says the same: what decides is whether
    // the monitor answers).
    let live = record.is_some_and(|r| {
        r.state.status.is_live() && records::alive(r.state.monitor_pid, r.state.monitor_start)
    });
    if !live {
        return false;
    }
    let req = StopRequest {
        timeout: 0,
        signal: String::new(),
        remove: true,
        volumes,
    };
    let Ok(mut session) = attach::connect(engine, id) else {
        return false;
    };
    if session.send(Kind::Stop, &req).is_err() {
        return false;
    }
    let _ = session.wait_exit();
    !engine.containers.dir(id).exists()
}

/// How long `rm` waits for a container's monitor to finish (with `--force`, after its stop).
const MONITOR_END: Duration = Duration::from_secs(30);

/// Whether the runtime has processes of the container (whatever the record says).
fn runs(engine: &Engine, id: &str) -> bool {
    berth_runtime::container::load(&engine.runtime, id)
        .is_ok_and(|c| c.status != berth_runtime::state::Status::Stopped)
}

/// Takes the container's owner lock for its removal. A monitor holding it is waited for: it
/// finishes an exit, or (with `force`) it is asked to stop the container; without `force` a
/// running container is refused.
fn own_for_removal(engine: &Engine, id: &str, force: bool) -> Result<records::Lock> {
    let deadline = Instant::now() + MONITOR_END;
    // A monitor that has not ended this long after the request is not reading it.
    let kill_at = Instant::now() + Duration::from_secs(5);
    loop {
        let holder = match engine.containers.try_own(id)? {
            Owner::Us(lock) => return Ok(lock),
            Owner::Other(holder) => holder,
        };
        // An unreadable record with a live monitor counts as running.
        let live = engine
            .containers
            .load(id)
            .map_or(true, |r| r.state.status.is_live());
        if live && !force {
            return Err(Error::state(id, RUNNING));
        }
        if force {
            ask_to_stop(engine, id, Instant::now() >= kill_at);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let who = holder.map_or("its monitor".into(), |(pid, _)| {
                format!("its monitor (pid {pid})")
            });
            return Err(Error::state(
                id,
                format!(
                    "{who} did not finish in {}s: try again, or kill it",
                    MONITOR_END.as_secs()
                ),
            ));
        }
        wait_for_end(holder, left.min(Duration::from_secs(1)));
    }
}

/// The container's owner lock, for a monitor about to start it. The monitor of its last run
/// may still hold it: it reports the exit before it deletes the run's links, so `start -a`
/// and an attached `run` return, and a container that exited on its own shows exited, while
/// it finishes. Docker's start finds such a container free: that monitor is waited for (at
/// most `MONITOR_END`). One running or restarting it (a `start` racing ours), or a record
/// that cannot be read, is not: `Other` at once.
pub(crate) fn own_for_start(engine: &Engine, id: &str) -> Result<Owner> {
    let deadline = Instant::now() + MONITOR_END;
    loop {
        let holder = match engine.containers.try_own(id)? {
            Owner::Us(lock) => return Ok(Owner::Us(lock)),
            Owner::Other(holder) => holder,
        };
        let live = engine
            .containers
            .load(id)
            .map_or(true, |r| r.state.status.is_live());
        let left = deadline.saturating_duration_since(Instant::now());
        if live || left.is_zero() {
            return Ok(Owner::Other(holder));
        }
        // Short slices: a holder that is starting the container says so in its record.
        wait_for_end(holder, left.min(Duration::from_millis(50)));
    }
}

/// Waits (at most `MONITOR_END`) until no monitor owns the container: its teardown is done.
/// A container removed meanwhile (`--rm`) is released too.
fn wait_released(engine: &Engine, id: &str) {
    let deadline = Instant::now() + MONITOR_END;
    while let Ok(Owner::Other(holder)) = engine.containers.try_own(id) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        wait_for_end(holder, left.min(Duration::from_secs(1)));
    }
}

/// Asks the container's monitor to kill it now; where the monitor cannot be reached (still
/// starting), or with `kill` (it did not act on an earlier request), kills the container's
/// processes directly, which ends the monitor's run too.
fn ask_to_stop(engine: &Engine, id: &str, kill: bool) {
    let req = StopRequest {
        timeout: 0,
        signal: String::new(),
        remove: false,
        volumes: false,
    };
    let asked = attach::connect(engine, id).and_then(|mut session| {
        session
            .send(Kind::Stop, &req)
            .map_err(Error::io("send stop to the monitor of", short(id)))
    });
    if kill || asked.is_err() {
        crate::leftovers::kill_cgroup(id);
    }
}

/// Waits at most `timeout` for the process `holder` names to end: on its pidfd, once it is
/// checked to be the same process; a holder not known yet is given a short while.
fn wait_for_end(holder: Option<(i32, u64)>, timeout: Duration) {
    let pidfd = holder.and_then(|(pid, start)| {
        let fd = berth_sys::process::pidfd_open(pid).ok()?;
        records::alive(pid, start).then_some(fd)
    });
    match pidfd {
        Some(fd) => wait_readable(&fd, timeout),
        None => std::thread::sleep(timeout.min(Duration::from_millis(20))),
    }
}

/// `--rm` after the exit: the monitor, which owns the container, removes everything,
/// anonymous volumes included; every step is tried, and what failed is returned.
pub fn remove_all(engine: &Engine, record: &Record) -> Result<()> {
    let mut errors = teardown(engine, &record.id, Some(record));
    errors.extend(remove_volumes(engine, &record.anonymous_volumes));
    if let Err(e) = engine.containers.remove(&record.id, Some(&record.name)) {
        errors.push(e.to_string());
    }
    events::record(engine, Event::container(record, "destroy"));
    collect(&record.id, errors)
}

/// `--rm` after the exit, the part the exit is reported after: the name given back, the
/// anonymous volumes removed, the container gone from every listing and lookup (its directory
/// renamed away, `Containers::hide`). Returns what failed and the hidden directory, which
/// [`finish_removal`] empties once the exit is reported: nothing a later command looks at is
/// left to it (the runtime's state, the cgroups and the mounts are under the container's id,
/// which no other container will have).
pub fn remove_at_exit(
    engine: &Engine,
    record: &Record,
    volumes: bool,
) -> (Vec<String>, Option<PathBuf>) {
    let mut errors = Vec::new();
    if volumes {
        errors.extend(remove_volumes(engine, &record.anonymous_volumes));
    }
    let doomed = engine
        .containers
        .hide(&record.id, Some(&record.name))
        .unwrap_or_else(|e| {
            errors.push(e.to_string());
            None
        });
    events::record(engine, Event::container(record, "destroy"));
    (errors, doomed)
}

/// The rest of `--rm`, behind the reported exit: the runtime's state, processes and cgroups,
/// the mounts, the hidden directory's files. Every step tried; what failed is returned.
pub fn finish_removal(engine: &Engine, id: &str, doomed: Option<&Path>) -> Vec<String> {
    let mut errors = Vec::new();
    match berth_runtime::container::delete(&engine.runtime, id, true) {
        Ok(()) | Err(berth_runtime::Error::NotFound(_)) => {}
        Err(e) => errors.push(e.to_string()),
    }
    errors.extend(crate::leftovers::cgroups(id));
    crate::exec::forget_all(engine, id);
    let Some(doomed) = doomed else {
        return errors;
    };
    if let Err(e) = crate::bundle::teardown(doomed) {
        errors.push(e.to_string());
    }
    if records::Containers::delete_hidden(doomed).is_err() {
        // Something else was mounted under it: found and unmounted, then once more.
        errors.extend(crate::leftovers::unmount_under(doomed));
        if let Err(e) = records::Containers::delete_hidden(doomed) {
            errors.push(e.to_string());
        }
    }
    errors
}

fn remove_volumes(engine: &Engine, names: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    for name in names {
        if !engine.volumes_dir().join(name).exists() {
            continue;
        }
        match crate::volumes::remove_files(engine, name) {
            Ok(()) => crate::volumes::destroyed(engine, name),
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

/// A runtime error at create or start, with Docker's codes when the command is at fault
/// (127 not found, 126 not executable).
pub fn command_error(e: berth_runtime::Error) -> Error {
    match e {
        berth_runtime::Error::Exec { kind, message } => Error::Command {
            code: u8::try_from(kind.exit_code()).unwrap_or(126),
            message,
        },
        e => Error::Runtime(e),
    }
}

/// Whether the kernel's OOM killer struck in the container's cgroup (v1 or v2).
pub fn oom_killed(id: &str) -> bool {
    use berth_runtime::cgroup::CgroupManager;
    let path = Engine::cgroups_path(id);
    berth_runtime::cgroup::open(std::path::Path::new(&path))
        .and_then(|cg| Ok(cg.oom_kills()?))
        .is_ok_and(|n| n > 0)
}

/// Waits until `fd` is readable (a pidfd: its process ended), at most `timeout`.
fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX));
        match poll(&mut fds, ms) {
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            _ => return,
        }
    }
}
