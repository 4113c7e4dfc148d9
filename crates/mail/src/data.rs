//! The DATA phase reader: finds the end-of-data line, removes dot-stuffing,
//! and marks the message as refused on anything that could smuggle SMTP.
//!
//! ```text
//!   bytes ──► CRLF "." CRLF ? ──yes──► end (content complete)
//!               │ no
//!               ├─ bare LF / bare CR ─► flaw: the whole message is refused
//!               ├─ line > limit ──────► flaw
//!               └─ content > size ────► flaw (stop keeping bytes)
//! ```
//!
//! Only CRLF starts a line, so `LF . CRLF`, `CR . CR`, `CRLF . LF` and the
//! other CVE-2023-51764 variants never end the data: what follows them stays
//! inside the message, which is then refused as a whole. No smuggled command
//! is ever read as a command.

use thiserror::Error;

/// Why a received message is refused even though its end was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Flaw {
    /// A LF not preceded by CR.
    #[error("bare LF in message data")]
    BareLineFeed,
    /// A CR not followed by LF.
    #[error("bare CR in message data")]
    BareCarriageReturn,
    /// A line longer than the configured limit.
    #[error("message line longer than {0} octets")]
    LineTooLong(usize),
    /// More content than the configured size limit.
    #[error("message larger than {0} octets")]
    TooBig(usize),
}

/// The reader of one message's data, fed bytes as they arrive.
#[derive(Debug)]
pub struct DataReader {
    /// The content so far, unstuffed, with CRLF line ends.
    content: Vec<u8>,
    /// Whether the next byte starts a line (the previous two were CRLF).
    line_start: bool,
    /// Whether the current line began with a (removed) stuffing dot.
    dot_line: bool,
    /// Whether a CR was seen and its LF is awaited.
    pending_cr: bool,
    /// Octets on the current line so far, CRLF excluded, dot included.
    line_length: usize,
    /// The first flaw seen, if any.
    flaw: Option<Flaw>,
    /// The size limit of the content.
    max_size: usize,
    /// The line length limit, CRLF included.
    max_line: usize,
}

impl DataReader {
    /// A reader at the start of the message, with the given limits.
    pub fn new(max_size: usize, max_line: usize) -> Self {
        DataReader {
            content: Vec::new(),
            line_start: true,
            dot_line: false,
            pending_cr: false,
            line_length: 0,
            flaw: None,
            max_size,
            max_line,
        }
    }

    /// Reads from `bytes`; returns how many were consumed and whether the
    /// end-of-data line was found (the bytes after it are not consumed).
    pub fn ingest(&mut self, bytes: &[u8]) -> (usize, bool) {
        for (index, &byte) in bytes.iter().enumerate() {
            if self.pending_cr {
                self.pending_cr = false;
                if byte == b'\n' {
                    if self.dot_line && self.line_length == 1 {
                        return (index + 1, true);
                    }
                    self.emit(b"\r\n");
                    self.line_start = true;
                    self.dot_line = false;
                    self.line_length = 0;
                    continue;
                }
                self.note(Flaw::BareCarriageReturn);
                self.emit(b"\r");
                self.line_length += 1;
            }
            if self.line_start {
                self.line_start = false;
                if byte == b'.' {
                    self.dot_line = true;
                    self.line_length = 1;
                    continue;
                }
            }
            match byte {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.note(Flaw::BareLineFeed);
                    self.emit(b"\n");
                    self.dot_line = false;
                    self.line_length = 0;
                }
                _ => {
                    self.emit(&[byte]);
                    self.line_length += 1;
                }
            }
            if self.line_length + 2 > self.max_line {
                self.note(Flaw::LineTooLong(self.max_line));
            }
        }
        (bytes.len(), false)
    }

    /// The content once the end was found, or the flaw that refuses it.
    pub fn finish(self) -> Result<Vec<u8>, Flaw> {
        match self.flaw {
            Some(flaw) => Err(flaw),
            None => Ok(self.content),
        }
    }

    /// Keeps `bytes` unless that would pass the size limit.
    fn emit(&mut self, bytes: &[u8]) {
        if self.content.len() + bytes.len() > self.max_size {
            self.note(Flaw::TooBig(self.max_size));
        } else {
            self.content.extend_from_slice(bytes);
        }
    }

    /// Records `flaw` unless an earlier one is already recorded.
    fn note(&mut self, flaw: Flaw) {
        self.flaw.get_or_insert(flaw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in one piece; returns (consumed, ended, result).
    fn read(input: &[u8]) -> (usize, bool, Result<Vec<u8>, Flaw>) {
        let mut reader = DataReader::new(1 << 20, 1000);
        let (used, ended) = reader.ingest(input);
        (used, ended, reader.finish())
    }

    /// A plain message ends at CRLF.CRLF and is unstuffed.
    #[test]
    fn plain_message_is_unstuffed() {
        let (used, ended, content) = read(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
        assert!(ended, "expected the end to be found");
        assert_eq!(used, 24, "expected the bytes after the end left unconsumed");
        assert_eq!(content.unwrap(), b"Subject: x\r\n\r\n.dot\r\n");
    }

    /// Every smuggling variant leaves the smuggled command inside the message
    /// and the message refused.
    #[test]
    fn smuggling_variants_never_end_the_data() {
        for fake in [
            &b"\n.\r\n"[..],
            b"\n.\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
        ] {
            let mut input = b"Subject: x\r\n\r\nhi".to_vec();
            input.extend_from_slice(fake);
            input.extend_from_slice(b"MAIL FROM:<evil@ext.test>\r\n");
            let mut reader = DataReader::new(1 << 20, 1000);
            let (_, ended) = reader.ingest(&input);
            assert!(!ended, "{fake:?}: data ended at a fake end");
            let (used, ended) = reader.ingest(b"\r\n.\r\n");
            assert!(ended && used == 5, "{fake:?}: real end not found");
            let flaw = reader.finish().unwrap_err();
            assert!(
                matches!(flaw, Flaw::BareLineFeed | Flaw::BareCarriageReturn),
                "{fake:?}: expected a bare CR/LF flaw, saw {flaw:?}"
            );
        }
    }

    /// The end is found across arbitrary splits of the input.
    #[test]
    fn end_found_byte_by_byte() {
        let mut reader = DataReader::new(1 << 20, 1000);
        let input = b"a\r\n.\r\n";
        for (index, byte) in input.iter().enumerate() {
            let (used, ended) = reader.ingest(std::slice::from_ref(byte));
            assert_eq!(used, 1);
            assert_eq!(ended, index == input.len() - 1, "at byte {index}");
        }
        assert_eq!(reader.finish().unwrap(), b"a\r\n");
    }

    /// Size and line limits are flaws, and the reader still finds the end.
    #[test]
    fn limits_are_flaws() {
        let mut reader = DataReader::new(10, 1000);
        let (_, ended) = reader.ingest(b"0123456789abc\r\n.\r\n");
        assert!(ended);
        assert_eq!(reader.finish(), Err(Flaw::TooBig(10)));
        let mut reader = DataReader::new(1000, 8);
        let (_, ended) = reader.ingest(b"0123456789\r\n.\r\n");
        assert!(ended);
        assert_eq!(reader.finish(), Err(Flaw::LineTooLong(8)));
    }
}
