//! The DATA phase reader: finds the end-of-data line, removes dot-stuffing,
//! counts the `Received:` fields of the header section, and marks the
//! message as refused on anything that could smuggle SMTP. The content is
//! handed on as it arrives ([`DataReader::take`]), so a message is never
//! whole in memory: the session streams it to the spool.
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
    /// The content read and not yet taken, unstuffed, with CRLF line ends.
    content: Vec<u8>,
    /// Octets of content kept so far (taken or not).
    size: usize,
    /// Whether the current line is in the header section.
    in_header: bool,
    /// The first octets of the current line (to spot `Received:`).
    line_head: [u8; 9],
    /// `Received:` fields in the header section so far.
    hops: usize,
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
            size: 0,
            in_header: true,
            line_head: [0; 9],
            hops: 0,
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
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if self.pending_cr {
                self.pending_cr = false;
                if byte == b'\n' {
                    index += 1;
                    if self.dot_line && self.line_length == 1 {
                        return (index, true);
                    }
                    self.emit(b"\r\n");
                    self.end_line();
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
                    index += 1;
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.pending_cr = true;
                    index += 1;
                }
                b'\n' => {
                    self.note(Flaw::BareLineFeed);
                    self.emit(b"\n");
                    self.end_line();
                    self.dot_line = false;
                    self.line_length = 0;
                    index += 1;
                }
                _ => {
                    // The run of ordinary octets up to the next CR or LF,
                    // taken at once.
                    let end = bytes[index..]
                        .iter()
                        .position(|&byte| byte == b'\r' || byte == b'\n')
                        .map_or(bytes.len(), |offset| index + offset);
                    let run = &bytes[index..end];
                    self.emit(run);
                    // Where the run starts in the unstuffed line.
                    let position = self.line_length - usize::from(self.dot_line);
                    for (slot, &byte) in self.line_head.iter_mut().skip(position).zip(run) {
                        *slot = byte;
                    }
                    self.line_length += run.len();
                    index = end;
                }
            }
            if self.line_length + 2 > self.max_line {
                self.note(Flaw::LineTooLong(self.max_line));
            }
        }
        (bytes.len(), false)
    }

    /// The content read since the last call (empty once a flaw is seen:
    /// a flawed message is refused whole, its bytes are not worth keeping).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.content)
    }

    /// Whether a flaw already refuses the message.
    pub fn is_flawed(&self) -> bool {
        self.flaw.is_some()
    }

    /// The number of `Received:` fields in the header section so far.
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Octets of content kept so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Once the end was found: Ok, or the flaw that refuses the message.
    pub fn finish(self) -> Result<(), Flaw> {
        match self.flaw {
            Some(flaw) => Err(flaw),
            None => Ok(()),
        }
    }

    /// Keeps `bytes` unless that would pass the size limit or a flaw
    /// already refuses the message.
    fn emit(&mut self, bytes: &[u8]) {
        if self.size + bytes.len() > self.max_size {
            self.note(Flaw::TooBig(self.max_size));
        }
        if self.flaw.is_some() {
            self.content = Vec::new();
            return;
        }
        self.size += bytes.len();
        self.content.extend_from_slice(bytes);
    }

    /// A line ended: the header section ends at the first empty line, and
    /// each of its lines starting `Received:` is a hop.
    fn end_line(&mut self) {
        if self.in_header {
            let length = self.line_length - usize::from(self.dot_line);
            if length == 0 {
                self.in_header = false;
            } else if length >= 9 && self.line_head.eq_ignore_ascii_case(b"received:") {
                self.hops += 1;
            }
        }
        self.line_head = [0; 9];
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
        let content = reader.take();
        (used, ended, reader.finish().map(|()| content))
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
        let input = b"a\r\n..b\r\n.\r\n";
        let mut content = Vec::new();
        for (index, byte) in input.iter().enumerate() {
            let (used, ended) = reader.ingest(std::slice::from_ref(byte));
            content.extend(reader.take());
            assert_eq!(used, 1);
            assert_eq!(ended, index == input.len() - 1, "at byte {index}");
        }
        assert_eq!(reader.finish(), Ok(()));
        assert_eq!(content, b"a\r\n.b\r\n", "taken piece by piece, unstuffed");
        assert_eq!(reader_size(b"a\r\n..b\r\n.\r\n"), content.len());
    }

    /// The size of the content of `input`.
    fn reader_size(input: &[u8]) -> usize {
        let mut reader = DataReader::new(1 << 20, 1000);
        reader.ingest(input);
        reader.size()
    }

    /// `Received:` fields are counted in the header section only, across
    /// splits, with dot-stuffing removed first; a flawed message keeps nothing.
    #[test]
    fn hops_are_counted_in_the_header_section() {
        let input = b"Received: a\r\nRECEIVED: b\r\n\tfolded\r\n.Received: c\r\n\
                      X-Received: no\r\nReceived:\r\n\r\nReceived: body\r\n.\r\n";
        for split in [1, 2, 5, 9, 10, input.len()] {
            let mut reader = DataReader::new(1 << 20, 1000);
            for piece in input.chunks(split) {
                reader.ingest(piece);
            }
            assert_eq!(reader.hops(), 4, "split {split}");
        }
        let mut reader = DataReader::new(1 << 20, 1000);
        reader.ingest(b"a\nb\r\n");
        assert!(reader.is_flawed());
        assert!(reader.take().is_empty(), "a flawed message keeps no bytes");
    }

    /// Size and line limits are flaws, and the reader still finds the end.
    #[test]
    fn limits_are_flaws() {
        let mut reader = DataReader::new(10, 1000);
        let (_, ended) = reader.ingest(b"0123456789abc\r\n.\r\n");
        assert!(ended);
        assert!(reader.size() <= 10, "kept {} octets", reader.size());
        assert_eq!(reader.finish(), Err(Flaw::TooBig(10)));
        let mut reader = DataReader::new(1000, 8);
        let (_, ended) = reader.ingest(b"0123456789\r\n.\r\n");
        assert!(ended);
        assert_eq!(reader.finish(), Err(Flaw::LineTooLong(8)));
    }
}
