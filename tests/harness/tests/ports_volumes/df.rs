//! `system df -v`: the docker CLI draws its four tables from the service's `/system/df`;
//! `berth system df -v` must draw the same from the engine.

use berth_harness::api::Service;
use berth_harness::eventually;
use berth_harness::image::IMAGE;

/// With an image used by two containers (one running with a local volume and a bind, one
/// created), a volume holding 5000 bytes and an unused one, both CLIs print the same tables:
/// the image's sizes and users, each container's status as ps says it and its local volumes
/// counted, each volume's links and size, an empty build cache. The two are printed a moment
/// apart, so they are compared until no "N seconds ago" lies between them. (Before: berth's
/// df had no -v, the service's containers carried no mounts and a bare state as status.)
#[test]
fn system_df_verbose_prints_the_docker_clis_tables() {
    crate::need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    let host = tempfile::tempdir().expect("bind source");
    let bind = format!("{}:/host", host.path().display());
    berth.ok(&["volume", "create", "data"]);
    berth.ok(&["volume", "create", "unused"]);
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-v",
        "data:/data",
        "-v",
        &bind,
        IMAGE,
        "sleep",
        "1000",
    ]);
    berth.ok(&[
        "exec",
        "busy",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /data/f; head -c 3000 /dev/zero > /big",
    ]);
    berth.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let tables = eventually("the two CLIs to print the same tables", || {
        let docker = service.docker_ok(&["system", "df", "-v"]);
        (docker == berth.ok(&["system", "df", "-v"])).then_some(docker)
    });
    let sections = [
        "Images space usage:\n\nREPOSITORY   TAG ",
        "\n\nContainers space usage:\n\nCONTAINER ID   IMAGE ",
        "\n\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n",
        "\n\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED",
    ];
    for s in sections {
        assert!(tables.contains(s), "{s:?} in:\n{tables}");
    }
    let row = |start: &str| {
        let line = tables.lines().find(|l| l.starts_with(start));
        line.unwrap_or_else(|| panic!("{start} in:\n{tables}"))
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
    };
    assert_eq!(row("data ")[1..], ["1", "5kB"]);
    assert_eq!(row("unused ")[1..], ["0", "0B"]);
    let short = |name: &str| berth.ok(&["inspect", "-f", "{{.Id}}", name])[..12].to_string();
    let busy = row(&short("busy"));
    assert_eq!(
        busy[3], "1",
        "one local volume, the bind uncounted: {busy:?}"
    );
    assert_eq!(busy[4], "3kB", "its writable layer: {busy:?}");
    assert!(busy[6].starts_with("Up "), "{busy:?}");
    let idle = row(&short("idle"));
    assert_eq!((idle[3], idle[6]), ("0", "Created"), "{idle:?}");
    assert_eq!(row("busybox ")[7], "2", "the image's containers");
    berth.ok(&["rm", "-f", "busy", "idle"]);
}
