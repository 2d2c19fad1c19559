//! Builds the exec trampoline (trampoline/<arch>.S, see its header) into a tiny static ELF
//! that `berth_sys::trampoline` embeds. Architectures without a trampoline get an empty one,
//! and the runtime then protects itself by re-executing from a read-only view instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let elf = out.join("trampoline");
    let source = PathBuf::from(format!("trampoline/{arch}.S"));
    println!("cargo:rerun-if-changed=trampoline");
    if !source.exists() {
        std::fs::write(&elf, b"").expect("write an empty trampoline");
        return;
    }
    // The C compiler that links Rust programs on Linux anyway; CC or CC_<target> may name another.
    let target = std::env::var("TARGET").unwrap_or_default();
    let cc = std::env::var(format!("CC_{}", target.replace('-', "_")))
        .or_else(|_| std::env::var("CC"))
        .unwrap_or_else(|_| "cc".into());
    println!("cargo:rerun-if-env-changed=CC");
    let status = Command::new(&cc)
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,--build-id=none",
            "-Wl,-n",
            "-s",
            "-o",
        ])
        .arg(&elf)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("run {cc} to build {}: {e}", source.display()));
    assert!(
        status.success(),
        "{cc} failed to build the exec trampoline from {}",
        source.display()
    );
}
