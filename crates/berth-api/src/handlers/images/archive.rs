//! `GET /images/get` and `/images/{name}/get` (`docker save`: a docker-archive tarball,
//! streamed) and `POST /images/load` (`docker load`: one read from the body as it comes).

use std::io::{BufWriter, Write};
use std::sync::Arc;

use berth_engine::images;
use berth_image::archive::Format;
use berth_image::progress::Silent;
use serde_json::json;

use super::stream::{self, error_message, BodyReader, Writer};
use crate::error::ApiError;
use crate::handlers::State;
use crate::respond::Reply;
use crate::router::Call;

/// The images `names` name, in one docker-archive.
pub async fn save(state: &Arc<State>, names: Vec<String>) -> Reply {
    if names.iter().all(|n| n.is_empty()) {
        return Err(ApiError::bad_request("no image to save: give names=IMAGE"));
    }
    stream::stream(state, "application/x-tar", move |s, out| {
        let mut writer = BufWriter::with_capacity(64 << 10, Writer(out));
        images::save(&s.engine, &names, Format::Docker, &mut writer)?;
        writer
            .flush()
            .map_err(|e| ApiError::internal(format!("send the archive: {e}")))?;
        Ok(())
    })
    .await
}

/// `POST /images/load?quiet=`: `Loaded image: NAME` for each name (or its ID when it has
/// none), as a `stream` message; any failure is an error message in the stream, as Docker
/// answers a bad archive.
pub async fn load(state: &Arc<State>, call: &mut Call) -> Reply {
    let body = BodyReader::new(call.take_body());
    stream::stream(state, "application/json", move |s, out| {
        let loaded = match images::load(&s.engine, std::io::BufReader::new(body), &Silent) {
            Ok(loaded) => loaded,
            Err(e) => {
                out.json(&error_message(&e.to_string()));
                return Ok(());
            }
        };
        for image in loaded {
            let lines: Vec<String> = match image.names.as_slice() {
                [] => vec![format!("Loaded image ID: {}", image.id)],
                names => names
                    .iter()
                    .map(|n| format!("Loaded image: {}", n.familiar()))
                    .collect(),
            };
            for line in lines {
                out.json(&json!({"stream": format!("{line}\n")}));
            }
        }
        Ok(())
    })
    .await
}
