//! The request and response bodies of the control API (JSON by serde),
//! shared by the server and the CLI's remote client.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

/// Every error answer: `{ "error": { "code": "...", "message": "..." } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine word: see [`ErrorCode`].
    #[schema(schema_with = error_codes)]
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// The error codes the API answers with, and their HTTP statuses. Every
/// error the control plane gives is an [`ErrorBody`] with one of these,
/// whatever refused the request (a handler, the router, the body reader,
/// the work bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorCode {
    /// No `Authorization: Bearer` header (401).
    Unauthenticated,
    /// The token is unknown or revoked (401).
    BadToken,
    /// The token's scope does not allow the route, or a probe's target is
    /// not one the token may reach (403).
    Forbidden,
    /// The body or a parameter does not parse or does not make sense (400).
    BadRequest,
    /// The zone, version, message or route does not exist (404).
    NotFound,
    /// The route exists, not with this method (405).
    MethodNotAllowed,
    /// The body did not arrive within `[http] body_timeout` (408).
    RequestTimeout,
    /// The body is larger than the API takes (413).
    TooLarge,
    /// A body that is not `Content-Type: application/json` (415).
    UnsupportedMediaType,
    /// The change conflicts with the data (422): the zone check failed, the
    /// record to delete is not there.
    Rejected,
    /// Over the work bounds (`[http] max_probes`, `max_probes_per_token`,
    /// the event streams' cap): try again after `Retry-After` seconds (429).
    TooManyRequests,
    /// Something failed on the server (500).
    Internal,
    /// A part the route needs is not configured (503).
    Unavailable,
    /// The work took longer than the API allows and was stopped (504).
    TimedOut,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Rejected => "rejected",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TimedOut => "timed_out",
        }
    }

    /// The HTTP status that goes with it.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::BadToken => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Rejected => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::TimedOut => 504,
        }
    }

    /// The code for an error status that some layer below the handlers
    /// answered (axum's extractors, the router): the one whose status it
    /// is, `bad_request` for another 4xx, `internal` for another 5xx.
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            408 => ErrorCode::RequestTimeout,
            413 => ErrorCode::TooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            422 => ErrorCode::Rejected,
            429 => ErrorCode::TooManyRequests,
            503 => ErrorCode::Unavailable,
            504 => ErrorCode::TimedOut,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }

    /// Every code, for the OpenAPI document.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Unauthenticated,
        ErrorCode::BadToken,
        ErrorCode::Forbidden,
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Rejected,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::TimedOut,
    ];
}

impl ErrorBody {
    /// An error answer with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_owned(),
                message: message.into(),
            },
        }
    }
}

/// `GET /api/v1/whoami`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    /// `read`, `probe` or `admin`.
    #[schema(schema_with = token_scopes)]
    pub scope: String,
}

/// One zone in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneSummary {
    /// The apex, absolute.
    pub origin: String,
    /// The current serial.
    pub serial: u32,
    /// Number of records.
    pub records: u64,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// `GET /api/v1/zones`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneList {
    /// Every zone, by name.
    pub zones: Vec<ZoneSummary>,
}

/// One record in zone-file words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    /// The owner, absolute.
    pub name: String,
    /// The TTL.
    pub ttl: u32,
    /// The type mnemonic.
    #[serde(rename = "type")]
    pub rtype: String,
    /// The data in zone-file form.
    pub data: String,
}

/// `GET /api/v1/zones/{zone}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneView {
    /// The apex.
    pub origin: String,
    /// The current serial.
    pub serial: u32,
    /// Every record, in canonical order.
    pub records: Vec<RecordView>,
}

/// `GET /api/v1/zones/{zone}/export[?serial=S]`: the zone file, as
/// `cutover zone export` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneExport {
    /// The apex.
    pub origin: String,
    /// The serial of the version written.
    pub serial: u32,
    /// The zone in canonical zone-file form.
    pub text: String,
}

/// One version in a zone's journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    /// Its serial.
    pub serial: u32,
    /// The serial it was made from.
    pub from: Option<u32>,
    /// When it was committed (RFC 3339).
    pub at: String,
    /// What the writer said.
    pub comment: String,
    /// Records added.
    pub added: u64,
    /// Records removed.
    pub removed: u64,
}

/// `GET /api/v1/zones/{zone}/versions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    /// The zone.
    pub origin: String,
    /// Oldest first.
    pub versions: Vec<VersionView>,
}

/// `GET /api/v1/zones/{zone}/diff` and the heart of a [`ChangeResult`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffView {
    /// The zone.
    pub origin: String,
    /// The older serial.
    pub from: u32,
    /// The newer serial.
    pub to: u32,
    /// Records only in the older version.
    pub removed: Vec<RecordView>,
    /// Records only in the newer version.
    pub added: Vec<RecordView>,
}

/// What a [`RecordChange`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Add one record to its RRset.
    Add,
    /// Replace the RRset with this one record.
    Set,
    /// Delete the RRset, or only the record with `data`.
    Delete,
}

/// `POST /api/v1/zones/{zone}/records`: what `cutover record add|set|delete` takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordChange {
    /// Add, set or delete.
    pub action: ChangeAction,
    /// The owner: relative to the zone, absolute, or "@".
    pub name: String,
    /// The type mnemonic (or TYPEnnn).
    #[serde(rename = "type")]
    pub rtype: String,
    /// The data in zone-file form (required for add and set).
    #[serde(default)]
    pub data: Option<String>,
    /// The TTL (default: the RRset's, else 3600).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Compute the diff and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Swap a CNAME for this data, or data for this CNAME, in one change.
    #[serde(default)]
    pub replace: bool,
}

/// The answer to a [`RecordChange`] (a change that cannot be made is an
/// error, 422, never an answer with `applied: false`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeResult {
    /// The diff (empty when the zone already held exactly this).
    pub diff: DiffView,
    /// True when the change was written; false for a dry run or when the
    /// zone already held exactly this (`note` says which).
    pub applied: bool,
    /// Why nothing was written, when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an [`RrsetPatch`] entry does to its RRset (PowerDNS's `changetype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Changetype {
    /// The RRset becomes exactly `records` (none: it is deleted).
    Replace,
    /// The RRset is deleted (`type` ANY: every RRset of the name).
    Delete,
    /// `records` join the RRset.
    Extend,
    /// `records` leave the RRset.
    Prune,
}

/// One record of an [`RrsetPatch`] entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RrsetRecord {
    /// The data in zone-file form.
    pub content: String,
    /// PowerDNS's flag; cutover serves every record it stores, so only
    /// `false` is taken.
    #[serde(default)]
    pub disabled: bool,
}

/// One RRset change of `PATCH /api/v1/zones/{zone}/rrsets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RrsetPatchEntry {
    /// The owner: absolute ("www.example.com."), relative to the zone, or "@".
    pub name: String,
    /// The type mnemonic (or TYPEnnn).
    #[serde(rename = "type")]
    pub rtype: String,
    /// The RRset's TTL (default: its current TTL, else 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// What to do.
    pub changetype: Changetype,
    /// The records (for REPLACE, EXTEND and PRUNE).
    #[serde(default)]
    pub records: Vec<RrsetRecord>,
}

/// `PATCH /api/v1/zones/{zone}/rrsets`: many RRset changes applied in one
/// version (PowerDNS's body; `dry_run` is cutover's, as is `?dry_run=true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RrsetPatch {
    /// The changes, applied in order, all or none.
    pub rrsets: Vec<RrsetPatchEntry>,
    /// Compute the diff and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/checks/check`: the arguments of `cutover check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The zone.
    pub zone: String,
    /// Names (relative unless ending in ".").
    #[serde(default)]
    pub names: Vec<String>,
    /// Record types to ask for.
    #[serde(default)]
    pub types: Vec<String>,
    /// Resolvers: NAME=IP[:PORT] or IP[:PORT].
    #[serde(default)]
    pub resolvers: Vec<String>,
    /// Authoritative addresses IP[:PORT].
    #[serde(default)]
    pub servers: Vec<String>,
    /// Port of the authoritative servers (default 53).
    #[serde(default)]
    pub port: Option<u16>,
    /// Timeout per query, e.g. "2s".
    #[serde(default)]
    pub timeout: Option<String>,
    /// Expected values: [NAME, TYPE, VALUE] each.
    #[serde(default)]
    pub expect: Vec<[String; 3]>,
}

/// `POST /api/v1/checks/verify`: the arguments of `cutover verify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The kind: http, smtp, tcp, mail, ….
    pub kind: String,
    /// Its arguments as on the command line (after `cutover verify KIND`).
    #[serde(default)]
    pub args: Vec<String>,
}

/// The answer of a check or verify: the command's JSON observations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    /// True when the command's verdict is good (exit status 0).
    pub ok: bool,
    /// The command's `--json` document.
    pub report: serde_json::Value,
}

/// One recipient of a queued message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailRecipient {
    /// `local@domain`.
    pub address: String,
    /// `scheduled`, `deferred`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt, seconds since the epoch.
    pub next_attempt: u64,
    /// The last error from the destination.
    pub last_error: Option<String>,
    /// Where its mail goes now.
    pub destination: Option<String>,
}

/// One queued message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailMessage {
    /// The queue id.
    pub id: String,
    /// The envelope sender.
    pub sender: String,
    /// Accepted at, seconds since the epoch.
    pub received: u64,
    /// Seconds in the queue.
    pub age_seconds: u64,
    /// Size in octets.
    pub size: u64,
    /// Held by itself or by its domain.
    pub held: bool,
    /// The recipients.
    pub recipients: Vec<MailRecipient>,
    /// The header section (`show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<String>,
}

/// `GET /api/v1/mail/queue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailQueue {
    /// In arrival order.
    pub messages: Vec<MailMessage>,
}

/// `POST /api/v1/mail/hold|release|flush`: what it applies to. Exactly one
/// of `all`, `domain`, `message`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailAction {
    /// Every message.
    #[serde(default)]
    pub all: bool,
    /// Every message to this domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// One message by queue id.
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /api/v1/mail/retarget`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailRetarget {
    /// The domain.
    pub domain: String,
    /// `host`, `host:port` or `[v6]:port`.
    pub destination: String,
    /// Release the domain's held mail too (default: it stays held until
    /// `POST /api/v1/mail/release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<bool>,
    /// The older form of `release` (`keep_held: false` releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_held: Option<bool>,
}

/// The answer of a mail action: what it did, message by message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailActionResult {
    /// The messages it held (hold), released (release), or made due now
    /// (flush, retarget).
    pub changed: Vec<String>,
    /// Retarget with `release`: the messages it released.
    #[serde(default)]
    pub released: Vec<String>,
    /// Retarget: the domain's messages still held, until released.
    #[serde(default)]
    pub held: Vec<String>,
}

/// `POST /api/v1/migrations` and `POST /api/v1/migrations/plan`: a
/// migration file (TOML) as `cutover migrate plan|start FILE` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationFileBody {
    /// The file's name, for the record (letters, digits, '-', '_', '.').
    pub file_name: String,
    /// The file's text.
    pub text: String,
    /// Go on despite what the servers say now or another migration of the
    /// same records (as `--force`); a file that cannot work is refused all
    /// the same.
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/migrations/{id}/pause|resume|abort|rollback|approve`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationAction {
    /// Why, for the audit (default: "through the API by TOKEN").
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/v1/migrations`: the engine's summaries, newest first (each
/// as `cutover migrate list --json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationList {
    /// The summaries (`MigrationSummary`, a document of the migration engine).
    #[schema(schema_with = migration_summaries)]
    pub migrations: Vec<serde_json::Value>,
}

/// Where one moving record stands at one server or resolver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MatrixCell {
    /// "NAME TYPE".
    pub question: String,
    /// `new` (the values after the switch), `old` (before), `other`
    /// (neither), `error` (no answer) or `none` (not asked).
    #[schema(schema_with = cell_states)]
    pub state: String,
    /// The values seen.
    pub records: Vec<String>,
    /// The TTL given (authoritative) or left in the cache (resolver).
    pub ttl: Option<u32>,
}

/// The location of a matrix row written before rows had one: `local`.
fn local_location() -> String {
    "local".to_owned()
}

/// One authoritative address or resolver of the matrix, as seen from one
/// location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MatrixRow {
    /// Where it was asked from: `local` (serve itself) or an agent's
    /// location (`[verify] locations`); absent in older answers: `local`.
    #[serde(default = "local_location")]
    #[schema(default = "local")]
    pub location: String,
    /// `authoritative` or `resolver`.
    pub kind: String,
    /// Its label (address, or resolver name and address).
    pub label: String,
    /// One cell per question, in the order of the matrix's `questions`.
    pub cells: Vec<MatrixCell>,
}

/// `GET /api/v1/migrations/{id}/propagation`: every authoritative address
/// and resolver against every moving record, as last asked (a probe or
/// admin token asks again when that is over a second ago; a read token
/// never makes the server ask).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Propagation {
    /// The migration.
    pub migration: i64,
    /// The zone ("a.example. and 49 more zones" when it moves several).
    pub zone: String,
    /// When the answers were asked (RFC 3339; `None`: never).
    pub checked_at: Option<String>,
    /// Seconds since the answers were asked (`None`: never).
    pub age_seconds: Option<u64>,
    /// Where the answers come from: `check` (a check this route ran),
    /// `scheduler` (the migration's own last survey) or `none` (nothing
    /// asked yet: the rows are empty).
    #[schema(schema_with = matrix_sources)]
    pub source: String,
    /// True when this request asked the servers itself.
    pub refreshed: bool,
    /// The moving records, "NAME TYPE".
    pub questions: Vec<String>,
    /// Location by location (in the order of `locations`), authoritative
    /// rows first, then resolvers.
    pub rows: Vec<MatrixRow>,
    /// Every location the migration is verified from (`[verify]
    /// locations`), in order, with what kept each from answering; a
    /// location without rows gave no answer (its `problems` say why).
    /// Absent in older answers.
    #[serde(default)]
    pub locations: Vec<MatrixLocation>,
    /// Seconds until every cache has let go of what it holds now.
    pub all_released_in_seconds: Option<u64>,
}

/// One location of the matrix and what went wrong asking from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MatrixLocation {
    /// `local` or an agent's location.
    pub location: String,
    /// Why it could not be asked, or not fully ("no agent online", …);
    /// empty when it answered.
    pub problems: Vec<String>,
}

/// `GET /api/v1/agents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// Every agent that polled since serve started, by location then name.
    pub agents: Vec<AgentView>,
    /// An agent silent longer than this is offline (`[agents] offline_after`, s).
    pub offline_after_seconds: u64,
}

/// One agent as the control plane knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// Its name (`--name`).
    pub name: String,
    /// Where it looks from (`--location`).
    pub location: String,
    /// The name of the token it polls with.
    pub token: String,
    /// Polled within `offline_after_seconds`: offline agents are never
    /// counted as agreeing.
    pub online: bool,
    /// When it last polled or posted (RFC 3339).
    pub last_seen: String,
    /// Seconds since then.
    pub seen_seconds_ago: u64,
    /// Jobs whose result it posted.
    pub jobs_done: u64,
    /// Jobs leased to it now, their results not posted yet.
    pub jobs_leased: u64,
}

/// The answer to a posted result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentAccepted {
    /// True when the result was taken for the job.
    pub accepted: bool,
    /// Why it was not (the lease passed, the job is gone).
    pub reason: Option<String>,
}

/// The bodies the route table names that another crate owns and the
/// server supplies to [`crate::openapi::document`] (the migration engine's
/// documents, as the server gives them).
pub const SERVED_ELSEWHERE: &[&str] = &[
    "MigrationCreated",
    "MigrationPlan",
    "MigrationDetail",
    "MigrationSummary",
    "MigrationAudit",
    "MigrationObservations",
    "AgentHello",
    "AgentPolled",
    "AgentReport",
    "CheckFromRequest",
    "CheckFromResult",
];

/// Adds the schema of `T` and of every type it contains.
fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// The schemas of every body of this crate the route table names, and of
/// the types inside them, each derived from its type (`ToSchema`).
pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut out = Vec::new();
    add::<ErrorBody>(&mut out);
    add::<WhoAmI>(&mut out);
    add::<ZoneList>(&mut out);
    add::<ZoneView>(&mut out);
    add::<ZoneExport>(&mut out);
    add::<VersionList>(&mut out);
    add::<DiffView>(&mut out);
    add::<RecordChange>(&mut out);
    add::<ChangeResult>(&mut out);
    add::<RrsetPatch>(&mut out);
    add::<CheckRequest>(&mut out);
    add::<VerifyRequest>(&mut out);
    add::<CheckResult>(&mut out);
    add::<MailQueue>(&mut out);
    add::<MailMessage>(&mut out);
    add::<MailAction>(&mut out);
    add::<MailRetarget>(&mut out);
    add::<MailActionResult>(&mut out);
    add::<MigrationFileBody>(&mut out);
    add::<MigrationAction>(&mut out);
    add::<MigrationList>(&mut out);
    add::<Propagation>(&mut out);
    add::<AgentList>(&mut out);
    add::<AgentAccepted>(&mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// A string that is one of `words`.
fn one_of<'a>(words: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words))
        .build()
}

/// The schema of [`ErrorDetail::code`]: one of the codes.
fn error_codes() -> Object {
    one_of(ErrorCode::ALL.iter().map(|code| code.as_str()))
}

/// The schema of [`WhoAmI::scope`]: a token's scope.
fn token_scopes() -> Object {
    one_of(["read", "probe", "admin", "agent"])
}

/// The schema of [`MatrixCell::state`].
fn cell_states() -> Object {
    one_of(["new", "old", "other", "error", "none"])
}

/// The schema of [`Propagation::source`].
fn matrix_sources() -> Object {
    one_of(["check", "scheduler", "none"])
}

/// The schema of [`MigrationList::migrations`]: the engine's summaries.
fn migration_summaries() -> ArrayBuilder {
    ArrayBuilder::new().items(Ref::from_schema_name("MigrationSummary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_maps_back_to_its_code() {
        for code in ErrorCode::ALL {
            let back = ErrorCode::for_status(code.status());
            let same_status = back.status() == code.status();
            assert!(
                same_status,
                "expected {code:?} ({}) to map back to its status, seen {back:?}",
                code.status()
            );
        }
        assert_eq!(
            (ErrorCode::for_status(431), ErrorCode::for_status(502)),
            (ErrorCode::BadRequest, ErrorCode::Internal),
            "expected another 4xx as bad_request and another 5xx as internal"
        );
        let mut words: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(
            words.len(),
            ErrorCode::ALL.len(),
            "expected every code once"
        );
    }
}
