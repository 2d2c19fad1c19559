//! `POST /images/create` (a pull, or an import of a tarball in the body) and
//! `POST /images/{name}/push`, streamed as Docker's JSON progress messages, with the client's
//! registry credentials from `X-Registry-Auth`.

use std::sync::{Arc, Mutex};

use berth_engine::images;
use berth_image::digest::short;
use berth_image::progress::{Direction, LayerState, Progress};
use berth_image::registry::push::PushOptions;
use berth_image::registry::Credentials;
use berth_image::{Platform, Reference};
use oci_spec::image::Digest;
use serde_json::{json, Value};

use super::stream::{self, BodyReader, Out};
use crate::error::ApiError;
use crate::handlers::State;
use crate::respond::Reply;
use crate::router::Call;

/// `POST /images/create?fromImage=&tag=&platform=`: a pull; with `fromSrc=-` instead, the
/// body's tarball imported as an image (`repo`, `tag`, `changes`, `message`).
pub async fn create(state: &Arc<State>, call: &mut Call) -> Reply {
    let query = &call.query;
    let tag = query.get("tag").unwrap_or("");
    let Some(from_image) = query.get("fromImage").filter(|i| !i.is_empty()) else {
        return match query.get("fromSrc") {
            Some("-") => import(state, call).await,
            Some(url) if !url.is_empty() => Err(ApiError::not_implemented(format!(
                "import from {url}: importing from a URL is not supported; send the tarball in the body with fromSrc=-"
            ))),
            _ => Err(ApiError::bad_request("fromImage or fromSrc is required")),
        };
    };
    let reference = with_tag(from_image, tag)?;
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let credentials = registry_auth(call);
    stream::stream(state, "application/json", move |s, out| {
        let id = match reference.digest() {
            Some(digest) => digest.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        // Sent once the manifest is known, as Docker does: a missing image is a plain 404.
        let header =
            json!({"status": format!("Pulling from {}", reference.repository()), "id": id});
        let progress = JsonProgress::new(out, Direction::Pull, Some(header));
        let registry = s.registry(credentials);
        images::pull(&s.engine, &reference, platform, &registry, &progress)?;
        Ok(())
    })
    .await
}

/// `fromImage` with the `tag` parameter, which may be a digest (`sha256:...`).
fn with_tag(image: &str, tag: &str) -> Result<Reference, ApiError> {
    let named = Reference::parse_named(image)?;
    let reference = match tag {
        "" => return Ok(Reference::parse(image)?),
        digest if digest.contains(':') => format!("{}@{digest}", named.name()),
        tag => format!("{}:{tag}", named.name()),
    };
    Ok(Reference::parse(&reference)?)
}

/// `POST /images/create?fromSrc=-`: the body is a root filesystem tarball.
async fn import(state: &Arc<State>, call: &mut Call) -> Reply {
    let query = &call.query;
    let changes = query
        .all("changes")
        .iter()
        .map(|c| berth_image::archive::import::Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let name = match (
        query.get("repo").unwrap_or(""),
        query.get("tag").unwrap_or(""),
    ) {
        ("", _) => None,
        (repo, tag) => Some(with_tag(repo, tag)?),
    };
    let source = query.get("message").unwrap_or("-").to_string();
    let body = BodyReader::new(call.take_body());
    stream::stream(state, "application/json", move |s, out| {
        let image = images::import(&s.engine, body, &changes, name.as_ref(), &source)?;
        out.json(&json!({"status": image.id().to_string()}));
        Ok(())
    })
    .await
}

/// `POST /images/{name}/push?tag=`: the image's tag, or every tag of the repository when
/// neither the name nor `tag` gives one.
pub async fn push(state: &Arc<State>, call: &Call, name: String) -> Reply {
    let tag = call.query.get("tag").unwrap_or("").to_string();
    let credentials = registry_auth(call);
    stream::stream(state, "application/json", move |s, out| {
        let named = Reference::parse_named(&name)?;
        let targets = match (tag.as_str(), named.tag().or(named.digest().map(|_| ""))) {
            ("", None) => images::every_tag(&s.engine, &name)?,
            ("", Some(_)) => vec![(named.clone(), s.engine.images()?.resolve(&name)?)],
            (tag, _) => {
                let target = with_tag(&name, tag)?;
                let image = s.engine.images()?.resolve(&target.to_string())?;
                vec![(target, image)]
            }
        };
        out.json(&json!({"status": format!("The push refers to repository [{}]", named.name())}));
        let options = PushOptions {
            registry: s.registry(credentials),
            ..PushOptions::default()
        };
        let progress = JsonProgress::new(out, Direction::Push, None);
        for (target, image) in &targets {
            let digest = images::push(&s.engine, image, target, &options, &progress)?;
            let size = s.engine.images()?.read_blob(&digest).map_or(0, |b| b.len());
            let tag = target.tag().unwrap_or("latest");
            let aux = json!({"Tag": tag, "Digest": digest.to_string(), "Size": size});
            out.json(&json!({"progressDetail": {}, "aux": aux}));
        }
        Ok(())
    })
    .await
}

/// The client's credentials: `X-Registry-Auth`, base64url JSON of Docker's AuthConfig
/// (`username` and `password`, or `auth` as `user:password` in base64). Docker ignores a
/// header it cannot read, and so does berth.
pub(super) fn registry_auth(call: &Call) -> Option<Credentials> {
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct AuthConfig {
        username: String,
        password: String,
        auth: String,
    }
    let header = call.header("X-Registry-Auth")?.trim();
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let decode = |text: &str| {
        [URL_SAFE, STANDARD]
            .iter()
            .find_map(|alphabet| GeneralPurpose::new(alphabet, config).decode(text).ok())
    };
    let auth: AuthConfig = serde_json::from_slice(&decode(header)?).ok()?;
    if !auth.username.is_empty() {
        return Some(Credentials {
            username: auth.username,
            password: auth.password,
        });
    }
    let pair = String::from_utf8(decode(&auth.auth)?).ok()?;
    let (username, password) = pair.split_once(':')?;
    Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// A pull's or push's progress as Docker's JSON messages; `header` goes before the first.
struct JsonProgress<'a> {
    out: &'a Out,
    direction: Direction,
    header: Mutex<Option<Value>>,
}

impl<'a> JsonProgress<'a> {
    fn new(out: &'a Out, direction: Direction, header: Option<Value>) -> Self {
        JsonProgress {
            out,
            direction,
            header: Mutex::new(header),
        }
    }

    fn emit(&self, message: &Value) {
        let header = self.header.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(header) = header {
            self.out.json(&header);
        }
        self.out.json(message);
    }
}

impl Progress for JsonProgress<'_> {
    fn message(&self, text: &str) {
        self.emit(&json!({"status": text}));
    }

    fn layer(&self, digest: &Digest, state: LayerState) {
        let mut message = json!({
            "status": state.status(self.direction),
            "progressDetail": {},
            "id": short(digest),
        });
        if let LayerState::Transferring { done, total } = state {
            message["progressDetail"] = json!({"current": done, "total": total});
            message["progress"] = bar(done, total).into();
        }
        self.emit(&message);
    }

    fn cancelled(&self) -> bool {
        self.out.gone()
    }
}

/// Docker's progress bar: `[=====>      ]  1.5MB/3.2MB`.
fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    let arrow = ">".repeat(usize::from(filled < WIDTH));
    format!(
        "[{}{arrow}{}] {:>8}/{}",
        "=".repeat(filled as usize),
        " ".repeat((WIDTH - filled).saturating_sub(1) as usize),
        human_size(done),
        human_size(total)
    )
}

/// Sizes as Docker's go-units prints them: four significant digits, decimal units.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{size:.digits$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_sizes_look_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(3_245_678), "3.246MB");
        assert_eq!(human_size(123_456), "123.5kB");
        let half = bar(50, 100);
        assert!(half.starts_with(&format!("[{}>", "=".repeat(25))), "{half}");
        assert!(half.ends_with("    50B/100B"), "{half}");
        assert!(bar(100, 100).starts_with(&format!("[{}]", "=".repeat(50))));
        assert!(bar(1, 0).starts_with("[>"));
    }

    #[test]
    fn tags_and_digests_join_the_name() {
        let r = with_tag("busybox", "1.36").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        let r = with_tag("busybox", "").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = with_tag("localhost:5000/a/b", &digest).unwrap();
        assert_eq!(r.to_string(), format!("localhost:5000/a/b@{digest}"));
        assert!(with_tag("busybox", "bad tag").is_err());
        assert!(with_tag("", "x").is_err());
    }
}
