//! The contents of the container's /etc/hosts and /etc/resolv.conf, as Docker writes them
//! (libnetwork `etchosts.Build` and `resolvconf`).

use std::net::IpAddr;

use super::SpecError;

/// Docker's fixed part of /etc/hosts.
const HOSTS_DEFAULT: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// One `--add-host`: `name:ip` (the ip may hold colons itself, or be in brackets) or `name=ip`;
/// its address `None` for Docker's `host-gateway`, which the engine gives one.
pub fn extra_host(entry: &str) -> Result<(&str, Option<IpAddr>), SpecError> {
    let err = |reason: &str| SpecError::invalid(format!("--add-host {entry}"), reason);
    let (name, addr) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| err("use name:ip"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(err("the host name is empty or has spaces; use name:ip"));
    }
    if addr == "host-gateway" {
        return Ok((name, None));
    }
    let addr = addr
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| err("not an IP address after the name; use name:ip"))?;
    Ok((name, Some(addr)))
}

/// /etc/hosts: the defaults, each `--add-host name:ip`, then the container's own address
/// under its hostname when it has one.
pub fn hosts_file(
    hostname: &str,
    ip: Option<IpAddr>,
    add_hosts: &[String],
) -> Result<String, SpecError> {
    let mut out = String::from(HOSTS_DEFAULT);
    for entry in add_hosts {
        let (name, addr) = extra_host(entry)?;
        // The engine gives host-gateway its address first (network::resolve_extra_hosts).
        let addr = addr.ok_or_else(|| {
            SpecError::invalid(
                format!("--add-host {entry}"),
                "host-gateway has no address here; give one",
            )
        })?;
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    if let Some(ip) = ip {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    Ok(out)
}

/// Nameserver addresses of a resolv.conf.
fn nameservers(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
    })
}

/// Whether a nameserver is of no use in the container's network namespace: loopback (a
/// local stub resolver such as systemd-resolved's 127.0.0.53) or IPv6, which Docker's
/// default network does not route.
fn unusable(ns: &str) -> bool {
    match ns.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        _ => true,
    }
}

/// The host file to start from: `/etc/resolv.conf`, unless it only lists local stubs and
/// systemd-resolved's upstream file (`/run/systemd/resolve/resolv.conf`) was given.
pub fn pick_host_resolv<'a>(etc_resolv: &'a str, systemd_resolv: Option<&'a str>) -> &'a str {
    match systemd_resolv {
        Some(upstream) if nameservers(etc_resolv).all(unusable) => upstream,
        _ => etc_resolv,
    }
}

/// resolv.conf for the container: the host's, without loopback and IPv6 nameservers (Google's
/// public ones when none is left, like Docker); `--dns`, `--dns-search` and `--dns-option`
/// replace their part. `--dns-search .` means no search domains.
pub fn resolv_conf(
    host_resolv: &str,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    if dns.is_empty() && search.is_empty() && options.is_empty() {
        return filtered(host_resolv);
    }
    let host = filtered(host_resolv);
    let field = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(|rest| rest.split_whitespace().map(String::from))
            .collect()
    };
    let servers: Vec<String> = if dns.is_empty() {
        field("nameserver ")
    } else {
        dns.to_vec()
    };
    let search = match search {
        [] => field("search "),
        [dot] if dot == "." => Vec::new(),
        s => s.to_vec(),
    };
    let options = if options.is_empty() {
        field("options ")
    } else {
        options.to_vec()
    };
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in servers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The host's file with unusable nameserver lines removed.
fn filtered(host: &str) -> String {
    let mut out: String = host
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver") && w.next().is_none_or(unusable))
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    if nameservers(&out).next().is_none() {
        out.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUB: &str = "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";

    #[test]
    fn hosts_lists_extra_hosts_then_the_container() {
        let add = vec!["db:10.0.0.5".to_string(), "v6:fd00::1".to_string()];
        let text = hosts_file("abc", Some("172.17.0.2".parse().unwrap()), &add).unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            text.ends_with("10.0.0.5\tdb\nfd00::1\tv6\n172.17.0.2\tabc\n"),
            "{text}"
        );
        assert!(hosts_file("abc", None, &["db".into()]).is_err());
        assert!(hosts_file("abc", None, &["db:nope".into()]).is_err());
        assert!(!hosts_file("abc", None, &[]).unwrap().contains("abc"));
    }

    #[test]
    fn stubs_fall_back_to_google_or_systemd() {
        let text = resolv_conf(STUB, &[], &[], &[]);
        assert!(!text.contains("127.0.0.53"));
        assert!(text.contains("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"));
        assert!(text.contains("search lan"));
        let upstream = "nameserver 192.168.1.1\n";
        assert_eq!(pick_host_resolv(STUB, Some(upstream)), upstream);
        assert_eq!(pick_host_resolv(upstream, Some(STUB)), upstream);
        assert_eq!(resolv_conf(upstream, &[], &[], &[]), upstream);
    }

    #[test]
    fn flags_replace_their_part() {
        let host = "nameserver 1.1.1.1\nsearch lan\noptions ndots:1\n";
        let text = resolv_conf(host, &["9.9.9.9".into()], &[], &["ndots:2".into()]);
        assert_eq!(text, "search lan\nnameserver 9.9.9.9\noptions ndots:2\n");
        let text = resolv_conf(host, &[], &[".".into()], &[]);
        assert_eq!(text, "nameserver 1.1.1.1\noptions ndots:1\n");
    }
}
