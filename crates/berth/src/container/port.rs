//! `port`: the published ports of a container, from its network attachment; and the PORTS
//! column of `ps`, as the docker CLI draws both from what the engine reports.

use anyhow::Result;
use berth_engine::ports::Summary;
use berth_engine::records::Record;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// Docker's PORTS column (the docker CLI's `DisplayablePorts`): ports in order, a run of
/// consecutive ports that are exposed only, or published on the same port of one address,
/// grouped (`7000-7002/tcp`, `127.0.0.1:5000-5001->5000-5001/udp`), then the ports published
/// elsewhere (`0.0.0.0:32768->80/tcp`).
pub fn ports_text(record: &Record) -> String {
    let mut ports = berth_engine::ports::summaries(record);
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, &a.protocol).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port,
            &b.protocol,
        ))
    });
    // (key, first, last) in the order the keys first appear.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut elsewhere = Vec::new();
    for Summary {
        ip,
        private_port: port,
        public_port,
        protocol,
    } in &ports
    {
        let key = match ip.as_str() {
            "" => protocol.clone(),
            _ if public_port != port => {
                elsewhere.push(format!("{ip}:{public_port}->{port}/{protocol}"));
                continue;
            }
            _ => format!("{ip}/{protocol}"),
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, *port, *port)),
            Some(g) if g.2.checked_add(1) == Some(*port) => g.2 = *port,
            Some(g) => {
                result.push(group(&g.0, g.1, g.2));
                (g.1, g.2) = (*port, *port);
            }
        }
    }
    result.extend(
        groups
            .iter()
            .map(|(key, first, last)| group(key, *first, *last)),
    );
    result.extend(elsewhere);
    result.join(", ")
}

/// The docker CLI's `formGroup`: `7000-7002/tcp`, or `ip:7000-7002->7000-7002/tcp`.
fn group(key: &str, first: u16, last: u16) -> String {
    let ports = match first == last {
        true => first.to_string(),
        false => format!("{first}-{last}"),
    };
    match key.split_once('/') {
        Some((ip, protocol)) => format!("{ip}:{ports}->{ports}/{protocol}"),
        None => format!("{ports}/{key}"),
    }
}

pub fn run(ctx: &Context, args: PortArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    let want = args.port.as_deref().map(|p| match p.split_once('/') {
        Some((port, proto)) if !proto.is_empty() => format!("{port}/{proto}"),
        Some((port, _)) => format!("{port}/tcp"),
        None => format!("{p}/tcp"),
    });
    let published = berth_engine::ports::published(&record);
    let mut out: Vec<String> = match &want {
        Some(w) => published
            .iter()
            .filter(|(c, _)| c == w)
            .map(|(_, h)| h.clone())
            .collect(),
        None => published
            .iter()
            .map(|(c, h)| format!("{c} -> {h}"))
            .collect(),
    };
    if let (Some(port), true) = (&args.port, out.is_empty()) {
        anyhow::bail!("no public port '{port}' published for {}", args.container);
    }
    out.sort_by(|a, b| natural_order(a, b));
    for line in out {
        outln!("{line}");
    }
    Ok(0)
}

/// fvbommel/sortorder's natural order, as `docker port` sorts its lines: runs of digits
/// compared as numbers (fewer leading zeros first when equal), digits before anything else,
/// the rest byte by byte.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::Equal;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while let (Some(x), Some(y)) = (a.first(), b.first()) {
        let order = match (x.is_ascii_digit(), y.is_ascii_digit()) {
            (true, false) => return std::cmp::Ordering::Less,
            (false, true) => return std::cmp::Ordering::Greater,
            (false, false) => {
                (a, b) = (&a[1..], &b[1..]);
                x.cmp(y)
            }
            (true, true) => {
                let zeros = |s: &[u8]| s.iter().take_while(|c| **c == b'0').count();
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (za, zb) = (zeros(a), zeros(b));
                let (na, nb) = (&a[za..za + digits(&a[za..])], &b[zb..zb + digits(&b[zb..])]);
                let order = na.len().cmp(&nb.len()).then(na.cmp(nb)).then(za.cmp(&zb));
                (a, b) = (&a[za + na.len()..], &b[zb + nb.len()..]);
                order
            }
        };
        if order != Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut lines = vec![
            "9001/tcp -> x",
            "80/tcp -> x",
            "9000/tcp -> x",
            "443/udp -> x",
        ];
        lines.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            lines,
            [
                "80/tcp -> x",
                "443/udp -> x",
                "9000/tcp -> x",
                "9001/tcp -> x"
            ]
        );
    }

    #[test]
    fn groups_as_the_docker_cli_does() {
        assert_eq!(group("tcp", 7000, 7002), "7000-7002/tcp");
        assert_eq!(
            group("127.0.0.1/udp", 5000, 5001),
            "127.0.0.1:5000-5001->5000-5001/udp"
        );
        assert_eq!(group("0.0.0.0/tcp", 80, 80), "0.0.0.0:80->80/tcp");
    }
}
