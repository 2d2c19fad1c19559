//! Pull/push progress like `docker pull`: a bar per layer on a terminal, plain lines elsewhere.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_image::digest::short;
use berth_image::progress::{LayerState, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Digest;

/// `run`'s pull: the engine's words about it on stderr, as Docker prints them, and no bars.
pub struct Notices;

impl Progress for Notices {
    fn message(&self, text: &str) {
        eprintln!("{text}");
    }
}

pub use berth_image::progress::Direction;

pub struct Printer {
    direction: Direction,
    quiet: bool,
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Printer {
    pub fn new(direction: Direction, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal() && !quiet;
        let bars = tty.then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        Printer {
            direction,
            quiet,
            bars,
        }
    }

    /// The state's words for a line of their own (transfers only move the bars).
    fn words(&self, state: &LayerState) -> Option<String> {
        match state {
            LayerState::Transferring { .. } => None,
            _ => Some(state.status(self.direction)),
        }
    }
}

impl Progress for Printer {
    fn message(&self, text: &str) {
        if !self.quiet {
            match &self.bars {
                Some((multi, _)) => {
                    let _ = multi.println(text);
                }
                None => outln!("{text}"),
            }
        }
    }

    fn layer(&self, digest: &Digest, state: LayerState) {
        if self.quiet {
            return;
        }
        let id = short(digest).to_string();
        let Some((multi, bars)) = &self.bars else {
            if let Some(words) = self.words(&state) {
                outln!("{id}: {words}");
            }
            return;
        };
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<16} {wide_bar} {bytes}/{total_bytes}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(id.clone());
            bar
        });
        match &state {
            LayerState::Waiting { size } => bar.set_length(*size),
            LayerState::Transferring { done, total } => {
                bar.set_length(*total);
                bar.set_position(*done);
                bar.set_message(state.status(self.direction));
            }
            _ => {}
        }
        if let Some(words) = self.words(&state) {
            if matches!(
                state,
                LayerState::Complete | LayerState::Exists | LayerState::Mounted { .. }
            ) {
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.finish_with_message(words);
            } else {
                bar.set_message(words);
            }
        }
    }
}
