//! Black-box tests of `inspect --format` with Go template forms Docker users write: field
//! chains on a parenthesized pipeline (`{{(index .Mounts 0).Destination}}`) and variables
//! with fields.
//!
//! Needs root and `cargo build -p berth` beforehand. Each test has its own data root
//! ([`Berth`]): dropping it removes the container and its anonymous volume even when the
//! test fails.

use berth_harness::image::{Berth, IMAGE};
use berth_harness::need_root;

#[test]
fn inspect_format_takes_fields_of_a_parenthesized_pipeline() {
    need_root!();
    let berth = Berth::new();
    #[rustfmt::skip]
    berth.ok(&[
        "run", "-d", "--name", "tpl", "-v", "/data", "-p", "127.0.0.1::80", IMAGE,
        "sleep", "1000",
    ]);
    let format = |f: &str| berth.ok(&["inspect", "--format", f, "tpl"]);
    assert_eq!(format("{{(index .Mounts 0).Destination}}"), "/data");
    let volume = berth.ok(&["volume", "ls", "-q"]);
    assert_eq!(format("{{(index .Mounts 0).Name}}"), volume);
    assert_eq!(
        format("{{range $m := .Mounts}}{{$m.Destination}}{{end}}"),
        "/data"
    );
    // The host port, as `berth port` tells it (127.0.0.1:<port>).
    let port_out = berth.ok(&["port", "tpl", "80"]);
    let port = port_out
        .lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:"))
        .unwrap_or_else(|| panic!("berth port tpl 80: {port_out}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{port_out}");
    assert_eq!(
        format(r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#),
        port
    );
    assert_eq!(
        format(
            r#"{{printf "%s:%s" (index (index .NetworkSettings.Ports "80/tcp") 0).HostIp $.Name}}"#
        ),
        "127.0.0.1:/tpl"
    );
    // With a space the field is a second operand, which Go (and berth) refuse.
    let ran = berth.run(&["inspect", "--format", "{{(index .Mounts 0) .Name}}", "tpl"]);
    assert!(!ran.success(), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("can't give argument to non-function"),
        "{}",
        ran.stderr
    );
}
