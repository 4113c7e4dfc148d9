//! The route table as data: every path and method of the control API, the
//! scope a token needs, and the types it takes and gives. The server builds
//! its router from this table (one handler per [`RouteId`]) and the OpenAPI
//! document is generated from it, so the two cannot drift apart.

/// An HTTP method the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Reads.
    Get,
    /// Changes and actions.
    Post,
    /// Removals.
    Delete,
    /// Changes to parts of a resource (PowerDNS's RRset changes).
    Patch,
}

impl Method {
    /// The method in upper case, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }

    /// The method in lower case, as OpenAPI keys operations.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// What a bearer token must allow for a route. Scopes nest, in the order
/// of the variants: an admin token may do all a probe token may, and a
/// probe token all a read token may (admin ⊇ probe ⊇ read).
///
/// ```text
///  read   GET routes: zones, versions, diffs, mail queue, migrations, events
///  probe  + the routes that make `serve` connect out (check, verify, plan),
///           to the targets the zones and migrations name (and `[http] probe_allow`)
///  admin  + every change, and probes to any target
///  agent  apart: a `cutover agent` fetches jobs and posts their results,
///           and nothing else; no other token (an admin's neither) may
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// No token needed (the dashboard page, the OpenAPI document, metrics).
    Public,
    /// A read, probe or admin token.
    Read,
    /// A probe or admin token: the route connects out to a target of the
    /// caller's choosing.
    Probe,
    /// An admin token.
    Admin,
    /// An agent token, and only one: the routes a `cutover agent` uses.
    Agent,
}

impl Scope {
    /// The scope's name, as `cutover token create --scope` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Read => "read",
            Scope::Probe => "probe",
            Scope::Admin => "admin",
            Scope::Agent => "agent",
        }
    }

    /// The scope named `text`, as `cutover token create --scope` spells it
    /// (`read`, `probe`, `admin` or `agent`; `public` is no token's).
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "probe" => Some(Scope::Probe),
            "admin" => Some(Scope::Admin),
            "agent" => Some(Scope::Agent),
            _ => None,
        }
    }

    /// True when a token of this scope may use a route that needs `needed`
    /// (the scopes nest: admin ⊇ probe ⊇ read ⊇ public; agent stands
    /// apart: it grants the agent routes and public ones only, and only it
    /// grants the agent routes).
    pub fn grants(self, needed: Scope) -> bool {
        match (self, needed) {
            (_, Scope::Public) => true,
            (Scope::Agent, needed) => needed == Scope::Agent,
            (_, Scope::Agent) => false,
            _ => needed <= self,
        }
    }
}

/// Names every route; the server matches on it exhaustively, so a route
/// in the table without a handler does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteId {
    /// The dashboard page.
    Dashboard,
    /// The dashboard's script.
    DashboardScript,
    /// The dashboard's style sheet.
    DashboardStyle,
    /// Prometheus metrics.
    Metrics,
    /// This API's OpenAPI document.
    OpenApi,
    /// Who the token is.
    WhoAmI,
    /// Every zone.
    ZoneList,
    /// One zone's records.
    ZoneShow,
    /// One zone in zone-file form.
    ZoneExport,
    /// One zone's versions.
    ZoneVersions,
    /// The diff between two versions.
    ZoneDiff,
    /// Add, set or delete records.
    RecordChange,
    /// Many RRset changes in one version (PowerDNS's PATCH).
    RrsetPatch,
    /// `cutover check` through the API.
    CheckRun,
    /// `cutover verify` through the API.
    VerifyRun,
    /// The mail queue.
    MailQueue,
    /// One queued message.
    MailShow,
    /// Hold mail for a domain.
    MailHold,
    /// Release held mail.
    MailRelease,
    /// Send a domain's mail elsewhere.
    MailRetarget,
    /// Try queued mail now.
    MailFlush,
    /// Server-sent events: a line per change of zones or mail queue.
    Events,
    /// Every migration.
    MigrationList,
    /// Start a migration from a file.
    MigrationCreate,
    /// Plan a migration file, changing nothing.
    MigrationPlan,
    /// One migration: timeline, steps, evidence.
    MigrationShow,
    /// One migration's audit log.
    MigrationAudit,
    /// The propagation matrix of a migration.
    MigrationPropagation,
    /// Pause a migration.
    MigrationPause,
    /// Resume a migration.
    MigrationResume,
    /// Abort a migration.
    MigrationAbort,
    /// Roll a migration back.
    MigrationRollback,
    /// Approve the gate a migration awaits approval at.
    MigrationApprove,
    /// Server-sent events of one migration.
    MigrationEvents,
    /// What the servers served over one migration (the dashboard's chart).
    MigrationObservations,
    /// The agents, with their locations and whether they are online.
    AgentList,
    /// An agent asks for a job (long poll).
    AgentPoll,
    /// An agent posts a job's result.
    AgentReport,
    /// A survey from several locations (`cutover check --from`).
    CheckFrom,
}

/// One route of the API.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// Which handler serves it.
    pub id: RouteId,
    /// The method.
    pub method: Method,
    /// The path, with `{param}` segments (axum and OpenAPI spell them alike).
    pub path: &'static str,
    /// What the token must allow.
    pub scope: Scope,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The JSON body it takes, by type name in [`crate::types`].
    pub request: Option<&'static str>,
    /// What it gives on success: a type name, or a media type for non-JSON.
    pub response: &'static str,
}

/// A route, written short.
const fn route(
    id: RouteId,
    method: Method,
    path: &'static str,
    scope: Scope,
    summary: &'static str,
    request: Option<&'static str>,
    response: &'static str,
) -> Route {
    Route {
        id,
        method,
        path,
        scope,
        summary,
        request,
        response,
    }
}

use Method::{Get, Patch, Post};
use RouteId as R;
use Scope::{Admin, Agent, Probe, Public, Read};

/// Every route of the control plane.
pub const ROUTES: &[Route] = &[
    route(R::Dashboard, Get, "/", Public, "The dashboard page.", None, "text/html"),
    route(R::DashboardScript, Get, "/dashboard.js", Public, "The dashboard's script.", None, "text/javascript"),
    route(R::DashboardStyle, Get, "/dashboard.css", Public, "The dashboard's style sheet.", None, "text/css"),
    route(R::Metrics, Get, "/metrics", Public, "Prometheus metrics: queries by rcode and transport, RRL, updates, transfers, zones, secondary zones' last successful check, mail queue.", None, "text/plain"),
    route(R::OpenApi, Get, "/api/v1/openapi.json", Public, "This document.", None, "application/json"),
    route(R::WhoAmI, Get, "/api/v1/whoami", Read, "The name and scope of the token used.", None, "WhoAmI"),
    route(R::ZoneList, Get, "/api/v1/zones", Read, "Every zone with its serial and size.", None, "ZoneList"),
    route(R::ZoneShow, Get, "/api/v1/zones/{zone}", Read, "One zone's current records.", None, "ZoneView"),
    route(R::ZoneExport, Get, "/api/v1/zones/{zone}/export", Read, "One zone (query: serial, default the current version) in canonical zone-file form, as `cutover zone export`.", None, "ZoneExport"),
    route(R::ZoneVersions, Get, "/api/v1/zones/{zone}/versions", Read, "One zone's versions, oldest first.", None, "VersionList"),
    route(R::ZoneDiff, Get, "/api/v1/zones/{zone}/diff", Read, "The records removed and added between two versions (query: from, to; default: the last change).", None, "DiffView"),
    route(R::RecordChange, Post, "/api/v1/zones/{zone}/records", Admin, "Add, set or delete records; the serial rises; all or nothing.", Some("RecordChange"), "ChangeResult"),
    route(R::RrsetPatch, Patch, "/api/v1/zones/{zone}/rrsets", Admin, "Replace, delete, extend or prune many RRsets in one version (PowerDNS's body; query dry_run=true: the diff, nothing written); all or nothing.", Some("RrsetPatch"), "ChangeResult"),
    route(R::CheckRun, Post, "/api/v1/checks/check", Probe, "Run `cutover check` and return its observations.", Some("CheckRequest"), "CheckResult"),
    route(R::VerifyRun, Post, "/api/v1/checks/verify", Probe, "Run `cutover verify` and return its observations.", Some("VerifyRequest"), "CheckResult"),
    route(R::MailQueue, Get, "/api/v1/mail/queue", Read, "The relay's queue: one entry per message and recipient.", None, "MailQueue"),
    route(R::MailShow, Get, "/api/v1/mail/queue/{id}", Read, "One queued message.", None, "MailMessage"),
    route(R::MailHold, Post, "/api/v1/mail/hold", Admin, "Hold mail for a domain (or a message).", Some("MailAction"), "MailActionResult"),
    route(R::MailRelease, Post, "/api/v1/mail/release", Admin, "Release held mail.", Some("MailAction"), "MailActionResult"),
    route(R::MailRetarget, Post, "/api/v1/mail/retarget", Admin, "Deliver a domain's mail to another host.", Some("MailRetarget"), "MailActionResult"),
    route(R::MailFlush, Post, "/api/v1/mail/flush", Admin, "Try queued mail now.", Some("MailAction"), "MailActionResult"),
    route(R::Events, Get, "/api/v1/events", Read, "Server-sent events: `zones` and `mail` when they change.", None, "text/event-stream"),
    route(R::MigrationList, Get, "/api/v1/migrations", Read, "Every migration, newest first.", None, "MigrationList"),
    route(R::MigrationCreate, Post, "/api/v1/migrations", Admin, "Plan and start a migration from a migration file (as `cutover migrate start`).", Some("MigrationFileBody"), "MigrationCreated"),
    route(R::MigrationPlan, Post, "/api/v1/migrations/plan", Probe, "Plan a migration file; changes nothing (as `cutover migrate plan`).", Some("MigrationFileBody"), "MigrationPlan"),
    route(R::MigrationShow, Get, "/api/v1/migrations/{id}", Read, "One migration: summary, plan, timeline (done, next, when), steps with evidence.", None, "MigrationDetail"),
    route(R::MigrationAudit, Get, "/api/v1/migrations/{id}/audit", Read, "Every record change the migration made, old and new.", None, "MigrationAudit"),
    route(R::MigrationPropagation, Get, "/api/v1/migrations/{id}/propagation", Read, "Every authoritative address and resolver against every moving record: old, new or other, with the TTL left, and how old the answers are. A read token gets the last answers known (the scheduler's or the last check's) and never makes the server ask; a probe or admin token asks again when they are over a second old. A migration verified from several locations (`[verify] locations`) is asked from each (`local` here, the others through their agents): each row names its location, and a location with no agent online or no answer is listed with its problems, never as agreeing.", None, "Propagation"),
    route(R::MigrationPause, Post, "/api/v1/migrations/{id}/pause", Admin, "Stop where it is; resume goes on.", Some("MigrationAction"), "MigrationSummary"),
    route(R::MigrationResume, Post, "/api/v1/migrations/{id}/resume", Admin, "Go on with a paused migration.", Some("MigrationAction"), "MigrationSummary"),
    route(R::MigrationAbort, Post, "/api/v1/migrations/{id}/abort", Admin, "Stop for good, records left as they are.", Some("MigrationAction"), "MigrationSummary"),
    route(R::MigrationRollback, Post, "/api/v1/migrations/{id}/rollback", Admin, "Put the old values back (low TTL kept), then the original TTLs.", Some("MigrationAction"), "MigrationSummary"),
    route(R::MigrationApprove, Post, "/api/v1/migrations/{id}/approve", Admin, "Approve the gate a migration awaits approval at (`approve = \"before_STEP\"`), recorded with the token's name; refused when it awaits none.", Some("MigrationAction"), "MigrationSummary"),
    route(R::MigrationEvents, Get, "/api/v1/migrations/{id}/events", Read, "Server-sent events: `migration` with the detail whenever it changes.", None, "text/event-stream"),
    route(R::MigrationObservations, Get, "/api/v1/migrations/{id}/observations", Read, "What the servers served over the migration, oldest first: each run of surveys (a step's, or serve's watch between steps, at most once per verification interval) that counted alike, with how many authorities and resolvers gave the old values and the new. Reads the store; asks no one.", None, "MigrationObservations"),
    route(R::AgentList, Get, "/api/v1/agents", Read, "Every `cutover agent` that polled since serve started: its location, when it was last seen, online or offline (silent longer than `[agents] offline_after`: never counted as agreeing), the jobs it finished and holds.", None, "AgentList"),
    route(R::AgentPoll, Post, "/api/v1/agents/poll", Agent, "An agent registers (or is seen again) and waits up to `[agents] poll_wait` for a job of its location; the job is leased to it for `[agents] lease`, then given to another agent of the location (or the same one, back).", Some("AgentHello"), "AgentPolled"),
    route(R::AgentReport, Post, "/api/v1/agents/results", Agent, "An agent posts the outcome of a job leased to it; `accepted` is false when the job is no longer its own (its lease passed, or the migration stopped waiting).", Some("AgentReport"), "AgentAccepted"),
    route(R::CheckFrom, Post, "/api/v1/checks/from", Admin, "Ask a zone's authorities and resolvers from several locations at once (`cutover check --from`): `local` through serve's own probes, every other location through one of its online agents (waiting up to `[agents] answer_within`); a location with no agent online, or none answering in time, has a problem saying so.", Some("CheckFromRequest"), "CheckFromResult"),
];

/// True for the routes whose work is bounded per token and in total
/// (`[http] max_probes`, `max_probes_per_token`, the event streams' cap):
/// they may answer 429 `too_many_requests` with a `Retry-After`.
pub fn is_bounded(id: RouteId) -> bool {
    matches!(
        id,
        RouteId::CheckRun
            | RouteId::VerifyRun
            | RouteId::MigrationPlan
            | RouteId::MigrationCreate
            | RouteId::MigrationPropagation
            | RouteId::CheckFrom
            | RouteId::Events
            | RouteId::MigrationEvents
    )
}

/// The least scope of a caller for whom a route makes the server connect
/// out (a probe, a provider, a DNS question); `None`: it never does, for
/// anyone. The handlers ask this table, so a route cannot connect out for
/// a scope the table does not say.
pub fn connects_out_for(id: RouteId) -> Option<Scope> {
    match id {
        RouteId::CheckRun | RouteId::VerifyRun | RouteId::MigrationPlan => Some(Scope::Probe),
        // A read token gets the last matrix known; a probe token may ask again.
        RouteId::MigrationPropagation => Some(Scope::Probe),
        // Planning reads the zone from the migration's provider.
        RouteId::MigrationCreate => Some(Scope::Admin),
        // Its locations' agents (and serve's own probes) ask any target.
        RouteId::CheckFrom => Some(Scope::Admin),
        _ => None,
    }
}

/// The route with this id.
pub fn route_of(id: RouteId) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_method_and_path_is_listed_once() {
        let mut seen = BTreeSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.path, route.method)),
                "{} {} is listed twice",
                route.method.as_str(),
                route.path
            );
        }
    }

    #[test]
    fn json_routes_live_under_the_prefix() {
        for route in ROUTES {
            let json = route.request.is_some() || !route.response.contains('/');
            if json {
                assert!(
                    route.path.starts_with(crate::PREFIX),
                    "expected {} under {}, seen outside",
                    route.path,
                    crate::PREFIX
                );
            }
        }
    }

    #[test]
    fn scopes_nest_admin_over_probe_over_read() {
        use Scope::*;
        let all = [Public, Read, Probe, Admin, Agent];
        let granted: Vec<(Scope, Vec<Scope>)> = [Read, Probe, Admin, Agent]
            .into_iter()
            .map(|token| {
                (
                    token,
                    all.into_iter().filter(|n| token.grants(*n)).collect(),
                )
            })
            .collect();
        assert_eq!(
            granted,
            [
                (Read, vec![Public, Read]),
                (Probe, vec![Public, Read, Probe]),
                (Admin, vec![Public, Read, Probe, Admin]),
                (Agent, vec![Public, Agent]),
            ],
            "expected admin ⊇ probe ⊇ read, and agent apart: only its own routes, only by it"
        );
        for scope in [Read, Probe, Admin, Agent] {
            assert_eq!(
                Scope::parse(scope.as_str()),
                Some(scope),
                "expected {scope:?} to round-trip"
            );
        }
        assert_eq!(
            Scope::parse("public"),
            None,
            "expected no token to be public"
        );
    }

    #[test]
    fn routes_that_connect_out_need_the_probe_scope() {
        let probing: Vec<RouteId> = ROUTES
            .iter()
            .filter(|route| route.scope == Scope::Probe)
            .map(|route| route.id)
            .collect();
        assert_eq!(
            probing,
            [
                RouteId::CheckRun,
                RouteId::VerifyRun,
                RouteId::MigrationPlan
            ],
            "expected check, verify and plan to need a probe token"
        );
        for id in probing {
            assert!(is_bounded(id), "expected {id:?} bounded per token");
        }
        let connecting: Vec<(RouteId, Scope)> = ROUTES
            .iter()
            .filter_map(|route| connects_out_for(route.id).map(|scope| (route.id, scope)))
            .collect();
        assert_eq!(
            connecting,
            [
                (RouteId::CheckRun, Scope::Probe),
                (RouteId::VerifyRun, Scope::Probe),
                (RouteId::MigrationCreate, Scope::Admin),
                (RouteId::MigrationPlan, Scope::Probe),
                (RouteId::MigrationPropagation, Scope::Probe),
                (RouteId::CheckFrom, Scope::Admin),
            ],
            "expected only these routes to connect out, and never for a read token"
        );
        for (id, scope) in connecting {
            let route = route_of(id).expect("listed");
            assert!(
                !Scope::Read.grants(scope) && scope >= route.scope,
                "expected {id:?} to connect out for probe tokens or above only, seen {scope:?}"
            );
            assert!(is_bounded(id), "expected {id:?} bounded per token");
        }
    }

    #[test]
    fn only_the_page_the_document_and_metrics_are_public() {
        let public: Vec<&str> = ROUTES
            .iter()
            .filter(|route| route.scope == Scope::Public)
            .map(|route| route.path)
            .collect();
        assert_eq!(
            public,
            [
                "/",
                "/dashboard.js",
                "/dashboard.css",
                "/metrics",
                "/api/v1/openapi.json"
            ],
            "expected only these public routes"
        );
    }
}
