//! Unit tests of the template subset, each compared with what Go's text/template prints.

use serde_json::json;

use super::parse;

fn render(template: &str, data: &serde_json::Value) -> String {
    parse(template)
        .unwrap_or_else(|e| panic!("parse {template:?}: {e}"))
        .render(data)
        .unwrap_or_else(|e| panic!("render {template:?}: {e}"))
}

fn sample() -> serde_json::Value {
    json!({
        "Id": "sha256:abc",
        "Name": "web",
        "State": {"Pid": 4242, "Running": true, "Status": "running"},
        "Labels": {"com.example.b": "2", "a": "1"},
        "Args": ["-c", "echo hi"],
        "Empty": [],
        "Nothing": null,
        "Size": 1234567,
    })
}

#[test]
fn fields_nested_fields_and_dot() {
    let d = sample();
    assert_eq!(render("{{.Name}}", &d), "web");
    assert_eq!(
        render("pid={{.State.Pid}} {{.State.Running}}", &d),
        "pid=4242 true"
    );
    assert_eq!(render("{{.Size}}", &d), "1234567");
    assert_eq!(
        render("{{.Missing}}|{{.Nothing}}", &d),
        "<no value>|<no value>"
    );
    assert_eq!(render("{{.Name}}", &json!({"Name": "x"})), "x");
    assert_eq!(render("{{.}}", &json!("plain")), "plain");
    assert_eq!(render("{{$.Name}}", &d), "web");
}

#[test]
fn maps_and_arrays_print_like_go() {
    let d = sample();
    assert_eq!(render("{{.Labels}}", &d), "map[a:1 com.example.b:2]");
    assert_eq!(render("{{.Args}}", &d), "[-c echo hi]");
    assert_eq!(render("{{.Empty}}", &d), "[]");
    assert_eq!(
        render("{{.X}}", &json!({"X": [{"k": null}, [1, 2]]})),
        "[map[k:<nil>] [1 2]]"
    );
    // By key, as Go sorts them: compose's labels `project` before `project.config_files`.
    let labels = json!({"L": {"p.c": "f", "p": "x"}});
    assert_eq!(render("{{.L}}", &labels), "map[p:x p.c:f]");
}

#[test]
fn json_index_join_split_case_len() {
    let d = sample();
    assert_eq!(render("{{json .Args}}", &d), r#"["-c","echo hi"]"#);
    assert_eq!(render("{{json .Name}}", &d), r#""web""#);
    assert_eq!(
        render("{{json .State}}", &d),
        r#"{"Pid":4242,"Running":true,"Status":"running"}"#
    );
    assert_eq!(render(r#"{{index .Labels "com.example.b"}}"#, &d), "2");
    assert_eq!(render(r#"[{{index .Labels "nope"}}]"#, &d), "[]");
    assert_eq!(render("{{index .Args 1}}", &d), "echo hi");
    assert_eq!(render(r#"{{join .Args ","}}"#, &d), "-c,echo hi");
    assert_eq!(render(r#"{{split "a:b:c" ":"}}"#, &d), "[a b c]");
    assert_eq!(
        render(
            "{{upper .Name}} {{lower \"ABC\"}} {{title \"hello world\"}}",
            &d
        ),
        "WEB abc Hello World"
    );
    assert_eq!(render("{{len .Args}} {{len .Labels}}", &d), "2 2");
    assert_eq!(render("{{.Name | upper}}", &d), "WEB");
    assert_eq!(render(r#"{{upper (index .Labels "a")}}"#, &d), "1");
}

#[test]
fn printf_minimal() {
    let d = sample();
    assert_eq!(
        render(r#"{{printf "%s-%d" .Name .State.Pid}}"#, &d),
        "web-4242"
    );
    assert_eq!(
        render(r#"{{printf "%-5s|%5s|%q|%%" .Name .Name .Name}}"#, &d),
        "web  |  web|\"web\"|%"
    );
    assert_eq!(
        render(r#"{{printf "%.2s %s" .Name}}"#, &d),
        "we %!s(MISSING)"
    );
    assert_eq!(render(r#"{{printf "%05d" 42}}"#, &d), "00042");
}

#[test]
fn if_else_with_and_truth() {
    let d = sample();
    assert_eq!(
        render("{{if .State.Running}}up{{else}}down{{end}}", &d),
        "up"
    );
    assert_eq!(render("{{if .Empty}}x{{else}}empty{{end}}", &d), "empty");
    assert_eq!(
        render(
            "{{if .Nothing}}x{{else if .Name}}named{{else}}no{{end}}",
            &d
        ),
        "named"
    );
    assert_eq!(render("{{if .Missing}}x{{end}}", &d), "");
    assert_eq!(render("{{if 0}}x{{else}}zero{{end}}", &d), "zero");
    assert_eq!(render("{{with .State}}{{.Status}}{{end}}", &d), "running");
    assert_eq!(render("{{with .Nothing}}x{{else}}none{{end}}", &d), "none");
}

#[test]
fn range_over_arrays_and_maps_with_variables() {
    let d = sample();
    assert_eq!(render("{{range .Args}}<{{.}}>{{end}}", &d), "<-c><echo hi>");
    assert_eq!(
        render("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", &d),
        "a=1;com.example.b=2;"
    );
    assert_eq!(
        render("{{range $i, $a := .Args}}{{$i}}:{{$a}} {{end}}", &d),
        "0:-c 1:echo hi "
    );
    assert_eq!(
        render("{{range $a := .Args}}{{$a}}{{$.Name}} {{end}}", &d),
        "-cweb echo hiweb "
    );
    assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &d), "none");
    assert_eq!(render("{{range .Nothing}}x{{end}}", &d), "");
}

#[test]
fn escapes_trim_markers_and_comments() {
    let d = sample();
    assert_eq!(render(r"{{.Name}}\t{{.Size}}\n", &d), "web\t1234567\n");
    assert_eq!(render("a  {{- .Name -}}  b", &d), "awebb");
    assert_eq!(render("{{/* a comment */}}x", &d), "x");
}

#[test]
fn table_prefix_header_and_rows() {
    let t = parse(r"table {{.ID}}\t{{.Names}}\t{{upper .Status}}").unwrap();
    assert!(t.is_table());
    assert!(!parse("{{.ID}}").unwrap().is_table());
    let header = t.header(&[("ID", "CONTAINER ID")]).unwrap();
    assert_eq!(header, "CONTAINER ID\tNAMES\tSTATUS");
    let row = t
        .render(&json!({"ID": "abc", "Names": "web", "Status": "up"}))
        .unwrap();
    assert_eq!(row, "abc\tweb\tUP");
    // `table` alone renders nothing per row; docker then prints its default columns.
    assert!(parse("table").unwrap().is_table());
}

#[test]
fn errors_name_the_position() {
    let cases = [
        ("{{.Name", 1, "unclosed action"),
        ("ab {{if .X}}x", 4, "no matching {{end}}"),
        ("{{end}}", 1, "unexpected {{end}}"),
        ("x{{nosuch .X}}", 2, "function \"nosuch\" not defined"),
        ("{{printf \"x}}", 1, "unterminated quoted string"),
        (
            "{{range $x, $y, $z := .A}}{{end}}",
            1,
            "bad range variables",
        ),
        ("{{(.X}}", 1, "unclosed \"(\""),
        ("{{.X | }}", 1, "missing value"),
        ("table {{.A}}{{else}}", 13, "unexpected {{else}}"),
    ];
    for (template, column, message) in cases {
        let e = parse(template).expect_err(template);
        assert_eq!(e.column, column, "{template}: {e}");
        assert!(e.message.contains(message), "{template}: {e}");
        assert!(e
            .to_string()
            .starts_with(&format!("template: column {column}:")));
    }
    let render_errors = [
        (
            "{{.Name.First}}",
            "can't evaluate field First in type string",
        ),
        ("{{range .Name}}{{end}}", "range can't iterate over web"),
        (
            "{{join .Name}}",
            "wrong number of args for join: want 2 got 1",
        ),
        ("{{index .Args 5}}", "index out of range: 5"),
        ("{{$nope}}", "undefined variable \"$nope\""),
        ("{{.Name .Name}}", "can't give argument to non-function"),
    ];
    for (template, message) in render_errors {
        let e = parse(template)
            .unwrap()
            .render(&sample())
            .expect_err(template);
        assert!(e.message.contains(message), "{template}: {e}");
        assert_eq!(e.column, 1, "{template}");
    }
}

fn container() -> serde_json::Value {
    json!({
        "Name": "/web",
        "Mounts": [
            {"Type": "volume", "Name": "v1", "Destination": "/data"},
            {"Type": "bind", "Source": "/srv", "Destination": "/srv"},
        ],
        "NetworkSettings": {"Ports": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}],
            "53/udp": null,
        }},
        "Config": {"Env": ["PATH=/bin", "A=1"]},
        "State": {"Pid": 4242, "Health": {"Status": "healthy"}},
    })
}

#[test]
fn field_chains_on_parenthesized_pipelines() {
    let d = container();
    assert_eq!(render("{{(index .Mounts 0).Name}}", &d), "v1");
    assert_eq!(render("{{(index .Mounts 1).Destination}}", &d), "/srv");
    assert_eq!(
        render(
            r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
            &d
        ),
        "32768"
    );
    assert_eq!(render("{{(index .Config.Env 0)}}", &d), "PATH=/bin");
    assert_eq!(render("{{ (.State).Pid }}", &d), "4242");
    assert_eq!(render("{{(.State).Health.Status}}", &d), "healthy");
    assert_eq!(render("{{((.State).Health).Status}}", &d), "healthy");
    // A chain as an argument, and as the first command of a pipeline.
    assert_eq!(
        render(r#"{{printf "%s:%s" (index .Mounts 0).Name .Name}}"#, &d),
        "v1:/web"
    );
    assert_eq!(
        render(r#"{{(index .Mounts 0).Name | printf "%q"}}"#, &d),
        "\"v1\""
    );
    assert_eq!(render("{{upper (index .Mounts 0).Type}}", &d), "VOLUME");
    assert_eq!(
        render("{{if (index .Mounts 1).Source}}bind{{end}}", &d),
        "bind"
    );
    // A key the map lacks is Go's <no value>, as for `.Missing`; so is a field of null.
    assert_eq!(render("{{(index .Mounts 0).Source}}", &d), "<no value>");
    assert_eq!(render("{{(.Missing).X.Y}}", &d), "<no value>");
}

#[test]
fn variables_with_field_chains() {
    let d = container();
    assert_eq!(
        render("{{range $m := .Mounts}}{{$m.Destination}} {{end}}", &d),
        "/data /srv "
    );
    assert_eq!(
        render("{{range $i, $m := .Mounts}}{{$i}}={{$m.Type}};{{end}}", &d),
        "0=volume;1=bind;"
    );
    assert_eq!(
        render("{{$.Name}} {{$.State.Health.Status}}", &d),
        "/web healthy"
    );
    assert_eq!(
        render("{{range .Mounts}}{{$.Name}}{{.Type}} {{end}}", &d),
        "/webvolume /webbind "
    );
    assert_eq!(
        render("{{range $m := .Mounts}}{{($m).Type}}{{end}}", &d),
        "volumebind"
    );
}

#[test]
fn field_chain_errors() {
    let d = container();
    let render_errors = [
        (
            "{{(index .Config.Env 0).Name}}",
            "can't evaluate field Name in type string",
        ),
        (
            "{{(.State.Pid).Value}}",
            "can't evaluate field Value in type number",
        ),
        // With a space the field is a second operand, as in Go.
        (
            "{{(index .Mounts 0) .Name}}",
            "can't give argument to non-function",
        ),
        (
            "{{(index .Mounts 0).Name .Name}}",
            "can't give argument to non-function",
        ),
        (
            "{{.Name | (index .Mounts 0).Name}}",
            "can't give argument to non-function",
        ),
    ];
    for (template, message) in render_errors {
        let e = parse(template).unwrap().render(&d).expect_err(template);
        assert!(e.message.contains(message), "{template}: {e}");
    }
    let parse_errors = [
        ("{{(.State).}}", "bad field chain"),
        ("{{(.State)..Pid}}", "bad field chain"),
        ("{{(.State).Pid-x}}", "bad field chain"),
        (r#"{{"abc".Len}}"#, "unexpected . after term \"abc\""),
        ("{{.State).Pid}}", "unexpected \")\""),
    ];
    for (template, message) in parse_errors {
        let e = parse(template).expect_err(template);
        assert!(e.message.contains(message), "{template}: {e}");
    }
}

#[test]
fn table_header_titles_a_field_chain() {
    let t = parse(r"table {{.Name}}\t{{(index .Mounts 0).Destination}}").unwrap();
    assert_eq!(t.header(&[]).unwrap(), "NAME\tDESTINATION");
    assert_eq!(t.render(&container()).unwrap(), "/web\t/data");
}

#[test]
fn slice_cuts_strings_and_lists_as_go_does() {
    let d = sample();
    assert_eq!(render("{{slice .Id 7}}", &d), "abc");
    assert_eq!(render("{{slice .Id 0 6}}", &d), "sha256");
    assert_eq!(render("{{slice .Name}}", &d), "web");
    assert_eq!(render("{{slice .Args 1}}", &d), "[echo hi]");
    assert_eq!(render("{{slice .Args 0 1}}", &d), "[-c]");
    for bad in [
        "{{slice .Id 4 2}}",
        "{{slice .Id 0 99}}",
        "{{slice .Size 1}}",
        "{{slice}}",
    ] {
        let t = parse(bad).unwrap();
        assert!(t.render(&d).is_err(), "{bad}");
    }
}
