//! Rendering a parsed template over a JSON value, with Go's printing and truth rules.

use serde_json::Value;

use super::{err, Arg, Node, Pipe, TemplateError};

type Result<T> = std::result::Result<T, TemplateError>;

const FUNCTIONS: &[&str] = &[
    "json", "index", "slice", "join", "split", "upper", "lower", "title", "len", "printf",
    "println",
];

pub(super) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

pub(super) fn render(
    nodes: &[Node],
    data: &Value,
    header: Option<&[(&str, &str)]>,
) -> Result<String> {
    let mut ctx = Ctx {
        root: data,
        header,
        vars: Vec::new(),
    };
    let mut out = String::new();
    ctx.list(nodes, data, &mut out)?;
    Ok(out)
}

struct Ctx<'a> {
    root: &'a Value,
    /// Set when rendering a table's header: fields render as their titles.
    header: Option<&'a [(&'a str, &'a str)]>,
    vars: Vec<(String, Value)>,
}

impl Ctx<'_> {
    fn list(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Print(pipe) => match self.pipe(pipe, dot)? {
                    Value::Null => out.push_str("<no value>"),
                    v => out.push_str(&go_format(&v)),
                },
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let branch = if truthy(&self.pipe(cond, dot)?) {
                        then
                    } else {
                        otherwise
                    };
                    self.list(branch, dot, out)?;
                }
                Node::With {
                    value,
                    then,
                    otherwise,
                } => {
                    let value = self.pipe(value, dot)?;
                    if truthy(&value) {
                        self.list(then, &value, out)?;
                    } else {
                        self.list(otherwise, dot, out)?;
                    }
                }
                Node::Range {
                    vars,
                    over,
                    body,
                    otherwise,
                } => self.range(vars, over, body, otherwise, dot, out)?,
            }
        }
        Ok(())
    }

    fn range(
        &mut self,
        vars: &[String],
        over: &Pipe,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
        out: &mut String,
    ) -> Result<()> {
        let value = self.pipe(over, dot)?;
        let items: Vec<(Value, Value)> = match value {
            _ if self.header.is_some() => vec![(Value::from(0), value)],
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(m) => {
                let mut pairs: Vec<_> = m.into_iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(err(
                    over.pos,
                    format!("range can't iterate over {}", go_format(&other)),
                ))
            }
        };
        if items.is_empty() {
            return self.list(otherwise, dot, out);
        }
        for (key, item) in items {
            let saved = self.vars.len();
            match vars {
                [v] => self.vars.push((v.clone(), item.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), item.clone()));
                }
                _ => {}
            }
            let result = self.list(body, &item, out);
            self.vars.truncate(saved);
            result?;
        }
        Ok(())
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value> {
        let mut piped = None;
        for cmd in &pipe.cmds {
            piped = Some(self.command(cmd, dot, piped, pipe.pos)?);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Value>,
        pos: usize,
    ) -> Result<Value> {
        if let Some(Arg::Func(name)) = cmd.first() {
            let mut args = Vec::with_capacity(cmd.len());
            for arg in &cmd[1..] {
                args.push(self.arg(arg, dot, pos)?);
            }
            args.extend(piped);
            return call(name, args, pos);
        }
        if cmd.len() > 1 || piped.is_some() {
            return Err(err(pos, "can't give argument to non-function"));
        }
        self.arg(&cmd[0], dot, pos)
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, pos: usize) -> Result<Value> {
        match arg {
            Arg::Field(path) => match self.header {
                Some(titles) if !path.is_empty() => Ok(Value::String(title_of(titles, path))),
                _ => walk(dot, path, pos),
            },
            Arg::Var(name, path) => {
                let value = if name == "$" {
                    self.root.clone()
                } else {
                    match self.vars.iter().rev().find(|(n, _)| n == name) {
                        Some((_, v)) => v.clone(),
                        None => return Err(err(pos, format!("undefined variable {name:?}"))),
                    }
                };
                walk(&value, path, pos)
            }
            Arg::Func(name) => call(name, Vec::new(), pos),
            Arg::Str(s) => Ok(Value::String(s.clone())),
            Arg::Num(n) => Ok(Value::Number(n.clone())),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Sub(pipe, fields) => match self.header {
                // A table header shows the chain's title, as for `.Field`, without running
                // the pipeline over the header's placeholder values.
                Some(titles) if !fields.is_empty() => {
                    Ok(Value::String(title_of(titles, &fields[fields.len() - 1..])))
                }
                _ => walk(&self.pipe(pipe, dot)?, fields, pos),
            },
        }
    }
}

fn title_of(titles: &[(&str, &str)], path: &[String]) -> String {
    let field = path.join(".");
    titles
        .iter()
        .find(|(name, _)| *name == field || *name == path[0])
        .map_or_else(|| path[0].to_uppercase(), |(_, title)| title.to_string())
}

/// `.A.B` from `value`: a missing key is null (printed `<no value>`), as for Go maps.
fn walk(value: &Value, path: &[String], pos: usize) -> Result<Value> {
    let mut current = value;
    for field in path {
        current = match current {
            Value::Object(map) => match map.get(field) {
                Some(v) => v,
                None => return Ok(Value::Null),
            },
            Value::Null => return Ok(Value::Null),
            other => {
                return Err(err(
                    pos,
                    format!("can't evaluate field {field} in type {}", type_name(other)),
                ))
            }
        };
    }
    Ok(current.clone())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

/// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// What Go's `%v` prints: `map[a:1 b:x]` with sorted keys, `[a b]`, `<nil>`.
pub(super) fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => {
            // Sorted by key, as Go's fmt sorts them: `a:1` before `a.b:2` (the entries as
            // text would sort the other way).
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            let items: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

fn call(name: &str, args: Vec<Value>, pos: usize) -> Result<Value> {
    let arity = |want: usize| {
        if args.len() == want {
            Ok(())
        } else {
            Err(err(
                pos,
                format!(
                    "wrong number of args for {name}: want {want} got {}",
                    args.len()
                ),
            ))
        }
    };
    let text = |v: &Value| go_format(v);
    Ok(match name {
        "json" => {
            arity(1)?;
            Value::String(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "upper" | "lower" | "title" => {
            arity(1)?;
            let s = text(&args[0]);
            Value::String(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => title_case(&s),
            })
        }
        "len" => {
            arity(1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                other => return Err(err(pos, format!("len of {}", type_name(other)))),
            })
        }
        "join" => {
            arity(2)?;
            let Value::Array(items) = &args[0] else {
                return Err(err(pos, format!("join of {}", type_name(&args[0]))));
            };
            let items: Vec<String> = items.iter().map(text).collect();
            Value::String(items.join(&text(&args[1])))
        }
        "split" => {
            arity(2)?;
            let (s, sep) = (text(&args[0]), text(&args[1]));
            Value::Array(s.split(sep.as_str()).map(Value::from).collect())
        }
        "index" => index(args, pos)?,
        "slice" => slice(args, pos)?,
        "printf" => match args.split_first() {
            Some((Value::String(f), rest)) => Value::String(printf(f, rest)),
            _ => return Err(err(pos, "printf needs a format string first")),
        },
        "println" => {
            let items: Vec<String> = args.iter().map(text).collect();
            Value::String(format!("{}\n", items.join(" ")))
        }
        _ => return Err(err(pos, format!("function {name:?} not defined"))),
    })
}

/// `index MAP KEY`, `index ARRAY N`, chained; a missing key is "" (Docker's labels are strings).
/// Go's `slice x i j`: `x[i:j]` of a string (by bytes) or a list; `slice x` is x.
fn slice(args: Vec<Value>, pos: usize) -> Result<Value> {
    let Some((value, bounds)) = args.split_first() else {
        return Err(err(
            pos,
            "wrong number of args for slice: want at least 1 got 0",
        ));
    };
    if bounds.len() > 2 {
        let got = args.len();
        return Err(err(
            pos,
            format!("wrong number of args for slice: want 1 to 3 got {got}"),
        ));
    }
    let len = match value {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        other => {
            return Err(err(
                pos,
                format!("can't slice item of type {}", type_name(other)),
            ))
        }
    };
    let mut at = [0, len];
    for (slot, bound) in at.iter_mut().zip(bounds) {
        *slot = bound
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| err(pos, format!("slice: cannot index slice/array with {bound}")))?;
    }
    let [from, to] = at;
    if from > to || to > len {
        return Err(err(
            pos,
            format!("error calling slice: index out of range: {to}"),
        ));
    }
    Ok(match value {
        Value::String(s) => match s.get(from..to) {
            Some(part) => Value::String(part.into()),
            None => return Err(err(pos, "slice: the bounds split a character")),
        },
        Value::Array(a) => Value::Array(a[from..to].to_vec()),
        _ => Value::Null,
    })
}

fn index(mut args: Vec<Value>, pos: usize) -> Result<Value> {
    if args.is_empty() {
        return Err(err(
            pos,
            "wrong number of args for index: want at least 1 got 0",
        ));
    }
    let keys = args.split_off(1);
    let mut current = args.pop().expect("one left");
    for key in keys {
        current = match (&current, &key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or_default(),
            (Value::Array(a), Value::Number(n)) => {
                let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
                match i.and_then(|i| a.get(i)) {
                    Some(v) => v.clone(),
                    None => return Err(err(pos, format!("index out of range: {n}"))),
                }
            }
            (Value::Null, _) => Value::Null,
            (c, k) => {
                return Err(err(
                    pos,
                    format!("can't index {} with {}", type_name(c), type_name(k)),
                ))
            }
        };
        if current.is_null() {
            current = Value::String(String::new());
        }
    }
    Ok(current)
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// A small `fmt.Sprintf`: verbs `s v d q %`, flags `-` and `0`, a width and a precision.
fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek().filter(|f| matches!(f, '-' | '0')) {
            left |= f == '-';
            zero |= f == '0';
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                n.push(d);
            }
            n.parse::<usize>().ok()
        };
        let width = number(&mut chars).unwrap_or(0);
        let precision = chars.next_if_eq(&'.').and_then(|_| number(&mut chars));
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let mut text = match verb {
            'q' => serde_json::to_string(&Value::String(go_format(arg))).unwrap_or_default(),
            'd' => match arg {
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                other => format!("%!d({})", go_format(other)),
            },
            's' | 'v' => go_format(arg),
            other => format!("%!{other}({})", go_format(arg)),
        };
        if let Some(p) = precision.filter(|_| verb == 's') {
            text = text.chars().take(p).collect();
        }
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
            out.push_str(&text);
        }
    }
    out
}
