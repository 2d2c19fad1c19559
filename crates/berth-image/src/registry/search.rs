//! `search`: repositories a registry has whose name holds a term. Docker Hub answers its index's
//! search (`/v1/search`, with descriptions and stars); any other registry its catalog
//! (`/v2/_catalog`), where the registry allows it (Debian's docker-registry does).

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::{Body, Client, RegistryOptions};
use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;

/// The most of a search answer read (a catalog page is at most 1000 names, the registry's
/// limit).
const MAX_ANSWER: u64 = 8 << 20;

/// One repository found, as Docker's `/images/search` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// `[REGISTRY/]TERM` split as Docker splits it: a first part with a '.' or ':' (or
/// `localhost`) names the registry; otherwise the term is Docker Hub's.
pub fn split_term(input: &str) -> (String, String) {
    match input.split_once('/') {
        Some((host, term)) if host.contains(['.', ':']) || host == "localhost" => {
            (host.to_string(), term.to_string())
        }
        _ => (DOCKER_HUB.to_string(), input.to_string()),
    }
}

/// Up to `limit` repositories of the registry `input` names whose name holds its term.
pub fn search(input: &str, limit: usize, options: &RegistryOptions) -> Result<Vec<Found>> {
    let (registry, term) = split_term(input);
    if registry == DOCKER_HUB {
        return hub(&term, limit, options);
    }
    let client = Client::new(&registry, vec!["registry:catalog:*".into()], options)?;
    let url = client.url("/v2/_catalog?n=1000");
    #[derive(Deserialize)]
    struct Catalog {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let catalog: Catalog = get_json(&client, &url, &format!("the catalog of {registry}"))?;
    Ok(catalog
        .repositories
        .into_iter()
        .filter(|r| r.contains(&term))
        .take(limit)
        .map(|r| Found {
            name: format!("{registry}/{r}"),
            ..Found::default()
        })
        .collect())
}

/// Docker Hub's index search.
fn hub(term: &str, limit: usize, options: &RegistryOptions) -> Result<Vec<Found>> {
    let client = Client::new("index.docker.io", Vec::new(), options)?;
    let url = format!(
        "https://index.docker.io/v1/search?q={}&n={limit}",
        super::query_escape(term)
    );
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        results: Vec<Found>,
    }
    let answer: Answer = get_json(&client, &url, "Docker Hub's search")?;
    Ok(answer.results.into_iter().take(limit).collect())
}

fn get_json<T: serde::de::DeserializeOwned>(client: &Client, url: &str, what: &str) -> Result<T> {
    let response = client.send("GET", url, &[], &Body::Empty)?;
    if response.status() != 200 {
        return Err(client.status_error(what.to_string(), response));
    }
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_ANSWER)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            object: url.to_string(),
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        object: what.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_names_its_registry_as_docker_reads_it() {
        assert_eq!(
            split_term("127.0.0.1:5000/busy"),
            ("127.0.0.1:5000".into(), "busy".into())
        );
        assert_eq!(split_term("localhost/x"), ("localhost".into(), "x".into()));
        assert_eq!(split_term("busybox"), (DOCKER_HUB.into(), "busybox".into()));
        assert_eq!(
            split_term("team/app"),
            (DOCKER_HUB.into(), "team/app".into())
        );
    }
}
