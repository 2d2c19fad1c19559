//! Validated device cgroup rules, shared by v1 (`devices.allow`/`devices.deny`) and v2 (BPF).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{CgroupError, Result};

pub(crate) const READ: u8 = 1;
pub(crate) const WRITE: u8 = 2;
pub(crate) const MKNOD: u8 = 4;
pub(crate) const ALL_ACCESS: u8 = READ | WRITE | MKNOD;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    All,
    Block,
    Char,
}

/// One OCI device rule, checked once so both backends see the same meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` is the `*` wildcard.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `READ | WRITE | MKNOD` bits; never zero.
    pub access: u8,
}

impl DeviceRule {
    pub fn parse(rule: &LinuxDeviceCgroup) -> Result<Self> {
        let invalid = |reason| CgroupError::InvalidDeviceRule {
            rule: rule.to_string(),
            reason,
        };
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::P => return Err(invalid("the devices cgroup has no fifo rules")),
        };
        let number = |n: Option<i64>| match n {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| invalid("major and minor must be -1 (any) or 0..=4294967295")),
        };
        let (major, minor) = (number(rule.major())?, number(rule.minor())?);
        let access = match rule.access().as_deref() {
            None | Some("") => ALL_ACCESS,
            Some(s) => s.chars().try_fold(0, |acc, c| match c {
                'r' => Ok(acc | READ),
                'w' => Ok(acc | WRITE),
                'm' => Ok(acc | MKNOD),
                _ => Err(invalid("access may only contain r, w and m")),
            })?,
        };
        // v1 treats any `a` rule as "every device, every access" and drops the rest, so a
        // narrower `a` rule would mean different things on v1 and v2: refuse it.
        if kind == DeviceKind::All && (major.is_some() || minor.is_some() || access != ALL_ACCESS) {
            return Err(invalid("a rule of type a must be *:* rwm"));
        }
        Ok(Self {
            allow: rule.allow(),
            kind,
            major,
            minor,
            access,
        })
    }

    /// The line written to v1's `devices.allow` or `devices.deny`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => return "a".to_owned(),
            DeviceKind::Block => 'b',
            DeviceKind::Char => 'c',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!(
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    rules.iter().map(DeviceRule::parse).collect()
}

#[cfg(test)]
pub(crate) fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(Some(typ))
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_owned()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxDeviceType::{A, C, P, U};

    #[test]
    fn lines_for_v1() {
        let null = DeviceRule::parse(&rule(true, C, Some(1), Some(3), "rwm")).unwrap();
        assert_eq!(null.v1_line(), "c 1:3 rwm");
        let any_char = DeviceRule::parse(&rule(true, U, None, Some(-1), "m")).unwrap();
        assert_eq!(any_char.v1_line(), "c *:* m");
        let all = DeviceRule::parse(&LinuxDeviceCgroup::default()).unwrap();
        assert_eq!((all.v1_line(), all.allow), ("a".to_owned(), false));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            rule(true, C, Some(1), Some(3), "rx"),
            rule(true, P, None, None, "rwm"),
            rule(true, C, Some(-2), None, "r"),
            rule(true, A, Some(1), None, "rwm"),
            rule(true, A, None, None, "r"),
        ] {
            let err = DeviceRule::parse(&bad).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidDeviceRule { .. }),
                "{err}"
            );
        }
    }
}
