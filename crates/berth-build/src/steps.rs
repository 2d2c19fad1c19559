//! The steps that make a layer (RUN, COPY and ADD, WORKDIR): each one's cache key, a hit taken
//! from the cache, or a miss done on an overlay of the stage's layers whose upper directory
//! becomes the layer (berth-image's `diff.rs`).

use std::path::{Path, PathBuf};

use berth_image::diff::{store_upper, LayerOptions};

use crate::builder::{Builder, State};
use crate::cache::{key, Layer, Record};
use crate::container::StepDir;
use crate::copy::{CopyPlan, Origin};
use crate::error::{Error, Result};
use crate::fsops::{Owner, Root};
use crate::instruction::{Instruction, Kind};
use crate::run::{RunInstruction, RunPlan};
use crate::stage::{now, rfc3339};

/// What a layer step does, once it is known not to be in the cache.
pub(crate) enum Action {
    Run(Box<RunPlan>),
    Copy(CopyPlan),
    Workdir,
}

/// A step's history line, what else its key depends on, and what it does.
pub(crate) struct Plan {
    pub history: String,
    pub key_parts: Vec<Vec<u8>>,
    pub action: Action,
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
            } => {
                let run = RunInstruction {
                    command,
                    mounts,
                    network: network.as_deref(),
                    heredocs,
                };
                self.plan_run(st, stage, ins.line, &run)?
            }
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
                    description: Some(plan.history.clone()),
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
            Action::Run(run) => self.run_step(&step, stage, *run, id)?,
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
