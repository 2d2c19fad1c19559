//! `--format` templates: the subset of Go's text/template that Docker users write, over JSON.
//!
//! Supported: `{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{$}}`, variables from
//! `{{range $k, $v := .X}}`, pipelines (`{{.Name | upper}}`), parentheses, string and number
//! literals, `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`, `{{range}}` (with `{{else}}`),
//! `{{with}}`, field chains on a parenthesized pipeline (`{{(index .Mounts 0).Name}}`),
//! trim markers (`{{-`, `-}}`), comments, and the functions `json`, `index`, `join`,
//! `split`, `upper`, `lower`, `title`, `len`, `printf` (`%s %v %d %q %%`, widths), `println`.
//! A leading `table` asks for a header row and tab-aligned columns, as Docker's formatter does;
//! the literal escapes `\t` and `\n` become a tab and a newline. Values print as Go prints them:
//! maps as `map[k:v]`, arrays as `[a b]`, a missing key as `<no value>`.

mod eval;
#[cfg(test)]
mod tests;

use std::fmt;

/// A parse or render error, naming where in the template it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based column (in characters) of the action in the template as given.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    table: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Print(Pipe),
    If {
        cond: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        value: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        vars: Vec<String>,
        over: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`; each command's result is the last argument of the next.
#[derive(Debug, Clone)]
struct Pipe {
    pos: usize,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` from dot (empty path: dot itself).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    /// `(pipeline)` or `(pipeline).A.B`: the fields are taken from the pipeline's value.
    Sub(Pipe, Vec<String>),
}

/// Parses `source`. A leading `table` is removed and remembered (see [`Template::is_table`]).
pub fn parse(source: &str) -> Result<Template, TemplateError> {
    let (table, offset, body) = match source.strip_prefix("table") {
        Some(rest) => {
            let trimmed = rest.trim_start_matches(' ');
            (
                true,
                source.len() - trimmed.len(),
                trimmed.trim_end_matches(' '),
            )
        }
        None => (false, 0, source),
    };
    let segments = split_actions(body, offset)?;
    let mut parser = Parser { segments, next: 0 };
    let (nodes, end) = parser.list()?;
    if let Some((pos, word)) = end {
        return Err(err(pos, format!("unexpected {{{{{word}}}}}")));
    }
    Ok(Template { nodes, table })
}

impl Template {
    /// Whether the template began with `table`: print [`Template::header`] first and align.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders the template with `data` as dot.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        eval::render(&self.nodes, data, None)
    }

    /// The header row of a table: each `.Field` becomes its title from `titles`, or the field
    /// name in capitals when `titles` has none (Docker: `{{.ID}}` -> `CONTAINER ID`).
    pub fn header(&self, titles: &[(&str, &str)]) -> Result<String, TemplateError> {
        eval::render(&self.nodes, &serde_json::Value::Null, Some(titles))
    }
}

fn err(pos: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        column: pos + 1,
        message: message.into(),
    }
}

/// Literal text, or the inside of one `{{ }}` with its position.
enum Segment {
    Text(String),
    Action(usize, String),
}

/// Cuts the source into text and actions, applying trim markers and the `\t`/`\n` escapes.
fn split_actions(body: &str, offset: usize) -> Result<Vec<Segment>, TemplateError> {
    let mut segments = Vec::new();
    let mut rest = body;
    let mut pos = offset;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (trim_before, inner_start) = match after.strip_prefix("- ") {
            Some(_) => (true, 2),
            None => (false, 0),
        };
        if trim_before {
            text = text.trim_end();
        }
        push_text(&mut segments, text);
        let Some(len) = after.find("}}") else {
            return Err(err(pos + start, "unclosed action: missing }}"));
        };
        let mut inner = &after[inner_start..len.max(inner_start)];
        trim_next = inner.ends_with(" -");
        if trim_next {
            inner = &inner[..inner.len() - 2];
        }
        segments.push(Segment::Action(pos + start, inner.trim().to_string()));
        pos += start + 2 + len + 2;
        rest = &after[len + 2..];
    }
    push_text(
        &mut segments,
        if trim_next { rest.trim_start() } else { rest },
    );
    Ok(segments)
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if !text.is_empty() {
        segments.push(Segment::Text(
            text.replace("\\t", "\t").replace("\\n", "\n"),
        ));
    }
}

struct Parser {
    segments: Vec<Segment>,
    next: usize,
}

/// The keyword that ended a list (`else`, `else if ...`, `end`) and where.
type ListEnd = Option<(usize, String)>;

impl Parser {
    /// Nodes up to the next `{{else...}}`/`{{end}}` (returned) or the end of the template.
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = Vec::new();
        while self.next < self.segments.len() {
            let i = self.next;
            self.next += 1;
            let (pos, inner) = match &self.segments[i] {
                Segment::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Segment::Action(pos, inner) => (*pos, inner.clone()),
            };
            if inner.starts_with("/*") {
                continue;
            }
            let (word, rest) = split_word(&inner);
            match word {
                "end" | "else" => return Ok((nodes, Some((pos, inner)))),
                "if" => {
                    let cond = parse_pipe(rest, pos)?;
                    let (then, otherwise) = self.branches(pos, "if")?;
                    nodes.push(Node::If {
                        cond,
                        then,
                        otherwise,
                    });
                }
                "with" => {
                    let value = parse_pipe(rest, pos)?;
                    let (then, otherwise) = self.branches(pos, "with")?;
                    nodes.push(Node::With {
                        value,
                        then,
                        otherwise,
                    });
                }
                "range" => {
                    let (vars, over) = parse_range_head(rest, pos)?;
                    let (body, otherwise) = self.branches(pos, "range")?;
                    nodes.push(Node::Range {
                        vars,
                        over,
                        body,
                        otherwise,
                    });
                }
                _ => nodes.push(Node::Print(parse_pipe(&inner, pos)?)),
            }
        }
        Ok((nodes, None))
    }

    /// The body of an if/with/range, and its else branch (`{{else if}}` nests an `if`).
    fn branches(
        &mut self,
        pos: usize,
        what: &str,
    ) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
        let (then, end) = self.list()?;
        let Some((else_pos, word)) = end else {
            return Err(err(
                pos,
                format!("{{{{{what}}}}} has no matching {{{{end}}}}"),
            ));
        };
        if word == "end" {
            return Ok((then, Vec::new()));
        }
        let (_, rest) = split_word(&word);
        let rest = rest.trim();
        if let Some(cond) = rest.strip_prefix("if ") {
            let cond = parse_pipe(cond, else_pos)?;
            let (inner_then, inner_else) = self.branches(else_pos, "else if")?;
            let nested = Node::If {
                cond,
                then: inner_then,
                otherwise: inner_else,
            };
            return Ok((then, vec![nested]));
        }
        if !rest.is_empty() {
            return Err(err(else_pos, format!("unexpected {rest:?} after else")));
        }
        let (otherwise, end) = self.list()?;
        match end {
            Some((_, w)) if w == "end" => Ok((then, otherwise)),
            Some((p, w)) => Err(err(p, format!("unexpected {{{{{w}}}}} after {{{{else}}}}"))),
            None => Err(err(
                pos,
                format!("{{{{{what}}}}} has no matching {{{{end}}}}"),
            )),
        }
    }
}

fn split_word(inner: &str) -> (&str, &str) {
    let end = inner
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inner.len());
    (&inner[..end], &inner[end..])
}

/// `range $k, $v := PIPE`, `range $v := PIPE` or `range PIPE`.
fn parse_range_head(rest: &str, pos: usize) -> Result<(Vec<String>, Pipe), TemplateError> {
    let Some((decl, pipe)) = rest.split_once(":=") else {
        return Ok((Vec::new(), parse_pipe(rest, pos)?));
    };
    let vars: Vec<String> = decl.split(',').map(|v| v.trim().to_string()).collect();
    let valid = |v: &String| {
        v.len() > 1 && v.starts_with('$') && v[1..].chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    if vars.len() > 2 || !vars.iter().all(valid) {
        return Err(err(pos, format!("bad range variables {:?}", decl.trim())));
    }
    Ok((vars, parse_pipe(pipe, pos)?))
}

#[derive(Debug)]
enum Token {
    Arg(Arg),
    Bar,
    Open,
    Close,
    /// `.A.B` written right after a `)`, with no space: fields of the parenthesized value.
    Chain(Vec<String>),
}

fn parse_pipe(text: &str, pos: usize) -> Result<Pipe, TemplateError> {
    let tokens = lex(text, pos)?;
    let mut iter = tokens.into_iter().peekable();
    let pipe = pipe_of(&mut iter, pos)?;
    if iter.next().is_some() {
        return Err(err(pos, "unexpected \")\""));
    }
    Ok(pipe)
}

fn pipe_of(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
    pos: usize,
) -> Result<Pipe, TemplateError> {
    let mut cmds = vec![Vec::new()];
    while let Some(token) = tokens.next_if(|t| !matches!(t, Token::Close)) {
        let cmd = cmds.last_mut().expect("never empty");
        match token {
            Token::Arg(arg) => cmd.push(arg),
            Token::Open => {
                let sub = pipe_of(tokens, pos)?;
                if !matches!(tokens.next(), Some(Token::Close)) {
                    return Err(err(pos, "unclosed \"(\""));
                }
                let fields = match tokens.next_if(|t| matches!(t, Token::Chain(_))) {
                    Some(Token::Chain(fields)) => fields,
                    _ => Vec::new(),
                };
                cmd.push(Arg::Sub(sub, fields));
            }
            Token::Chain(_) => return Err(err(pos, "unexpected field chain")),
            Token::Bar if cmd.is_empty() => return Err(err(pos, "missing command before \"|\"")),
            Token::Bar => cmds.push(Vec::new()),
            Token::Close => unreachable!("handled above"),
        }
    }
    if cmds.iter().any(Vec::is_empty) {
        return Err(err(pos, "missing value for command"));
    }
    Ok(Pipe { pos, cmds })
}

fn lex(text: &str, pos: usize) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    // Where the last token ended, to tell `(x).A` (a chain) from `(x) .A` (two operands).
    let mut last_end = usize::MAX;
    let word_end = |mut j: usize| {
        while j < chars.len() && !chars[j].is_whitespace() && !"()|".contains(chars[j]) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let glued = i == last_end;
        let (token, next) = match c {
            '|' => (Token::Bar, i + 1),
            '(' => (Token::Open, i + 1),
            ')' => (Token::Close, i + 1),
            '"' | '`' => lex_string(&chars, i, pos)?,
            _ => {
                let end = word_end(i);
                let word: String = chars[i..end].iter().collect();
                match tokens.last() {
                    Some(Token::Close) if glued && c == '.' => (chain(&word, pos)?, end),
                    Some(Token::Arg(Arg::Str(s))) if glued && c == '.' => {
                        return Err(err(pos, format!("unexpected . after term {s:?}")))
                    }
                    _ => (Token::Arg(word_arg(&word, pos)?), end),
                }
            }
        };
        tokens.push(token);
        i = next;
        last_end = next;
    }
    Ok(tokens)
}

/// The fields of `.A.B` after a `)`; each must be a name, as Go's lexer requires.
fn chain(word: &str, pos: usize) -> Result<Token, TemplateError> {
    let fields: Vec<String> = word[1..].split('.').map(str::to_string).collect();
    let name = |f: &String| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !fields.iter().all(name) {
        return Err(err(pos, format!("bad field chain {word:?} after \")\"")));
    }
    Ok(Token::Chain(fields))
}

fn lex_string(chars: &[char], start: usize, pos: usize) -> Result<(Token, usize), TemplateError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((Token::Arg(Arg::Str(out)), i + 1)),
            '\\' if quote == '"' && i + 1 < chars.len() => {
                i += 1;
                out.push(match chars[i] {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            c => out.push(c),
        }
        i += 1;
    }
    Err(err(pos, "unterminated quoted string"))
}

fn word_arg(word: &str, pos: usize) -> Result<Arg, TemplateError> {
    let path = |s: &str| -> Vec<String> {
        s.split('.')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    if word.starts_with('.') {
        return Ok(Arg::Field(path(word)));
    }
    if let Some(var) = word.strip_prefix('$') {
        let (name, fields) = var.split_once('.').unwrap_or((var, ""));
        return Ok(Arg::Var(format!("${name}"), path(fields)));
    }
    match word {
        "true" => return Ok(Arg::Bool(true)),
        "false" => return Ok(Arg::Bool(false)),
        _ => {}
    }
    if let Ok(n) = word.parse::<serde_json::Number>() {
        return Ok(Arg::Num(n));
    }
    if eval::is_function(word) {
        return Ok(Arg::Func(word.to_string()));
    }
    Err(err(pos, format!("function {word:?} not defined")))
}
