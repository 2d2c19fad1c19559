//! The registry client (Distribution API v2): a small synchronous client over `ureq`.
//!
//! Why not `oci-client`: it needs tokio, and berth's store and unpack are synchronous; threads
//! with blocking I/O give us concurrent layers without an async runtime, and ureq (rustls,
//! system CAs via rustls-native-certs, loaded at the first TLS connection: tls.rs) never forks.

pub mod auth;
pub mod credentials;
pub mod pull;
pub mod push;
pub mod resume;
pub mod search;
mod tls;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_spec::image::{Descriptor, Digest};

use crate::digest::{self};
use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;
pub use credentials::Credentials;

const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// The largest manifest or index read from a registry (containerd's limit, and Docker Hub's).
const MAX_MANIFEST: u64 = 4 << 20;

/// The largest config read into memory; a manifest declaring more is refused unread.
const MAX_SMALL_BLOB: u64 = 64 << 20;

/// Media types we ask for when fetching a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How to reach registries: which may use plain HTTP, and who we are.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (host[:port]) spoken to over plain HTTP, like Docker's insecure-registries.
    pub insecure_registries: Vec<String>,
    /// Credentials to use instead of looking them up in the auth files.
    pub credentials: Option<Credentials>,
    /// Mirrors of Docker Hub (`host[:port]`), tried in order before it for a pull.
    pub mirrors: Vec<String>,
}

impl RegistryOptions {
    /// Loopback registries are always plain HTTP, as in Docker.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        host == "localhost"
            || host.starts_with("127.")
            || host == "[::1]"
            || host == "::1"
            || self
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host)
    }
}

fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry
            .split_once(']')
            .map_or(registry, |(h, _)| &registry[..h.len() + 1]);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// A request body that can be sent again after an authentication round trip.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// A client for one registry, authorised for a set of repository scopes.
pub struct Client {
    agent: ureq::Agent,
    registry: String,
    base_url: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    scopes: Vec<String>,
}

impl Client {
    /// A client for `registry` asking for `scopes` (`repository:library/busybox:pull`).
    pub fn new(registry: &str, scopes: Vec<String>, options: &RegistryOptions) -> Result<Client> {
        let scheme = if options.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        let host = if registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let credentials = match &options.credentials {
            Some(c) => Some(c.clone()),
            None => credentials::lookup(registry)?,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .user_agent(USER_AGENT)
            .tls_connector(Arc::new(tls::SystemRoots))
            .build();
        Ok(Client {
            agent,
            registry: registry.to_string(),
            base_url: format!("{scheme}://{host}"),
            credentials,
            authorization: Mutex::new(None),
            scopes,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// True when `url` has the registry's own scheme, host and port.
    fn is_registry_url(&self, url: &str) -> bool {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        matches!((origin(url), origin(&self.base_url)), (Some(a), Some(b)) if a == b)
    }

    /// An absolute URL for a Location header, which may be relative.
    fn resolve_location(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            self.url(location)
        }
    }

    /// Sends a request, authenticating once on a 401. Returns the response whatever its status.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::Response> {
        let response = self.send_once(method, url, headers, body)?;
        if response.status() != 401 || !self.is_registry_url(url) {
            return Ok(response);
        }
        let challenge = response
            .header("www-authenticate")
            .unwrap_or("")
            .to_string();
        let authorization = auth::authorize(self, &challenge)?;
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(authorization);
        self.send_once(method, url, headers, body)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::Response> {
        let mut request = self.agent.request(method, url);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        // The registry's credentials go to the registry alone: an upload Location or a redirect
        // may name any host, and a hostile registry would collect them there.
        if let (Some(authorization), true) = (
            self.authorization
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref(),
            self.is_registry_url(url),
        ) {
            request = request.set("Authorization", authorization);
        }
        let result = match body {
            Body::Empty if matches!(method, "POST" | "PUT" | "PATCH") => {
                request.set("Content-Length", "0").call()
            }
            Body::Empty => request.call(),
            Body::Bytes(bytes, content_type) => {
                request.set("Content-Type", content_type).send_bytes(bytes)
            }
            Body::File { path, offset, len } => {
                let mut file = File::open(path).map_err(Error::io("open", path))?;
                file.seek(SeekFrom::Start(*offset))
                    .map_err(Error::io("seek", path))?;
                request
                    .set("Content-Type", "application/octet-stream")
                    .set("Content-Length", &len.to_string())
                    .send(file.take(*len))
            }
        };
        match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(response),
            Err(ureq::Error::Transport(t)) => Err(Error::Transport {
                url: url.to_string(),
                source: Box::new(t),
            }),
        }
    }

    /// Turns a non-success response into the error a person can act on.
    pub(crate) fn status_error(&self, object: String, response: ureq::Response) -> Error {
        let status = response.status();
        let url = response.get_url().to_string();
        let message = registry_message(response);
        match status {
            401 | 403 => Error::Unauthorized {
                registry: self.registry.clone(),
                message,
            },
            404 => Error::NotFound { object },
            _ => Error::Http {
                url,
                status,
                message,
            },
        }
    }

    /// Fetches a manifest by tag or digest: its bytes, media type and digest.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let response = self.send("GET", &url, &[("Accept", MANIFEST_ACCEPT)], &Body::Empty)?;
        if response.status() != 200 {
            return Err(self.status_error(
                format!("manifest {}/{repo}:{reference}", self.registry),
                response,
            ));
        }
        let content_type = response.content_type().to_string();
        let too_big = || Error::Invalid {
            object: format!("manifest {}/{repo}:{reference}", self.registry),
            reason: format!(
                "larger than {} MiB, the most berth accepts",
                MAX_MANIFEST >> 20
            ),
        };
        if content_length(&response).is_some_and(|n| n > MAX_MANIFEST) {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                object: url.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(too_big());
        }
        let media_type = media_type_of(&bytes).unwrap_or(content_type);
        let digest = digest::sha256(&bytes);
        Ok((bytes, media_type, digest))
    }

    /// Starts the download of the blob `descriptor` names; the caller reads at most its
    /// declared size and verifies the body. A registry that announces another length is
    /// refused before any of it is read.
    pub fn get_blob(&self, repo: &str, descriptor: &Descriptor) -> Result<ureq::Response> {
        let digest = descriptor.digest();
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let response = self.send("GET", &url, &[], &Body::Empty)?;
        if response.status() != 200 {
            return Err(self.status_error(format!("blob {digest}"), response));
        }
        match content_length(&response) {
            Some(got) if got != descriptor.size() => Err(Error::SizeMismatch {
                object: format!("blob {digest}"),
                expected: descriptor.size(),
                got,
            }),
            _ => Ok(response),
        }
    }

    /// Downloads a small blob (a config) whole, exactly its declared size, and verifies it.
    pub fn get_small_blob(&self, repo: &str, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let (digest, size) = (descriptor.digest(), descriptor.size());
        if size > MAX_SMALL_BLOB {
            return Err(Error::Invalid {
                object: format!("blob {digest}"),
                reason: format!(
                    "declared as {size} bytes, more than the {} MiB berth accepts for a config",
                    MAX_SMALL_BLOB >> 20
                ),
            });
        }
        let mut bytes = Vec::new();
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        self.get_blob(repo, descriptor)?
            .into_reader()
            .take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                object: url,
                source,
            })?;
        if bytes.len() as u64 > size {
            return Err(Error::Invalid {
                object: format!("blob {digest}"),
                reason: longer_than_declared(size),
            });
        }
        if bytes.len() as u64 != size {
            return Err(Error::SizeMismatch {
                object: format!("blob {digest}"),
                expected: size,
                got: bytes.len() as u64,
            });
        }
        digest::verify(|| format!("blob {digest}"), digest, &digest::sha256(&bytes))?;
        Ok(bytes)
    }
}

/// Why a body that runs on past its declared size is refused.
fn longer_than_declared(size: u64) -> String {
    format!("the registry sent more than the {size} bytes the manifest declares")
}

/// The Content-Length a response announces, if any.
fn content_length(response: &ureq::Response) -> Option<u64> {
    response.header("content-length")?.trim().parse().ok()
}

/// The manifest's own `mediaType`, which beats a registry's Content-Type.
fn media_type_of(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(value.get("mediaType")?.as_str()?.to_string())
}

/// The `errors[].code: message` of a registry error body, if it has one.
fn registry_message(response: ureq::Response) -> String {
    let mut body = String::new();
    let _ = response
        .into_reader()
        .take(64 << 10)
        .read_to_string(&mut body);
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let messages: Vec<String> = parsed["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e["code"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    if messages.is_empty() {
        body.lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect()
    } else {
        messages.join("; ")
    }
}

/// Percent-encodes a query value.
pub(crate) fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks `credentials` against `registry` (a /v2/ round trip through its auth scheme).
pub fn login(registry: &str, credentials: &Credentials, options: &RegistryOptions) -> Result<()> {
    let options = RegistryOptions {
        credentials: Some(credentials.clone()),
        ..options.clone()
    };
    let client = Client::new(registry, Vec::new(), &options)?;
    let url = client.url("/v2/");
    let response = client.send("GET", &url, &[], &Body::Empty)?;
    if response.status() == 200 {
        Ok(())
    } else {
        Err(client.status_error(format!("registry {registry}"), response))
    }
}
