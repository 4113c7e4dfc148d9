//! The replies of refusals: a line the parser rejects, a forward path with
//! a relay trick, a message refused at the end of data.

use smtp_proto::Error as ParseError;

use crate::address::PathRefusal;
use crate::data::Flaw;
use crate::reply::Reply;

/// The reply to a line smtp-proto could not parse.
pub(super) fn parse_refusal(error: &ParseError) -> Reply {
    match error {
        ParseError::UnknownCommand => Reply::new(500, "5.5.1", "Unknown command"),
        ParseError::InvalidSenderAddress => Reply::new(501, "5.1.7", "Invalid sender address"),
        ParseError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "Invalid recipient address")
        }
        ParseError::UnsupportedParameter { .. } => {
            Reply::new(555, "5.5.4", "Unsupported parameter")
        }
        ParseError::InvalidParameter { .. } => Reply::new(501, "5.5.4", "Invalid parameter"),
        _ => Reply::new(501, "5.5.2", "Syntax error"),
    }
}

/// The reply to a refused forward path.
pub(super) fn path_refusal(refusal: &PathRefusal) -> Reply {
    match refusal {
        PathRefusal::AddressLiteral(_) => Reply::new(550, "5.7.1", "Relay access denied"),
        PathRefusal::NeedsSmtputf8(_) => {
            Reply::new(553, "5.6.7", "Non-ASCII recipient needs SMTPUTF8")
        }
        PathRefusal::Empty(_) => Reply::new(550, "5.1.1", "No postmaster on this relay"),
        PathRefusal::SourceRoute(_)
        | PathRefusal::Quoted(_)
        | PathRefusal::RoutingCharacter(..)
        | PathRefusal::AtSigns(_) => {
            Reply::new(550, "5.7.1", "Relay access denied: routing in address")
        }
        PathRefusal::Character(..) | PathRefusal::Domain(_) | PathRefusal::TooLong(_) => {
            Reply::new(553, "5.1.3", "Invalid recipient address")
        }
    }
}

/// The reply to a message refused at the end of data.
pub(super) fn flaw_refusal(flaw: Flaw) -> Reply {
    match flaw {
        Flaw::BareLineFeed | Flaw::BareCarriageReturn => Reply::new(
            554,
            "5.5.2",
            format!("Message refused: {flaw} (SMTP smuggling defence)"),
        ),
        Flaw::LineTooLong(_) => Reply::new(554, "5.6.0", format!("Message refused: {flaw}")),
        Flaw::TooBig(_) => Reply::new(552, "5.3.4", format!("Message refused: {flaw}")),
    }
}
