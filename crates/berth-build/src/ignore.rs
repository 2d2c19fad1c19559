//! `.dockerignore` with Docker's semantics (moby's patternmatcher): each line a pattern cleaned
//! as a path and anchored at the context's root, `*` and `?` within one path element, `**` any
//! number of elements, `[...]` classes, `\` escapes, `!` an exception; a pattern matching a
//! parent directory matches everything below it; the last matching line decides.

#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    exception: bool,
    /// Path elements of the cleaned pattern.
    parts: Vec<String>,
}

impl Ignore {
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            if pat.is_empty() {
                return Err("illegal exclusion pattern: \"!\"".into());
            }
            let cleaned = clean(pat);
            if cleaned == "." {
                continue;
            }
            patterns.push(Pattern {
                exception,
                parts: cleaned.split('/').map(String::from).collect(),
            });
        }
        Ok(Ignore { patterns })
    }

    /// Whether an exception (`!pattern`) may take back something below the excluded
    /// directory `dir`: moby walks into it only if an exception's text starts with its path.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = format!("{}/", dir.trim_matches('/'));
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.parts.join("/")).starts_with(&dir))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exception != matched {
                continue;
            }
            let hit = (1..=parts.len()).any(|n| match_parts(&p.parts, &parts[..n]));
            if hit {
                matched = !p.exception;
            }
        }
        matched
    }
}

/// Go's filepath.Clean, with the leading `/` dropped (patterns are relative to the root).
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

/// Pattern elements against path elements; `**` takes any number of elements.
fn match_parts(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => glob(first.as_bytes(), p.as_bytes()) && match_parts(rest, prest),
            None => false,
        },
    }
}

/// filepath.Match on one element: `*`, `?`, `[...]` (negated by `^`), `\` escapes.
pub fn glob(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some((&c, nrest)) = name.split_first() else {
                return false;
            };
            let (negate, mut body) = match rest.first() {
                Some(b'^') => (true, &rest[1..]),
                _ => (false, rest),
            };
            let mut hit = false;
            let mut first = true;
            loop {
                match body.split_first() {
                    None => return false, // unterminated class
                    Some((b']', after)) if !first => {
                        body = after;
                        break;
                    }
                    Some((&lo, after)) => {
                        let (lo, after) = match (lo, after.split_first()) {
                            (b'\\', Some((&e, a))) => (e, a),
                            _ => (lo, after),
                        };
                        if let (Some(b'-'), Some(&hi)) = (after.first(), after.get(1)) {
                            if hi != b']' {
                                hit |= lo <= c && c <= hi;
                                body = &after[2..];
                                first = false;
                                continue;
                            }
                        }
                        hit |= lo == c;
                        body = after;
                    }
                }
                first = false;
            }
            hit != negate && glob(body, nrest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob(&rest[1..], &name[1..])
        }
        Some((&c, rest)) => name.first() == Some(&c) && glob(rest, &name[1..]),
    }
}

/// Whether a path element has glob characters.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_pattern_semantics() {
        let ig = Ignore::parse("# c\n*.log\n!keep.log\n**/tmp\n/build/\nsrc/*/gen\n").unwrap();
        assert!(ig.excludes("a.log"));
        assert!(!ig.excludes("keep.log"));
        assert!(
            !ig.excludes("dir/a.log"),
            "* does not cross /: not anchored everywhere"
        );
        assert!(ig.excludes("tmp") && ig.excludes("x/y/tmp/file"));
        assert!(ig.excludes("build/out/bin"));
        assert!(ig.excludes("src/a/gen/x.rs") && !ig.excludes("src/a/b/gen"));
        assert!(!ig.may_include_below("build"));
        let back = Ignore::parse("build\n!build/keep\n").unwrap();
        assert!(back.may_include_below("build") && !back.may_include_below("src"));
        let all = Ignore::parse("**\n!src\n").unwrap();
        assert!(all.excludes("Dockerfile") && !all.excludes("src/main.rs"));
        assert!(glob(b"[a-c]x", b"bx") && !glob(b"[^a-c]x", b"bx") && glob(b"\\*", b"*"));
    }
}
