//! The build: the Dockerfile split into global ARGs and stages, the stages the target needs
//! (and only those) built in order, each step through the cache, and the target's image written
//! to the store under its names.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use berth_image::diff::Compression;
use berth_image::store::Store;
use berth_image::Reference;
use oci_spec::image::{Descriptor, Digest};

use crate::cache::{Cache, Layer};
use crate::config::ImageConfig;
use crate::container::Network;
use crate::context::{Context, StatCache};
use crate::error::{Error, Result};
use crate::instruction::{self, Instruction, Kind};
use crate::shell::{Lexer, Vars};

/// What `berth build` asks for.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub tags: Vec<Reference>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    pub network: Option<Network>,
    pub platform: Option<String>,
    /// `--secret id=ID,src=PATH`: id -> the file's bytes' path.
    pub secrets: BTreeMap<String, PathBuf>,
    pub compression: Compression,
    pub source_date_epoch: Option<i64>,
    /// What every RUN step gets: `--add-host` entries in its /etc/hosts, `--shm-size` bytes of
    /// /dev/shm, `--ulimit`s (BuildKit's ExecOp meta; part of each RUN's cache key).
    pub steps: StepOptions,
    pub registry: berth_image::registry::RegistryOptions,
}

/// See [`BuildOptions::steps`].
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    pub add_hosts: Vec<String>,
    pub shm_size: Option<u64>,
    pub ulimits: Vec<berth_engine::request::Ulimit>,
    /// The legacy builder's limits of each RUN step's container (`--memory`, `--cpu-shares`...):
    /// not in the cache key, as Docker's builders leave them out.
    pub limits: StepLimits,
}

/// See [`StepOptions::limits`]: `berth run`'s flags of the same names.
#[derive(Debug, Clone, Default)]
pub struct StepLimits {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

/// What the build tells its caller as it goes; the caller decides what a person sees.
pub trait Progress {
    /// How many instructions the stages to build hold, FROMs included (the legacy builder's
    /// `Step 2/7`), once they are known.
    fn planned(&mut self, _instructions: usize) {}
    /// A step begins: `id` numbers it, `name` is `[stage 2/5] RUN ...`.
    fn step(&mut self, id: usize, name: &str);
    /// An instruction that only changes the config (ENV, CMD...), named as a step is: no step
    /// in BuildKit's progress, one in the legacy builder's.
    fn config(&mut self, _name: &str) {}
    fn output(&mut self, id: usize, bytes: &[u8]);
    fn cached(&mut self, id: usize);
    fn done(&mut self, id: usize);
    fn warn(&mut self, message: &str);
}

#[derive(Clone, Debug)]
pub struct Built {
    pub image_id: Digest,
    pub manifest: Descriptor,
}

/// One stage as written.
pub(crate) struct StageDef {
    pub name: String,
    pub base: String,
    pub platform: Option<String>,
    pub line: usize,
    pub steps: Vec<Instruction>,
}

/// A stage as built so far.
#[derive(Clone)]
pub(crate) struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: String,
    /// ARGs declared in the stage in order, with their values (None: declared without one).
    pub args: Vec<(String, Option<String>)>,
    /// The time of the newest layer: what config-only steps' history carries.
    pub time: String,
    /// A CMD was given in this stage (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl State {
    /// Declares `name` (again), keeping its first place.
    pub fn set_arg(&mut self, name: &str, value: Option<String>) {
        match self.args.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.args.push((name.to_string(), value)),
        }
    }

    /// The variables expansion sees: ARGs with values, ENV over them.
    pub fn vars(&self) -> Vars {
        let mut vars: Vars = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for e in &self.config.config.env {
            if let Some((k, v)) = e.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        vars
    }
}

pub struct Builder<'a> {
    pub(crate) engine: &'a berth_engine::Engine,
    pub(crate) store: Store,
    /// Garbage collection waits while the build runs: its new layers are pinned only once
    /// cached, and its base images' may lose their names meanwhile.
    _hold: berth_image::store::LockGuard,
    pub(crate) cache: Cache,
    pub(crate) context: &'a Context,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) progress: &'a mut dyn Progress,
    /// Readable once the build is to stop (the caller's signal descriptor).
    pub(crate) cancel: Option<BorrowedFd<'a>>,
    pub(crate) lexer: Lexer,
    pub(crate) file: String,
    pub(crate) stages: Vec<StageDef>,
    pub(crate) built: BTreeMap<usize, State>,
    pub(crate) globals: BTreeMap<String, Option<String>>,
    pub(crate) used_args: BTreeSet<String>,
    pub(crate) stats: StatCache,
    pub(crate) next_id: usize,
    /// COPY --from origins, mounted once each; before `tmp`, so unmounted before it is removed.
    pub(crate) roots: BTreeMap<String, crate::copy::OriginRoot>,
    pub(crate) tmp: crate::workdir::WorkDir,
}

/// Builds `dockerfile` (named `file` in messages) with `context`. The build stops, and removes
/// what it made, once `cancel` becomes readable (a signalfd of SIGINT and SIGTERM, say).
pub fn build<'a>(
    engine: &'a berth_engine::Engine,
    file: &str,
    dockerfile: &str,
    context: &'a Context,
    opts: &'a BuildOptions,
    progress: &'a mut dyn Progress,
    cancel: Option<BorrowedFd<'a>>,
) -> Result<Built> {
    let parsed = crate::parser::parse(file, dockerfile)?;
    let mut instructions = Vec::new();
    for node in &parsed.nodes {
        instructions.push(instruction::parse(node).map_err(|message| Error::Syntax {
            file: file.to_string(),
            line: node.line,
            message,
        })?);
    }
    let store = engine.images()?;
    let hold = store.lock_shared()?;
    let build = berth_engine::build_cache::build_dir(&engine.root)?;
    let tmp = crate::workdir::WorkDir::create(engine, &build.join("tmp"))?;
    let stats_path = stat_cache_path(engine, context);
    let stats = stats_path
        .as_deref()
        .map(StatCache::load)
        .unwrap_or_default();
    let mut b = Builder {
        engine,
        cache: Cache::open(&engine.root, store.clone())?,
        store,
        _hold: hold,
        context,
        opts,
        progress,
        cancel,
        lexer: Lexer {
            escape: parsed.escape,
        },
        file: file.to_string(),
        stages: Vec::new(),
        built: BTreeMap::new(),
        globals: BTreeMap::new(),
        used_args: BTreeSet::new(),
        stats,
        next_id: 0,
        roots: BTreeMap::new(),
        tmp,
    };
    b.split(instructions)?;
    if let Some(p) = &opts.platform {
        b.check_platform("--platform", p, 0)?;
    }
    let target = b.target()?;
    let needed = b.needed(target)?;
    let instructions = needed.iter().map(|i| b.stages[*i].steps.len() + 1).sum();
    b.progress.planned(instructions);
    for index in needed {
        let state = b.build_stage(index)?;
        b.built.insert(index, state);
    }
    if let Some(path) = &stats_path {
        b.stats.save(path);
    }
    b.warn_unused_args();
    let state = b
        .built
        .remove(&target)
        .ok_or_else(|| Error::Invalid("the target stage was not built".into()))?;
    b.write_image(state)
}

/// Where the digests of a directory context's files are kept between builds; none for a
/// context unpacked from a tar, whose directory is new each time.
fn stat_cache_path(engine: &berth_engine::Engine, context: &Context) -> Option<PathBuf> {
    if context.is_temporary() {
        return None;
    }
    let dir = engine.root.join("build/context");
    let _ = std::fs::create_dir_all(&dir);
    let name = crate::cache::key("", &[context.root.path.as_os_str().as_encoded_bytes()]);
    Some(dir.join(format!("{}.json", &name[..16])))
}

impl Builder<'_> {
    /// An error once the build is to stop.
    pub(crate) fn check_cancelled(&self) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let Some(fd) = self.cancel else {
            return Ok(());
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }

    pub(crate) fn syntax(&self, line: usize, message: impl Into<String>) -> Error {
        Error::Syntax {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    /// Global ARGs (before the first FROM) and the stages.
    fn split(&mut self, instructions: Vec<Instruction>) -> Result<()> {
        for ins in instructions {
            match &ins.kind {
                Kind::From { image, alias, platform } => {
                    let index = self.stages.len();
                    if let Some(a) = alias {
                        if self.stages.iter().any(|s| &s.name == a) {
                            return Err(self.syntax(ins.line, format!("duplicate stage name {a:?}")));
                        }
                    }
                    self.stages.push(StageDef {
                        name: alias.clone().unwrap_or_else(|| index.to_string()),
                        base: image.clone(),
                        platform: platform.clone(),
                        line: ins.line,
                        steps: Vec::new(),
                    });
                }
                _ => match self.stages.last_mut() {
                    Some(stage) => stage.steps.push(ins),
                    None => match ins.kind {
                        Kind::Arg(pairs) => {
                            for (k, v) in pairs {
                                let vars = self.global_vars();
                                let value = match self.opts.build_args.get(&k) {
                                    Some(v) => Some(v.clone()),
                                    None => v.map(|v| self.lexer.word(&v, &vars)).transpose().map_err(|e| self.syntax(ins.line, e))?,
                                };
                                self.globals.insert(k, value);
                            }
                        }
                        _ => return Err(self.syntax(ins.line, "no build stage in current context: the first instruction must be FROM (or ARG)")),
                    },
                },
            }
        }
        if self.stages.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: the Dockerfile has no FROM instruction",
                self.file
            )));
        }
        Ok(())
    }

    /// The global ARGs with values, for FROM lines.
    /// BuildKit's automatic platform ARGs (TARGETPLATFORM, BUILDARCH...) under them: berth
    /// builds for the host, so build and target platform are both the host's.
    pub(crate) fn global_vars(&self) -> Vars {
        let host = berth_image::Platform::host();
        let mut vars = Vars::new();
        for side in ["BUILD", "TARGET"] {
            vars.insert(format!("{side}PLATFORM"), host.to_string());
            vars.insert(format!("{side}OS"), host.os.clone());
            vars.insert(format!("{side}ARCH"), host.architecture.clone());
            vars.insert(
                format!("{side}VARIANT"),
                host.variant.clone().unwrap_or_default(),
            );
        }
        vars.extend(
            self.globals
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
        );
        vars
    }

    fn target(&self) -> Result<usize> {
        match &self.opts.target {
            None => Ok(self.stages.len() - 1),
            Some(t) => self
                .stages
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(t))
                .ok_or_else(|| Error::Invalid(format!("target stage {t:?} could not be found"))),
        }
    }

    /// The stage `name` refers to (by name or index), if it is one before `before`.
    pub(crate) fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let name = name.to_ascii_lowercase();
        self.stages[..before]
            .iter()
            .position(|s| s.name == name)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    }

    /// The stages `target` needs, itself included, in the order they are built.
    fn needed(&self, target: usize) -> Result<Vec<usize>> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        let vars = self.global_vars();
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let stage = &self.stages[i];
            let base = self
                .lexer
                .word(&stage.base, &vars)
                .map_err(|e| self.syntax(stage.line, e))?;
            let mut refs = vec![base];
            for step in &stage.steps {
                match &step.kind {
                    Kind::Copy(c) => refs.extend(c.from.clone()),
                    Kind::Run { mounts, .. } => {
                        for m in mounts {
                            refs.extend(
                                m.split(',')
                                    .filter_map(|kv| kv.strip_prefix("from="))
                                    .map(String::from),
                            );
                        }
                    }
                    _ => {}
                }
            }
            for r in refs {
                let r = self.lexer.word(&r, &vars).unwrap_or(r);
                if let Some(dep) = self.stage_ref(&r, i) {
                    todo.push(dep);
                } else if self.stages[i..]
                    .iter()
                    .any(|s| s.name == r.to_ascii_lowercase())
                    && r != self.stages[i].base
                {
                    return Err(Error::Invalid(format!(
                        "stage {r:?} is used before it is defined (circular dependency?)"
                    )));
                }
            }
        }
        Ok(need.into_iter().collect())
    }

    pub(crate) fn next_step(&mut self, name: &str) -> usize {
        self.next_id += 1;
        self.progress.step(self.next_id, name);
        self.next_id
    }

    fn warn_unused_args(&mut self) {
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !self.used_args.contains(*k)
                    && !self.globals.contains_key(*k)
                    && !crate::stage::PROXY_ARGS.contains(&k.as_str())
            })
            .collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.progress.warn(&format!(
                "One or more build-args [{}] were not consumed",
                list.join(" ")
            ));
        }
    }

    /// The stage's config and layers as an image in the store, under every tag.
    fn write_image(&mut self, mut state: State) -> Result<Built> {
        for (k, v) in &self.opts.labels {
            state.config.config.labels.insert(k.clone(), v.clone());
        }
        state.config.created = Some(state.time.clone());
        state.config.rootfs.diff_ids = state.layers.iter().map(|l| l.diff_id.to_string()).collect();
        let config = serde_json::to_vec(&state.config)
            .map_err(|e| Error::Invalid(format!("image config: {e}")))?;
        let config_digest = self.store.put_blob("image config", None, &config)?;
        let layers: Vec<Descriptor> = state.layers.iter().map(|l| l.blob.clone()).collect();
        let desc = berth_image::archive::write_manifest(
            &self.store,
            &config_digest,
            config.len() as u64,
            &layers,
        )?;
        if self.opts.tags.is_empty() {
            self.store.commit_image(&desc, None, None)?;
        }
        for tag in &self.opts.tags {
            self.store.commit_image(&desc, Some(tag), None)?;
        }
        Ok(Built {
            image_id: config_digest,
            manifest: desc,
        })
    }
}
