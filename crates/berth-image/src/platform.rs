//! Platforms (`linux/arm64/v8`): parsing, the host's own, and picking one from an index.

use std::fmt;

use oci_spec::image::Descriptor;

use crate::error::{Error, Result};

/// An OS, an architecture and an optional variant, in Go's GOOS/GOARCH names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (or `arch` alone, meaning linux).
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::Platform {
            input: input.to_string(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("expected os/arch[/variant], e.g. linux/amd64"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(bad("expected os/arch[/variant], e.g. linux/amd64")),
        };
        Ok(Platform::normalized(os, arch, variant))
    }

    /// The platform this binary runs on.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = if arch == "arm" { Some("v7") } else { None };
        Platform::normalized("linux", arch, variant)
    }

    /// Applies containerd's aliases so `aarch64`, `arm64/v8` and `arm64` compare equal.
    fn normalized(os: &str, arch: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let (arch, variant) = match (arch.to_ascii_lowercase().as_str(), variant) {
            ("x86_64" | "x86-64", _) => ("amd64".to_string(), None),
            ("aarch64" | "arm64", Some("v8") | None) => ("arm64".to_string(), None),
            ("aarch64", v) => ("arm64".to_string(), v.map(str::to_string)),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            (a, v) => (a.to_string(), v.map(str::to_string)),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// The platform an index entry is for, if it says.
    pub fn of_descriptor(descriptor: &Descriptor) -> Option<Self> {
        let p = descriptor.platform().as_ref()?;
        Some(Platform::normalized(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        ))
    }

    fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `wanted` from an index; an exact variant match wins over a loose one.
pub fn select<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Result<&'a Descriptor> {
    let candidates: Vec<(&Descriptor, Platform)> = manifests
        .iter()
        .filter_map(|d| Some((d, Platform::of_descriptor(d)?)))
        .collect();
    let exact = candidates.iter().find(|(_, p)| p == wanted);
    let loose = candidates.iter().find(|(_, p)| wanted.matches(p));
    match exact.or(loose) {
        Some((d, _)) => Ok(d),
        None => Err(Error::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: candidates
                .iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_aliases() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(Platform::parse("arm/v7").unwrap().to_string(), "arm/v7");
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
