//! One stage: its base (an image, an earlier stage or scratch), the base's ONBUILD triggers,
//! then each instruction: config-only ones applied here, the ones that make layers in
//! `steps.rs`.

use berth_image::registry::pull::{pull, PullOptions};
use berth_image::{Platform, Reference};

use crate::builder::{Builder, State};
use crate::cache::{key, Layer};
use crate::config::{Empty, HealthConfig, ImageConfig};
use crate::error::{Error, Result};
use crate::instruction::{self, Command, Instruction, Kind};

/// The PATH of an image whose base has none, as BuildKit sets it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Proxy variables every RUN sees when given as build args, declared or not (BuildKit's
/// predefined ARGs); they stay out of the cache key and the history.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Builder<'_> {
    pub(crate) fn build_stage(&mut self, index: usize) -> Result<State> {
        let (name, base_raw, platform, line, steps) = {
            let d = &self.stages[index];
            (
                d.name.clone(),
                d.base.clone(),
                d.platform.clone(),
                d.line,
                d.steps.clone(),
            )
        };
        let total = steps.len() + 1;
        // BuildKit's step names: `[2/5]` alone, `[builder 2/5]` or `[stage-1 2/5]` in several.
        let name = match (self.stages.len(), name.parse::<usize>()) {
            (1, _) => String::new(),
            (_, Ok(n)) => format!("stage-{n} "),
            _ => format!("{name} "),
        };
        let base = self
            .lexer
            .word(&base_raw, &self.global_vars())
            .map_err(|e| self.syntax(line, e))?;
        let id = self.next_step(&format!("[{name}1/{total}] FROM {base}"));
        let mut state = self.base(index, &base, platform.as_deref(), line)?;
        self.progress.done(id);
        let triggers = std::mem::take(&mut state.config.config.on_build);
        for (i, trigger) in triggers.iter().enumerate() {
            let df = crate::parser::parse(&self.file, trigger)?;
            for node in &df.nodes {
                let ins = instruction::parse(node)
                    .map_err(|m| self.syntax(line, format!("ONBUILD trigger {trigger:?}: {m}")))?;
                let label = format!(
                    "[{name}1/{total}] ONBUILD {} ({}/{})",
                    ins.text,
                    i + 1,
                    triggers.len()
                );
                self.dispatch(&mut state, index, &ins, &label)?;
            }
        }
        for (i, step) in steps.iter().enumerate() {
            let label = format!("[{name}{}/{total}] {}", i + 2, step.text);
            self.check_cancelled()?;
            self.dispatch(&mut state, index, step, &label)?;
        }
        Ok(state)
    }

    /// `--platform` (FROM's, expanded, or the command line's): berth builds for the host
    /// only, so another platform is ignored with a warning rather than emulated.
    pub(crate) fn check_platform(&mut self, what: &str, platform: &str, line: usize) -> Result<()> {
        let text = self
            .lexer
            .word(platform, &self.global_vars())
            .map_err(|e| self.syntax(line, e))?;
        let host = Platform::host();
        if Platform::parse(&text)? != host {
            self.progress.warn(&format!(
                "{what}={text}: berth builds for the host's platform, {host}; the flag is ignored"
            ));
        }
        Ok(())
    }

    /// The stage's starting state.
    fn base(
        &mut self,
        index: usize,
        base: &str,
        platform: Option<&str>,
        line: usize,
    ) -> Result<State> {
        let time = self.opts.source_date_epoch.map(rfc3339);
        if base == "scratch" {
            let mut config = ImageConfig::scratch();
            config.set_env("PATH", DEFAULT_PATH);
            return Ok(State {
                config,
                layers: Vec::new(),
                key: key("", &[b"scratch"]),
                args: Vec::new(),
                time: time.unwrap_or_else(|| rfc3339(now())),
                cmd_set: false,
            });
        }
        if let Some(dep) = self.stage_ref(base, index) {
            let mut state = self
                .built
                .get(&dep)
                .cloned()
                .ok_or_else(|| self.syntax(line, format!("stage {base:?} was not built")))?;
            state.args.clear();
            state.cmd_set = false;
            state.key = key(&state.key, &[b"FROM stage"]);
            return Ok(state);
        }
        if let Some(p) = platform {
            self.check_platform("FROM --platform", p, line)?;
        }
        let (mut config, layers, image_id) = self.image(base)?;
        // BuildKit gives every image a PATH: the base's, else the default one.
        if config.env("PATH").is_none() {
            config.set_env("PATH", DEFAULT_PATH);
        }
        let time = time
            .or_else(|| config.created.clone())
            .unwrap_or_else(|| rfc3339(0));
        Ok(State {
            key: key("", &[b"FROM", image_id.as_bytes()]),
            config,
            layers,
            args: Vec::new(),
            time,
            cmd_set: false,
        })
    }

    /// An image from the store, pulled if it is not there (or always with `--pull`): its config,
    /// layers and ID.
    pub(crate) fn image(&mut self, name: &str) -> Result<(ImageConfig, Vec<Layer>, String)> {
        let reference = Reference::parse(name)?;
        let local = self.store.find(&reference)?;
        let image = match local {
            Some(image) if !self.opts.pull => image,
            local => {
                let options = PullOptions {
                    platform: Platform::host(),
                    registry: self.opts.registry.clone(),
                    ..PullOptions::default()
                };
                match pull(&self.store, &reference, &options, &berth_image::progress::Silent) {
                    Ok(image) => image,
                    Err(e) => match local {
                        Some(image) => {
                            self.progress.warn(&format!("--pull: {e}; using the local {name}"));
                            image
                        }
                        None => return Err(Error::Invalid(format!("FROM {name}: the image is not in berth's store and pulling it failed: {e}"))),
                    },
                }
            }
        };
        let config: ImageConfig = serde_json::from_slice(&image.config_raw)
            .map_err(|e| Error::Invalid(format!("image {name}: config: {e}")))?;
        let diff_ids = image.diff_ids()?;
        let layers = image
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(blob, diff_id)| Layer {
                blob: blob.clone(),
                diff_id,
            })
            .collect();
        Ok((config, layers, image.id().to_string()))
    }

    /// Applies one instruction to the stage: a layer step, or a change to the config that
    /// leaves an empty layer in the history.
    pub(crate) fn dispatch(
        &mut self,
        st: &mut State,
        stage: usize,
        ins: &Instruction,
        label: &str,
    ) -> Result<()> {
        match &ins.kind {
            Kind::Run { .. } | Kind::Copy(_) => return self.layer_step(st, stage, ins, label),
            Kind::Workdir(dir) => {
                let dir = self.expand(st, ins.line, dir)?;
                let path = match dir.starts_with('/') {
                    true => dir,
                    false => format!("{}/{dir}", st.config.config.working_dir),
                };
                st.config.config.working_dir = clean_path(&path);
                return self.layer_step(st, stage, ins, label);
            }
            // `split` makes each FROM a stage of its own.
            Kind::From { .. } => return Err(self.syntax(ins.line, "FROM inside a stage")),
            _ => {}
        }
        self.progress.config(label);
        let history = self.config_step(st, ins)?;
        st.key = key(&st.key, &[history.as_bytes()]);
        st.config.add_history(&st.time, history, true);
        Ok(())
    }

    /// `text` with the stage's variables expanded, as one word.
    pub(crate) fn expand(&self, st: &State, line: usize, text: &str) -> Result<String> {
        self.lexer
            .word(text, &st.vars())
            .map_err(|e| self.syntax(line, e))
    }

    /// An instruction that only changes the config; its history line.
    fn config_step(&mut self, st: &mut State, ins: &Instruction) -> Result<String> {
        let line = ins.line;
        Ok(match &ins.kind {
            Kind::Env(pairs) => {
                let pairs = self.expand_pairs(st, line, pairs)?;
                for (k, v) in &pairs {
                    if k.is_empty() {
                        return Err(self.syntax(line, "ENV names can not be blank"));
                    }
                    st.config.set_env(k, v);
                }
                format!("ENV {}", joined(&pairs))
            }
            Kind::Label(pairs) => {
                let pairs = self.expand_pairs(st, line, pairs)?;
                st.config.config.labels.extend(pairs.iter().cloned());
                format!("LABEL {}", joined(&pairs))
            }
            Kind::Arg(pairs) => self.arg_step(st, line, pairs)?,
            Kind::Expose(ports) => self.expose_step(st, line, ports)?,
            Kind::Volume(vols) => {
                let mut list = Vec::new();
                for v in vols {
                    let v = self.expand(st, line, v)?;
                    if v.trim().is_empty() {
                        return Err(
                            self.syntax(line, "VOLUME specified can not be an empty string")
                        );
                    }
                    st.config.config.volumes.insert(v.clone(), Empty {});
                    list.push(v);
                }
                format!("VOLUME [{}]", list.join(" "))
            }
            Kind::User(u) => {
                let user = self.expand(st, line, u)?;
                st.config.config.user = user.clone();
                format!("USER {user}")
            }
            Kind::StopSignal(s) => {
                let s = self.expand(st, line, s)?;
                if berth_sys::signal::SignalNumber::parse(&s).is_none() {
                    return Err(self.syntax(line, format!("STOPSIGNAL: invalid signal {s:?}")));
                }
                st.config.config.stop_signal = s.clone();
                format!("STOPSIGNAL {s}")
            }
            Kind::Cmd(c) => {
                let args = self.command_args(st, c);
                st.cmd_set = true;
                st.config.config.cmd = Some(args.clone());
                st.config.config.args_escaped = false;
                format!("CMD {}", go_quoted(&args))
            }
            Kind::Entrypoint(c) => {
                let args = self.command_args(st, c);
                // Docker: an ENTRYPOINT drops the CMD inherited from the base, not one set in
                // this stage.
                if !st.cmd_set {
                    st.config.config.cmd = None;
                }
                st.config.config.entrypoint = Some(args.clone());
                format!("ENTRYPOINT {}", go_quoted(&args))
            }
            Kind::Shell(s) => {
                st.config.config.shell = s.clone();
                format!("SHELL [{}]", s.join(" "))
            }
            Kind::Healthcheck(h) => {
                let hc = HealthConfig {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                };
                let history = format!(
                    "HEALTHCHECK &{{{} {:?} {:?} {:?} {:?} {}}}",
                    go_quoted(&hc.test),
                    hc.interval,
                    hc.timeout,
                    hc.start_period,
                    hc.start_interval,
                    hc.retries
                );
                st.config.config.healthcheck = Some(hc);
                history
            }
            Kind::Onbuild(t) => {
                st.config.config.on_build.push(t.clone());
                format!("ONBUILD {t}")
            }
            Kind::Maintainer(m) => {
                st.config.author = Some(m.clone());
                format!("MAINTAINER {m}")
            }
            Kind::Run { .. } | Kind::Copy(_) | Kind::Workdir(_) | Kind::From { .. } => {
                return Err(self.syntax(line, "not an instruction of the config"))
            }
        })
    }

    /// ENV's and LABEL's name/value words, expanded.
    fn expand_pairs(
        &self,
        st: &State,
        line: usize,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.expand(st, line, k)?, self.expand(st, line, v)?)))
            .collect()
    }

    /// ARG: a --build-arg, else the default, else a global ARG of the same name.
    fn arg_step(
        &mut self,
        st: &mut State,
        line: usize,
        pairs: &[(String, Option<String>)],
    ) -> Result<String> {
        let mut parts = Vec::new();
        for (k, default) in pairs {
            let value = match (self.opts.build_args.get(k), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(self.expand(st, line, d)?),
                (None, None) => self.globals.get(k).cloned().flatten(),
            };
            self.used_args.insert(k.clone());
            parts.push(match &value {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            });
            st.set_arg(k, value);
        }
        Ok(format!("ARG {}", parts.join(" ")))
    }

    /// EXPOSE: each port, `/tcp` unless a protocol is given, the protocol lower-cased.
    fn expose_step(&self, st: &mut State, line: usize, ports: &[String]) -> Result<String> {
        let vars = st.vars();
        let mut list = Vec::new();
        for p in ports {
            for p in self
                .lexer
                .words(p, &vars)
                .map_err(|e| self.syntax(line, e))?
            {
                let p = match p.contains('/') {
                    true => p.to_ascii_lowercase(),
                    false => format!("{p}/tcp"),
                };
                st.config.config.exposed_ports.insert(p.clone(), Empty {});
                list.push(format!("{p}:{{}}"));
            }
        }
        Ok(format!("EXPOSE map[{}]", list.join(" ")))
    }

    /// CMD/ENTRYPOINT/RUN arguments: the exec form as is, the shell form through SHELL.
    pub(crate) fn command_args(&self, st: &State, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(list) => list.clone(),
            Command::Shell(s) => {
                let mut shell = if st.config.config.shell.is_empty() {
                    vec!["/bin/sh".into(), "-c".into()]
                } else {
                    st.config.config.shell.clone()
                };
                shell.push(s.clone());
                shell
            }
        }
    }
}

/// `k=v k2=v2`.
fn joined(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

/// Go's `%q` of a string slice: `["a" "b"]`, as BuildKit writes CMD and ENTRYPOINT history.
fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// Lexically cleaned absolute path.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    format!("/{}", out.join("/"))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
