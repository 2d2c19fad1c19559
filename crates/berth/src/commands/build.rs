//! `berth build`: a Dockerfile and its context into an image, with BuildKit's plain progress on
//! stderr (`-q`: only the image ID, on stdout).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use berth_build::container::Network;
use berth_build::context::Context as BuildContext;
use berth_build::events::{Event, Writer};
use berth_build::fsops::Root;
use berth_build::{BuildOptions, Progress};
use berth_image::diff::Compression;
use berth_image::Reference;
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::Context;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The build context: a directory, a tar archive, or "-" (a Dockerfile or a tar on stdin)
    pub context: String,
    /// Name and optionally a tag in the "name:tag" format; repeatable
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" for stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Networking mode for the RUN instructions: default, none or host
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Set platform (a single one: the host's, which is all berth builds for)
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Type of progress output: auto, plain or tty (all plain here)
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Secret to expose to RUN --mount=type=secret: id=ID,src=FILE
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Compression of new layers: gzip or zstd
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// Write the progress and the outcome as JSON lines on stdout (the API service's builds)
    #[arg(long, hide = true)]
    pub events: bool,
    /// Add a custom host-to-IP mapping (host:ip) to the RUN steps' /etc/hosts
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Size of the RUN steps' /dev/shm
    #[arg(long = "shm-size", value_parser = crate::container::flag_values::bytes)]
    pub shm_size: Option<i64>,
    /// Ulimit options for the RUN steps
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    /// Remove intermediate containers after a successful build (always: berth keeps none)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", hide_default_value = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub rm: bool,
    /// Always remove intermediate containers (always: berth keeps none)
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Memory limit of the RUN steps
    #[arg(short = 'm', long, allow_negative_numbers = true,
          value_parser = crate::container::flag_values::bytes)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap of the RUN steps: -1 for unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true,
          value_parser = crate::container::flag_values::swap_bytes)]
    pub memory_swap: Option<i64>,
    /// CPU shares (relative weight) of the RUN steps
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// Limit the CPU CFS period of the RUN steps
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Limit the CPU CFS quota of the RUN steps
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow the RUN steps (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow the RUN steps (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Images to consider as cache sources (berth's cache is its own store: warned, not read)
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Compress the build context (nothing to compress: berth reads it in place)
    #[arg(long)]
    pub compress: bool,
    /// Container isolation technology (Linux has only "default")
    #[arg(long)]
    pub isolation: Option<String>,
    /// Skip image verification (berth verifies digests, not Docker Content Trust signatures)
    #[arg(long = "disable-content-trust", hide = true, default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_content_trust: bool,
    /// Optional parent cgroup for the RUN steps (refused: berth places them itself)
    #[arg(long = "cgroup-parent", hide = true)]
    pub cgroup_parent: Option<String>,
    /// Security options of the RUN steps (refused: Docker's default profile applies)
    #[arg(long = "security-opt", hide = true)]
    pub security_opt: Vec<String>,
    /// Squash newly built layers into a single new layer (refused: experimental in Docker)
    #[arg(long, hide = true)]
    pub squash: bool,
}

/// Docker's exit status for a build that failed (a bad Dockerfile, a failing RUN...).
const BUILD_FAILED: i32 = 1;

/// Builds; a failed build is reported on stderr and exits 1, as `docker build` does.
pub fn run(ctx: &Context, args: BuildArgs) -> Result<i32> {
    let events = args.events;
    let done = match events {
        true => build(ctx, args, &mut Writer(std::io::stdout())),
        false => {
            let mut printer = Printer::new(args.quiet);
            build(ctx, args, &mut printer)
        }
    };
    let ok = done.is_ok();
    match done {
        Ok(id) if events => Writer(std::io::stdout()).event(&Event::Built { image_id: id }),
        Ok(_) => {}
        Err(e) if events => Writer(std::io::stdout()).event(&Event::Failed {
            message: crate::error_line(&e),
        }),
        Err(e) => eprintln!("berth: {}", crate::error_line(&e)),
    }
    Ok(if ok { 0 } else { BUILD_FAILED })
}

/// What a front end of the build shows: BuildKit's plain progress, or the events.
trait Shown: Progress {
    fn failed(&mut self) {}
    fn finish(&mut self, _id: &str, _tags: &[Reference]) {}
}

impl<W: Write> Shown for Writer<W> {}

/// Builds; the image's ID.
fn build(ctx: &Context, args: BuildArgs, shown: &mut dyn Shown) -> Result<String> {
    let opts = options(ctx, &args)?;
    let engine = ctx.engine()?;
    let tmp = berth_engine::build_cache::build_dir(&engine.root)?.join("tmp");
    std::fs::create_dir_all(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    // The API's build holds them from before its context is unpacked: its client gone
    // mid-upload, the build stops at its first step and the unpacked context is removed. A
    // terminal's user keeps ^C while a Dockerfile is typed on stdin.
    let early = args.events.then(cancel_signals).flatten();
    if early.is_some() {
        stop_with_the_service();
    }
    let (context, dockerfile) = load(&args, &tmp)?;
    let cancel = early.or_else(cancel_signals);
    let built = berth_build::build(
        &engine,
        "Dockerfile",
        &dockerfile,
        &context,
        &opts,
        &mut *shown,
        cancel.as_ref().map(|fd| fd.as_fd()),
    );
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            shown.failed();
            return Err(e.into());
        }
    };
    let id = built.image_id.to_string();
    shown.finish(&id, &opts.tags);
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id)
            .with_context(|| format!("write the image ID to {}", path.display()))?;
    }
    if args.quiet && !args.events {
        outln!("{id}");
    }
    Ok(id)
}

/// SIGINT, SIGTERM and SIGHUP held back and readable from a descriptor instead: the build then
/// stops its step's container and removes what it made, where dying at once would leave them.
/// The steps' processes get every signal unblocked again (the runtime's init resets them).
fn cancel_signals() -> Option<SignalFd> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ok()
}

/// The API's build stops (cleanly: SIGTERM is held for the cancel descriptor) when the service
/// that started it dies, as a build in dockerd dies with it, rather than finishing for no one.
/// A service already gone (this process reparented to init) stops it at once.
fn stop_with_the_service() {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
        let _ = nix::sys::signal::raise(Signal::SIGTERM);
    }
}

/// The flags, checked, as the builder takes them.
fn options(ctx: &Context, args: &BuildArgs) -> Result<BuildOptions> {
    refuse_unused(args)?;
    let tags = args
        .tags
        .iter()
        .map(|t| Reference::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            // A bare KEY takes its value from the environment, or is left out.
            None => match std::env::var(a) {
                Ok(v) => build_args.insert(a.clone(), v),
                Err(_) => continue,
            },
        };
    }
    let labels = pairs("--label", &args.labels)?;
    let network = Network::parse(&args.network)
        .with_context(|| format!("--network {}: use default, none or host", args.network))?;
    if !["auto", "plain", "tty"].contains(&args.progress.as_str()) {
        bail!("--progress {}: use auto, plain or tty", args.progress);
    }
    let compression = Compression::parse(&args.compression)
        .with_context(|| format!("--compression {}: use gzip or zstd", args.compression))?;
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let fields = pairs(
            "--secret",
            &s.split(',').map(String::from).collect::<Vec<_>>(),
        )?;
        let (Some(id), Some(src)) = (fields.get("id"), fields.get("src").or(fields.get("source")))
        else {
            bail!("--secret {s}: give id=ID,src=FILE");
        };
        secrets.insert(id.clone(), PathBuf::from(src));
    }
    let epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok());
    let source_date_epoch = match epoch {
        Some(e) => Some(
            e.parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH {e}: not a number of seconds"))?,
        ),
        None => None,
    };
    Ok(BuildOptions {
        tags,
        target: args.target.clone(),
        build_args,
        no_cache: args.no_cache,
        pull: args.pull,
        labels,
        network: Some(network),
        platform: args.platform.clone(),
        secrets,
        compression,
        source_date_epoch,
        registry: ctx.registry_options(),
        steps: berth_build::StepOptions {
            add_hosts: args.add_hosts.clone(),
            shm_size: match args.shm_size {
                Some(s) => Some(u64::try_from(s).ok().filter(|s| *s > 0).ok_or_else(|| {
                    anyhow::anyhow!("--shm-size {s}: give a size above 0, such as 64m")
                })?),
                None => None,
            },
            ulimits: (args.ulimits.iter())
                .map(|u| berth_engine::options::ulimit(u))
                .collect::<berth_engine::Result<_>>()?,
            limits: berth_build::StepLimits {
                memory: args.memory,
                memory_swap: args.memory_swap,
                cpu_shares: args.cpu_shares,
                cpu_period: args.cpu_period,
                cpu_quota: args.cpu_quota,
                cpuset_cpus: args.cpuset_cpus.clone(),
                cpuset_mems: args.cpuset_mems.clone(),
            },
        },
    })
}

/// Docker's build flags berth has no use for: refused in one line, or taken with a warning
/// where the image built is the same without them (`--cache-from`).
fn refuse_unused(args: &BuildArgs) -> Result<()> {
    if args.squash {
        bail!("--squash: berth does not squash layers (an experimental flag of Docker's legacy builder); drop it");
    }
    if let Some(opt) = args.security_opt.first() {
        bail!("--security-opt {opt}: berth's RUN steps run with Docker's default confinement; drop it");
    }
    crate::container::flag_values::content_trust(args.disable_content_trust)?;
    berth_engine::options::Unused {
        isolation: args.isolation.as_deref(),
        cgroup_parent: args.cgroup_parent.as_deref(),
        ..Default::default()
    }
    .refuse()?;
    // Each --add-host's form now, as the docker CLI checks it, not at the first RUN (or never,
    // when every RUN is cached); host-gateway gets its address when a step runs.
    for host in &args.add_hosts {
        berth_engine::spec::extra_host(host)?;
    }
    if let Some(image) = args.cache_from.first() {
        eprintln!(
            "WARNING: --cache-from {image}: berth builds from its own cache of earlier builds; the images named are not read"
        );
    }
    Ok(())
}

/// `K=V` words into a map; `flag` names them in errors.
fn pairs(flag: &str, words: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            bail!("{flag} {w}: give KEY=VALUE");
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The context and the Dockerfile's text.
fn load(args: &BuildArgs, tmp: &Path) -> Result<(BuildContext, String)> {
    let file = args.file.as_deref();
    if args.context == "-" {
        // A tar is unpacked as it comes (a context may be larger than memory, or endless);
        // its first KiB tells it from a Dockerfile, which is read whole.
        let mut input = Vec::new();
        let mut stdin = std::io::stdin().lock();
        (&mut stdin)
            .take(1024)
            .read_to_end(&mut input)
            .context("read the context from stdin")?;
        if berth_build::context::is_tar(&input) {
            let context = BuildContext::tar(std::io::Cursor::new(input).chain(stdin), tmp)?;
            let text = dockerfile_in(&context.root, file)?;
            return Ok((context, text));
        }
        stdin
            .read_to_end(&mut input)
            .context("read the context from stdin")?;
        if file.is_some_and(|f| f != "-") {
            bail!(
                "-f {}: a Dockerfile on stdin comes with no context to find it in",
                file.unwrap_or_default()
            );
        }
        let text = String::from_utf8(input).context("the Dockerfile on stdin is not UTF-8")?;
        return Ok((BuildContext::empty(tmp)?, text));
    }
    if args.context.contains("://") {
        bail!("unable to prepare context: {}: remote contexts are not supported; clone or download it and give the directory", args.context);
    }
    let path = Path::new(&args.context);
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "unable to prepare context: path {:?} not found",
            args.context
        )
    })?;
    let context = match meta.is_dir() {
        true => BuildContext::dir(path)?,
        false => {
            let archive =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            BuildContext::tar(archive, tmp)?
        }
    };
    let text = match file {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("read the Dockerfile from stdin")?;
            text
        }
        // Docker: -f is relative to the current directory, the default inside the context.
        Some(f) if meta.is_dir() => read_dockerfile(Path::new(f))?,
        // As the docker CLI: a directory's Dockerfile may be a link to one outside it.
        None if meta.is_dir() => read_dockerfile(&context.root.path.join("Dockerfile"))?,
        other => dockerfile_in(&context.root, other)?,
    };
    Ok((context, text))
}

fn read_dockerfile(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "failed to read dockerfile: open {}: no such file or directory",
            path.display()
        )
    })
}

/// The Dockerfile inside an unpacked or directory context, resolved in it: a link there
/// (a hostile archive's to /etc/shadow, say) leads somewhere inside the context.
fn dockerfile_in(root: &Root, name: Option<&str>) -> Result<String> {
    let name = name.unwrap_or("Dockerfile");
    let rel = Path::new(name);
    if rel
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        bail!("-f {name}: the Dockerfile must be inside the context");
    }
    match berth_build::context::read_in(root, rel) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("failed to read dockerfile: open {name}: no such file or directory")
        }
        Err(e) => Err(e).with_context(|| format!("failed to read dockerfile {name}")),
    }
}

/// BuildKit's plain progress on stderr: `#N [stage i/n] INSTRUCTION`, the step's output with
/// the seconds since it began, then `#N DONE 0.3s` or `#N CACHED`. Quiet, it keeps each step's
/// output to show it if the build fails.
struct Printer {
    quiet: bool,
    began: Option<Instant>,
    current: usize,
    name: String,
    held: Vec<u8>,
    last: usize,
}

impl Printer {
    fn new(quiet: bool) -> Printer {
        Printer {
            quiet,
            began: None,
            current: 0,
            name: String::new(),
            held: Vec::new(),
            last: 0,
        }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    fn elapsed(&self) -> f64 {
        self.began.map_or(0.0, |b| b.elapsed().as_secs_f64())
    }
}

impl Shown for Printer {
    /// A failed build: in quiet mode, the failing step and what it printed.
    fn failed(&mut self) {
        if self.quiet && self.current > 0 {
            self.line(&format!("#{} {}", self.current, self.name));
            let _ = std::io::stderr().write_all(&self.held);
        } else if !self.quiet && self.current > 0 {
            self.line(&format!("#{} ERROR", self.current));
        }
    }

    fn finish(&mut self, id: &str, tags: &[Reference]) {
        if self.quiet {
            return;
        }
        let n = self.last + 1;
        self.line(&format!("#{n} exporting to image"));
        self.line(&format!("#{n} writing image {id} done"));
        for t in tags {
            self.line(&format!("#{n} naming to {t} done"));
        }
        self.line(&format!("#{n} DONE 0.0s"));
    }
}

impl Progress for Printer {
    fn step(&mut self, id: usize, name: &str) {
        self.began = Some(Instant::now());
        self.current = id;
        self.last = self.last.max(id);
        self.name = name.to_string();
        self.held.clear();
        if !self.quiet {
            self.line(&format!("\n#{id} {name}"));
        }
    }

    fn output(&mut self, id: usize, bytes: &[u8]) {
        if self.quiet {
            self.held.extend_from_slice(bytes);
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        for l in text.lines() {
            self.line(&format!("#{id} {:.3} {l}", self.elapsed()));
        }
    }

    fn cached(&mut self, id: usize) {
        if !self.quiet {
            self.line(&format!("#{id} CACHED"));
        }
    }

    fn done(&mut self, id: usize) {
        if !self.quiet {
            self.line(&format!("#{id} DONE {:.1}s", self.elapsed()));
        }
    }

    fn warn(&mut self, message: &str) {
        self.line(&format!("WARNING: {message}"));
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all build cache (berth keeps no other kind)
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `builder prune`: every cache record and cache mount, then the layers only they kept.
pub fn builder(ctx: &Context, command: BuilderCommand) -> Result<()> {
    let BuilderCommand::Prune(args) = command;
    let what = if args.all {
        "all build cache"
    } else {
        "all dangling build cache"
    };
    if !super::confirmed(args.force, &format!("This will remove {what}."))? {
        return Ok(());
    }
    let pruned = berth_engine::build_cache::prune(ctx.root())?;
    print_pruned(&pruned);
    Ok(())
}

/// As the docker CLI prints a prune of the build cache: the IDs (if any), then the bytes.
pub fn print_pruned(pruned: &berth_engine::build_cache::Pruned) {
    if !pruned.ids.is_empty() {
        outln!("Deleted build cache objects:");
        pruned.ids.iter().for_each(|id| outln!("{id}"));
        outln!();
    }
    outln!(
        "Total reclaimed space: {}",
        crate::format::human_size(pruned.bytes)
    );
}
