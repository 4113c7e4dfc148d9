//! SMTP replies: a code, an enhanced status code (RFC 3463) and text lines,
//! rendered to the wire as `code[-| ]status text CRLF` lines.

use std::fmt;

/// One SMTP reply, possibly multi-line (EHLO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2).
    pub code: u16,
    /// The enhanced status code ("2.1.0"), empty for greetings and EHLO.
    pub status: &'static str,
    /// The text of each line, without code or CRLF; never empty.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced status codes (greeting, EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Self {
        Reply {
            code,
            status: "",
            lines,
        }
    }

    /// Whether the reply is a positive completion or intermediate (2xx/3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The reply as wire bytes, every line ending in CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Reply {
    /// Writes `code-text CRLF` for all lines but the last, which gets `code text CRLF`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            if self.status.is_empty() {
                write!(f, "{}{}{}\r\n", self.code, separator, line)?;
            } else {
                write!(f, "{}{}{} {}\r\n", self.code, separator, self.status, line)?;
            }
        }
        Ok(())
    }
}
