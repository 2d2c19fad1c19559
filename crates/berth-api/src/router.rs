//! A request as handlers see it (method, version, path segments, query, headers, body), and the
//! table from routes to handlers. Paths are Docker's, with or without the `/v1.xx` prefix.

use std::collections::HashMap;

use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request};

use crate::error::ApiError;
use crate::handlers::{self, State};
use crate::respond::{self, Reply};
use crate::version::{self, ApiVersion};

/// One API call.
pub struct Call {
    pub method: Method,
    pub version: ApiVersion,
    /// The path's segments after the version, percent-decoded.
    pub segments: Vec<String>,
    pub query: Query,
    pub headers: HeaderMap,
    /// The request without its body, for an upgrade (attach, exec start: `hyper::upgrade::on`).
    pub request: Request<()>,
    /// The body, until read.
    body: Option<Incoming>,
}

impl Call {
    pub fn new(request: Request<Incoming>) -> Result<Call, ApiError> {
        let (version, path) = version::split(request.uri().path())?;
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let query = Query::parse(request.uri().query().unwrap_or(""));
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, ());
        Ok(Call {
            method: request.method().clone(),
            version,
            segments,
            query,
            headers: request.headers().clone(),
            request,
            body: Some(body),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path's segments, for matching.
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The body as it comes (a PUT of an archive, a load): read once.
    pub fn take_body(&mut self) -> Option<Incoming> {
        self.body.take()
    }

    /// The whole body, refused past `limit` bytes (413) rather than held.
    pub async fn body(&mut self, limit: usize) -> Result<bytes::Bytes, ApiError> {
        use http_body_util::{BodyExt, Limited};
        let Some(body) = self.body.take() else {
            return Ok(bytes::Bytes::new());
        };
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
                413,
                format!("request body too large: more than {limit} bytes"),
            )),
            Err(e) => Err(ApiError::bad_request(format!("read the request body: {e}"))),
        }
    }

    /// The body as JSON of type `T` (an empty body is `T`'s default, as Docker reads an absent
    /// one). Malformed JSON or a wrong type is a 400 naming where.
    pub async fn json<T: serde::de::DeserializeOwned + Default>(&mut self) -> Result<T, ApiError> {
        let bytes = self.body(JSON_LIMIT).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
    }
}

/// The largest JSON body accepted: a container's config is a few KiB.
pub const JSON_LIMIT: usize = 4 << 20;

/// The query string, as Go's url.ParseQuery reads it (`+` is a space).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: &str) -> Query {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            map.entry(decode(k)).or_default().push(decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Docker's booleans: `1`, `true`, `True`... are true; absent or `0`/`false` false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key).map(str::to_ascii_lowercase).as_deref(),
            Some("1" | "true" | "yes")
        )
    }

    /// An integer parameter; a malformed one is a 400 naming it.
    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a number"))
            }),
        }
    }
}

/// `%2F` and friends decoded; invalid escapes kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one request: the route's handler, or Docker's error.
pub async fn dispatch(
    state: std::sync::Arc<State>,
    request: Request<Incoming>,
) -> hyper::Response<respond::Body> {
    let reply: Reply = match Call::new(request) {
        Ok(call) => handlers::route(state, call).await,
        Err(e) => Err(e),
    };
    reply.unwrap_or_else(|e| respond::error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_gos_do() {
        let q = Query::parse("all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&x=a+b&x=c");
        assert!(q.flag("all"));
        assert_eq!(q.get("filters"), Some(r#"{"status":["exited"]}"#));
        assert_eq!(q.all("x"), ["a b", "c"]);
        assert!(!q.flag("missing"));
    }

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
