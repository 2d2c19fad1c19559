//! `berth image inspect` (through the one inspect of every kind, container/inspect.rs), and
//! the JSON layout every inspect prints.

use anyhow::Result;
use serde::Serialize;

use super::Context;

pub use crate::container::inspect::InspectArgs;

/// `image inspect`: images only.
pub fn run(ctx: &Context, args: InspectArgs) -> Result<i32> {
    crate::container::inspect::run(ctx, args, &[crate::container::inspect::Kind::Image])
}

/// JSON indented by four spaces, as Docker prints it.
pub fn pretty_json(value: &impl Serialize) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
