//! API tokens: `cutover token create|list|revoke` and the check behind every
//! guarded route. A token is shown once, when created; the store's SQLite
//! file keeps only its SHA-256, in a table of its own.
//!
//! ```text
//!  create NAME scope ──▶ 32 random bytes ──▶ "cutover_<hex>" printed once
//!                                         └─▶ sha256(token) stored with name, scope
//!  request "Authorization: Bearer T" ──▶ sha256(T) ──lookup──▶ (name, scope) or 401
//! ```
//!
//! Scopes nest: admin ⊇ probe ⊇ read (see [`cutover_api::Scope`]); agent
//! stands apart (a `cutover agent`'s routes, and only by it). A table made
//! before the probe or agent scope existed (its CHECK did not know them) is
//! rebuilt with the new CHECK when opened, its rows kept.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

/// The table, created when missing.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS control_token (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'probe', 'admin', 'agent')),
    hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL
)";

/// Rebuilds a table whose CHECK predates the probe or agent scope, in one transaction.
const WIDEN_SCOPES: &str = "BEGIN IMMEDIATE;
CREATE TABLE control_token_new (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'probe', 'admin', 'agent')),
    hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
INSERT INTO control_token_new (name, scope, hash, created_at)
    SELECT name, scope, hash, created_at FROM control_token;
DROP TABLE control_token;
ALTER TABLE control_token_new RENAME TO control_token;
COMMIT;";

/// What a token may do; the scopes nest (admin ⊇ probe ⊇ read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// Read-only routes.
    Read,
    /// Read-only routes and the probes (check, verify, plan) to the targets
    /// the zones and migrations name.
    Probe,
    /// Every route but the agents'.
    Admin,
    /// A `cutover agent`: fetch jobs, post their results, nothing else.
    Agent,
}

impl TokenScope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        self.api().as_str()
    }

    /// The scope named `text` (`read`, `probe`, `admin` or `agent`).
    pub fn parse(text: &str) -> Option<TokenScope> {
        match text {
            "read" => Some(TokenScope::Read),
            "probe" => Some(TokenScope::Probe),
            "admin" => Some(TokenScope::Admin),
            "agent" => Some(TokenScope::Agent),
            _ => None,
        }
    }

    /// The route table's scope of the same name.
    pub fn api(self) -> cutover_api::Scope {
        match self {
            TokenScope::Read => cutover_api::Scope::Read,
            TokenScope::Probe => cutover_api::Scope::Probe,
            TokenScope::Admin => cutover_api::Scope::Admin,
            TokenScope::Agent => cutover_api::Scope::Agent,
        }
    }

    /// True when this scope allows a route that needs `needed`.
    pub fn allows(self, needed: cutover_api::Scope) -> bool {
        self.api().grants(needed)
    }
}

/// One token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// The token table of one store file.
pub struct TokenBook {
    /// Our own connection to the store's file.
    conn: Mutex<Connection>,
}

/// What went wrong with a token operation.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// SQLite failed.
    #[error("token table: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A token with this name exists.
    #[error("a token named {0:?} exists (revoke it first)")]
    Exists(String),
    /// No token with this name.
    #[error("no token named {0:?}")]
    Unknown(String),
    /// The name is empty or has odd characters.
    #[error("invalid token name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// The random source failed.
    #[error("no random bytes for the token: {0}")]
    Random(String),
}

/// The SHA-256 of a token.
fn digest(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

impl TokenBook {
    /// Opens the token table in the store file at `path` (creating it).
    pub fn open(path: &Path) -> Result<TokenBook, TokenError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let table: String = conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'control_token'",
            [],
            |row| row.get(0),
        )?;
        if !table.contains("'agent'") {
            conn.execute_batch(WIDEN_SCOPES)?;
        }
        Ok(TokenBook {
            conn: Mutex::new(conn),
        })
    }

    /// The connection.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a token; returns its secret, which is not kept.
    pub fn create(&self, name: &str, scope: TokenScope) -> Result<String, TokenError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(TokenError::BadName(name.to_owned()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("cutover_{secret}");
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let inserted = self.conn().execute(
            "INSERT INTO control_token (name, scope, hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, scope.as_str(), digest(&token), now],
        )?;
        if inserted == 0 {
            return Err(TokenError::Exists(name.to_owned()));
        }
        Ok(token)
    }

    /// Every token, by name.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT name, scope, created_at FROM control_token ORDER BY name")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, scope, created_at) = row?;
            out.push(TokenInfo {
                name,
                scope: TokenScope::parse(&scope).unwrap_or(TokenScope::Read),
                created_at,
            });
        }
        Ok(out)
    }

    /// Removes a token; it stops working at once.
    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let removed = self
            .conn()
            .execute("DELETE FROM control_token WHERE name = ?1", params![name])?;
        match removed {
            0 => Err(TokenError::Unknown(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// The name and scope of `token`, or `None` when it is not a live token.
    pub fn lookup(&self, token: &str) -> Result<Option<(String, TokenScope)>, TokenError> {
        let found = self
            .conn()
            .query_row(
                "SELECT name, scope FROM control_token WHERE hash = ?1",
                params![digest(token)],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(found.and_then(|(name, scope)| TokenScope::parse(&scope).map(|scope| (name, scope))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_until_revoked_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let book = TokenBook::open(&path).expect("open");
        let token = book.create("ci", TokenScope::Read).expect("create");
        assert_eq!(
            book.lookup(&token).expect("lookup"),
            Some(("ci".to_owned(), TokenScope::Read)),
            "expected the new token to be found"
        );
        assert_eq!(
            book.lookup("cutover_wrong").expect("lookup"),
            None,
            "expected a wrong token to fail"
        );
        let file = std::fs::read(&path).expect("read the file");
        let secret = token.trim_start_matches("cutover_").as_bytes();
        assert!(
            !file.windows(secret.len()).any(|w| w == secret),
            "expected the secret nowhere in the store file"
        );
        assert!(
            matches!(
                book.create("ci", TokenScope::Admin),
                Err(TokenError::Exists(_))
            ),
            "expected a duplicate refused"
        );
        book.revoke("ci").expect("revoke");
        assert_eq!(
            book.lookup(&token).expect("lookup"),
            None,
            "expected a revoked token to fail"
        );
        assert!(
            matches!(book.revoke("ci"), Err(TokenError::Unknown(_))),
            "expected a second revoke refused"
        );
        assert!(
            matches!(
                book.create("a b", TokenScope::Read),
                Err(TokenError::BadName(_))
            ),
            "expected a bad name refused"
        );
    }

    #[test]
    fn a_table_from_before_the_probe_scope_takes_probe_tokens_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE control_token (
                name TEXT PRIMARY KEY,
                scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
                hash BLOB NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )",
        )
        .expect("the old table");
        old.execute(
            "INSERT INTO control_token VALUES ('ops', 'admin', ?1, '2026-01-01T00:00:00Z')",
            params![digest("cutover_old")],
        )
        .expect("an old row");
        drop(old);
        let book = TokenBook::open(&path).expect("open");
        assert_eq!(
            book.lookup("cutover_old").expect("lookup"),
            Some(("ops".to_owned(), TokenScope::Admin)),
            "expected the old token kept"
        );
        let probe = book
            .create("prober", TokenScope::Probe)
            .expect("a probe token");
        assert_eq!(
            book.lookup(&probe).expect("lookup"),
            Some(("prober".to_owned(), TokenScope::Probe)),
            "expected the probe token found"
        );
        drop(book);
        TokenBook::open(&path).expect("opened again, nothing to rebuild");
        assert!(
            TokenScope::Probe.allows(cutover_api::Scope::Read),
            "expected probe ⊇ read"
        );
        assert!(
            !TokenScope::Probe.allows(cutover_api::Scope::Admin),
            "expected probe ⊉ admin"
        );
        assert!(
            !TokenScope::Read.allows(cutover_api::Scope::Probe),
            "expected read ⊉ probe"
        );
    }
}
