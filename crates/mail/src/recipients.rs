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
//!        learned, not expired? accepted → 250, rejected → 550, else → 450 (try later)
//! ```
//!
//! The memory is bounded, like Postfix's verify cache: an accepted
//! recipient is forgotten `positive_ttl` (31 days) after it was last
//! confirmed, a refused one after `negative_ttl` (10 minutes: anyone can
//! make up refused addresses, so they are not kept beyond that), and each
//! kind has a most number of entries (`capacity`; refused ones a tenth of
//! it), the oldest going first. Refused addresses never push accepted ones
//! out.
//!
//! The book is pure: times are passed in. [`RecipientFile`] persists it as
//! lines `+ address seconds` / `- address seconds` appended to a file in the
//! spool, rewritten with only the live entries when most of its lines are
//! superseded; a malformed line is skipped (it is a cache).

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
    /// Lower-case address → when the destination last accepted it.
    accepted: HashMap<String, SystemTime>,
    /// Lower-case address → when the destination last refused it.
    refused: HashMap<String, SystemTime>,
    /// Destination → when it last failed to answer a probe.
    down: HashMap<Destination, SystemTime>,
    /// How long a learned verdict is used without asking again.
    pub fresh: Duration,
    /// How long a destination that failed a probe is not asked again.
    pub pause: Duration,
    /// How long an accepted recipient is remembered after it was learned.
    pub positive_ttl: Duration,
    /// How long a refused recipient is remembered after it was learned.
    pub negative_ttl: Duration,
    /// The most accepted recipients remembered (refused: a tenth, at least 1).
    pub capacity: usize,
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
    /// Verdicts fresh for 10 minutes; a down destination rested for 30 s;
    /// accepted recipients kept 31 days, refused ones 10 minutes; at most
    /// 100 000 accepted and 10 000 refused.
    fn default() -> Self {
        RecipientBook {
            accepted: HashMap::new(),
            refused: HashMap::new(),
            down: HashMap::new(),
            fresh: Duration::from_secs(600),
            pause: Duration::from_secs(30),
            positive_ttl: Duration::from_secs(31 * 86_400),
            negative_ttl: Duration::from_secs(600),
            capacity: 100_000,
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
        if let Some((accepted, at)) = self.known(address, now) {
            if age(at, now) < self.fresh {
                return Lookup::Answer(verdict(accepted));
            }
        }
        let resting = destination.is_none_or(|destination| {
            self.down
                .get(destination)
                .is_some_and(|since| age(*since, now) < self.pause)
        });
        if resting {
            return Lookup::Answer(self.remembered(address, now));
        }
        Lookup::Ask
    }

    /// The verdict remembered for `address` at `now` however old (within
    /// its time to live), Unknown if none.
    pub fn remembered(&self, address: &str, now: SystemTime) -> Verdict {
        match self.known(address, now) {
            Some((accepted, _)) => verdict(accepted),
            None => Verdict::Unknown,
        }
    }

    /// Records what the destination said at `now`; returns whether it is
    /// worth persisting (new, changed, or a confirmation of an accepted
    /// recipient learned more than `fresh` ago, which extends its life).
    pub fn learn(&mut self, address: &str, accepted: bool, now: SystemTime) -> bool {
        let address = address.to_lowercase();
        let (mine, other, capacity, ttl) = if accepted {
            (
                &mut self.accepted,
                &mut self.refused,
                self.capacity,
                self.positive_ttl,
            )
        } else {
            (
                &mut self.refused,
                &mut self.accepted,
                (self.capacity / 10).max(1),
                self.negative_ttl,
            )
        };
        let changed = other.remove(&address).is_some();
        if !mine.contains_key(&address) {
            make_room(mine, capacity, ttl, now);
        }
        let previous = mine.insert(address, now);
        changed
            || previous.is_none_or(|at| accepted && age(at, now) >= self.fresh)
            || previous.is_some_and(|at| !accepted && age(at, now) >= self.negative_ttl)
    }

    /// Records that `destination` could not be asked at `now`.
    pub fn unavailable(&mut self, destination: &Destination, now: SystemTime) {
        self.down.insert(destination.clone(), now);
    }

    /// Records that `destination` answered: it is asked again.
    pub fn available(&mut self, destination: &Destination) {
        self.down.remove(destination);
    }

    /// How many addresses are remembered (accepted and refused).
    pub fn len(&self) -> usize {
        self.accepted.len() + self.refused.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty() && self.refused.is_empty()
    }

    /// Every live entry as (address, accepted, when learned), for the file.
    pub fn entries(&self, now: SystemTime) -> Vec<(String, bool, SystemTime)> {
        let live = |map: &HashMap<String, SystemTime>, accepted: bool, ttl: Duration| {
            map.iter()
                .filter(move |(_, at)| age(**at, now) < ttl)
                .map(move |(address, at)| (address.clone(), accepted, *at))
                .collect::<Vec<_>>()
        };
        let mut entries = live(&self.accepted, true, self.positive_ttl);
        entries.extend(live(&self.refused, false, self.negative_ttl));
        entries
    }

    /// The verdict and its time for `address`, if remembered and not expired.
    fn known(&self, address: &str, now: SystemTime) -> Option<(bool, SystemTime)> {
        let address = address.to_lowercase();
        if let Some(at) = self.accepted.get(&address) {
            if age(*at, now) < self.positive_ttl {
                return Some((true, *at));
            }
        }
        match self.refused.get(&address) {
            Some(at) if age(*at, now) < self.negative_ttl => Some((false, *at)),
            _ => None,
        }
    }

    /// Forgets every entry past its time to live at `now`.
    pub fn expire(&mut self, now: SystemTime) {
        let (positive, negative) = (self.positive_ttl, self.negative_ttl);
        self.accepted.retain(|_, at| age(*at, now) < positive);
        self.refused.retain(|_, at| age(*at, now) < negative);
    }
}

/// Makes room in `map` for one more entry when it holds `capacity`:
/// expired entries go first, then the oldest, down to nine tenths of the
/// capacity (so that this is rare).
fn make_room(
    map: &mut HashMap<String, SystemTime>,
    capacity: usize,
    ttl: Duration,
    now: SystemTime,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, at| age(*at, now) < ttl);
    if map.len() < capacity {
        return;
    }
    let keep = (capacity - 1).saturating_sub(capacity / 10);
    let mut by_age: Vec<(SystemTime, String)> = map
        .iter()
        .map(|(address, at)| (*at, address.clone()))
        .collect();
    let cut = by_age.len() - keep;
    if cut < by_age.len() {
        by_age.select_nth_unstable(cut);
    }
    for (_, address) in &by_age[..cut] {
        map.remove(address);
    }
}

/// How long ago `at` was, at `now` (zero for the future).
fn age(at: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(at).unwrap_or_default()
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
    /// Lines in the file (to know when to rewrite it).
    lines: usize,
}

impl RecipientFile {
    /// The file `recipients` in `spool`.
    pub fn new(spool: &Path) -> Self {
        RecipientFile {
            path: spool.join("recipients"),
            lines: 0,
        }
    }

    /// Reads the book (empty when the file is absent; expired entries
    /// skipped), rewriting the file when it holds many superseded lines.
    pub fn load(&mut self, book: &mut RecipientBook, now: SystemTime) -> io::Result<()> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        self.lines = 0;
        for line in text.lines() {
            self.lines += 1;
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
                "+" => book.learn(&address, true, at),
                "-" => book.learn(&address, false, at),
                _ => continue,
            };
        }
        book.expire(now);
        if self.due_for_rewrite(book) {
            self.rewrite(&book.entries(now))?;
        }
        Ok(())
    }

    /// Appends one learned verdict.
    pub fn append(&mut self, address: &str, accepted: bool, now: SystemTime) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line(address, accepted, now).as_bytes())?;
        self.lines += 1;
        Ok(())
    }

    /// Whether most lines of the file are superseded or expired.
    pub fn due_for_rewrite(&self, book: &RecipientBook) -> bool {
        self.lines > 2 * book.len() + 64
    }

    /// Rewrites the file with these entries, one line each (write aside,
    /// rename): [`RecipientBook::entries`].
    pub fn rewrite(&mut self, entries: &[(String, bool, SystemTime)]) -> io::Result<()> {
        let mut text = String::new();
        for (address, accepted, at) in entries {
            text.push_str(&line(address, *accepted, *at));
        }
        let aside = self.path.with_extension("tmp");
        fs::write(&aside, text)?;
        fs::rename(&aside, &self.path)?;
        self.lines = entries.len();
        Ok(())
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
        book.unavailable(&old(), t(590));
        assert_eq!(
            book.lookup("a@d.test", Some(&old()), t(600)),
            Lookup::Answer(Verdict::Accepted)
        );
        assert_eq!(
            book.lookup("b@d.test", Some(&old()), t(600)),
            Lookup::Answer(Verdict::Rejected)
        );
        assert_eq!(
            book.lookup("c@d.test", Some(&old()), t(600)),
            Lookup::Answer(Verdict::Unknown)
        );
        assert_eq!(
            book.lookup("c@d.test", Some(&old()), t(621)),
            Lookup::Ask,
            "after the pause the destination is asked again"
        );
    }

    /// A refused recipient is forgotten after the negative TTL (10 min), an
    /// accepted one after the positive TTL (31 days), down destination or not.
    #[test]
    fn verdicts_expire() {
        let mut book = RecipientBook::default();
        book.learn("in@d.test", true, t(0));
        book.learn("out@d.test", false, t(0));
        assert_eq!(book.remembered("out@d.test", t(599)), Verdict::Rejected);
        assert_eq!(book.remembered("out@d.test", t(600)), Verdict::Unknown);
        book.unavailable(&old(), t(601));
        assert_eq!(
            book.lookup("out@d.test", Some(&old()), t(602)),
            Lookup::Answer(Verdict::Unknown),
            "a refusal past its TTL is not remembered: 450, not 550"
        );
        assert_eq!(
            book.remembered("in@d.test", t(31 * 86_400 - 1)),
            Verdict::Accepted
        );
        assert_eq!(
            book.remembered("in@d.test", t(31 * 86_400)),
            Verdict::Unknown
        );
        assert!(
            book.learn("in@d.test", true, t(700)),
            "a confirmation after `fresh` extends the life: worth persisting"
        );
        assert_eq!(
            book.remembered("in@d.test", t(31 * 86_400 + 1)),
            Verdict::Accepted
        );
    }

    /// A flood of refused addresses stays within a tenth of the capacity and
    /// never pushes accepted ones out; accepted ones stay within capacity.
    #[test]
    fn memory_is_capped() {
        let mut book = RecipientBook {
            capacity: 1000,
            ..RecipientBook::default()
        };
        for number in 0..100 {
            book.learn(&format!("user{number}@d.test"), true, t(number));
        }
        for number in 0..50_000u64 {
            book.learn(
                &format!("made-up-{number}@d.test"),
                false,
                t(100 + number / 100),
            );
            assert!(book.refused.len() <= 100, "refused: {}", book.refused.len());
        }
        assert_eq!(book.accepted.len(), 100, "accepted ones kept");
        assert_eq!(book.remembered("user0@d.test", t(600)), Verdict::Accepted);
        assert_eq!(
            book.remembered("made-up-49999@d.test", t(600)),
            Verdict::Rejected,
            "the newest refusals are the ones kept"
        );
        for number in 0..5000u64 {
            book.learn(&format!("real-{number}@d.test"), true, t(1000 + number));
            assert!(book.accepted.len() <= 1000);
        }
        assert_eq!(
            book.remembered("real-4999@d.test", t(7000)),
            Verdict::Accepted,
            "the newest accepted are kept"
        );
        assert_eq!(book.remembered("user0@d.test", t(7000)), Verdict::Unknown);
    }

    /// The file round-trips verdicts, the last line for an address wins,
    /// malformed and expired lines are skipped, and it is rewritten with the
    /// live entries when most of it is superseded.
    #[test]
    fn file_round_trips_and_skips_garbage() {
        let directory = tempfile::tempdir().unwrap();
        let mut file = RecipientFile::new(directory.path());
        file.append("a@d.test", true, t(0)).unwrap();
        file.append("b@d.test", true, t(0)).unwrap();
        file.append("b@d.test", false, t(5)).unwrap();
        file.append("old@d.test", false, t(0)).unwrap();
        let mut text = fs::read_to_string(directory.path().join("recipients")).unwrap();
        text.push_str("garbage\n+ x\n");
        fs::write(directory.path().join("recipients"), text).unwrap();
        let mut book = RecipientBook::default();
        file.load(&mut book, t(300)).unwrap();
        assert_eq!(book.remembered("a@d.test", t(300)), Verdict::Accepted);
        assert_eq!(book.remembered("B@D.test", t(300)), Verdict::Rejected);
        assert_eq!(book.remembered("c@d.test", t(300)), Verdict::Unknown);
        let mut book = RecipientBook::default();
        file.load(&mut book, t(601)).unwrap();
        assert_eq!(
            book.remembered("old@d.test", t(601)),
            Verdict::Unknown,
            "expired"
        );
        assert_eq!(book.len(), 2, "a and b (b refused at t(5), still live)");
        for number in 0..200 {
            file.append(&format!("x{number}@d.test"), false, t(0))
                .unwrap();
        }
        let mut book = RecipientBook::default();
        file.load(&mut book, t(700)).unwrap();
        let text = fs::read_to_string(directory.path().join("recipients")).unwrap();
        assert_eq!(
            text.lines().count(),
            1,
            "rewritten with the live entry only: {text}"
        );
        assert!(text.starts_with("+ a@d.test "), "{text}");
    }
}
