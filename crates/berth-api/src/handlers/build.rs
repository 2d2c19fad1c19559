//! `POST /build`, the legacy builder's endpoint (what `DOCKER_BUILDKIT=0 docker build`,
//! docker-py's `images.build` and compose's `build:` call), and `POST /build/prune`. The body is the context, a tar
//! (gzip or zstd compressed, told by its magic); the answer is Docker's JSON stream: `Step 2/5
//! : RUN ...`, the steps' output, `{"aux":{"ID":...}}`, `Successfully built` and `tagged`.
//!
//! The build runs in a child, `berth build --events -` with the body on its stdin, never in
//! this process: its RUN steps fork containers through the runtime, which a threaded process
//! must not do, and from the read-only view of the binary (CVE-2019-5736), which the child's
//! own start arranges as the CLI's build does. The child unpacks the context into a directory
//! of its own, confined to it, and removes it; it stops cleanly (its step's container, its
//! overlays) on SIGTERM, which it gets when the client goes away.

use std::io::{BufReader, Read};
use std::ops::ControlFlow::{Break, Continue};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use berth_build::events::{self, End};
use berth_build::Progress;
use berth_image::Reference;
use serde_json::json;

use super::images::stream::{self, BodyReader, Out};
use super::Routed;
use crate::error::ApiError;
use crate::handlers::State;
use crate::respond::{self, Reply};
use crate::router::{Call, Query};

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    match (call.method.as_str(), call.path().as_slice()) {
        ("POST", ["build"]) => Break(build(state, &mut call).await),
        ("POST", ["build", "prune"]) => Break(prune(state, &call).await),
        _ => Continue(call),
    }
}

/// `POST /build/prune`: the whole cache (berth cannot tell a record in use, so `all` or not
/// is the same); filters and storage limits, which would keep some, are not supported.
async fn prune(state: &Arc<State>, call: &Call) -> Reply {
    let filters = crate::filters::Filters::of(&call.query)?.pairs();
    let limits = [
        "keep-storage",
        "reserved-space",
        "max-used-space",
        "min-free-space",
    ];
    let limited = limits
        .iter()
        .any(|l| call.query.get(l).is_some_and(|v| !v.is_empty() && v != "0"));
    if !filters.is_empty() || limited {
        return Err(ApiError::not_implemented(
            "berth prunes the whole build cache: filters and storage limits are not supported",
        ));
    }
    let pruned = state
        .blocking(|s| Ok(berth_engine::build_cache::prune(&s.engine.root)?))
        .await?;
    let deleted = match pruned.ids.is_empty() {
        true => serde_json::Value::Null,
        false => json!(pruned.ids),
    };
    respond::json(
        200,
        &json!({"CachesDeleted": deleted, "SpaceReclaimed": pruned.bytes}),
    )
}

/// What the child is asked, and what the stream needs to say at the end.
struct Request {
    args: Vec<String>,
    dockerfile: String,
    tags: Vec<Reference>,
    quiet: bool,
}

/// `POST /build?t=&dockerfile=&target=&buildargs=&labels=&nocache=&pull=&networkmode=&q=`.
async fn build(state: &Arc<State>, call: &mut Call) -> Reply {
    let request = request(&call.query)?;
    let body = BodyReader::new(call.take_body());
    stream::stream(state, "application/json", move |s, out| {
        run(s, out, &request, body)
    })
    .await
}

/// The query as `berth build`'s flags, checked; the options it has no use for (`rm`,
/// `forcerm`, `cachefrom`) accepted and left.
fn request(query: &Query) -> Result<Request, ApiError> {
    if query.get("version") == Some("2") {
        return Err(ApiError::not_implemented(
            "BuildKit's build sessions (version=2) are not supported: berth serves the legacy builder's API (DOCKER_BUILDKIT=0)",
        ));
    }
    if let Some(remote) = query.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::not_implemented(format!(
            "remote context {remote}: remote contexts are not supported; send the context in the body"
        )));
    }
    let mut args = vec!["build".to_string(), "--events".to_string()];
    let mut tags = Vec::new();
    for t in query.all("t").iter().filter(|t| !t.is_empty()) {
        let reference = Reference::parse(t)?;
        if reference.digest().is_some() {
            return Err(ApiError::bad_request(format!(
                "refusing to create a tag with a digest reference: {t}"
            )));
        }
        args.push(format!("--tag={t}"));
        tags.push(reference);
    }
    let dockerfile = query.get("dockerfile").filter(|f| !f.is_empty());
    let dockerfile = dockerfile.unwrap_or("Dockerfile").to_string();
    args.push(format!("--file={dockerfile}"));
    if let Some(target) = query.get("target").filter(|t| !t.is_empty()) {
        args.push(format!("--target={target}"));
    }
    if let Some(platform) = query.get("platform").filter(|p| !p.is_empty()) {
        args.push(format!("--platform={platform}"));
    }
    match query.get("networkmode").unwrap_or("") {
        "" | "default" => {}
        mode @ ("bridge" | "host" | "none") => args.push(format!("--network={mode}")),
        mode => {
            return Err(ApiError::bad_request(format!(
                "networkmode {mode}: berth builds with default, bridge, host or none"
            )))
        }
    }
    for (key, value) in pairs(query, "buildargs")? {
        // A build arg given without a value (null) is left unset, as Docker leaves it.
        if let Some(value) = value {
            args.push(format!("--build-arg={key}={value}"));
        }
    }
    for (key, value) in pairs(query, "labels")? {
        args.push(format!("--label={key}={}", value.unwrap_or_default()));
    }
    if query.flag("nocache") {
        args.push("--no-cache".into());
    }
    // What `berth build` refuses, passed on for it to refuse (not silently dropped).
    if query.flag("squash") {
        args.push("--squash".into());
    }
    for (key, flag) in [
        ("cgroupparent", "cgroup-parent"),
        ("isolation", "isolation"),
    ] {
        if let Some(value) = query.get(key).filter(|v| !v.is_empty()) {
            args.push(format!("--{flag}={value}"));
        }
    }
    // The RUN steps' /etc/hosts (the docker client repeats the parameter), /dev/shm, ulimits.
    for host in query.all("extrahosts").iter().filter(|h| !h.is_empty()) {
        args.push(format!("--add-host={host}"));
    }
    // The RUN steps' limits; the docker client sends each, 0 (or "") when not given.
    for (key, flag) in [
        ("shmsize", "shm-size"),
        ("memory", "memory"),
        ("memswap", "memory-swap"),
        ("cpushares", "cpu-shares"),
        ("cpuperiod", "cpu-period"),
        ("cpuquota", "cpu-quota"),
        ("cpusetcpus", "cpuset-cpus"),
        ("cpusetmems", "cpuset-mems"),
    ] {
        if let Some(value) = query.get(key).filter(|v| !v.is_empty() && *v != "0") {
            args.push(format!("--{flag}={value}"));
        }
    }
    if let Some(text) = query
        .get("ulimits")
        .filter(|t| !t.is_empty() && *t != "null")
    {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Limit {
            name: String,
            soft: i64,
            hard: i64,
        }
        let limits: Vec<Limit> = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid ulimits: {e}")))?;
        for l in limits {
            args.push(format!("--ulimit={}={}:{}", l.name, l.soft, l.hard));
        }
    }
    if query.flag("pull") {
        args.push("--pull".into());
    }
    // No argv carries a NUL: such a value is the client's error, not the service's.
    if let Some(bad) = args.iter().find(|a| a.contains('\0')) {
        let flag = bad.split_once('=').map_or(bad.as_str(), |(f, _)| f);
        return Err(ApiError::bad_request(format!(
            "invalid {}: a NUL byte in its value",
            flag.trim_start_matches('-')
        )));
    }
    args.extend(["--".to_string(), "-".to_string()]);
    Ok(Request {
        args,
        dockerfile,
        tags,
        quiet: query.flag("q"),
    })
}

/// A JSON object parameter (`buildargs`, `labels`): name -> value, null allowed.
fn pairs(query: &Query, key: &str) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let Some(text) = query.get(key).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let map: std::collections::BTreeMap<String, Option<String>> = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
    if let Some(bad) = map.keys().find(|k| k.is_empty() || k.contains('=')) {
        return Err(ApiError::bad_request(format!(
            "invalid {key}: {bad:?} is not a name"
        )));
    }
    Ok(map.into_iter().collect())
}

/// The body's first KiB, checked to start a tar archive (the child would take anything else
/// for a Dockerfile), and the whole body again.
fn context(request: &Request, mut body: BodyReader) -> Result<impl Read, ApiError> {
    let mut head = Vec::with_capacity(1024);
    (&mut body)
        .take(1024)
        .read_to_end(&mut head)
        .map_err(|e| ApiError::bad_request(format!("read the build context: {e}")))?;
    if head.is_empty() {
        // No context at all: no Dockerfile in it either.
        return Err(ApiError::bad_request(format!(
            "failed to read dockerfile: open {}: no such file or directory",
            request.dockerfile
        )));
    }
    if !berth_build::context::is_tar(&head) {
        return Err(ApiError::bad_request(
            "the build context is not a tar archive (plain, gzip or zstd)",
        ));
    }
    Ok(std::io::Cursor::new(head).chain(body))
}

/// Runs the child over the body and writes its progress as Docker's stream.
fn run(state: &State, out: &Out, request: &Request, body: BodyReader) -> Result<(), ApiError> {
    let mut body = context(request, body)?;
    let mut child = spawn(state, &request.args)?;
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = e.read_to_string(&mut text);
            text
        })
    });
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let pid = child.id();
    let (finished, watching) = mpsc::channel::<()>();
    let (fed, end, status) = std::thread::scope(|scope| {
        // The context is fed from a thread of its own while the child's progress is read
        // here: a child that dies (killed, out of memory) ends its output, and is reaped at
        // once, while the feeding may still wait on a client that sends nothing more.
        let feeder = scope.spawn(|| {
            let mut stdin = stdin?;
            let fed = std::io::copy(&mut body, &mut stdin);
            // A context the client failed to send whole is no context: the child is stopped
            // before it could take the end of its input for the end of the archive.
            if matches!(&fed, Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe) {
                terminate(pid);
            }
            drop(stdin);
            Some(fed)
        });
        // The client gone while a step prints nothing: the build is stopped all the same.
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                watching.recv_timeout(Duration::from_secs(1))
            {
                if out.gone() {
                    terminate(pid);
                    return;
                }
            }
        });
        let mut legacy = Legacy::new(out, request.quiet);
        let end = match stdout {
            Some(stdout) => events::replay(BufReader::new(stdout), &mut legacy),
            None => End::Cut,
        };
        drop(finished);
        let status = child.wait();
        let fed = feeder.join().ok().flatten();
        (fed, (end, legacy.held), status)
    });
    if let Some(Err(e)) = &fed {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(ApiError::bad_request(format!(
                "read the build context from the request: {e}"
            )));
        }
    }
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let (end, held) = end;
    match end {
        End::Built(id) => {
            finish(out, &id, &request.tags, request.quiet);
            Ok(())
        }
        End::Failed(message) => {
            // Quiet, Docker writes what it held back, then the error.
            if !held.is_empty() {
                out.json(&json!({"stream": String::from_utf8_lossy(&held)}));
            }
            Err(ApiError::bad_request(message))
        }
        End::Cut => Err(ApiError::internal(format!(
            "the build stopped without a word ({}): {}",
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            stderr.trim()
        ))),
    }
}

/// `berth --root R build --events ...` with the body to come on its stdin.
fn spawn(state: &State, args: &[String]) -> Result<Child, ApiError> {
    let engine = &state.engine;
    let mut cmd = Command::new(&engine.exe);
    cmd.arg("--root").arg(&engine.root);
    for registry in &state.registry.insecure_registries {
        cmd.arg(format!("--insecure-registry={registry}"));
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The service's environment is not the build's (a bare --build-arg KEY reads it).
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    // The same configuration files as the service's (mirrors, credentials' helpers).
    for key in ["BERTH_CONFIG", "HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG"] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.spawn().map_err(|e| {
        ApiError::internal(format!(
            "start the build ({} build): {e}",
            engine.exe.display()
        ))
    })
}

/// SIGTERM: the child stops its step and removes what it made.
fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// The end of a build that succeeded, as dockerd writes it: the aux message with the ID, then
/// the two lines docker-py and compose read the ID from; quiet, the ID alone.
fn finish(out: &Out, id: &str, tags: &[Reference], quiet: bool) {
    if quiet {
        out.json(&json!({"stream": format!("{id}\n")}));
        return;
    }
    out.json(&json!({"aux": {"ID": id}}));
    let short = id.strip_prefix("sha256:").unwrap_or(id);
    let short = &short[..short.len().min(12)];
    out.json(&json!({"stream": format!("Successfully built {short}\n")}));
    for tag in tags {
        out.json(&json!({"stream": format!("Successfully tagged {}\n", tag.familiar())}));
    }
}

/// The build's events as the legacy builder's stream: every instruction a numbered step,
/// a step from the cache ` ---> Using cache`, the output as it comes. Quiet, it is held back.
struct Legacy<'a> {
    out: &'a Out,
    quiet: bool,
    held: Vec<u8>,
    total: usize,
    shown: usize,
}

impl<'a> Legacy<'a> {
    fn new(out: &'a Out, quiet: bool) -> Legacy<'a> {
        Legacy {
            out,
            quiet,
            held: Vec::new(),
            total: 0,
            shown: 0,
        }
    }

    fn say(&mut self, text: &str) {
        match self.quiet {
            true => self.held.extend_from_slice(text.as_bytes()),
            false => {
                self.out.json(&json!({"stream": text}));
            }
        }
    }

    /// `[stage-1 2/5] RUN x` as the legacy builder's `Step 7/9 : RUN x`; an ONBUILD
    /// trigger (`[1/2] ONBUILD RUN x (1/1)`) as it announces one.
    fn instruction(&mut self, name: &str) {
        let text = match name.strip_prefix('[').and_then(|n| n.split_once("] ")) {
            Some((_, text)) => text,
            None => name,
        };
        if let Some(trigger) = text.strip_prefix("ONBUILD ") {
            self.say(&format!("# Executing build trigger: {trigger}\n"));
            return;
        }
        self.shown += 1;
        let total = self.total.max(self.shown);
        self.say(&format!("Step {}/{total} : {text}\n", self.shown));
    }
}

impl Progress for Legacy<'_> {
    fn planned(&mut self, instructions: usize) {
        self.total = instructions;
    }
    fn step(&mut self, _id: usize, name: &str) {
        self.instruction(name);
    }
    fn config(&mut self, name: &str) {
        self.instruction(name);
    }
    fn output(&mut self, _id: usize, bytes: &[u8]) {
        self.say(&String::from_utf8_lossy(bytes));
    }
    fn cached(&mut self, _id: usize) {
        self.say(" ---> Using cache\n");
    }
    fn done(&mut self, _id: usize) {}
    fn warn(&mut self, message: &str) {
        self.say(&format!("[Warning] {message}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_becomes_the_childs_flags() {
        let q = Query::parse(
            "t=a%3A1&t=b&dockerfile=sub%2FD&target=t&buildargs=%7B%22A%22%3A%221%22%2C%22N%22%3Anull%7D\
             &labels=%7B%22l%22%3A%22v%22%7D&nocache=1&pull=1&networkmode=host&q=1&rm=1&forcerm=1",
        );
        let r = request(&q).expect("a good request");
        assert_eq!(
            r.args,
            [
                "build",
                "--events",
                "--tag=a:1",
                "--tag=b",
                "--file=sub/D",
                "--target=t",
                "--network=host",
                "--build-arg=A=1",
                "--label=l=v",
                "--no-cache",
                "--pull",
                "--",
                "-"
            ]
        );
        assert!(r.quiet);
        assert_eq!(r.tags[1].familiar(), "b:latest");
    }

    #[test]
    fn bad_queries_are_refused_before_the_build() {
        for q in [
            "t=UPPER",
            "t=a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "buildargs=notjson",
            "buildargs=%7B%22A%3DB%22%3A%22x%22%7D",
            "networkmode=container%3Ax",
            "target=a%00b",
            "buildargs=%7B%22A%22%3A%22x%5Cu0000y%22%7D",
        ] {
            let e = request(&Query::parse(q)).err().expect(q);
            assert_eq!(e.status, 400, "{q}: {e}");
        }
        let e = request(&Query::parse("version=2"))
            .err()
            .expect("version 2");
        assert_eq!(e.status, 501);
    }
}
