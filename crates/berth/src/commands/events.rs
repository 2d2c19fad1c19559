//! `berth events` (and `system events`): the engine's event log as `docker events` prints it:
//! what happened since `--since` (or nothing of the past), then live until `--until` (or until
//! interrupted), filtered as asked.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use berth_engine::events::{self, Event, Filter};
use clap::Args;
use serde_json::json;

use super::Context;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (type=, event=, container=, image=, label=,
    /// network=, volume=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "json"
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Context, args: EventsArgs) -> Result<()> {
    let engine = ctx.engine()?;
    let now = SystemTime::now();
    let time = |t: &Option<String>| t.as_deref().map(|t| events::parse_time(t, now));
    let mut filter = Filter {
        since: time(&args.since).transpose()?,
        until: time(&args.until).transpose()?,
        ..Filter::default()
    };
    for f in &args.filter {
        filter.add(f)?;
    }
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(source) => Some(crate::template::parse(source)?),
    };
    let mut log = events::follow(&engine, filter)?;
    while let Some(batch) = log.next(Duration::from_secs(1))? {
        for event in &batch {
            match (&template, args.format.as_deref()) {
                (Some(t), _) => {
                    crate::format::print_raw(&format!("{}\n", t.render(&fields(event))?))
                }
                (None, Some("json")) => outln!("{}", serde_json::to_string(event)?),
                (None, _) => outln!("{}", line(event)),
            }
        }
    }
    Ok(())
}

/// Docker's line: `<time> <type> <action> <id> (<key>=<value>, ...)`, keys sorted.
fn line(event: &Event) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_nanos(event.time_nano.max(0) as u64);
    let mut text = format!(
        "{} {} {} {}",
        humantime::format_rfc3339_nanos(time),
        event.kind.as_str(),
        event.action,
        event.actor.id
    );
    let attributes = &event.actor.attributes;
    if !attributes.is_empty() {
        let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text += &format!(" ({})", pairs.join(", "));
    }
    text
}

/// The event under the names a Go template gives the fields of Docker's events.Message.
fn fields(event: &Event) -> serde_json::Value {
    json!({
        "Type": event.kind.as_str(),
        "Action": event.action,
        "Actor": {"ID": event.actor.id, "Attributes": event.actor.attributes},
        "Scope": event.scope,
        "Time": event.time,
        "TimeNano": event.time_nano,
        "Status": event.action,
        "ID": event.actor.id,
        "From": event.actor.attributes.get("image").cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_docker_prints_them() {
        let mut event = Event::new(events::Kind::Container, "start", "abc")
            .with("name", "web")
            .with("image", "busybox");
        event.time_nano = 1_700_000_000_123_456_789;
        assert_eq!(
            line(&event),
            "2023-11-14T22:13:20.123456789Z container start abc (image=busybox, name=web)"
        );
    }
}
