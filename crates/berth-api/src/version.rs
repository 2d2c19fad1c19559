//! API versions: the range berth serves (what the docker CLI on these machines negotiates, down
//! to the oldest Docker still accepts), and the `/v1.xx` prefix of a request's path.

use std::fmt;

use crate::error::ApiError;

/// An API version, `1.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// `1.50`; None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The newest version served: Docker 28.2's (the docker CLI these machines have).
pub const MAX: ApiVersion = ApiVersion::new(1, 50);
/// The oldest version served, as Docker's daemon accepts it.
pub const MIN: ApiVersion = ApiVersion::new(1, 24);

/// The range served, as `version` (the API's and the command line's) reports it.
pub fn range() -> berth_engine::version::ApiRange {
    berth_engine::version::ApiRange {
        max: MAX.to_string(),
        min: MIN.to_string(),
    }
}

/// Splits `/v1.50/containers/json` into the version it names (the newest without a prefix, as
/// Docker answers unversioned requests) and the rest of the path; a version outside the range is
/// refused with Docker's words.
pub fn split(path: &str) -> Result<(ApiVersion, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((MAX, path));
    };
    let (version, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = ApiVersion::parse(version) else {
        // Not a version after all (a path like /volumes is matched before reaching here, but
        // anything else starting with /v is simply an unknown path).
        return Ok((MAX, path));
    };
    if v > MAX {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {MAX}"
        )));
    }
    if v < MIN {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version"
        )));
    }
    Ok((v, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_names_the_version_and_none_means_the_newest() {
        assert_eq!(
            split("/v1.41/containers/json").unwrap(),
            (ApiVersion::new(1, 41), "/containers/json")
        );
        assert_eq!(split("/_ping").unwrap(), (MAX, "/_ping"));
        assert_eq!(split("/volumes").unwrap(), (MAX, "/volumes"));
        assert_eq!(split("/v1.24").unwrap(), (MIN, "/"));
    }

    #[test]
    fn versions_outside_the_range_are_refused_in_dockers_words() {
        let e = split("/v1.99/info").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "client version 1.99 is too new. Maximum supported API version is 1.50"
        );
        assert!(split("/v1.12/info")
            .unwrap_err()
            .message
            .contains("too old"));
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 10));
    }
}
