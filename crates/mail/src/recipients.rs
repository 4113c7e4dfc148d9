//! What the destinations said of recipients, remembered for when they are
//! down: the relay verifies unlisted recipients at RCPT time by asking the
//! domain's destination, and a verdict it learned keeps answering while the
//! destination cannot be asked (no backscatter, no lost mail).
//!
//! ```text
//!  RCPT x@dom ─► learned within `fresh`? ──yes──► its verdict
//!                   │ no
//!                   ▼
//!        destination marked down (< `pause` ago)? ──no──► probe (MAIL FROM:<>, RCPT)
//!                   │ yes                                  │ accepted / rejected: learn, answer
//!                   ▼                                      │ unavailable: mark down
//!        learned ever? accepted → 250, rejected → 550, never → 450 (try later)
//! ```
//!
//! The book is pure: times are passed in. [`RecipientFile`] persists it as
//! lines `+ address seconds` / `- address seconds` appended to a file in the
//! spool, compacted when it grows; a malformed line is skipped (it is a cache).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::queue::Destination;
use crate::session::Verdict;
use crate::spool::{escape, unescape};

/// The verdicts learned, and which destinations are down.
#[derive(Debug, Clone)]
pub struct RecipientBook {
    /// Lower-case address → (accepted, when learned).
    learned: HashMap<String, (bool, SystemTime)>,
    /// Destination → when it last failed to answer a probe.
    down: HashMap<Destination, SystemTime>,
    /// How long a learned verdict is used without asking again.
    pub fresh: Duration,
    /// How long a destination that failed a probe is not asked again.
    pub pause: Duration,
}

/// What to do about one recipient at RCPT time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Answer with this verdict, without asking.
    Answer(Verdict),
    /// Ask the destination, then [`RecipientBook::learn`] or
    /// [`RecipientBook::unavailable`].
    Ask,
}

impl Default for RecipientBook {
    /// Verdicts fresh for 10 minutes; a down destination rested for 30 s.
    fn default() -> Self {
        RecipientBook {
            learned: HashMap::new(),
            down: HashMap::new(),
            fresh: Duration::from_secs(600),
            pause: Duration::from_secs(30),
        }
    }
}

impl RecipientBook {
    /// What to do about `address` routed to `destination` at `now`.
    pub fn lookup(
        &self,
        address: &str,
        destination: Option<&Destination>,
        now: SystemTime,
    ) -> Lookup {
        let learned = self.learned.get(&address.to_lowercase()).copied();
        if let Some((accepted, at)) = learned {
            if now.duration_since(at).unwrap_or_default() < self.fresh {
                return Lookup::Answer(verdict(accepted));
            }
        }
        let resting = destination.is_none_or(|destination| {
            self.down
                .get(destination)
                .is_some_and(|since| now.duration_since(*since).unwrap_or_default() < self.pause)
        });
        if resting {
            return Lookup::Answer(self.remembered(address));
        }
        Lookup::Ask
    }

    /// The verdict remembered for `address` however old, Unknown if none.
    pub fn remembered(&self, address: &str) -> Verdict {
        match self.learned.get(&address.to_lowercase()) {
            Some((accepted, _)) => verdict(*accepted),
            None => Verdict::Unknown,
        }
    }

    /// Records what the destination said; returns whether the verdict is
    /// new or changed (worth persisting).
    pub fn learn(&mut self, address: &str, accepted: bool, now: SystemTime) -> bool {
        let previous = self.learned.insert(address.to_lowercase(), (accepted, now));
        previous.is_none_or(|(before, _)| before != accepted)
    }

    /// Records that `destination` could not be asked at `now`.
    pub fn unavailable(&mut self, destination: &Destination, now: SystemTime) {
        self.down.insert(destination.clone(), now);
    }

    /// Records that `destination` answered: it is asked again.
    pub fn available(&mut self, destination: &Destination) {
        self.down.remove(destination);
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.learned.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.learned.is_empty()
    }
}

/// A verdict from a remembered answer.
fn verdict(accepted: bool) -> Verdict {
    if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

/// The book's file in the spool directory.
#[derive(Debug)]
pub struct RecipientFile {
    /// The file.
    path: PathBuf,
}

impl RecipientFile {
    /// The file `recipients` in `spool`.
    pub fn new(spool: &Path) -> Self {
        RecipientFile {
            path: spool.join("recipients"),
        }
    }

    /// Reads the book (empty when the file is absent), compacting the file
    /// when it holds many superseded lines.
    pub fn load(&self, book: &mut RecipientBook) -> io::Result<()> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut lines = 0;
        for line in text.lines() {
            lines += 1;
            let mut words = line.split(' ');
            let (Some(sign), Some(address), Some(seconds)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let (Some(address), Ok(seconds)) = (unescape(address), seconds.parse::<u64>()) else {
                continue;
            };
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
            match sign {
                "+" => book.learned.insert(address.to_lowercase(), (true, at)),
                "-" => book.learned.insert(address.to_lowercase(), (false, at)),
                _ => continue,
            };
        }
        if lines > 2 * book.learned.len() + 64 {
            self.compact(book)?;
        }
        Ok(())
    }

    /// Appends one learned verdict.
    pub fn append(&self, address: &str, accepted: bool, now: SystemTime) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line(address, accepted, now).as_bytes())
    }

    /// Rewrites the file with one line per address (write aside, rename).
    fn compact(&self, book: &RecipientBook) -> io::Result<()> {
        let mut text = String::new();
        for (address, (accepted, at)) in &book.learned {
            text.push_str(&line(address, *accepted, *at));
        }
        let aside = self.path.with_extension("tmp");
        fs::write(&aside, text)?;
        fs::rename(&aside, &self.path)
    }
}

/// One line of the file.
fn line(address: &str, accepted: bool, at: SystemTime) -> String {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let sign = if accepted { '+' } else { '-' };
    format!("{sign} {} {seconds}\n", escape(&address.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed instant.
    fn t(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    /// The destination used by the tests.
    fn old() -> Destination {
        "127.0.0.1:2525".parse().unwrap()
    }

    /// Fresh verdicts answer; stale ones ask; a down destination falls back
    /// to memory, and an address never learned is Unknown (450).
    #[test]
    fn lookup_uses_memory_only_when_it_must() {
        let mut book = RecipientBook::default();
        assert_eq!(book.lookup("a@d.test", Some(&old()), t(0)), Lookup::Ask);
        assert!(book.learn("A@d.test", true, t(0)), "a new verdict is news");
        assert!(
            !book.learn("a@d.test", true, t(1)),
            "same verdict is not news"
        );
        assert!(book.learn("b@d.test", false, t(1)));
        assert_eq!(
            book.lookup("a@d.test", Some(&old()), t(10)),
            Lookup::Answer(Verdict::Accepted)
        );
        assert_eq!(
            book.lookup("a@d.test", Some(&old()), t(700)),
            Lookup::Ask,
            "a stale verdict is asked again while the destination is up"
        );
        book.unavailable(&old(), t(700));
        assert_eq!(
            book.lookup("a@d.test", Some(&old()), t(710)),
            Lookup::Answer(Verdict::Accepted)
        );
        assert_eq!(
            book.lookup("b@d.test", Some(&old()), t(710)),
            Lookup::Answer(Verdict::Rejected)
        );
        assert_eq!(
            book.lookup("c@d.test", Some(&old()), t(710)),
            Lookup::Answer(Verdict::Unknown)
        );
        assert_eq!(
            book.lookup("c@d.test", Some(&old()), t(731)),
            Lookup::Ask,
            "after the pause the destination is asked again"
        );
    }

    /// The file round-trips verdicts, the last line for an address wins,
    /// and malformed lines are skipped.
    #[test]
    fn file_round_trips_and_skips_garbage() {
        let directory = tempfile::tempdir().unwrap();
        let file = RecipientFile::new(directory.path());
        file.append("a@d.test", true, t(0)).unwrap();
        file.append("b@d.test", true, t(0)).unwrap();
        file.append("b@d.test", false, t(5)).unwrap();
        let mut text = fs::read_to_string(directory.path().join("recipients")).unwrap();
        text.push_str("garbage\n+ x\n");
        fs::write(directory.path().join("recipients"), text).unwrap();
        let mut book = RecipientBook::default();
        file.load(&mut book).unwrap();
        assert_eq!(book.len(), 2, "expected two addresses");
        assert_eq!(book.remembered("a@d.test"), Verdict::Accepted);
        assert_eq!(book.remembered("B@D.test"), Verdict::Rejected);
        assert_eq!(book.remembered("c@d.test"), Verdict::Unknown);
    }
}
