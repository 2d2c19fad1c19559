//! A file's extended attributes read whole, through its path (`l*xattr`, the file itself even
//! when it is a link) or an open descriptor (`f*xattr`): one reading for the layer writer
//! (`diff`) and the init layer's copy of an image's directory (`store::init`).

use std::ffi::{CStr, CString};

use rustix::io::{Errno, Result};

/// The kernel's bound on a list of names and on one value (XATTR_LIST_MAX, XATTR_SIZE_MAX).
const MOST: usize = 65536;

/// Every attribute `list` names, each value read with `get`, in the order listed. A filesystem
/// that keeps none (ENOTSUP) has none.
pub(crate) fn all(
    list: impl Fn(&mut [u8]) -> Result<usize>,
    get: impl Fn(&CStr, &mut [u8]) -> Result<usize>,
) -> Result<Vec<(CString, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = match list(&mut names) {
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(Errno::RANGE) => {
            names = vec![0u8; MOST];
            list(&mut names)?
        }
        other => other?,
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        // Split at the NULs: none is left inside.
        let name = CString::new(name).map_err(|_| Errno::INVAL)?;
        let mut value = vec![0u8; MOST];
        let len = get(&name, &mut value)?;
        value.truncate(len);
        out.push((name, value));
    }
    Ok(out)
}
