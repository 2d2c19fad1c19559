//! Each parsed line as a typed instruction, with BuildKit's checks on its arguments and flags.
//! Variables are not expanded here: that needs the stage's state when the step runs.

use std::collections::BTreeMap;

use crate::parser::{is_json, raw_words, Heredoc, Node};

/// The exec form (JSON array) or the shell form (the text, run by the stage's SHELL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

impl Command {
    fn parse(args: &str) -> Command {
        match serde_json::from_str::<Vec<String>>(args) {
            Ok(list) if args.trim_start().starts_with('[') => Command::Exec(list),
            _ => Command::Shell(args.to_string()),
        }
    }
}

/// COPY and ADD.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Copy {
    pub add: bool,
    pub srcs: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Nanoseconds, 0 when not given.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        command: Command,
        mounts: Vec<String>,
        network: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Cmd(Command),
    Entrypoint(Command),
    /// Raw (unexpanded) name/value words.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Copy(Copy),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
    Onbuild(String),
    Maintainer(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub kind: Kind,
    /// The keyword and arguments as written (flags included), for messages.
    pub text: String,
}

/// Parses one node; the error is the message (the caller adds file and line).
pub fn parse(node: &Node) -> Result<Instruction, String> {
    let mut flags = Flags::parse(&node.flags)?;
    let args = node.args.as_str();
    let kw = node.keyword.as_str();
    let kind = match kw {
        "FROM" => from(args, &mut flags)?,
        "RUN" => {
            let mounts = flags.values("mount");
            let network = flags.value("network");
            let _ = flags.value("security");
            need_args(kw, args)?;
            Kind::Run {
                command: Command::parse(args),
                mounts,
                network,
                heredocs: node.heredocs.clone(),
            }
        }
        "CMD" => Kind::Cmd(Command::parse(args)),
        "ENTRYPOINT" => Kind::Entrypoint(Command::parse(args)),
        "ENV" => Kind::Env(name_values(kw, args)?),
        "LABEL" => Kind::Label(name_values(kw, args)?),
        "ARG" => arg(args)?,
        "EXPOSE" => Kind::Expose(need_list(kw, args)?),
        "VOLUME" => Kind::Volume(need_list(kw, args)?),
        "USER" => Kind::User(need_one(kw, args)?),
        "WORKDIR" => Kind::Workdir(need_one(kw, args)?),
        "STOPSIGNAL" => Kind::StopSignal(need_one(kw, args)?),
        "MAINTAINER" => Kind::Maintainer(need_one(kw, args)?),
        "SHELL" => match serde_json::from_str::<Vec<String>>(args) {
            Ok(list) if !list.is_empty() => Kind::Shell(list),
            _ => return Err("SHELL requires the arguments to be in JSON form".into()),
        },
        "COPY" | "ADD" => Kind::Copy(copy(kw, args, node, &mut flags)?),
        "HEALTHCHECK" => Kind::Healthcheck(health(args, &mut flags)?),
        "ONBUILD" => onbuild(args)?,
        other => return Err(format!("unknown instruction: {other}")),
    };
    flags.check_all_used(kw)?;
    let mut text = node.keyword.clone();
    for f in &node.flags {
        text.push(' ');
        text.push_str(f);
    }
    if !args.is_empty() {
        text.push(' ');
        text.push_str(args);
    }
    Ok(Instruction {
        line: node.line,
        kind,
        text,
    })
}

/// `FROM [--platform=P] image [AS name]`.
fn from(args: &str, flags: &mut Flags) -> Result<Kind, String> {
    let platform = flags.value("platform");
    let words: Vec<&str> = args.split_whitespace().collect();
    let (image, alias) = match words.as_slice() {
        [image] => (image, None),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            (image, Some(name.to_ascii_lowercase()))
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(Kind::From {
        image: image.to_string(),
        alias,
        platform,
    })
}

/// `ARG name[=default] ...`.
fn arg(args: &str) -> Result<Kind, String> {
    let words = raw_words(args);
    if words.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    let pairs = words.iter().map(|w| match w.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (w.clone(), None),
    });
    Ok(Kind::Arg(pairs.collect()))
}

/// `ONBUILD INSTRUCTION ...`: stored as written, for the images built from this one.
fn onbuild(args: &str) -> Result<Kind, String> {
    let trigger = args
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match trigger.as_str() {
        "" => Err("ONBUILD requires at least one argument".into()),
        "ONBUILD" => Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "FROM" | "MAINTAINER" => Err(format!("{trigger} isn't allowed as an ONBUILD trigger")),
        _ => Ok(Kind::Onbuild(args.to_string())),
    }
}

fn need_args(kw: &str, args: &str) -> Result<(), String> {
    if args.trim().is_empty() {
        return Err(format!("{kw} requires at least one argument"));
    }
    Ok(())
}

fn need_one(kw: &str, args: &str) -> Result<String, String> {
    need_args(kw, args)?;
    Ok(args.trim().to_string())
}

/// A JSON array, else the blank-separated words.
fn need_list(kw: &str, args: &str) -> Result<Vec<String>, String> {
    need_args(kw, args)?;
    if is_json(args) {
        return serde_json::from_str(args).map_err(|e| e.to_string());
    }
    Ok(args.split_whitespace().map(String::from).collect())
}

/// `K=V K2="V 2"` or the old `K V...` form (one pair, the rest of the line its value).
fn name_values(kw: &str, args: &str) -> Result<Vec<(String, String)>, String> {
    let words = raw_words(args);
    let Some(first) = words.first() else {
        return Err(format!("{kw} requires at least one argument"));
    };
    if !first.contains('=') {
        let value = args.trim_start()[first.len()..].trim();
        if value.is_empty() {
            return Err(format!("{kw} must have two arguments"));
        }
        return Ok(vec![(first.clone(), value.to_string())]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{kw} names can not be blank")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

fn copy(kw: &str, args: &str, node: &Node, flags: &mut Flags) -> Result<Copy, String> {
    let add = kw == "ADD";
    let mut words = if is_json(args) {
        serde_json::from_str::<Vec<String>>(args).map_err(|e| e.to_string())?
    } else {
        args.split_whitespace().map(String::from).collect()
    };
    if words.len() < 2 && node.heredocs.is_empty() {
        return Err(format!(
            "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let dest = words.pop().unwrap_or_default();
    let from = if add { None } else { flags.value("from") };
    let chown = flags.value("chown");
    let chmod = flags.value("chmod");
    // --link makes BuildKit's layer independent of those below; the files are the same.
    flags.boolean("link")?;
    if add {
        let _ = flags.value("checksum");
        let _ = flags.boolean("keep-git-dir")?;
    }
    Ok(Copy {
        add,
        srcs: words,
        dest,
        from,
        chown,
        chmod,
        heredocs: node.heredocs.clone(),
    })
}

fn health(args: &str, flags: &mut Flags) -> Result<Health, String> {
    let mut words = args.splitn(2, char::is_whitespace);
    let kind = words.next().unwrap_or("").to_ascii_uppercase();
    let rest = words.next().unwrap_or("").trim();
    let mut h = Health {
        test: Vec::new(),
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    };
    match kind.as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".into());
            }
            h.test = vec!["NONE".into()];
            return Ok(h);
        }
        "CMD" => {}
        _ => return Err("Unknown type \"".to_string() + &kind + "\" in HEALTHCHECK (try CMD)"),
    }
    h.test = match Command::parse(rest) {
        Command::Exec(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
        Command::Shell(s) if s.is_empty() => {
            return Err("Missing command after HEALTHCHECK CMD".into())
        }
        Command::Shell(s) => vec!["CMD-SHELL".into(), s],
    };
    let dur = |flags: &mut Flags, name: &str| -> Result<i64, String> {
        match flags.value(name) {
            Some(v) => {
                parse_duration(&v).ok_or_else(|| format!("--{name}: invalid duration {v:?}"))
            }
            None => Ok(0),
        }
    };
    h.interval = dur(flags, "interval")?;
    h.timeout = dur(flags, "timeout")?;
    h.start_period = dur(flags, "start-period")?;
    h.start_interval = dur(flags, "start-interval")?;
    h.retries = match flags.value("retries") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("--retries: invalid number {v:?}"))?,
        None => 0,
    };
    Ok(h)
}

pub use berth_engine::health::parse_duration;

/// An instruction's `--name[=value]` flags; each must be taken by the instruction.
struct Flags {
    given: BTreeMap<String, Vec<Option<String>>>,
}

impl Flags {
    fn parse(words: &[String]) -> Result<Flags, String> {
        let mut given: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for w in words {
            let body = &w[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            given.entry(name.to_string()).or_default().push(value);
        }
        Ok(Flags { given })
    }

    fn value(&mut self, name: &str) -> Option<String> {
        self.given
            .remove(name)
            .and_then(|v| v.into_iter().last().flatten())
    }

    fn values(&mut self, name: &str) -> Vec<String> {
        self.given
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }

    fn boolean(&mut self, name: &str) -> Result<bool, String> {
        match self.given.remove(name).and_then(|v| v.into_iter().last()) {
            None => Ok(false),
            Some(None) => Ok(true),
            Some(Some(v)) => match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("expecting boolean value for flag {name}, not: {v}")),
            },
        }
    }

    fn check_all_used(&self, kw: &str) -> Result<(), String> {
        match self.given.keys().next() {
            Some(name) => Err(format!("unknown flag: {name} (for {kw})")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser;

    fn one(text: &str) -> Result<Kind, String> {
        let df = parser::parse("Dockerfile", text).unwrap();
        parse(&df.nodes[0]).map(|i| i.kind)
    }

    #[test]
    fn forms_and_flags() {
        assert_eq!(
            one("CMD [\"a\", \"b\"]").unwrap(),
            Kind::Cmd(Command::Exec(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            one("CMD [oops").unwrap(),
            Kind::Cmd(Command::Shell("[oops".into()))
        );
        assert_eq!(
            one("ENV A=1 B=\"two words\"").unwrap(),
            Kind::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ])
        );
        assert_eq!(
            one("ENV A  b c").unwrap(),
            Kind::Env(vec![("A".into(), "b c".into())])
        );
        let Kind::Copy(c) = one("COPY --from=b --chown=1:2 --link a b /d/").unwrap() else {
            panic!()
        };
        assert_eq!((c.srcs.len(), c.dest.as_str()), (2, "/d/"));
        assert!(one("COPY --bogus a b")
            .unwrap_err()
            .starts_with("unknown flag: bogus"));
        assert!(one("FOO bar")
            .unwrap_err()
            .contains("unknown instruction: FOO"));
        assert!(one("COPY a")
            .unwrap_err()
            .contains("requires at least two arguments"));
        let Kind::Healthcheck(h) =
            one("HEALTHCHECK --interval=1m30s --retries=3 CMD true").unwrap()
        else {
            panic!()
        };
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!((h.interval, h.retries), (90_000_000_000, 3));
    }
}
