//! The lexer of zone files: turns text into entries (one logical line each,
//! parentheses joining physical lines) made of tokens that know their line
//! and column.
//!
//! ```text
//!   "www  IN A ( 192.0.2.1 ) ; comment\n"
//!     ──▶ Entry { owner_omitted: false, tokens: [www@1:1, IN@1:6, A@1:9, 192.0.2.1@1:13] }
//! ```
//!
//! Tokens keep their backslash escapes as written (`a\.b`, `\"`, `\065`):
//! what an escape means depends on whether the token is a name or a
//! character-string, which only the parser knows. Quote marks are removed
//! and the token is marked as quoted.

/// One word of a zone file, with where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The text as written, escapes kept, quote marks removed.
    pub text: String,
    /// True when any part of the token was inside double quotes.
    pub quoted: bool,
    /// 1-based line of the first character.
    pub line: usize,
    /// 1-based column (in characters) of the first character.
    pub column: usize,
}

/// One logical line: a directive or a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The tokens, never empty.
    pub tokens: Vec<Token>,
    /// True when the line starts with blank space, i.e. the owner is the
    /// previous record's owner.
    pub owner_omitted: bool,
}

/// A lexical error: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The lexer's state over one text.
pub struct Lexer<'a> {
    /// The characters still to read.
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// Line of the next character.
    line: usize,
    /// Column of the next character.
    column: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            chars: text.chars().peekable(),
            line: 1,
            column: 1,
        }
    }

    /// Reads one character, moving the position.
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// The next entry, `Ok(None)` at the end of the text.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, LexError> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut current: Option<Token> = None;
        // Where each open '(' was, to report an unbalanced one.
        let mut open: Vec<(usize, usize)> = Vec::new();
        let mut owner_omitted = false;
        let mut at_line_start = true;
        loop {
            let Some(&c) = self.chars.peek() else {
                if let Some(&(line, column)) = open.last() {
                    return Err(LexError {
                        line,
                        column,
                        message: "unbalanced '(': no ')' before the end of the file".into(),
                    });
                }
                tokens.extend(current.take());
                return Ok((!tokens.is_empty()).then_some(Entry {
                    tokens,
                    owner_omitted,
                }));
            };
            let (line, column) = (self.line, self.column);
            if at_line_start && tokens.is_empty() && current.is_none() && open.is_empty() {
                owner_omitted = c == ' ' || c == '\t';
            }
            at_line_start = false;
            match c {
                '\n' => {
                    self.bump();
                    tokens.extend(current.take());
                    if open.is_empty() {
                        if !tokens.is_empty() {
                            return Ok(Some(Entry {
                                tokens,
                                owner_omitted,
                            }));
                        }
                        at_line_start = true;
                    }
                }
                ' ' | '\t' | '\r' => {
                    self.bump();
                    tokens.extend(current.take());
                }
                ';' => {
                    tokens.extend(current.take());
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                }
                '(' => {
                    self.bump();
                    tokens.extend(current.take());
                    open.push((line, column));
                }
                ')' => {
                    self.bump();
                    tokens.extend(current.take());
                    if open.pop().is_none() {
                        return Err(LexError {
                            line,
                            column,
                            message: "unbalanced ')'".into(),
                        });
                    }
                }
                '"' => {
                    self.bump();
                    let token = current.get_or_insert_with(|| Token {
                        text: String::new(),
                        quoted: true,
                        line,
                        column,
                    });
                    token.quoted = true;
                    self.quoted_part(&mut token.text, line, column)?;
                }
                _ => {
                    self.bump();
                    let token = current.get_or_insert_with(|| Token {
                        text: String::new(),
                        quoted: false,
                        line,
                        column,
                    });
                    token.text.push(c);
                    if c == '\\' {
                        if let Some(next) = self.bump() {
                            token.text.push(next);
                        }
                    }
                }
            }
        }
    }

    /// Reads the rest of a quoted part (the opening quote is consumed) into
    /// `text`, keeping escapes; the quote opened at `line`:`column`.
    fn quoted_part(
        &mut self,
        text: &mut String,
        line: usize,
        column: usize,
    ) -> Result<(), LexError> {
        let unterminated = || LexError {
            line,
            column,
            message: "unterminated quoted string".into(),
        };
        loop {
            match self.chars.peek() {
                None | Some('\n') => return Err(unterminated()),
                Some('"') => {
                    self.bump();
                    return Ok(());
                }
                Some('\\') => {
                    self.bump();
                    text.push('\\');
                    match self.chars.peek() {
                        None | Some('\n') => return Err(unterminated()),
                        Some(_) => text.extend(self.bump()),
                    }
                }
                Some(_) => text.extend(self.bump()),
            }
        }
    }
}

/// Every entry of a text (for the tests, which want them all at once).
#[cfg(test)]
pub fn entries(text: &str) -> Result<Vec<Entry>, LexError> {
    let mut lexer = Lexer::new(text);
    let mut all = Vec::new();
    while let Some(entry) = lexer.next_entry()? {
        all.push(entry);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts of an entry's tokens.
    fn texts(entry: &Entry) -> Vec<&str> {
        entry.tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn parentheses_join_lines_and_comments_vanish() {
        let all = entries("@ IN SOA ns hm ( 1 ; serial\n 2 3\n 4 5 )\n  A 1.2.3.4\n").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            texts(&all[0]),
            ["@", "IN", "SOA", "ns", "hm", "1", "2", "3", "4", "5"]
        );
        assert!(!all[0].owner_omitted);
        assert!(all[1].owner_omitted);
        assert_eq!((all[1].tokens[1].line, all[1].tokens[1].column), (4, 5));
    }

    #[test]
    fn quotes_keep_escapes_and_spaces() {
        let all = entries("x TXT \"a \\\"b\\\" ; c\" \"\" key=\"h2 h3\"\n").unwrap();
        let t = &all[0].tokens;
        assert_eq!(t[2].text, "a \\\"b\\\" ; c");
        assert!(t[2].quoted);
        assert_eq!(t[3].text, "");
        assert!(t[3].quoted);
        assert_eq!(t[4].text, "key=h2 h3");
    }

    #[test]
    fn escaped_specials_stay_in_the_token() {
        let all = entries("a\\ b\\;c\\(d x\n").unwrap();
        assert_eq!(texts(&all[0]), ["a\\ b\\;c\\(d", "x"]);
    }

    #[test]
    fn unbalanced_and_unterminated_are_located() {
        let e = entries("a A 1 )\n").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 7, "unbalanced ')'")
        );
        let e = entries("a TXT (\n \"x\n").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 2, "unterminated quoted string")
        );
        let e = entries("a TXT ( x\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 7));
    }

    #[test]
    fn a_huge_token_does_not_panic() {
        let long = "a".repeat(70_000);
        let all = entries(&format!("{long} A 1.2.3.4\n")).unwrap();
        assert_eq!(all[0].tokens[0].text.len(), 70_000);
    }
}
