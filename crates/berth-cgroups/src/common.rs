//! Validation and formatting of resource values that v1 and v2 write the same way.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma};

use crate::error::{CgroupError, Result};

/// A hugepage size becomes part of a file name (`hugetlb.2MB.max`), so it must look like one
/// of the kernel's sizes and nothing else.
pub(crate) fn hugepage_size(limit: &LinuxHugepageLimit) -> Result<&str> {
    let size = limit.page_size().as_str();
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB");
    if ok {
        Ok(size)
    } else {
        Err(CgroupError::InvalidResource {
            what: "hugepage size",
            reason: format!("{size:?} is not like 2MB or 1GB"),
        })
    }
}

/// Lines for `rdma.max`, one per device, sorted so that the writes are reproducible.
pub(crate) fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (device, limit) in rdma {
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidResource {
                what: "rdma device",
                reason: format!("{device:?} is not a device name"),
            });
        }
        let mut line = device.clone();
        if let Some(n) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={n}"));
        }
        if let Some(n) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={n}"));
        }
        if line.len() > device.len() {
            lines.push(line);
        }
    }
    lines.sort();
    Ok(lines)
}

/// The OCI convention shared by v1 and v2 for limits: negative means unlimited.
pub(crate) fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(size: &str) -> LinuxHugepageLimit {
        let mut l = LinuxHugepageLimit::default();
        l.set_page_size(size.to_owned()).set_limit(1);
        l
    }

    #[test]
    fn hugepage_sizes_must_be_sizes() {
        assert_eq!(hugepage_size(&page("2MB")).unwrap(), "2MB");
        assert_eq!(hugepage_size(&page("1GB")).unwrap(), "1GB");
        for bad in ["", "MB", "2mb", "../2MB", "2MB/x", "2 MB"] {
            assert!(hugepage_size(&page(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn rdma_lines_name_only_given_limits() {
        let mut limit = LinuxRdma::default();
        *limit.hca_handles_mut() = Some(3);
        let lines = rdma_lines(&HashMap::from([("mlx5_0".to_owned(), limit)])).unwrap();
        assert_eq!(lines, ["mlx5_0 hca_handle=3"]);
    }
}
