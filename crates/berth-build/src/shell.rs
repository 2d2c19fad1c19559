//! Variable expansion in instruction arguments, as BuildKit's shell lexer does it: quotes
//! (single literal, double with escapes), the Dockerfile's escape character, `$VAR`, `${VAR}`
//! and the `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
//! `${VAR?msg}` forms. RUN, CMD and ENTRYPOINT are never expanded here: their shell does it.

use std::collections::BTreeMap;

/// The variables in scope: name -> value.
pub type Vars = BTreeMap<String, String>;

pub struct Lexer {
    pub escape: char,
}

impl Lexer {
    /// One word: quotes removed, variables expanded, no splitting.
    pub fn word(&self, input: &str, vars: &Vars) -> Result<String, String> {
        Ok(self.process(input, vars, false)?.join(""))
    }

    /// Words: split on unquoted blanks, unquoted expansions split too.
    pub fn words(&self, input: &str, vars: &Vars) -> Result<Vec<String>, String> {
        self.process(input, vars, true)
    }

    /// A heredoc's body: variables expanded, quotes and escapes (but `\$`) left as written.
    pub fn heredoc(&self, input: &str, vars: &Vars) -> Result<String, String> {
        let chars: Vec<char> = input.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if c == self.escape && chars.get(i) == Some(&'$') {
                out.push('$');
                i += 1;
            } else if c == '$' {
                let (value, next) = self.dollar(&chars, i, vars)?;
                out.push_str(&value);
                i = next;
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn process(&self, input: &str, vars: &Vars, split: bool) -> Result<Vec<String>, String> {
        let chars: Vec<char> = input.chars().collect();
        let mut st = State {
            words: Vec::new(),
            word: String::new(),
            in_word: false,
            split,
        };
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '\'' => {
                    st.in_word = true;
                    while i < chars.len() && chars[i] != '\'' {
                        st.word.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(
                            "unexpected end of statement while looking for matching single-quote"
                                .into(),
                        );
                    }
                    i += 1;
                }
                '"' => {
                    st.in_word = true;
                    loop {
                        let Some(&c) = chars.get(i) else {
                            return Err("unexpected end of statement while looking for matching double-quote".into());
                        };
                        i += 1;
                        if c == '"' {
                            break;
                        }
                        if c == self.escape {
                            match chars.get(i) {
                                Some(&n) if n == '"' || n == '$' || n == self.escape => {
                                    st.word.push(n);
                                    i += 1;
                                }
                                _ => st.word.push(c),
                            }
                        } else if c == '$' {
                            let (value, next) = self.dollar(&chars, i, vars)?;
                            i = next;
                            st.word.push_str(&value);
                        } else {
                            st.word.push(c);
                        }
                    }
                }
                '$' => {
                    let (value, next) = self.dollar(&chars, i, vars)?;
                    i = next;
                    st.push_unquoted(&value);
                }
                c if c == self.escape => {
                    st.in_word = true;
                    if let Some(&n) = chars.get(i) {
                        st.word.push(n);
                        i += 1;
                    }
                }
                c if split && c.is_whitespace() => st.end_word(),
                c => {
                    st.in_word = true;
                    st.word.push(c);
                }
            }
        }
        st.end_word();
        if !split && st.words.is_empty() {
            st.words.push(String::new());
        }
        Ok(st.words)
    }

    /// A `$` at `chars[i - 1]`: the value and the index after the expansion.
    fn dollar(&self, chars: &[char], i: usize, vars: &Vars) -> Result<(String, usize), String> {
        let name_char = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
        match chars.get(i) {
            Some('{') => {
                let mut j = i + 1;
                let start = j;
                while j < chars.len() && name_char(&chars[j]) {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                if name.is_empty() {
                    return Err("bad substitution: missing variable name in ${}".into());
                }
                if chars.get(j) == Some(&'}') {
                    return Ok((vars.get(&name).cloned().unwrap_or_default(), j + 1));
                }
                let colon = chars.get(j) == Some(&':');
                if colon {
                    j += 1;
                }
                let op = *chars.get(j).ok_or("missing '}' in ${...}")?;
                j += 1;
                // The word runs to the matching brace; nested ${} inside it are allowed.
                let mut depth = 0;
                let wstart = j;
                while j < chars.len() && !(chars[j] == '}' && depth == 0) {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("missing '}}' in ${{{name}...}}"));
                }
                let word: String = chars[wstart..j].iter().collect();
                let value = vars.get(&name);
                let set = if colon {
                    value.is_some_and(|v| !v.is_empty())
                } else {
                    value.is_some()
                };
                let out = match op {
                    '-' if set => value.cloned().unwrap_or_default(),
                    '-' => self.word(&word, vars)?,
                    '+' if set => self.word(&word, vars)?,
                    '+' => String::new(),
                    '?' if set => value.cloned().unwrap_or_default(),
                    '?' => {
                        let msg = self.word(&word, vars)?;
                        let msg = if msg.is_empty() {
                            "is not allowed to be unset".into()
                        } else {
                            msg
                        };
                        return Err(format!("{name}: {msg}"));
                    }
                    _ => return Err(format!("unsupported modifier ({op}) in substitution")),
                };
                Ok((out, j + 1))
            }
            Some(c) if name_char(c) && !c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len() && name_char(&chars[j]) {
                    j += 1;
                }
                let name: String = chars[i..j].iter().collect();
                Ok((vars.get(&name).cloned().unwrap_or_default(), j))
            }
            _ => Ok(("$".to_string(), i)),
        }
    }
}

struct State {
    words: Vec<String>,
    word: String,
    in_word: bool,
    split: bool,
}

impl State {
    fn end_word(&mut self) {
        if self.in_word || !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.in_word = false;
    }

    /// An unquoted expansion: split on blanks when splitting words.
    fn push_unquoted(&mut self, value: &str) {
        if !self.split {
            self.word.push_str(value);
            return;
        }
        let mut parts = value.split(char::is_whitespace).peekable();
        let leading_blank = value.starts_with(char::is_whitespace);
        if leading_blank {
            self.end_word();
        }
        while let Some(part) = parts.next() {
            if !part.is_empty() {
                self.word.push_str(part);
                self.in_word = true;
            }
            if parts.peek().is_some() {
                self.end_word();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "a"), ("E", ""), ("S", "x y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_like_buildkit() {
        let l = Lexer { escape: '\\' };
        let v = vars();
        let w = |s: &str| l.word(s, &v).unwrap();
        assert_eq!(w("$A/${A}b"), "a/ab");
        assert_eq!(w("${E:-d} ${E-d} ${U-d} ${A:+alt} ${U:+alt}"), "d  d alt ");
        assert_eq!(w("'$A' \"$A\\$\" \\$A"), "$A a$ $A");
        assert_eq!(w("${U:-${A}x}"), "ax");
        assert_eq!(l.words("$S \"$S\" z", &v).unwrap(), ["x", "y", "x y", "z"]);
        assert!(l
            .word("${U:?must be set}", &v)
            .unwrap_err()
            .contains("must be set"));
        assert_eq!(
            l.heredoc("'$A' \"${U:-d}\" \\$A\n", &v).unwrap(),
            "'a' \"d\" $A\n"
        );
        let b = Lexer { escape: '`' };
        assert_eq!(b.word("c:\\dir `$A", &v).unwrap(), "c:\\dir $A");
    }
}
