//! RUN: its process (the shell and exec forms, heredocs), its network and `--mount`s, the
//! environment the stage's ARGs give it, its history line as BuildKit writes it, and the step
//! itself, a container of berth-runtime over the stage's layers.

use std::path::PathBuf;

use berth_engine::request::MountRequest;

use crate::builder::{Builder, State};
use crate::container::{self, Network, RunSpec, StepDir};
use crate::error::{Error, Result};
use crate::instruction::Command;
use crate::mounts::{self, MountKind, MountSpec};
use crate::parser::{heredoc_markers, raw_words, Heredoc};
use crate::stage::PROXY_ARGS;
use crate::steps::{Action, Plan};

/// A RUN step ready to go.
pub(crate) struct RunPlan {
    spec: RunSpec,
    /// For the error of a failing step: the process's arguments, as BuildKit quotes them.
    shown: String,
    mounts: Vec<MountSpec>,
    /// `RUN <<EOF` with a `#!` script: the file to mount at /dev/pipes/<name>.
    script: Option<(String, String)>,
}

/// A RUN as written: its command, `--mount`s, `--network` and heredocs.
pub(crate) struct RunInstruction<'a> {
    pub command: &'a Command,
    pub mounts: &'a [String],
    pub network: Option<&'a str>,
    pub heredocs: &'a [Heredoc],
}

impl Builder<'_> {
    /// The RUN's plan; its key parts are the network, the mounts (a bind's content with
    /// them) and a heredoc script's content: the rest is in the history line.
    pub(crate) fn plan_run(
        &mut self,
        st: &State,
        stage: usize,
        line: usize,
        run: &RunInstruction,
    ) -> Result<Plan> {
        let (args, script) = self.run_args(st, run.command, run.heredocs);
        let network = match run.network {
            None => self.opts.network.unwrap_or(Network::Bridge),
            Some(n) => {
                let n = self.expand(st, line, n)?;
                Network::parse(&n).ok_or_else(|| {
                    self.syntax(
                        line,
                        format!("RUN --network={n}: use default, none or host"),
                    )
                })?
            }
        };
        let mut key_parts = vec![format!("network={network:?}").into_bytes()];
        // Only what is given, so that a build without these keeps its cache.
        let steps = &self.opts.steps;
        for host in &steps.add_hosts {
            key_parts.push(format!("add-host={host}").into_bytes());
        }
        if let Some(size) = steps.shm_size {
            key_parts.push(format!("shm-size={size}").into_bytes());
        }
        for u in &steps.ulimits {
            key_parts.push(format!("ulimit={}={}:{}", u.name, u.soft, u.hard).into_bytes());
        }
        let mut mounts = Vec::new();
        for flag in run.mounts {
            let text = self.expand(st, line, flag)?;
            let m = mounts::parse(&text).map_err(|e| self.syntax(line, e.to_string()))?;
            key_parts.push(text.into_bytes());
            if m.kind == MountKind::Bind {
                key_parts.push(self.bind_source_digest(&m, stage)?);
            }
            mounts.push(m);
        }
        if let Some((name, content)) = &script {
            key_parts.push(format!("{name}\0{content}").into_bytes());
        }
        let process = args.join(" ");
        let build_args = build_args_shown(st);
        let shown = match build_args.is_empty() {
            true => process.clone(),
            false => format!("|{} {} {process}", build_args.len(), build_args.join(" ")),
        };
        let spec = RunSpec {
            id: String::new(),
            args,
            env: self.run_env(st),
            cwd: st.config.config.working_dir.clone(),
            user: st.config.config.user.clone(),
            network,
            mounts: Vec::new(),
            options: self.opts.steps.clone(),
        };
        Ok(Plan {
            history: format!("RUN {shown} # buildkit"),
            key_parts,
            action: Action::Run(Box::new(RunPlan {
                spec,
                shown: process,
                mounts,
                script,
            })),
        })
    }

    /// The process's arguments, and a `#!` heredoc's script (name, content). BuildKit's rules:
    /// `RUN <<EOF` alone runs the body through the shell, or as a file if it starts with `#!`;
    /// any other use of heredocs gives the shell the whole text, bodies and terminators.
    fn run_args(
        &self,
        st: &State,
        command: &Command,
        heredocs: &[Heredoc],
    ) -> (Vec<String>, Option<(String, String)>) {
        match (command, heredocs) {
            (Command::Shell(text), [doc])
                if raw_words(text).len() == 1 && heredoc_markers(text).len() == 1 =>
            {
                if doc.content.starts_with("#!") {
                    let script = (doc.name.clone(), doc.content.clone());
                    (vec![format!("/dev/pipes/{}", doc.name)], Some(script))
                } else {
                    (
                        self.command_args(st, &Command::Shell(doc.content.clone())),
                        None,
                    )
                }
            }
            (Command::Shell(text), docs) if !docs.is_empty() => {
                let mut full = text.clone();
                for d in docs {
                    full.push('\n');
                    full.push_str(&d.content);
                    full.push_str(&d.name);
                }
                (self.command_args(st, &Command::Shell(full)), None)
            }
            _ => (self.command_args(st, command), None),
        }
    }

    /// The stage's Env, its ARGs with values that no ENV hides, and the proxy build args.
    fn run_env(&self, st: &State) -> Vec<String> {
        let mut env = st.config.config.env.clone();
        for (k, v) in &st.args {
            if let (Some(v), None) = (v, st.config.env(k)) {
                env.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            let declared = st.args.iter().any(|(k, _)| k == p);
            if let (Some(v), false) = (self.opts.build_args.get(p), declared) {
                env.push(format!("{p}={v}"));
            }
        }
        env
    }

    /// For the key of a RUN with `--mount=type=bind`: what the bound tree holds.
    fn bind_source_digest(&mut self, m: &MountSpec, stage: usize) -> Result<Vec<u8>> {
        match &m.from {
            Some(from) => {
                let origin = self.origin(from, stage)?;
                Ok(self.origin_identity(&origin).into_bytes())
            }
            None => self.context_digest(&[bind_source_path(m).to_string()]),
        }
    }

    /// Runs the step's container with its mounts; a non-zero exit is an error.
    pub(crate) fn run_step(
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
        let source = bind_source_path(m);
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
}

/// A bind mount's source: the root of its context or stage when not given.
fn bind_source_path(m: &MountSpec) -> &str {
    match m.source.as_str() {
        "" => ".",
        s => s,
    }
}

/// The stage's ARGs as BuildKit writes them before a RUN's command (`|2 A=1 B=2 ...`): each
/// with its value, an ENV of the same name winning.
fn build_args_shown(st: &State) -> Vec<String> {
    st.args
        .iter()
        .map(|(k, v)| {
            let value = st.config.env(k).map(String::from).or_else(|| v.clone());
            format!("{k}={}", value.unwrap_or_default())
        })
        .collect()
}
