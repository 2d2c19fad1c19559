//! `import`: a root filesystem tarball becomes a one-layer image, with Dockerfile-like
//! `--change` instructions applied to its config.

use std::io::{self, BufReader, Read, Write};
use std::time::SystemTime;

use flate2::write::GzEncoder;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Map, Value};

use super::write_manifest;
use crate::compress;
use crate::digest::{HashingReader, TeeReader};
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::unpack;

/// One `--change` instruction, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(String, String),
    Workdir(String),
    User(String),
    Label(String, String),
    Expose(String),
    Volume(String),
    StopSignal(String),
}

impl Change {
    /// Parses one `--change` line: `CMD ["a","b"]`, `CMD a b` (shell form), `WORKDIR /x`, ...;
    /// `ENV` and `LABEL` as a Dockerfile has them, so one line may set several:
    /// `ENV A=1 B="two words"`, or the old form `ENV A the rest of the line`.
    pub fn parse(input: &str) -> Result<Vec<Change>> {
        let bad = |reason: &str| Error::Invalid {
            object: format!("change {input:?}"),
            reason: reason.to_string(),
        };
        let (keyword, rest) = input
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected INSTRUCTION ARGUMENTS"))?;
        let rest = rest.trim();
        let command = || -> Result<Vec<String>> {
            if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|_| bad("a JSON array of strings was expected"))
            } else {
                Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
            }
        };
        let open_quote = || bad("a quote is left open: close it");
        let pairs = || -> Result<Vec<(String, String)>> {
            let words = quoted_words(rest);
            let first = words.first().ok_or_else(|| bad("expected KEY=VALUE"))?;
            if !first.contains('=') {
                // The old form: the rest of the line is the value.
                let value = unquote(rest[first.len()..].trim()).ok_or_else(open_quote)?;
                if value.is_empty() {
                    return Err(bad("expected KEY=VALUE, or KEY VALUE"));
                }
                return Ok(vec![(unquote(first).ok_or_else(open_quote)?, value)]);
            }
            words
                .iter()
                .map(|w| {
                    let word = unquote(w).ok_or_else(open_quote)?;
                    match word.split_once('=') {
                        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                        Some(_) => Err(bad(&format!("{w:?}: the name before = is empty"))),
                        None => Err(bad(&format!(
                            "can't find = in {w:?}: each word must be of the form name=value"
                        ))),
                    }
                })
                .collect()
        };
        Ok(match keyword.to_ascii_uppercase().as_str() {
            "CMD" => vec![Change::Cmd(command()?)],
            "ENTRYPOINT" => vec![Change::Entrypoint(command()?)],
            "ENV" => pairs()?
                .into_iter()
                .map(|(k, v)| Change::Env(k, v))
                .collect(),
            "LABEL" => pairs()?
                .into_iter()
                .map(|(k, v)| Change::Label(k, v))
                .collect(),
            "WORKDIR" => vec![Change::Workdir(rest.to_string())],
            "USER" => vec![Change::User(rest.to_string())],
            "EXPOSE" => vec![Change::Expose(if rest.contains('/') {
                rest.to_string()
            } else {
                format!("{rest}/tcp")
            })],
            "VOLUME" => vec![Change::Volume(rest.to_string())],
            "STOPSIGNAL" => vec![Change::StopSignal(rest.to_string())],
            _ => return Err(bad(
                "supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR",
            )),
        })
    }

    pub(crate) fn apply(&self, config: &mut Map<String, Value>) {
        let mut insert_in = |key: &str, k: &str, v: Value| {
            let map = config.entry(key).or_insert_with(|| json!({}));
            if let Some(m) = map.as_object_mut() {
                m.insert(k.to_string(), v);
            }
        };
        match self {
            Change::Expose(port) => insert_in("ExposedPorts", port, json!({})),
            Change::Volume(path) => insert_in("Volumes", path, json!({})),
            Change::Label(k, v) => insert_in("Labels", k, json!(v)),
            Change::Cmd(c) => drop(config.insert("Cmd".into(), json!(c))),
            Change::Entrypoint(c) => drop(config.insert("Entrypoint".into(), json!(c))),
            Change::Workdir(w) => drop(config.insert("WorkingDir".into(), json!(w))),
            Change::User(u) => drop(config.insert("User".into(), json!(u))),
            Change::StopSignal(s) => drop(config.insert("StopSignal".into(), json!(s))),
            Change::Env(k, v) => {
                let env = config.entry("Env").or_insert_with(|| json!([]));
                if let Some(list) = env.as_array_mut() {
                    list.retain(|e| {
                        e.as_str()
                            .and_then(|e| e.split_once('='))
                            .is_none_or(|(name, _)| name != k)
                    });
                    list.push(json!(format!("{k}={v}")));
                }
            }
        }
    }
}

/// Imports a (possibly compressed) rootfs tar from `reader` as a one-layer image.
pub fn import(
    store: &Store,
    reader: impl Read,
    changes: &[Change],
    name: Option<&Reference>,
    source: &str,
) -> Result<Image> {
    import_inner(store, reader, changes, name, source).map_err(|e| store.explain_no_space(e))
}

fn import_inner(
    store: &Store,
    reader: impl Read,
    changes: &[Change],
    name: Option<&Reference>,
    source: &str,
) -> Result<Image> {
    let _hold = store.lock_shared()?;
    let read_err = |e: io::Error| Error::Read {
        object: format!("import {source}"),
        source: e,
    };
    let mut blob = store.blob_writer()?;
    let layer = store.temp_layer()?;
    let (diff_id, size) = {
        // One pass: input -> inflate -> hash (diff ID) -> gzip into the blob, and unpack.
        let decoder =
            compress::decoder(BufReader::with_capacity(1 << 20, reader)).map_err(read_err)?;
        let hashing = HashingReader::new(decoder);
        let gz = GzEncoder::new(&mut blob, flate2::Compression::fast());
        let mut tee = TeeReader::new(hashing, gz);
        let size = unpack::unpack_layer(&mut tee, &layer.diff_dir(), source)?;
        io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
        let (hashing, gz) = tee.into_inner();
        gz.finish().and_then(|w| w.flush()).map_err(read_err)?;
        let (diff_id, _, _) = hashing.finish().map_err(read_err)?;
        (diff_id, size)
    };
    let blob_digest = blob.commit(&format!("import {source}"), None, None)?;
    layer.commit(&diff_id, size)?;
    let blob_size = std::fs::metadata(store.blob_path(&blob_digest))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut container_config = Map::new();
    for change in changes {
        change.apply(&mut container_config);
    }
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let host = Platform::host();
    let config = json!({
        "architecture": host.architecture,
        "os": host.os,
        "created": now,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": now, "created_by": "berth import", "comment": format!("Imported from {source}")}],
    });
    let config_bytes = serde_json::to_vec(&config).map_err(|source| Error::Json {
        object: "new config".into(),
        source,
    })?;
    let config_digest = store.put_blob("new config", None, &config_bytes)?;
    let layers = [Descriptor::new(
        MediaType::ImageLayerGzip,
        blob_size,
        blob_digest,
    )];
    let manifest = write_manifest(store, &config_digest, config_bytes.len() as u64, &layers)?;
    store.commit_image(&manifest, name, None)?;
    let found = match name {
        Some(name) => store.find(name)?,
        None => store
            .images()?
            .into_iter()
            .find(|i| i.manifest_digest == *manifest.digest()),
    };
    found.ok_or_else(|| Error::NoSuchImage(config_digest.to_string()))
}

/// Words split on blanks outside quotes, quotes and escapes kept as written: a Dockerfile
/// instruction's arguments before expansion (berth-build's parser splits with it too).
pub fn quoted_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                word.push(c);
                word.extend(chars.next());
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A word with its quotes taken off, as Dockerfile words are: single quotes keep everything,
/// inside double quotes a backslash escapes only `"`, `$`, `\` and a backtick, outside them
/// it escapes any character. None for a quote left open.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => out.push(c),
            (Some('"'), '\\') => match chars.peek() {
                Some('"' | '$' | '\\' | '`') => out.extend(chars.next()),
                _ => out.push('\\'),
            },
            (None, '\\') => out.extend(chars.next()),
            (None, '"' | '\'') => quote = Some(c),
            (_, c) => out.push(c),
        }
    }
    quote.is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_changes() {
        assert_eq!(
            Change::parse(r#"CMD ["sh","-c","echo hi"]"#).unwrap(),
            [Change::Cmd(vec![
                "sh".into(),
                "-c".into(),
                "echo hi".into()
            ])]
        );
        assert_eq!(
            Change::parse("CMD echo hi").unwrap(),
            [Change::Cmd(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo hi".into()
            ])]
        );
        // A Dockerfile's ENV: several pairs, quotes taken off; or the old KEY VALUE form.
        let env = |k: &str, v: &str| Change::Env(k.into(), v.into());
        assert_eq!(
            Change::parse(r#"ENV A=1 B="two words" C='$x' D=a\ b"#).unwrap(),
            [
                env("A", "1"),
                env("B", "two words"),
                env("C", "$x"),
                env("D", "a b")
            ]
        );
        assert_eq!(Change::parse("ENV A b c").unwrap(), [env("A", "b c")]);
        assert_eq!(
            Change::parse(r#"ENV A "b" 'c'"#).unwrap(),
            [env("A", "b c")]
        );
        assert_eq!(
            Change::parse(r#"ENV "A"=1 P="C:\foo" Q="x\"y""#).unwrap(),
            [env("A", "1"), env("P", r"C:\foo"), env("Q", r#"x"y"#)]
        );
        assert_eq!(
            Change::parse(r#"LABEL "a b"=c"#).unwrap(),
            [Change::Label("a b".into(), "c".into())]
        );
        for bad in [
            "ENV A=b c",
            "ENV =b",
            r#"ENV A="open"#,
            "ENV A='x",
            "ENV A 'x",
        ] {
            assert!(Change::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Change::parse("LABEL a=1 b=2").unwrap(),
            [
                Change::Label("a".into(), "1".into()),
                Change::Label("b".into(), "2".into())
            ]
        );
        assert_eq!(
            Change::parse("workdir /srv").unwrap(),
            [Change::Workdir("/srv".into())]
        );
        assert!(Change::parse("RUN rm -rf /").is_err());
        assert!(Change::parse("CMD [broken").is_err());
    }
}
