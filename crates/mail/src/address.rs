//! Forward paths (RCPT TO) read strictly, so that no open-relay trick gets
//! through: source routes, percent hacks, bang paths, quoted local parts
//! with anything special inside, a second `@` and address literals are
//! refused before any domain check. A quoted local part that holds nothing
//! special (`"alice"@example.com`) is the same mailbox as the unquoted one
//! (RFC 5321 §4.1.2: the quoting is not part of the mailbox) and is read as
//! such. A bare `postmaster` is for the session to map ([`is_postmaster`]).
//!
//! smtp-proto strips source routes and unquotes local parts, which hides
//! exactly the tricks we must see; this module reads the raw path instead.

use thiserror::Error;

/// A mailbox `local@domain` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part, as sent (case kept for delivery).
    pub local: String,
    /// The domain, lower case, without a trailing dot.
    pub domain: String,
}

/// Why a forward path is refused; each is a permanent (5xx) refusal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathRefusal {
    /// `<>` or `<postmaster>` without a domain.
    #[error("empty forward path {0:?}")]
    Empty(String),
    /// `<@relay:user@domain>` (RFC 5321 §3.3 source route).
    #[error("source route in {0:?}")]
    SourceRoute(String),
    /// `<"user@elsewhere"@domain>`: a quoted local part with anything a
    /// dot-atom could not hold (the quotes alone are not refused).
    #[error("quoted local part in {0:?}")]
    Quoted(String),
    /// `%` (percent hack) or `!` (bang path) in the local part.
    #[error("routing character {1:?} in {0:?}")]
    RoutingCharacter(String, char),
    /// More or fewer than one `@` outside quotes.
    #[error("not exactly one @ in {0:?}")]
    AtSigns(String),
    /// `user@[127.0.0.1]`.
    #[error("address literal in {0:?}")]
    AddressLiteral(String),
    /// A character that has no place in a mailbox (control, space, …).
    #[error("invalid character {1:?} in {0:?}")]
    Character(String, char),
    /// A domain with an empty label or a trailing dot.
    #[error("malformed domain in {0:?}")]
    Domain(String),
    /// Non-ASCII without SMTPUTF8 on MAIL FROM (RFC 6531).
    #[error("non-ASCII address {0:?} without SMTPUTF8")]
    NeedsSmtputf8(String),
    /// Longer than RFC 5321's 256 octets.
    #[error("path longer than 256 octets: {0:?}")]
    TooLong(String),
}

/// Characters of a dot-atom local part (RFC 5322 atext), minus `%` and `!`.
fn is_local_character(character: char) -> bool {
    character.is_ascii_alphanumeric()
        || "#$&'*+-/=?^_`{|}~.".contains(character)
        || (!character.is_ascii() && !character.is_control())
}

/// The text between the first `<` of `arguments` and the first `>` after it.
pub fn raw_path(arguments: &str) -> Option<&str> {
    let start = arguments.find('<')? + 1;
    let length = arguments[start..].find('>')?;
    Some(&arguments[start..start + length])
}

/// Whether a forward path is the bare `postmaster` of RFC 5321 §4.5.1
/// (any case, no domain).
pub fn is_postmaster(raw: &str) -> bool {
    raw.eq_ignore_ascii_case("postmaster")
}

/// The local part and the rest of a path whose local part is one quoted
/// string with nothing special inside (`"alice"@domain`): the quotes
/// dropped. None when it is not that (no quotes, an escape, a quote inside).
fn unquote(raw: &str) -> Option<(&str, &str)> {
    let inner = raw.strip_prefix('"')?;
    let end = inner.find('"')?;
    let (local, rest) = (&inner[..end], &inner[end + 1..]);
    let plain = !local.contains('\\') && !rest.contains('"') && rest.starts_with('@');
    plain.then(|| (local, &rest[1..]))
}

/// Reads a forward path strictly (see the module documentation).
pub fn parse_forward_path(raw: &str, smtputf8: bool) -> Result<Mailbox, PathRefusal> {
    let refuse = |make: fn(String) -> PathRefusal| Err(make(raw.to_string()));
    if raw.len() > 256 {
        return refuse(PathRefusal::TooLong);
    }
    if raw.is_empty() || is_postmaster(raw) {
        return refuse(PathRefusal::Empty);
    }
    if raw.starts_with('@') {
        return refuse(PathRefusal::SourceRoute);
    }
    let quoted = unquote(raw);
    if raw.contains('"') && quoted.is_none() {
        return refuse(PathRefusal::Quoted);
    }
    if !smtputf8 && !raw.is_ascii() {
        return refuse(PathRefusal::NeedsSmtputf8);
    }
    let Some((local, domain)) = quoted.or_else(|| raw.split_once('@')) else {
        return refuse(PathRefusal::AtSigns);
    };
    if domain.contains('@') || local.is_empty() {
        return refuse(PathRefusal::AtSigns);
    }
    for character in local.chars() {
        if quoted.is_some() && !is_local_character(character) {
            // Inside quotes only what a dot-atom could hold is read as it.
            return refuse(PathRefusal::Quoted);
        }
        if character == '%' || character == '!' {
            return Err(PathRefusal::RoutingCharacter(raw.to_string(), character));
        }
        if !is_local_character(character) {
            return Err(PathRefusal::Character(raw.to_string(), character));
        }
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        if quoted.is_some() {
            return refuse(PathRefusal::Quoted);
        }
        return Err(PathRefusal::Character(raw.to_string(), '.'));
    }
    if domain.starts_with('[') {
        return refuse(PathRefusal::AddressLiteral);
    }
    if domain.is_empty() || domain.split('.').any(str::is_empty) {
        return refuse(PathRefusal::Domain);
    }
    for character in domain.chars() {
        let fits = character.is_ascii_alphanumeric()
            || character == '-'
            || character == '.'
            || (!character.is_ascii() && character.is_alphanumeric());
        if !fits {
            return Err(PathRefusal::Character(raw.to_string(), character));
        }
    }
    Ok(Mailbox {
        local: local.to_string(),
        domain: domain.to_lowercase(),
    })
}

/// Whether `text` (an address or parameter after decoding) holds a CR, LF,
/// NUL or other control character, which could inject headers or spool lines.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check that a refusal is the expected kind.
    type Expectation = fn(&PathRefusal) -> bool;

    /// Every open-relay trick (%-hack, bang paths, source routes, quoted @) is refused before the domain check.
    #[test]
    fn open_relay_tricks_are_refused() {
        let cases: [(&str, Expectation); 8] = [
            ("u%ext.test@ourdom.test", |r| {
                matches!(r, PathRefusal::RoutingCharacter(_, '%'))
            }),
            ("@ourdom.test:u@ext.test", |r| {
                matches!(r, PathRefusal::SourceRoute(_))
            }),
            ("ext.test!u@ourdom.test", |r| {
                matches!(r, PathRefusal::RoutingCharacter(_, '!'))
            }),
            ("\"u@ext.test\"@ourdom.test", |r| {
                matches!(r, PathRefusal::Quoted(_))
            }),
            ("u@ext.test@ourdom.test", |r| {
                matches!(r, PathRefusal::AtSigns(_))
            }),
            ("u@[127.0.0.1]", |r| {
                matches!(r, PathRefusal::AddressLiteral(_))
            }),
            ("postmaster", |r| matches!(r, PathRefusal::Empty(_))),
            ("u@ourdom.test.", |r| matches!(r, PathRefusal::Domain(_))),
        ];
        for (raw, expected) in cases {
            match parse_forward_path(raw, false) {
                Err(refusal) if expected(&refusal) => {}
                other => panic!("{raw:?}: expected the matching refusal, saw {other:?}"),
            }
        }
    }

    /// A plain mailbox passes, with its domain lower-cased and local part kept.
    #[test]
    fn plain_mailbox_passes() {
        assert_eq!(
            parse_forward_path("Alice.B+tag@OurDom.Test", false),
            Ok(Mailbox {
                local: "Alice.B+tag".into(),
                domain: "ourdom.test".into()
            })
        );
    }

    /// A quoted local part with nothing special inside is the unquoted
    /// mailbox; anything special inside the quotes is refused as quoted.
    #[test]
    fn plain_quoted_local_part_is_the_same_mailbox() {
        for raw in ["\"alice\"@OurDom.Test", "\"a.b+c\"@ourdom.test"] {
            let mailbox = parse_forward_path(raw, false).unwrap();
            assert_eq!(
                parse_forward_path(&raw.replace('"', ""), false),
                Ok(mailbox),
                "{raw}"
            );
        }
        for raw in [
            "\"u@ext.test\"@ourdom.test",
            "\"u%ext.test\"@ourdom.test",
            "\"ext.test!u\"@ourdom.test",
            "\"a b\"@ourdom.test",
            "\"a\\\"b\"@ourdom.test",
            "\"a\\b\"@ourdom.test",
            "\".a\"@ourdom.test",
            "\"a..b\"@ourdom.test",
            "\"\"@ourdom.test",
            "\"a\"b@ourdom.test",
            "a\"b\"@ourdom.test",
            "\"a\"@\"b\"@ourdom.test",
            "\"alice\"@ext.test@ourdom.test",
            "\"alice\"",
        ] {
            match parse_forward_path(raw, false) {
                Err(PathRefusal::Quoted(_) | PathRefusal::AtSigns(_)) => {}
                other => panic!("{raw}: expected a refusal as quoted, saw {other:?}"),
            }
        }
    }

    /// Non-ASCII needs SMTPUTF8; with it, a UTF-8 local part passes.
    #[test]
    fn utf8_needs_smtputf8() {
        assert!(matches!(
            parse_forward_path("josé@ourdom.test", false),
            Err(PathRefusal::NeedsSmtputf8(_))
        ));
        assert!(parse_forward_path("josé@ourdom.test", true).is_ok());
    }

    /// The raw path is cut at the first `>`, parameters left out.
    #[test]
    fn raw_path_cuts_at_first_angle() {
        assert_eq!(raw_path("TO:<a@b.test> NOTIFY=NEVER"), Some("a@b.test"));
        assert_eq!(raw_path("TO:a@b.test"), None);
    }
}
