//! Docker's `filters` query parameter: JSON mapping each key to its values, either as a list
//! (`{"status":["exited"]}`, API 1.22 and later) or as a set (`{"status":{"exited":true}}`, what
//! older clients and docker-py still send).

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::router::Query;

/// Key -> values, keys sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// The call's `filters`, empty when absent; malformed JSON is a 400.
    pub fn of(query: &Query) -> Result<Filters, ApiError> {
        match query.get("filters") {
            None | Some("") => Ok(Filters::default()),
            Some(text) => Filters::parse(text),
        }
    }

    pub fn parse(text: &str) -> Result<Filters, ApiError> {
        use serde_json::Value;
        let bad = || ApiError::bad_request(format!("invalid filter: {text}"));
        let Value::Object(map) = serde_json::from_str::<Value>(text).map_err(|_| bad())? else {
            return Err(bad());
        };
        let mut out = BTreeMap::new();
        for (key, values) in map {
            let values: Vec<String> = match values {
                Value::Array(list) => list
                    .into_iter()
                    .map(|v| v.as_str().map(String::from).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
                Value::Object(set) => set
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(k, _)| k)
                    .collect(),
                _ => return Err(bad()),
            };
            out.insert(key, values);
        }
        Ok(Filters(out))
    }

    /// Every filter as the command line's `key=value`, for the engine's filter parsers.
    pub fn pairs(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
            .collect()
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_sets_read_alike() {
        let a = Filters::parse(r#"{"status":["exited","created"],"label":["a=b"]}"#).unwrap();
        let b = Filters::parse(r#"{"status":{"exited":true,"created":true},"label":{"a=b":true}}"#)
            .unwrap();
        assert_eq!(a.pairs(), ["label=a=b", "status=exited", "status=created"]);
        assert_eq!(b.pairs(), ["label=a=b", "status=created", "status=exited"]);
    }

    #[test]
    fn malformed_filters_are_refused() {
        for text in ["[", "[]", r#"{"a":1}"#, r#"{"a":[1]}"#] {
            assert_eq!(Filters::parse(text).unwrap_err().status, 400, "{text}");
        }
    }
}
