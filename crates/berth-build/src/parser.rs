//! The Dockerfile's lines as BuildKit's parser reads them: parser directives (`# syntax=`,
//! `# escape=`) at the top, comments, line continuations (comment and blank lines inside one
//! dropped), leading `--flags`, and heredoc bodies after RUN, COPY and ADD. What each
//! instruction's arguments mean is `instruction.rs`'s business.

use crate::error::{Error, Result};

/// One instruction as written: its keyword, flags and the rest of its (joined) line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 1-based line of the keyword.
    pub line: usize,
    /// Upper case.
    pub keyword: String,
    /// `--name=value` or `--name`, as written.
    pub flags: Vec<String>,
    /// The arguments after the flags, continuation lines joined.
    pub args: String,
    pub heredocs: Vec<Heredoc>,
}

/// `<<EOF ... EOF`: its name, whether its body is expanded (the name was not quoted), and the
/// body with its final newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub expand: bool,
    pub content: String,
}

#[derive(Clone, Debug)]
pub struct Dockerfile {
    pub nodes: Vec<Node>,
    pub escape: char,
    /// `# syntax=`: noted, not acted on (no frontend images here).
    pub syntax: Option<String>,
}

/// Parses `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, message: String| Error::Syntax {
        file: file.to_string(),
        line,
        message,
    };
    let (escape, syntax, mut i) = directives(&lines).map_err(|(l, m)| err(l, m))?;
    let mut nodes = Vec::new();
    while i < lines.len() {
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let start = i;
        let (mut joined, mut more) = continuation(first, escape);
        while more && i < lines.len() {
            let next = lines[i];
            i += 1;
            let trimmed = next.trim_start();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            let (part, again) = continuation(next, escape);
            joined.push_str(&part);
            more = again;
        }
        if joined.trim().is_empty() {
            continue;
        }
        let mut node = split(&joined, start).map_err(|m| err(start, m))?;
        if matches!(node.keyword.as_str(), "RUN" | "COPY" | "ADD") && !is_json(&node.args) {
            for (name, expand, chomp) in heredoc_markers(&node.args) {
                let mut content = String::new();
                loop {
                    let Some(line) = lines.get(i) else {
                        return Err(err(start, format!("unterminated heredoc {name}")));
                    };
                    i += 1;
                    let line = if chomp {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if line == name {
                        break;
                    }
                    content.push_str(line);
                    content.push('\n');
                }
                node.heredocs.push(Heredoc {
                    name,
                    expand,
                    content,
                });
            }
        }
        nodes.push(node);
    }
    Ok(Dockerfile {
        nodes,
        escape,
        syntax,
    })
}

type Directives = (char, Option<String>, usize);

/// The parser directives at the top; the index of the first line after them.
fn directives(lines: &[&str]) -> std::result::Result<Directives, (usize, String)> {
    let (mut escape, mut syntax) = (None, None);
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let Some((name, value)) = directive(line) else {
            break;
        };
        i += 1;
        match name.as_str() {
            "escape" => {
                if escape.is_some() {
                    return Err((i, "only one escape parser directive can be used".into()));
                }
                escape = Some(match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err((
                            i,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                });
            }
            "syntax" => {
                if syntax.is_some() {
                    return Err((i, "only one syntax parser directive can be used".into()));
                }
                syntax = Some(value);
            }
            _ => {} // `check` and unknown directives are comments
        }
    }
    Ok((escape.unwrap_or('\\'), syntax, i))
}

/// `# name=value` with a name of letters and digits: (lower-case name, value).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    let ok = name.chars().next()?.is_ascii_alphabetic()
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    let value = value.trim();
    (ok && !value.is_empty()).then(|| (name.to_ascii_lowercase(), value.to_string()))
}

/// The line without a trailing escape character (and the blanks after it), and whether it
/// continues on the next line.
fn continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), true),
        None => (line.to_string(), false),
    }
}

/// Keyword, leading flags and the rest.
fn split(line: &str, at: usize) -> std::result::Result<Node, String> {
    let line = line.trim_start();
    let (keyword, mut rest) = match line.find(char::is_whitespace) {
        Some(n) => (&line[..n], line[n..].trim_start()),
        None => (line, ""),
    };
    let mut flags = Vec::new();
    while rest.starts_with("--") {
        let (word, after) = flag_word(rest);
        if word == "--" {
            rest = after;
            break;
        }
        flags.push(word);
        rest = after;
    }
    Ok(Node {
        line: at,
        keyword: keyword.to_ascii_uppercase(),
        flags,
        args: rest.trim_end().to_string(),
        heredocs: Vec::new(),
    })
}

/// One flag word (quotes kept, as BuildKit does, for the value's own expansion) and the rest.
fn flag_word(s: &str) -> (String, &str) {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => return (s[..i].to_string(), s[i..].trim_start()),
            _ => {}
        }
    }
    (s.to_string(), "")
}

/// Whether the arguments are a JSON array of strings (the exec form).
pub fn is_json(args: &str) -> bool {
    args.trim_start().starts_with('[') && serde_json::from_str::<Vec<String>>(args).is_ok()
}

/// Heredoc markers in a shell-form line, in order: (name, expand, strip leading tabs). A word
/// `<<NAME`, `<<-NAME`, `<<"NAME"`, `<<'NAME'`, optionally after a file descriptor number.
pub fn heredoc_markers(args: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for word in raw_words(args) {
        let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(rest) = word.strip_prefix("<<") else {
            continue;
        };
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (name, expand) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].strip_suffix(q) {
                Some(n) => (n, false),
                None => continue,
            },
            _ => (rest, true),
        };
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((name.to_string(), expand, chomp));
        }
    }
    out
}

/// Words split on unquoted blanks, quotes and escapes kept as written (the same split as
/// `--change` lines have in the image crate).
pub use berth_image::archive::import::quoted_words as raw_words;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_continuations_and_comments() {
        let text = "# escape=`\n# syntax=docker/dockerfile:1\nFROM busybox\nRUN echo a `\n# inside\n\n  && echo b\n# last\nENV A=1";
        let df = parse("Dockerfile", text).unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.nodes.len(), 3);
        assert_eq!(df.nodes[1].args, "echo a   && echo b");
        assert_eq!(df.nodes[1].line, 4);
        assert_eq!(df.nodes[2].line, 9);
    }

    #[test]
    fn flags_and_heredocs() {
        let text = "FROM x\nRUN --mount=type=cache,target=/c --network=none <<EOF\necho hi\nEOF\nCOPY <<-'A' /a\n\tbody $X\n\tA\n";
        let df = parse("Dockerfile", text).unwrap();
        let run = &df.nodes[1];
        assert_eq!(
            run.flags,
            ["--mount=type=cache,target=/c", "--network=none"]
        );
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        let copy = &df.nodes[2];
        assert_eq!(copy.heredocs[0].name, "A");
        assert!(!copy.heredocs[0].expand);
        assert_eq!(copy.heredocs[0].content, "body $X\n");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("Dockerfile", "# escape=x\nFROM a")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Dockerfile:1: invalid escape token"), "{e}");
        let e = parse("Dockerfile", "FROM a\nRUN <<EOF\nno end")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Dockerfile:2: unterminated heredoc EOF");
    }
}
