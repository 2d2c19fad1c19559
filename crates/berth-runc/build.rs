//! What scripts/link-text-order, build_fast_runc's linker, lays out first (`text-order`, made
//! by bench/text-order.py): a new list is a new link. Watched only when it is there (cargo
//! reruns every build for a missing file).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::path::Path::new("text-order").exists() {
        println!("cargo:rerun-if-changed=text-order");
    }
}
