//! Ports as Docker has them: the specs of `-p` and `--expose` (docker/go-connections' `nat`,
//! with which the docker CLI parses them, in the words of its errors), the API's
//! `PortBindings` host ports and `ExposedPorts` keys, the ports a container exposes, and its
//! ports as `inspect`, `port` and `ps` show them.

use std::collections::BTreeSet;

use oci_spec::image::ImageConfiguration;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::records::Record;
use crate::request::{ExposedPort, PortRequest, RunRequest};

/// Docker's `ParsePortRange`: `80`, or `8000-8010` (what follows a second `-` is ignored, as
/// there), with its words for what does not parse.
pub fn range(ports: &str) -> std::result::Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let number = |s: &str| -> std::result::Result<u16, String> {
        let why = if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            "invalid syntax"
        } else {
            "value out of range"
        };
        s.parse()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("strconv.ParseUint: parsing {s:?}: {why}"))
    };
    let Some((start, rest)) = ports.split_once('-') else {
        let port = number(ports)?;
        return Ok((port, port));
    };
    let end = rest.split('-').next().unwrap_or(rest);
    let (start, end) = (number(start)?, number(end)?);
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// `tcp` for an empty protocol, lower-cased; Docker's `invalid proto` for any but tcp, udp
/// and sctp.
fn protocol(proto: &str) -> std::result::Result<String, String> {
    let proto = match proto.to_ascii_lowercase() {
        p if p.is_empty() => "tcp".to_string(),
        p => p,
    };
    match proto.as_str() {
        "tcp" | "udp" | "sctp" => Ok(proto),
        _ => Err(format!("invalid proto: {proto}")),
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]`, each part a port or a range: one request per
/// container port (Docker's `ParsePortSpec`). A range of host ports for one container port is
/// where a free one is chosen at start (`-p 8000-8010:80`); otherwise the ranges are as long.
pub fn publish(spec: &str) -> Result<Vec<PortRequest>> {
    let fail = |why: String| Error::Invalid(format!("-p {spec}: {why}"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (ip, host, container) =
        match parts.as_slice() {
            [c] => ("", "", *c),
            [c, h] => ("", *h, *c),
            // An IPv6 address is bracketed; anything else with a colon is a spec with too many parts.
            [_, _, ip] if ip.contains(':') && !ip.starts_with('[') => return Err(fail(
                "malformed port spec: too many ':'; use [ip:][hostPort:]containerPort[/tcp|udp]"
                    .into(),
            )),
            [c, h, ip] => (ip.trim_start_matches('[').trim_end_matches(']'), *h, *c),
            _ => return Err(fail("no port specified".into())),
        };
    let (container, proto) = container.split_once('/').unwrap_or((container, ""));
    if container.is_empty() {
        return Err(fail(format!("no port specified: {spec}<empty>")));
    }
    let proto = protocol(proto).map_err(fail)?;
    if proto == "sctp" {
        return Err(fail("berth publishes tcp and udp ports, not sctp".into()));
    }
    let (start, end) = range(container)
        .ok()
        .filter(|(start, _)| *start != 0)
        .ok_or_else(|| fail(format!("invalid containerPort: {container}")))?;
    let (host_start, host_end) = match host {
        "" => (0, 0),
        h => range(h).map_err(|_| fail(format!("invalid hostPort: {h}")))?,
    };
    if !host.is_empty() && end - start != host_end - host_start && end != start {
        return Err(fail(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        )));
    }
    let dynamic = start == end && host_end > host_start;
    Ok((start..=end)
        .map(|port| PortRequest {
            host_ip: ip.to_string(),
            host_port: match host_start {
                0 => 0,
                h => h + (port - start),
            },
            host_port_end: if dynamic { host_end } else { 0 },
            container_port: port,
            protocol: proto.clone(),
        })
        .collect())
}

/// `--expose port[-port][/proto]`: every port of the range (the docker CLI's reading).
pub fn expose(spec: &str) -> Result<Vec<ExposedPort>> {
    let fail = |why: String| Error::Invalid(why);
    if spec.contains(':') {
        return Err(fail(format!("invalid port format for --expose: {spec}")));
    }
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, ""));
    let (start, end) = range(ports).map_err(|e| {
        fail(format!(
            "invalid range format for --expose: {spec}, error: {e}"
        ))
    })?;
    let protocol = protocol(proto).map_err(|e| fail(format!("--expose {spec}: {e}")))?;
    Ok((start..=end)
        .map(|port| ExposedPort {
            port,
            protocol: protocol.clone(),
        })
        .collect())
}

/// A key of the API's `ExposedPorts` or `PortBindings` (`80/tcp`, `80`): one port, as the
/// daemon checks it.
pub fn key(key: &str) -> Result<ExposedPort> {
    let (port, proto) = key.split_once('/').unwrap_or((key, ""));
    let invalid = || Error::Invalid(format!("invalid port specification: {port:?}"));
    let port = match range(port) {
        Ok((p, end)) if p == end && p != 0 => p,
        _ => return Err(invalid()),
    };
    let protocol = protocol(proto).map_err(Error::Invalid)?;
    Ok(ExposedPort { port, protocol })
}

/// A `PortBindings` entry's `HostPort`: empty (any free port), a port or a range to choose
/// from, as (first, last); last is 0 for one port.
pub fn host_port(host_port: &str) -> Result<(u16, u16)> {
    if host_port.is_empty() {
        return Ok((0, 0));
    }
    match range(host_port) {
        Ok((p, end)) if p == end => Ok((p, 0)),
        Ok(r) => Ok(r),
        Err(_) => Err(Error::Invalid(format!(
            "invalid port specification: {host_port:?}"
        ))),
    }
}

/// The image's EXPOSEd ports (`"80/tcp": {}`); keys that are no port are left out.
pub fn of_image(config: &ImageConfiguration) -> Vec<ExposedPort> {
    let ports = config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|k| key(k).ok())
        .collect()
}

/// At create: the ports the container exposes, as Docker's create keeps them: those asked
/// for, those `-p` publishes, and the image's.
pub fn merge_exposed(req: &mut RunRequest, config: &ImageConfiguration) {
    let mut all: BTreeSet<ExposedPort> = req.exposed_ports.drain(..).collect();
    all.extend(req.ports.iter().map(|p| ExposedPort {
        port: p.container_port,
        protocol: p.protocol.clone(),
    }));
    all.extend(of_image(config));
    req.exposed_ports = all.into_iter().collect();
}

/// What `-P` publishes beyond `-p`: every exposed tcp or udp port `-p` left out, on a free
/// host port of every address. `image` adds the image's ports for a record made before
/// create kept them.
pub fn publish_all(req: &RunRequest, image: &[ExposedPort]) -> Vec<PortRequest> {
    if !req.publish_all {
        return Vec::new();
    }
    let exposed: BTreeSet<&ExposedPort> = req.exposed_ports.iter().chain(image).collect();
    exposed
        .into_iter()
        .filter(|e| e.protocol != "sctp")
        .filter(|e| {
            !req.ports
                .iter()
                .any(|p| p.container_port == e.port && p.protocol == e.protocol)
        })
        .map(|e| PortRequest {
            host_ip: String::new(),
            host_port: 0,
            host_port_end: 0,
            container_port: e.port,
            protocol: e.protocol.clone(),
        })
        .collect()
}

/// Docker's `Config.ExposedPorts`: `{"80/tcp": {}}`.
pub fn exposed_json(record: &Record) -> Value {
    let keys = exposed_keys(record);
    Value::Object(keys.into_iter().map(|k| (k, json!({}))).collect())
}

fn exposed_keys(record: &Record) -> BTreeSet<String> {
    let req = &record.request;
    let asked = req
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.container_port, p.protocol));
    req.exposed_ports
        .iter()
        .map(ToString::to_string)
        .chain(asked)
        .collect()
}

/// Docker's `HostConfig.PortBindings`: what `-p` asked, `"80/tcp": [{"HostIp": "",
/// "HostPort": "8000-8010"}]` (an empty HostPort: any).
pub fn bindings_json(req: &RunRequest) -> Value {
    let mut bindings = Map::new();
    for p in &req.ports {
        let port = match (p.host_port, p.host_port_end) {
            (0, _) => String::new(),
            (n, 0) => n.to_string(),
            (n, end) => format!("{n}-{end}"),
        };
        push(
            &mut bindings,
            p.container_port,
            &p.protocol,
            &p.host_ip,
            port,
        );
    }
    Value::Object(bindings)
}

fn push(map: &mut Map<String, Value>, port: u16, proto: &str, ip: &str, host_port: String) {
    let binding = json!({"HostIp": ip, "HostPort": host_port});
    match map
        .entry(format!("{port}/{proto}"))
        .or_insert_with(|| json!([]))
    {
        Value::Array(a) => a.push(binding),
        other => *other = json!([binding]),
    }
}

/// Docker's `NetworkSettings.Ports` while the container has its network: every exposed port,
/// `null` where nothing is published, else where it is (`{"80/tcp": [{"HostIp": "0.0.0.0",
/// "HostPort": "32768"}]}`); `{}` without a network.
pub fn settings_json(record: &Record) -> Value {
    let Some(att) = record.network.as_ref().filter(|a| a.ip.is_some()) else {
        return json!({});
    };
    let mut m: Map<String, Value> = exposed_keys(record)
        .into_iter()
        .map(|k| (k, Value::Null))
        .collect();
    for p in &att.ports {
        // Published: its bindings replace the null.
        let key = format!("{}/{}", p.container_port, p.protocol);
        if m.get(&key).is_some_and(Value::is_null) {
            m.remove(&key);
        }
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        push(
            &mut m,
            p.container_port,
            &p.protocol,
            ip,
            p.host_port.to_string(),
        );
    }
    Value::Object(m)
}

/// A port as the API's container list gives it (Docker's `types.Port`): a published one with
/// its address and host port, an exposed one without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub private_port: u16,
    #[serde(skip_serializing_if = "is_zero")]
    pub public_port: u16,
    #[serde(rename = "Type")]
    pub protocol: String,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// The container's ports as `ps` lists them, from [`settings_json`] as dockerd derives them.
pub fn summaries(record: &Record) -> Vec<Summary> {
    let Value::Object(settings) = settings_json(record) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, bindings) in settings {
        let Ok(port) = self::key(&key) else { continue };
        let bindings = bindings.as_array().cloned().unwrap_or_default();
        if bindings.is_empty() {
            out.push(Summary {
                ip: String::new(),
                private_port: port.port,
                public_port: 0,
                protocol: port.protocol.clone(),
            });
        }
        for b in bindings {
            out.push(Summary {
                ip: b["HostIp"].as_str().unwrap_or_default().to_string(),
                private_port: port.port,
                public_port: b["HostPort"]
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                protocol: port.protocol.clone(),
            });
        }
    }
    out
}

/// The published ports as (container `80/tcp`, host `0.0.0.0:8080`), for `port`.
pub fn published(record: &Record) -> Vec<(String, String)> {
    let ports = record.network.iter().flat_map(|n| &n.ports);
    ports
        .map(|p| {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            (
                format!("{}/{}", p.container_port, p.protocol),
                format!("{ip}:{}", p.host_port),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(p: &str) -> Vec<(String, u16, u16, u16, String)> {
        publish(p)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.host_ip,
                    r.host_port,
                    r.host_port_end,
                    r.container_port,
                    r.protocol,
                )
            })
            .collect()
    }

    fn refused(p: &str) -> String {
        publish(p).unwrap_err().to_string()
    }

    #[test]
    fn publish_reads_what_the_docker_cli_reads() {
        let tcp = || "tcp".to_string();
        assert_eq!(spec("80"), [(String::new(), 0, 0, 80, tcp())]);
        assert_eq!(spec("8080:80"), [(String::new(), 8080, 0, 80, tcp())]);
        assert_eq!(
            spec("19000-19001:9000-9001"),
            [
                (String::new(), 19000, 0, 9000, tcp()),
                (String::new(), 19001, 0, 9001, tcp())
            ]
        );
        assert_eq!(
            spec("8000-8010:80"),
            [(String::new(), 8000, 8010, 80, tcp())]
        );
        let udp = "udp".to_string();
        assert_eq!(
            spec("127.0.0.1:5000-5001:5000-5001/UDP"),
            [
                ("127.0.0.1".into(), 5000, 0, 5000, udp.clone()),
                ("127.0.0.1".into(), 5001, 0, 5001, udp.clone())
            ]
        );
        assert_eq!(
            spec("127.0.0.1::53/udp"),
            [("127.0.0.1".into(), 0, 0, 53, udp)]
        );
        assert_eq!(spec("[::1]:80:80")[0].0, "::1");
        assert_eq!(spec("9000-9001").len(), 2);
    }

    #[test]
    fn publish_refuses_in_dockers_words() {
        assert!(refused("19000-19002:9000-9001").ends_with(
            "invalid ranges specified for container and host Ports: 9000-9001 and 19000-19002"
        ));
        assert!(refused("x:80").ends_with("invalid hostPort: x"));
        assert!(refused("9001-9000").ends_with("invalid containerPort: 9001-9000"));
        assert!(refused("70000").ends_with("invalid containerPort: 70000"));
        assert!(refused("0").ends_with("invalid containerPort: 0"));
        assert!(refused("80/foo").ends_with("invalid proto: foo"));
        assert!(refused("80/sctp").contains("tcp and udp"));
        assert!(refused("80:80:80:80").contains("malformed port spec"));
        assert!(refused("8080:").contains("no port specified"));
    }

    #[test]
    fn expose_takes_ports_and_ranges() {
        let ports: Vec<String> = expose("7000-7002")
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(ports, ["7000/tcp", "7001/tcp", "7002/tcp"]);
        assert_eq!(expose("53/udp").unwrap()[0].to_string(), "53/udp");
        let e = |s| expose(s).unwrap_err().to_string();
        assert_eq!(e("80:80"), "invalid port format for --expose: 80:80");
        assert_eq!(
            e("x"),
            "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            e("7002-7000"),
            "invalid range format for --expose: 7002-7000, error: invalid range specified for port: 7002-7000"
        );
        assert_eq!(
            e("/udp"),
            "invalid range format for --expose: /udp, error: empty string specified for ports"
        );
        assert!(range("+5").is_err() && range("70000").unwrap_err().contains("out of range"));
    }

    #[test]
    fn api_keys_and_host_ports() {
        assert_eq!(key("80/tcp").unwrap().to_string(), "80/tcp");
        assert_eq!(key("53").unwrap().to_string(), "53/tcp");
        assert!(key("7000-7002/tcp").is_err() && key("x/tcp").is_err() && key("0").is_err());
        assert_eq!(host_port("").unwrap(), (0, 0));
        assert_eq!(host_port("8080").unwrap(), (8080, 0));
        assert_eq!(host_port("8000-8010").unwrap(), (8000, 8010));
        assert!(host_port("x").is_err());
    }

    #[test]
    fn publish_all_takes_every_exposed_port_not_published() {
        let req = RunRequest {
            publish_all: true,
            ports: publish("8080:80").unwrap(),
            exposed_ports: expose("80")
                .unwrap()
                .into_iter()
                .chain(expose("53/udp").unwrap())
                .collect(),
            ..RunRequest::default()
        };
        let image = expose("443").unwrap();
        let all: Vec<String> = publish_all(&req, &image)
            .iter()
            .map(|p| format!("{}/{}:{}", p.container_port, p.protocol, p.host_port))
            .collect();
        assert_eq!(all, ["53/udp:0", "443/tcp:0"]);
    }
}
