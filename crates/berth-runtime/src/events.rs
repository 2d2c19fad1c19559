//! `events`: a container's statistics and OOM notifications as runc's event stream.

use serde::Serialize;

/// runc's event (`types.Event`): its fields in the Go struct's order (tools match the text),
/// `data` left out when there is none (an `oom` event).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<berth_cgroups::Stats>,
}

impl<'a> Event<'a> {
    pub fn stats(id: &'a str, stats: berth_cgroups::Stats) -> Self {
        Event {
            kind: "stats",
            id,
            data: Some(stats),
        }
    }

    pub fn oom(id: &'a str) -> Self {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}
