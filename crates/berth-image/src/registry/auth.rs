//! Registry authentication: WWW-Authenticate challenges, Bearer tokens and Basic credentials.

use std::collections::HashMap;
use std::io::Read;

use base64::Engine;

use super::{query_escape, Client};
use crate::error::{Error, Result};

/// A parsed `WWW-Authenticate` header: the scheme and its parameters.
#[derive(Debug, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

pub(crate) fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Answers a challenge with an Authorization header value: Basic from the stored
/// credentials, or a Bearer token fetched from the challenge's realm for our scopes.
pub(crate) fn authorize(client: &Client, challenge_header: &str) -> Result<String> {
    let auth_err = |reason: String| Error::Auth {
        registry: client.registry.clone(),
        reason,
    };
    let challenge = parse_challenge(challenge_header).ok_or_else(|| {
        auth_err("the registry answered 401 without a WWW-Authenticate challenge".into())
    })?;
    match challenge.scheme.as_str() {
        "basic" => match &client.credentials {
            Some(c) => Ok(basic(&c.username, &c.password)),
            None => Err(Error::Unauthorized {
                registry: client.registry.clone(),
                message: "credentials required".into(),
            }),
        },
        "bearer" => fetch_token(client, &challenge),
        other => Err(auth_err(format!(
            "unsupported authentication scheme {other:?}"
        ))),
    }
}

fn fetch_token(client: &Client, challenge: &Challenge) -> Result<String> {
    let auth_err = |reason: String| Error::Auth {
        registry: client.registry.clone(),
        reason,
    };
    let realm = challenge
        .params
        .get("realm")
        .ok_or_else(|| auth_err("Bearer challenge without a realm".into()))?;
    let mut query = Vec::new();
    if let Some(service) = challenge.params.get("service") {
        query.push(format!("service={}", query_escape(service)));
    }
    // Our own scopes, which may be wider than the one challenged (push, cross-repo mount).
    let scopes: Vec<&String> = if client.scopes.is_empty() {
        challenge.params.get("scope").into_iter().collect()
    } else {
        client.scopes.iter().collect()
    };
    for scope in scopes {
        query.push(format!("scope={}", query_escape(scope)));
    }
    let url = if query.is_empty() {
        realm.clone()
    } else {
        format!("{realm}?{}", query.join("&"))
    };
    let mut request = client.agent.get(&url);
    if let Some(c) = &client.credentials {
        request = request.set("Authorization", &basic(&c.username, &c.password));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(401 | 403, r)) => {
            return Err(Error::Unauthorized {
                registry: client.registry.clone(),
                message: super::registry_message(r),
            })
        }
        Err(ureq::Error::Status(status, r)) => {
            return Err(Error::Http {
                url,
                status,
                message: super::registry_message(r),
            })
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(Error::Transport {
                url,
                source: Box::new(t),
            })
        }
    };
    let mut body = String::new();
    response
        .into_reader()
        .take(1 << 20)
        .read_to_string(&mut body)
        .map_err(|source| Error::Read {
            object: url.clone(),
            source,
        })?;
    let value: serde_json::Value = serde_json::from_str(&body).map_err(|source| Error::Json {
        object: format!("token from {url}"),
        source,
    })?;
    let token = value["token"].as_str().or(value["access_token"].as_str());
    token
        .map(|t| format!("Bearer {t}"))
        .ok_or_else(|| auth_err(format!("{url} returned no token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }
}
