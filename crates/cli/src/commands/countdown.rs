//! Waits shown to a person: `migrate run`'s countdown to the next step and
//! `check --watch`'s to the next round.
//!
//! ```text
//!  a terminal ──Countdown (indicatif)──▶ one line redrawn in place: "   … switch at 12:00:05Z (in 42 s) [=====>    ]", cleared at the end
//!  a pipe, a log file ──────────────────▶ the caller prints one plain line when the wait begins; no \r, no escape code
//! ```
//!
//! Whether the output is a terminal is the caller's to say (it knows which
//! stream it writes to and whether `--json` is on); indicatif also draws
//! nothing on a stream that is not a terminal, so a mistake there would
//! still not put escape codes in a file.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a wait is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Not at all (`--json`: the output is for a program).
    Silent,
    /// One line when the wait begins (the output is not a terminal).
    Plain,
    /// A line redrawn as the time passes (a terminal).
    Live,
}

impl Display {
    /// Live on a terminal, plain elsewhere, silent for `--json`.
    pub fn choose(terminal: bool, json: bool) -> Display {
        match (json, terminal) {
            (true, _) => Display::Silent,
            (false, true) => Display::Live,
            (false, false) => Display::Plain,
        }
    }
}

/// The stream a countdown is drawn on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (`migrate run`: its steps are there too).
    Stdout,
    /// Standard error (`check --watch`: standard output holds the tables).
    Stderr,
}

/// A live countdown on a terminal: the words of the wait and a bar of the
/// time gone; cleared from the screen when dropped.
pub struct Countdown {
    /// The bar, in milliseconds of the whole wait.
    bar: ProgressBar,
    /// The whole wait.
    total: Duration,
}

impl Countdown {
    /// A countdown of `total` on `stream`, `indent` spaces in.
    pub fn start(stream: Stream, total: Duration, indent: usize) -> Countdown {
        let target = match stream {
            Stream::Stdout => ProgressDrawTarget::stdout(),
            Stream::Stderr => ProgressDrawTarget::stderr(),
        };
        let bar = ProgressBar::with_draw_target(Some(millis(total)), target);
        // The template is ours and fixed: it parses (a unit test says so);
        // were it ever not to, the default bar still counts down.
        let style = ProgressStyle::with_template(&template(indent))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Countdown { bar, total }
    }

    /// Shows `left` of the wait, in `words`.
    pub fn show(&self, left: Duration, words: String) {
        self.bar.set_message(words);
        self.bar
            .set_position(millis(self.total.saturating_sub(left)));
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The line of a countdown: `indent` spaces, the words, a bar of the time gone.
fn template(indent: usize) -> String {
    format!("{:indent$}{{msg}} [{{bar:24}}]", "")
}

/// A duration in whole milliseconds, for the bar.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_silent_a_pipe_plain_a_terminal_live() {
        assert_eq!(Display::choose(true, true), Display::Silent);
        assert_eq!(Display::choose(false, true), Display::Silent);
        assert_eq!(Display::choose(false, false), Display::Plain);
        assert_eq!(Display::choose(true, false), Display::Live);
    }

    #[test]
    fn the_bar_counts_the_time_gone() {
        assert!(ProgressStyle::with_template(&template(3)).is_ok());
        let countdown = Countdown::start(Stream::Stderr, Duration::from_secs(10), 3);
        countdown.show(Duration::from_secs(4), "switch in 4 s".into());
        assert_eq!(countdown.bar.position(), 6_000);
        assert_eq!(countdown.bar.length(), Some(10_000));
        assert_eq!(countdown.bar.message(), "switch in 4 s");
    }
}
