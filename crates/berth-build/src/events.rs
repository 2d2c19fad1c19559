//! A build's progress as JSON lines, for a caller in another process: `berth build --events`
//! writes them on stdout (the API service runs its builds so, as a child), and [`replay`] hands
//! them back to a [`Progress`] of the caller's, which decides what a person sees. The build's
//! end is a line of its own: the image it made, or why it failed.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::builder::Progress;

/// One line of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Planned {
        instructions: usize,
    },
    Step {
        id: usize,
        name: String,
    },
    Config {
        name: String,
    },
    /// A step's output; bytes that are not UTF-8 are replaced, as Docker's JSON stream does.
    Output {
        id: usize,
        text: String,
    },
    Cached {
        id: usize,
    },
    Done {
        id: usize,
    },
    Warn {
        message: String,
    },
    /// The build is over: the image's ID (`sha256:...`).
    Built {
        image_id: String,
    },
    /// The build is over: the error, one line.
    Failed {
        message: String,
    },
}

/// How a replayed stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Built(String),
    Failed(String),
    /// The stream stopped without saying (the child died): what it had printed is the caller's
    /// to report.
    Cut,
}

/// A [`Progress`] writing the events to `out`. A write that fails (the reader gone) is not
/// the build's business: the reader stops it with a signal if it must.
pub struct Writer<W: Write>(pub W);

impl<W: Write> Writer<W> {
    pub fn event(&mut self, event: &Event) {
        if let Ok(mut line) = serde_json::to_vec(event) {
            line.push(b'\n');
            let _ = self.0.write_all(&line);
            let _ = self.0.flush();
        }
    }
}

impl<W: Write> Progress for Writer<W> {
    fn planned(&mut self, instructions: usize) {
        self.event(&Event::Planned { instructions });
    }
    fn step(&mut self, id: usize, name: &str) {
        let name = name.to_string();
        self.event(&Event::Step { id, name });
    }
    fn config(&mut self, name: &str) {
        let name = name.to_string();
        self.event(&Event::Config { name });
    }
    fn output(&mut self, id: usize, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        self.event(&Event::Output { id, text });
    }
    fn cached(&mut self, id: usize) {
        self.event(&Event::Cached { id });
    }
    fn done(&mut self, id: usize) {
        self.event(&Event::Done { id });
    }
    fn warn(&mut self, message: &str) {
        let message = message.to_string();
        self.event(&Event::Warn { message });
    }
}

/// Reads events from `input` until the build's end, calling `progress` for each; a line that
/// is not an event is skipped.
pub fn replay(input: impl BufRead, progress: &mut dyn Progress) -> End {
    for line in input.lines() {
        let Ok(line) = line else {
            break;
        };
        let Ok(event) = serde_json::from_str::<Event>(&line) else {
            continue;
        };
        match event {
            Event::Planned { instructions } => progress.planned(instructions),
            Event::Step { id, name } => progress.step(id, &name),
            Event::Config { name } => progress.config(&name),
            Event::Output { id, text } => progress.output(id, text.as_bytes()),
            Event::Cached { id } => progress.cached(id),
            Event::Done { id } => progress.done(id),
            Event::Warn { message } => progress.warn(&message),
            Event::Built { image_id } => return End::Built(image_id),
            Event::Failed { message } => return End::Failed(message),
        }
    }
    End::Cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(Vec<String>);

    impl Progress for Seen {
        fn planned(&mut self, n: usize) {
            self.0.push(format!("planned {n}"));
        }
        fn step(&mut self, id: usize, name: &str) {
            self.0.push(format!("step {id} {name}"));
        }
        fn config(&mut self, name: &str) {
            self.0.push(format!("config {name}"));
        }
        fn output(&mut self, id: usize, bytes: &[u8]) {
            self.0
                .push(format!("output {id} {}", String::from_utf8_lossy(bytes)));
        }
        fn cached(&mut self, id: usize) {
            self.0.push(format!("cached {id}"));
        }
        fn done(&mut self, id: usize) {
            self.0.push(format!("done {id}"));
        }
        fn warn(&mut self, message: &str) {
            self.0.push(format!("warn {message}"));
        }
    }

    #[test]
    fn what_is_written_is_replayed() {
        let mut w = Writer(Vec::new());
        w.planned(3);
        w.step(1, "[1/3] FROM busybox");
        w.config("[2/3] ENV A=1");
        w.step(2, "[3/3] RUN echo hi");
        w.output(2, b"hi\n\xff");
        w.done(2);
        w.cached(3);
        w.warn("careful");
        w.event(&Event::Built {
            image_id: "sha256:ab".into(),
        });
        let mut input = w.0;
        input.extend_from_slice(b"not an event\n");
        let mut seen = Seen::default();
        assert_eq!(
            replay(&input[..], &mut seen),
            End::Built("sha256:ab".into())
        );
        assert_eq!(
            seen.0,
            [
                "planned 3",
                "step 1 [1/3] FROM busybox",
                "config [2/3] ENV A=1",
                "step 2 [3/3] RUN echo hi",
                "output 2 hi\n\u{fffd}",
                "done 2",
                "cached 3",
                "warn careful",
            ]
        );
    }

    #[test]
    fn a_stream_cut_short_says_so() {
        let mut seen = Seen::default();
        let input = b"{\"event\":\"step\",\"id\":1,\"name\":\"x\"}\n{\"event\":\"out";
        assert_eq!(replay(&input[..], &mut seen), End::Cut);
        let failed = b"{\"event\":\"failed\",\"message\":\"no\"}\n";
        assert_eq!(replay(&failed[..], &mut seen), End::Failed("no".into()));
    }
}
