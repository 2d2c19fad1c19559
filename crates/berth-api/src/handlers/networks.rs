//! `/networks`: list, inspect, create, connect, disconnect, remove and prune, over the
//! engine's network module (bridge networks: berth has no other driver).

use std::collections::BTreeMap;
use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use berth_engine::filters::Filters;
use berth_engine::network;
use serde::Deserialize;
use serde_json::json;

use super::{Routed, State};
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    let path: Vec<String> = call.segments.clone();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    Break(match (call.method.as_str(), path.as_slice()) {
        ("GET", ["networks"]) => list(state, &call).await,
        ("POST", ["networks", "create"]) => create(state, &mut call).await,
        ("POST", ["networks", "prune"]) => prune(state, &call).await,
        ("GET", ["networks", id]) => inspect(state, id.to_string()).await,
        ("DELETE", ["networks", id]) => remove(state, id.to_string()).await,
        ("POST", ["networks", id, "connect"]) => connect(state, &mut call, id.to_string()).await,
        ("POST", ["networks", id, "disconnect"]) => {
            disconnect(state, &mut call, id.to_string()).await
        }
        _ => return Continue(call),
    })
}

fn filter_pairs(call: &Call) -> Result<Vec<String>, ApiError> {
    Ok(crate::filters::Filters::of(&call.query)?.pairs())
}

/// `GET /networks`: each network as `inspect` shows it, with Docker's filters.
async fn list(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = filter_pairs(call)?;
    let networks = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, network::LIST_FILTERS)?;
            let networks = network::list(&s.engine, &filters)?;
            let inspected = networks
                .iter()
                .map(|n| network::inspect(&s.engine, &n.id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(inspected)
        })
        .await?;
    respond::json(200, &networks)
}

async fn inspect(state: &Arc<State>, id: String) -> Reply {
    let value = state
        .blocking(move |s| Ok(network::inspect(&s.engine, &id)?))
        .await?;
    respond::json(200, &value)
}

/// Docker's NetworkCreateRequest, as far as a bridge network has it. docker-py sends null for
/// what it was not given.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    internal: Option<bool>,
    /// Containers can always join a berth network: accepted, nothing to do.
    attachable: Option<bool>,
    ingress: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Ipam {
    driver: Option<String>,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct IpamConfig {
    subnet: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
    gateway: Option<String>,
}

/// `POST /networks/create`: 201 with the new network's id; a name taken is 409.
async fn create(state: &Arc<State>, call: &mut Call) -> Reply {
    let body: CreateBody = call.json().await?;
    let request = create_request(body)?;
    let net = state
        .blocking(move |s| Ok(network::create(&s.engine, &request)?))
        .await?;
    respond::json(201, &json!({"Id": net.id, "Warning": ""}))
}

/// The engine's request, or what berth cannot make in one line.
fn create_request(body: CreateBody) -> Result<network::CreateRequest, ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::bad_request(format!(
            "{what} is not supported by berth"
        )))
    };
    let name = body.name.unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::bad_request("network name is required: give Name"));
    }
    if body.enable_ipv6 == Some(true) {
        return refuse("EnableIPv6 (IPv6 networks)");
    }
    if body.ingress == Some(true) {
        return refuse("Ingress (a swarm's routing mesh)");
    }
    let _ = body.attachable;
    let ipam = body.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_deref(), None | Some("" | "default")) {
        return refuse(&format!(
            "IPAM driver {:?}",
            ipam.driver.unwrap_or_default()
        ));
    }
    let mut configs = ipam.config.unwrap_or_default().into_iter();
    let config = configs.next().unwrap_or_default();
    if configs.next().is_some() {
        return refuse("more than one IPAM config (a network has one IPv4 subnet)");
    }
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(network::CreateRequest {
        name,
        driver: body.driver.unwrap_or_default(),
        subnet: nonempty(config.subnet),
        gateway: nonempty(config.gateway),
        ip_range: nonempty(config.ip_range),
        internal: body.internal.unwrap_or(false),
        labels: body.labels.unwrap_or_default(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: Option<String>,
}

/// `POST /networks/{id}/connect`: the container joins the network (now if it runs, and at
/// its every start).
async fn connect(state: &Arc<State>, call: &mut Call, id: String) -> Reply {
    let body: ConnectBody = call.json().await?;
    if body.container.is_empty() {
        return Err(ApiError::bad_request("no container given: set Container"));
    }
    let endpoint = body.endpoint_config.unwrap_or_default();
    let aliases = endpoint.aliases.unwrap_or_default();
    let ip = endpoint
        .ipam_config
        .and_then(|i| i.ipv4_address)
        .filter(|ip| !ip.is_empty());
    state
        .blocking(move |s| {
            network::connect(&s.engine, &body.container, &id, &aliases, ip.as_deref())?;
            Ok(())
        })
        .await?;
    respond::status(200)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct DisconnectBody {
    container: String,
    /// An endpoint whose container is gone is removed all the same.
    force: Option<bool>,
}

/// `POST /networks/{id}/disconnect`.
async fn disconnect(state: &Arc<State>, call: &mut Call, id: String) -> Reply {
    let body: DisconnectBody = call.json().await?;
    if body.container.is_empty() {
        return Err(ApiError::bad_request("no container given: set Container"));
    }
    let force = body.force.unwrap_or(false);
    state
        .blocking(move |s| Ok(network::disconnect(&s.engine, &body.container, &id, force)?))
        .await?;
    respond::status(200)
}

/// `DELETE /networks/{id}`: 204; 403 for the default network or one with containers.
async fn remove(state: &Arc<State>, id: String) -> Reply {
    state
        .blocking(move |s| Ok(network::remove(&s.engine, &id)?))
        .await?;
    respond::status(204)
}

/// `POST /networks/prune?filters=`: the names removed.
async fn prune(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = filter_pairs(call)?;
    let removed = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, network::PRUNE_FILTERS)?;
            Ok(network::prune(&s.engine, &filters)?)
        })
        .await?;
    respond::json(200, &json!({"NetworksDeleted": removed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> CreateBody {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn create_bodies_read_as_clients_send_them() {
        // docker-py's nulls, the docker CLI's IPAM.
        let r = create_request(body(
            r#"{"Name":"n","Driver":null,"Options":null,"IPAM":null,"CheckDuplicate":null,"Labels":null}"#,
        ))
        .unwrap();
        assert_eq!((r.name.as_str(), r.subnet), ("n", None));
        let r = create_request(body(
            r#"{"Name":"n","Driver":"bridge","Internal":true,"Labels":{"a":"1"},
                "IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]}}"#,
        ))
        .unwrap();
        assert_eq!(r.subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(r.gateway.as_deref(), Some("10.9.0.1"));
        assert_eq!(r.ip_range, None);
        assert!(r.internal);
        assert_eq!(r.labels["a"], "1");
        for refused in [
            r#"{}"#,
            r#"{"Name":"n","EnableIPv6":true}"#,
            r#"{"Name":"n","IPAM":{"Config":[{"Subnet":"10.9.0.0/24"},{"Subnet":"10.8.0.0/24"}]}}"#,
        ] {
            assert_eq!(
                create_request(body(refused)).unwrap_err().status,
                400,
                "{refused}"
            );
        }
    }
}
