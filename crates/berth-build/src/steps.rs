//! The steps that make a layer (RUN, COPY and ADD, WORKDIR): each one's cache key, a hit taken
//! from the cache, or a miss done on an overlay of the stage's layers whose upper directory
//! becomes the layer (berth-image's `diff.rs`).

use std::path::{Path, PathBuf};

use berth_engine::request::MountRequest;
use berth_image::diff::{store_upper, LayerOptions};
use sha2::{Digest as _, Sha256};

use crate::builder::{Builder, State};
use crate::cache::{key, Layer, Record};
use crate::container::{self, Network, RunSpec, StepDir};
use crate::copy::{CopyPlan, Origin};
use crate::error::{Error, Result};
use crate::fsops::{Owner, Root};
use crate::instruction::{Command, Instruction, Kind};
use crate::mounts::{self, MountKind, MountSpec};
use crate::parser::{heredoc_markers, raw_words, Heredoc};
use crate::stage::{now, rfc3339, PROXY_ARGS};

/// What a layer step does, once it is known not to be in the cache.
enum Action {
    Run(RunPlan),
    Copy(CopyPlan),
    Workdir,
}

struct RunPlan {
    spec: RunSpec,
    /// For the error of a failing step: the process's arguments, as BuildKit quotes them.
    shown: String,
    mounts: Vec<MountSpec>,
    /// `RUN <<EOF` with a `#!` script: the file to mount at /dev/pipes/<name>.
    script: Option<(String, String)>,
}

/// A step's history line, what else its key depends on, and what it does.
struct Plan {
    history: String,
    key_parts: Vec<Vec<u8>>,
    action: Action,
}

impl Builder<'_> {
    /// RUN, COPY, ADD or WORKDIR: from the cache when its key is there, else done and cached.
    pub(crate) fn layer_step(
        &mut self,
        st: &mut State,
        stage: usize,
        ins: &Instruction,
        label: &str,
    ) -> Result<()> {
        let id = self.next_step(label);
        let plan = match &ins.kind {
            Kind::Run {
                command,
                mounts,
                network,
                heredocs,
            } => self.plan_run(
                st,
                stage,
                ins.line,
                command,
                mounts,
                network.as_deref(),
                heredocs,
            )?,
            Kind::Copy(c) => {
                let (copy, history, key_parts) = self.copy_plan(st, stage, ins.line, c)?;
                Plan {
                    history,
                    key_parts,
                    action: Action::Copy(copy),
                }
            }
            Kind::Workdir(_) => Plan {
                history: format!("WORKDIR {}", st.config.config.working_dir),
                key_parts: Vec::new(),
                action: Action::Workdir,
            },
            _ => return Err(self.syntax(ins.line, "not a step that makes a layer")),
        };
        let mut parts: Vec<&[u8]> = vec![plan.history.as_bytes()];
        parts.extend(plan.key_parts.iter().map(Vec::as_slice));
        let step_key = key(&st.key, &parts);
        let cached = match self.opts.no_cache {
            true => None,
            false => self.cache.get(&step_key),
        };
        let record = match cached {
            Some(record) => {
                self.progress.cached(id);
                record
            }
            None => {
                self.check_cancelled()?;
                let layer = self.execute(st, stage, plan.action, id)?;
                let record = Record {
                    layer,
                    created: self.timestamp(),
                };
                self.cache.put(&step_key, &record)?;
                self.progress.done(id);
                record
            }
        };
        st.key = step_key;
        st.time = record.created.clone();
        let empty = record.layer.is_none();
        st.layers.extend(record.layer);
        st.config.add_history(&record.created, plan.history, empty);
        Ok(())
    }

    /// When a new layer is made: SOURCE_DATE_EPOCH, else now.
    fn timestamp(&self) -> String {
        rfc3339(self.opts.source_date_epoch.unwrap_or_else(now))
    }

    /// Mounts the stage's layers with a new upper directory, does the step, and stores the
    /// upper directory as a layer (none if the step changed nothing).
    fn execute(
        &mut self,
        st: &State,
        stage: usize,
        action: Action,
        id: usize,
    ) -> Result<Option<Layer>> {
        let lowers = self.lower_dirs(&st.layers)?;
        let mut step = StepDir::mount(self.tmp.path().join(format!("step-{id}")), &lowers)?;
        match action {
            Action::Run(run) => self.run_step(&step, stage, run, id)?,
            Action::Copy(plan) => self.copy_step(&step, &plan)?,
            Action::Workdir => {
                let root = Root::open(&step.rootfs()).map_err(Error::io("open", step.rootfs()))?;
                let owner = self.owner(&step.rootfs(), &st.config.config.user)?;
                let dir = &st.config.config.working_dir;
                root.mkdir_all(
                    Path::new(dir),
                    owner,
                    self.opts.source_date_epoch.unwrap_or_else(now),
                )
                .map_err(Error::io("create the working directory", dir))?;
            }
        }
        step.unmount()?;
        crate::stubs::prune_unchanged(&step.upper(), &lowers);
        let opts = LayerOptions {
            compression: self.opts.compression,
            clamp_mtime: self.opts.source_date_epoch,
        };
        let new = store_upper(&self.store, &step.upper(), &opts)?;
        Ok(new.map(|n| Layer {
            blob: n.blob,
            diff_id: n.diff_id,
        }))
    }

    /// The unpacked directories of `layers`, top first, unpacked from their blobs if need be;
    /// a layer that comes twice only at its topmost place (see `Store::layers_of`).
    pub(crate) fn lower_dirs(&self, layers: &[Layer]) -> Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for l in layers.iter().rev() {
            self.store.ensure_layer(l.blob.digest(), &l.diff_id)?;
            let dir = self.store.layer_dir(&l.diff_id).join("diff");
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }

    /// `user[:group]` as the owner of what a step makes, looked up in `rootfs`. Docker's rule
    /// for `--chown` and WORKDIR: a user without a group gets the group of the same number.
    pub(crate) fn owner(&self, rootfs: &Path, spec: &str) -> Result<Owner> {
        if spec.is_empty() {
            return Ok(Owner::default());
        }
        let user = berth_engine::spec::resolve_user(rootfs, spec, &[]).map_err(|e| {
            Error::Invalid(format!(
                "unable to convert uid/gid chown string to host mapping: {e}"
            ))
        })?;
        let gid = if spec.contains(':') {
            user.gid
        } else {
            user.uid
        };
        Ok(Owner { uid: user.uid, gid })
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_run(
        &mut self,
        st: &State,
        stage: usize,
        line: usize,
        command: &Command,
        mount_flags: &[String],
        network: Option<&str>,
        heredocs: &[Heredoc],
    ) -> Result<Plan> {
        let vars = st.vars();
        let mut script = None;
        let args = match (command, heredocs) {
            (Command::Shell(text), [doc])
                if raw_words(text).len() == 1 && heredoc_markers(text).len() == 1 =>
            {
                if doc.content.starts_with("#!") {
                    script = Some((doc.name.clone(), doc.content.clone()));
                    vec![format!("/dev/pipes/{}", doc.name)]
                } else {
                    self.command_args(st, &Command::Shell(doc.content.clone()))
                }
            }
            (Command::Shell(text), docs) if !docs.is_empty() => {
                let mut full = text.clone();
                for d in docs {
                    full.push('\n');
                    full.push_str(&d.content);
                    full.push_str(&d.name);
                }
                self.command_args(st, &Command::Shell(full))
            }
            _ => self.command_args(st, command),
        };
        let network = match network {
            None => self.opts.network.unwrap_or(Network::Bridge),
            Some(n) => {
                let n = self
                    .lexer
                    .word(n, &vars)
                    .map_err(|e| self.syntax(line, e))?;
                Network::parse(&n).ok_or_else(|| {
                    self.syntax(
                        line,
                        format!("RUN --network={n}: use default, none or host"),
                    )
                })?
            }
        };
        let mut mounts = Vec::new();
        let mut key_parts = vec![format!("network={network:?}").into_bytes()];
        for flag in mount_flags {
            let text = self
                .lexer
                .word(flag, &vars)
                .map_err(|e| self.syntax(line, e))?;
            let m = mounts::parse(&text).map_err(|e| self.syntax(line, e.to_string()))?;
            key_parts.push(text.into_bytes());
            if m.kind == MountKind::Bind {
                key_parts.push(self.bind_source_digest(&m, stage)?);
            }
            mounts.push(m);
        }
        // The stage's ARGs, as BuildKit writes them before the command: `|2 A=1 B=2 ...`.
        let mut build_env = Vec::new();
        for (k, v) in &st.args {
            let value = st
                .config
                .env(k)
                .map(String::from)
                .or_else(|| v.clone())
                .unwrap_or_default();
            build_env.push(format!("{k}={value}"));
        }
        let process = args.join(" ");
        let mut shown = process.clone();
        if !build_env.is_empty() {
            shown = format!("|{} {} {shown}", build_env.len(), build_env.join(" "));
        }
        let mut env = st.config.config.env.clone();
        for (k, v) in &st.args {
            if let (Some(v), None) = (v, st.config.env(k)) {
                env.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(p) {
                if !st.args.iter().any(|(k, _)| k == p) {
                    env.push(format!("{p}={v}"));
                }
            }
        }
        if let Some((name, content)) = &script {
            key_parts.push(format!("{name}\0{content}").into_bytes());
        }
        Ok(Plan {
            history: format!("RUN {shown} # buildkit"),
            key_parts,
            action: Action::Run(RunPlan {
                spec: RunSpec {
                    id: String::new(),
                    args,
                    env,
                    cwd: st.config.config.working_dir.clone(),
                    user: st.config.config.user.clone(),
                    network,
                    mounts: Vec::new(),
                },
                shown: process,
                mounts,
                script,
            }),
        })
    }

    /// For the key of a RUN with `--mount=type=bind`: what the bound tree holds.
    fn bind_source_digest(&mut self, m: &MountSpec, stage: usize) -> Result<Vec<u8>> {
        match &m.from {
            Some(from) => {
                let origin = self.origin(from, stage)?;
                Ok(self.origin_identity(&origin).into_bytes())
            }
            None => {
                let mut hasher = Sha256::new();
                let source = if m.source.is_empty() {
                    "."
                } else {
                    m.source.as_str()
                };
                for s in
                    crate::context::sources(&self.context.root, source, Some(&self.context.ignore))?
                {
                    hasher.update(s.rel.as_bytes());
                    let ctx = self.context;
                    crate::context::digest_tree(&mut hasher, &s.host, &mut self.stats, &|p| {
                        ctx.skips(p)
                    })?;
                }
                Ok(hasher.finalize().to_vec())
            }
        }
    }

    fn run_step(
        &mut self,
        step: &StepDir,
        stage: usize,
        mut run: RunPlan,
        id: usize,
    ) -> Result<()> {
        run.spec.id = format!("{}-{id}", self.tmp.name());
        let mut held = Vec::new();
        for (n, m) in run.mounts.iter().enumerate() {
            let prepared = match m.kind {
                MountKind::Cache => mounts::cache_mount(&self.engine.root, m)?,
                MountKind::Secret => mounts::secret_mount(&step.dir, m, &self.opts.secrets)?,
                MountKind::Tmpfs => mounts::tmpfs_mount(m),
                MountKind::Bind => {
                    let host = self.bind_source(m, stage)?;
                    mounts::bind_mount(&step.dir, m, &host, n)?
                }
            };
            run.spec.mounts.extend(prepared.mount.clone());
            held.push(prepared);
        }
        if let Some((name, content)) = &run.script {
            let path = step.dir.join(format!("script-{name}"));
            std::fs::write(&path, content).map_err(Error::io("write", &path))?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(Error::io("chmod", &path))?;
            run.spec.mounts.push(MountRequest {
                kind: "bind".into(),
                source: path.to_string_lossy().into_owned(),
                target: format!("/dev/pipes/{name}"),
                read_only: true,
                options: Vec::new(),
            });
        }
        let progress = &mut *self.progress;
        let cancel = self.cancel;
        let code = container::run(self.engine, step, &run.spec, cancel, &mut |bytes| {
            progress.output(id, bytes)
        })?;
        drop(held);
        if code != 0 {
            return Err(Error::RunFailed {
                command: run.shown,
                code,
            });
        }
        Ok(())
    }

    /// The host directory a bind mount's source names: in the context, or in a stage or image.
    fn bind_source(&mut self, m: &MountSpec, stage: usize) -> Result<PathBuf> {
        let source = if m.source.is_empty() {
            "."
        } else {
            m.source.as_str()
        };
        let found = match &m.from {
            None => {
                crate::context::sources(&self.context.root, source, Some(&self.context.ignore))?
            }
            Some(from) => {
                let origin = self.origin(from, stage)?;
                let root = self.origin_root(&origin)?;
                crate::context::sources(&root, source, None)?
            }
        };
        match found.as_slice() {
            [one] => Ok(one.host.clone()),
            _ => Err(Error::Invalid(format!(
                "--mount={}: the source must name one path",
                m.text
            ))),
        }
    }

    /// Where a COPY --from or a bind mount's `from=` takes its files: a stage by name or number
    /// (only earlier ones), else an image.
    pub(crate) fn origin(&mut self, from: &str, stage: usize) -> Result<Origin> {
        if let Some(dep) = self.stage_ref(from, stage) {
            let state = self
                .built
                .get(&dep)
                .ok_or_else(|| Error::Invalid(format!("stage {from:?} was not built")))?;
            return Ok(Origin::Layers(state.layers.clone()));
        }
        if self.stages[stage..]
            .iter()
            .any(|s| s.name == from.to_ascii_lowercase())
        {
            return Err(Error::Invalid(format!(
                "COPY --from={from}: the stage is defined later; a step can only use stages before its own"
            )));
        }
        let (_, layers, _) = self.image(from)?;
        Ok(Origin::Layers(layers))
    }

    /// What identifies an origin's files for the cache: its layers' diff IDs.
    pub(crate) fn origin_identity(&self, origin: &Origin) -> String {
        match origin {
            Origin::Context => "context".into(),
            Origin::Layers(layers) => layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}
