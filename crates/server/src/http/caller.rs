//! Who made a request: the token's name and scope, put in the request's
//! extensions by `auth::require` and read by the handlers and the budget.

use super::tokens::TokenScope;

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: TokenScope,
}
