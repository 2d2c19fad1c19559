//! Docker's `--filter key=value` for listings and prunes (images, networks, volumes): the keys
//! each one accepts, and the three ways Docker matches a value (labels, names, globs).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Key -> the values given for it: an object passes when, for every key, one value matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// The `key=value` pairs, each key one of `allowed` (Docker refuses the others).
    pub fn parse(pairs: &[String], allowed: &[&str]) -> Result<Filters> {
        let mut filters = Filters::default();
        for pair in pairs {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(Error::Invalid(format!(
                    "bad format of filter (expected name=value): {pair}"
                )));
            };
            if !allowed.contains(&key) {
                return Err(Error::Invalid(format!(
                    "invalid filter '{key}': filter on {}",
                    allowed.join(", ")
                )));
            }
            filters
                .0
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        Ok(filters)
    }

    /// The filters as the `key=value` pairs they were parsed from.
    pub fn pairs(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
            .collect()
    }

    /// The values given for `key` (none: the key does not filter).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key` is unset or one of its values passes `test`.
    pub fn any(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        let values = self.get(key);
        values.is_empty() || values.iter().any(|v| test(v))
    }

    /// A boolean filter (`dangling=true`): None when unset; an error for anything but
    /// true/false (and Docker's 1/0).
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key).last().map(String::as_str) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(Error::Invalid(format!(
                "invalid filter '{key}={other}': use true or false"
            ))),
        }
    }

    /// The `until` filter (the last one given) as nanoseconds since the epoch: a time, or a
    /// duration before now.
    pub fn until(&self) -> Result<Option<i64>> {
        self.get("until")
            .last()
            .map(|v| crate::events::parse_time(v, std::time::SystemTime::now()))
            .transpose()
    }

    /// Docker's `label` (every one must be there: `key` or `key=value`) and `label!` (none may).
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |f: &str| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
            None => labels.contains_key(f),
        };
        self.get("label").iter().all(|f| has(f)) && !self.get("label!").iter().any(|f| has(f))
    }
}

/// Docker's `name` filter is an unanchored regular expression; berth takes its common forms:
/// a substring, anchored with a leading `^` and/or a trailing `$`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, core) = match rest.strip_suffix('$') {
        Some(core) => (true, core),
        None => (false, rest),
    };
    match (start, end) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

/// Go's `path.Match` without character classes: `*` is any run of characters but `/`, `?` one
/// of them; the whole of `text` must match.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Backtracking over the last `*` only, as every glob matcher does: linear enough here.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some('?') if t[ti] != '/' => (pi, ti) = (pi + 1, ti + 1),
            Some(&c) if c == t[ti] => (pi, ti) = (pi + 1, ti + 1),
            _ => match star {
                // The star takes one more character, never a '/'.
                Some((sp, st)) if t[st] != '/' => {
                    star = Some((sp, st + 1));
                    (pi, ti) = (sp + 1, st + 1);
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_pairs_are_refused() {
        let ok = Filters::parse(
            &["label=a=b".into(), "dangling=true".into()],
            &["label", "dangling"],
        );
        let ok = ok.unwrap();
        assert_eq!(ok.get("label"), ["a=b"]);
        assert_eq!(ok.bool("dangling").unwrap(), Some(true));
        let e = Filters::parse(&["colour=red".into()], &["label"]).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'colour': filter on label");
        assert!(Filters::parse(&["label".into()], &["label"]).is_err());
        let maybe = Filters::parse(&["dangling=maybe".into()], &["dangling"]).unwrap();
        assert!(maybe.bool("dangling").is_err());
    }

    #[test]
    fn labels_match_as_docker_matches_them() {
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let f = |pairs: &[&str]| {
            let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
            Filters::parse(&pairs, &["label", "label!"])
                .unwrap()
                .labels_match(&labels)
        };
        assert!(f(&[]));
        assert!(f(&["label=a"]));
        assert!(f(&["label=a=1"]));
        assert!(!f(&["label=a=2"]));
        assert!(!f(&["label=a", "label=b"]));
        assert!(!f(&["label!=a"]));
        assert!(f(&["label!=a=2"]));
    }

    #[test]
    fn names_and_globs() {
        assert!(name_matches("fro", "front"));
        assert!(name_matches("^front$", "front"));
        assert!(!name_matches("^front$", "frontend"));
        assert!(name_matches("end$", "frontend"));
        assert!(!name_matches("^end", "frontend"));
        assert!(glob_matches("busybox", "busybox"));
        assert!(glob_matches("busy*", "busybox"));
        assert!(glob_matches("*:lat?st", "busybox:latest"));
        assert!(!glob_matches("*", "a/b"));
        assert!(glob_matches("*/*", "a/b"));
        assert!(!glob_matches("busy", "busybox"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }
}
