//! `/_ping`, `/version`, `/info`: what a client asks first, to negotiate and to know the engine.

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use super::{Routed, State};
use crate::error::ApiError;
use crate::filters::Filters;
use crate::respond::{self, Reply};
use crate::router::Call;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    Break(match (call.method.as_str(), call.path().as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => ping(&call),
        ("GET", ["version"]) => version(state),
        ("GET", ["info"]) => info(state).await,
        ("GET", ["events"]) => events(state, &call).await,
        ("POST", ["auth"]) => auth(state, &mut call).await,
        _ => return Continue(call),
    })
}

/// `GET /info`: the engine's `system.Info`.
async fn info(state: &Arc<State>) -> Reply {
    let info = state
        .blocking(|s| Ok(berth_engine::info::info(&s.engine, &s.registry, &[])?))
        .await?;
    respond::json(200, &info)
}

/// `GET /events`: the engine's event log from `since` (or from now), streamed one JSON object
/// per line until `until` (or until the client goes away), with Docker's filters.
async fn events(state: &Arc<State>, call: &Call) -> Reply {
    use berth_engine::events::{self, Filter};
    let now = std::time::SystemTime::now();
    let time = |key: &str| {
        call.query
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| events::parse_time(v, now))
            .transpose()
    };
    let mut filter = Filter {
        since: time("since")?,
        until: time("until")?,
        ..Filter::default()
    };
    for pair in Filters::of(&call.query)?.pairs() {
        filter.add(&pair)?;
    }
    let (tx, body) = respond::channel();
    let mut log = state
        .blocking(move |s| Ok(events::follow(&s.engine, filter)?))
        .await?;
    tokio::task::spawn_blocking(move || {
        // Ends at `until`, at an unreadable log, or when the client is gone (a send fails).
        while let Ok(Some(batch)) = log.next(std::time::Duration::from_secs(1)) {
            for event in &batch {
                let mut line = legacy_fields(event).to_string();
                line.push('\n');
                if tx.blocking_send(line.into()).is_err() {
                    return;
                }
            }
            if batch.is_empty() && tx.is_closed() {
                return;
            }
        }
    });
    Ok(respond::builder(200)
        .header("Content-Type", "application/json")
        .body(body)
        .expect("static headers are valid"))
}

/// An event as Docker's daemon sends it: its own fields, and for containers and images the
/// pre-1.22 `status`, `id` and `from` that docker-compose 1.29 and docker-py still read.
fn legacy_fields(event: &berth_engine::events::Event) -> serde_json::Value {
    use berth_engine::events::Kind;
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if matches!(event.kind, Kind::Container | Kind::Image) {
        value["status"] = event.action.clone().into();
        value["id"] = event.actor.id.clone().into();
        if let Some(image) = event.actor.attributes.get("image") {
            value["from"] = image.clone().into();
        }
    }
    value
}

/// `POST /auth`: checks the credentials against the registry, as `docker login` asks.
async fn auth(state: &Arc<State>, call: &mut Call) -> Reply {
    #[derive(serde::Deserialize, Default)]
    struct AuthConfig {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        serveraddress: String,
    }
    let config: AuthConfig = call.json().await?;
    let registry = match config.serveraddress.as_str() {
        "" => "docker.io".to_string(),
        address => address
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string(),
    };
    let credentials = berth_image::registry::Credentials {
        username: config.username,
        password: config.password,
    };
    state
        .blocking(move |s| {
            let options = s.registry(None);
            berth_image::registry::login(&registry, &credentials, &options)
                .map_err(|e| ApiError::new(401, e.to_string()))
        })
        .await?;
    respond::json(
        200,
        &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    )
}

/// `GET|HEAD /_ping`: `OK`, with the headers clients negotiate from (the version header is on
/// every answer).
fn ping(call: &Call) -> Reply {
    let body = if call.method == hyper::Method::HEAD {
        respond::empty()
    } else {
        respond::full("OK")
    };
    Ok(respond::builder(200)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Builder-Version", "1")
        .body(body)
        .expect("static headers are valid"))
}

/// `GET /version`: the engine's `types.Version`, with the range of API versions served.
fn version(state: &State) -> Reply {
    let range = crate::version::range();
    respond::json(200, &berth_engine::version::version(&state.build, &range))
}
