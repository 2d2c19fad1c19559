//! `berth-net-dns __dns <network> --root <data_root>`: the DNS server alone, with the same
//! arguments as `berth __dns`, for the crate's tests and for running it by hand.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (network, root) = match args.as_slice() {
        [_, cmd, network, flag, root] if cmd == "__dns" && flag == "--root" => (network, root),
        _ => {
            eprintln!("usage: berth-net-dns __dns NETWORK --root DATA_ROOT");
            return ExitCode::from(125);
        }
    };
    match berth_net::dns::serve(Path::new(root), network) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-net-dns: {e}");
            ExitCode::from(125)
        }
    }
}
