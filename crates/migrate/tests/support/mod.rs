//! Test doubles for the runner: a provider over a zone in memory (with
//! crash points), checks scripted from that zone, a recording flusher and
//! mail control.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use cutover_migrate::file::{Check, MigrationFile, Verify};
use cutover_migrate::observe::{Answered, CheckResult, ServerView, Survey};
use cutover_migrate::{
    Checks, Clock, Effects, Flusher, MailControl, ManualClock, Migrations, Observations, Plan,
    TickReport,
};
use cutover_provider::{Applied, Change, Provider, ProviderError};
use cutover_zone::zonefile::{parse_str, rdata_to_text};
use cutover_zone::{Name, RecordType, Rrset, Zone};
use jiff::Timestamp;

/// The zone of the runner tests.
pub const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. 2026112601 3600 600 1209600 300
        IN NS   ns1
        IN A    192.0.2.10
ns1     IN A    192.0.2.53
www 7200 IN A   192.0.2.10
mail    IN A    192.0.2.25
"#;

/// The migration file of the runner tests: www and the apex move.
pub const FILE: &str = r#"
version = 1
zone = "example.com."
provider = { kind = "embedded" }
[[move]]
from = "192.0.2.10"
to = "198.51.100.20"
[[check]]
http = "http://www.example.com/healthz"
[schedule]
margin = 60
observe = "1h"
[verify]
authorities = ["127.0.0.1:5300"]
resolvers = ["127.0.0.1:5301"]
tries = 3
interval = 10
"#;

/// Where a crash is simulated (a panic, which the test catches, standing
/// for kill -9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Never.
    Never,
    /// In the n-th apply, before changing anything.
    BeforeApply(u32),
    /// In the n-th apply, after the change is in place.
    AfterApply(u32),
    /// The n-th apply changes the zone, but its answer is lost (the
    /// provider reports it unreachable).
    LostReply(u32),
    /// The n-th apply is refused (e.g. a key the server does not accept).
    Refuse(u32),
}

/// A provider over a zone in memory, as the `Provider` contract says:
/// all or nothing, conditional on `expect`, idempotent.
pub struct MemoryProvider {
    /// The zone.
    pub zone: Mutex<Zone>,
    /// Apply calls so far.
    pub applies: AtomicU32,
    /// Changes that actually altered the zone.
    pub effective: AtomicU32,
    /// Where to crash.
    pub crash: Mutex<CrashPoint>,
}

impl MemoryProvider {
    /// The test zone.
    pub fn new() -> Arc<MemoryProvider> {
        Arc::new(MemoryProvider {
            zone: Mutex::new(parse_str(ZONE, "z", None).expect("zone").zone),
            applies: AtomicU32::new(0),
            effective: AtomicU32::new(0),
            crash: Mutex::new(CrashPoint::Never),
        })
    }

    /// The RRset at a name and type now.
    pub fn rrset(&self, name: &str, rtype: RecordType) -> Option<Rrset> {
        let name = Name::from_ascii(name).expect("name");
        self.zone.lock().expect("lock").get(&name, rtype).cloned()
    }

    /// The values (text) and TTL of an RRset.
    pub fn values(&self, name: &str, rtype: RecordType) -> Option<(u32, Vec<String>)> {
        self.rrset(name, rtype)
            .map(|s| (s.ttl, s.rdatas().iter().map(rdata_to_text).collect()))
    }

    /// Someone else changes an RRset.
    pub fn edit_behind_our_back(&self, name: &str, rrset: Rrset) {
        let name = Name::from_ascii(name).expect("name");
        let mut zone = self.zone.lock().expect("lock");
        zone.set_rrset(&name, RecordType::A, rrset).expect("set");
        let serial = zone.serial().expect("serial").plus(1);
        zone.set_serial(serial);
    }
}

impl Provider for MemoryProvider {
    fn describe(&self) -> String {
        "a zone in memory".into()
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        let z = self.zone.lock().expect("lock");
        if z.origin() != zone {
            return Err(ProviderError::UnknownZone(zone.clone()));
        }
        Ok(z.clone())
    }

    fn apply(&self, _zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
        let crash = *self.crash.lock().expect("lock");
        if crash == CrashPoint::BeforeApply(n) {
            panic!("simulated crash before apply {n}");
        }
        if crash == CrashPoint::Refuse(n) {
            return Err(ProviderError::Refused(format!("apply {n}: BADKEY")));
        }
        let mut zone = self.zone.lock().expect("lock");
        let already = changes
            .iter()
            .all(|c| zone.get(&c.name, c.rtype).cloned() == c.set);
        if !already {
            for c in changes {
                let now = zone.get(&c.name, c.rtype).cloned();
                if now != c.expect && now != c.set {
                    let text = |s: &Option<Rrset>| {
                        s.as_ref()
                            .map(|s| format!("{s:?}"))
                            .unwrap_or_else(|| "absent".into())
                    };
                    return Err(ProviderError::Conflict {
                        name: c.name.clone(),
                        rtype: c.rtype,
                        expected: text(&c.expect),
                        found: text(&now),
                    });
                }
            }
            for c in changes {
                zone.set_rrset(&c.name, c.rtype, c.set.clone().unwrap_or_default())
                    .expect("set");
            }
            let serial = zone.serial().expect("serial").plus(1);
            zone.set_serial(serial);
            self.effective.fetch_add(1, Ordering::SeqCst);
        }
        let serial = zone.serial();
        drop(zone);
        if crash == CrashPoint::AfterApply(n) {
            panic!("simulated crash after apply {n}");
        }
        if crash == CrashPoint::LostReply(n) {
            return Err(ProviderError::Unreachable(format!(
                "apply {n}: the answer was lost"
            )));
        }
        Ok(Applied { serial })
    }
}

/// Checks answered from the provider's zone (authorities and resolvers
/// serve exactly what it holds), with service checks scripted.
pub struct ScriptedChecks {
    /// The provider whose zone they answer from.
    pub provider: Arc<dyn Provider>,
    /// Whether the new servers pass their service checks.
    pub healthy: AtomicBool,
    /// Service checks run so far.
    pub service_runs: AtomicU32,
    /// Surveys made so far.
    pub surveys: AtomicU32,
    /// TTL the authorities serve instead of the zone's (a floor), if any.
    pub floor: Mutex<Option<u32>>,
    /// Run once during the next service check (an operator acting meanwhile).
    pub during_next_check: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The serial every authority serves whatever the zone holds (a server
    /// that has not loaded the change yet), if any.
    pub frozen_serial: Mutex<Option<u32>>,
}

impl ScriptedChecks {
    /// Healthy checks over the provider's zone.
    pub fn new(provider: Arc<dyn Provider>) -> ScriptedChecks {
        ScriptedChecks {
            provider,
            healthy: AtomicBool::new(true),
            service_runs: AtomicU32::new(0),
            surveys: AtomicU32::new(0),
            floor: Mutex::new(None),
            during_next_check: Mutex::new(None),
            frozen_serial: Mutex::new(None),
        }
    }
}

impl Checks for ScriptedChecks {
    fn survey(&self, zone: &Name, rrsets: &[(Name, RecordType)], verify: &Verify) -> Survey {
        self.surveys.fetch_add(1, Ordering::SeqCst);
        let zone = self
            .provider
            .read(zone)
            .expect("the provider reads the zone");
        let floor = *self.floor.lock().expect("lock");
        let frozen = *self.frozen_serial.lock().expect("lock");
        let answers: Vec<Answered> = rrsets
            .iter()
            .map(|(n, t)| {
                let set = zone.get(n, *t);
                Answered {
                    name: n.to_string(),
                    rtype: t.to_string(),
                    ttl: set.map(|s| floor.map_or(s.ttl, |f| f.max(s.ttl))),
                    values: set
                        .map(|s| s.rdatas().iter().map(rdata_to_text).collect())
                        .unwrap_or_default(),
                    error: set.is_none().then(|| "NXDOMAIN".to_string()),
                }
            })
            .collect();
        Survey {
            authorities: verify
                .authorities
                .iter()
                .map(|a| ServerView {
                    server: a.to_string(),
                    serial: frozen.or(zone.serial().map(|s| s.0)),
                    answers: answers.clone(),
                })
                .collect(),
            resolvers: verify
                .resolvers
                .iter()
                .map(|r| ServerView {
                    server: r.to_string(),
                    serial: None,
                    answers: answers.clone(),
                })
                .collect(),
            problems: vec![],
        }
    }

    fn service(&self, check: &Check, pin: Option<IpAddr>, _verify: &Verify) -> CheckResult {
        self.service_runs.fetch_add(1, Ordering::SeqCst);
        let hook = self.during_next_check.lock().expect("lock").take();
        if let Some(hook) = hook {
            hook();
        }
        let ok = self.healthy.load(Ordering::SeqCst);
        CheckResult {
            what: cutover_migrate::checks::describe(check),
            pinned: pin,
            ok,
            detail: if ok {
                "status 200".into()
            } else {
                "status 503 (expected 200)".into()
            },
        }
    }
}

/// Records what it was asked to do.
#[derive(Default)]
pub struct Recorder {
    /// Every call, in words.
    pub calls: Mutex<Vec<String>>,
    /// How many mail actions from now on fail (a relay down), recorded
    /// with " refused".
    pub refuse_mail: Mutex<u32>,
}

impl Recorder {
    /// Records a mail action; fails it while `refuse_mail` counts.
    fn mail(&self, call: String, said: &str) -> Result<String, String> {
        let mut refuse = self.refuse_mail.lock().expect("lock");
        if *refuse > 0 {
            *refuse -= 1;
            self.calls
                .lock()
                .expect("lock")
                .push(format!("{call} refused"));
            return Err("mx2 (http://mx2.test): unreachable".into());
        }
        self.calls.lock().expect("lock").push(call);
        Ok(said.into())
    }
}

impl Flusher for Recorder {
    fn flush(&self, cache: &str, names: &[Name]) -> Result<String, String> {
        self.calls
            .lock()
            .expect("lock")
            .push(format!("flush {cache} {}", names.len()));
        Ok("flushed".into())
    }
}

impl MailControl for Recorder {
    fn hold(&self, domain: &str) -> Result<String, String> {
        self.mail(format!("hold {domain}"), "held")
    }
    fn retarget(&self, domain: &str, destination: &str) -> Result<String, String> {
        self.mail(format!("retarget {domain} {destination}"), "retargeted")
    }
    fn release(&self, domain: &str) -> Result<String, String> {
        self.mail(format!("release {domain}"), "released")
    }
}

/// A clock that moves forward by one second every time it is read: a
/// runner that stamps a time read earlier than the moment it writes shows
/// it as a time before one written earlier.
pub struct TickingClock {
    /// The time the next read returns.
    now: Mutex<Timestamp>,
}

impl TickingClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> TickingClock {
        TickingClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (never back).
    pub fn set(&self, t: Timestamp) {
        let mut now = self.now.lock().expect("lock");
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let mut now = self.now.lock().expect("lock");
        let read = *now;
        *now = cutover_migrate::plan::later(read, 1);
        read
    }
}

/// The start time of every runner test.
pub fn t0() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().expect("time")
}

/// The plan of `text` over the provider's zone at `t0`.
pub fn plan_of(text: &str, provider: &MemoryProvider) -> Plan {
    let file = MigrationFile::parse(text, "m.toml").expect("file");
    let zone = provider.read(&file.zone).expect("zone");
    cutover_migrate::plan(&file, &zone, &Observations::default(), t0()).expect("plan")
}

/// One test's world.
pub struct World {
    /// The store file's directory.
    pub dir: tempfile::TempDir,
    /// The provider.
    pub provider: std::sync::Arc<MemoryProvider>,
    /// The checks.
    pub checks: ScriptedChecks,
    /// Flusher and mail control.
    pub recorder: Recorder,
    /// The clock.
    pub clock: ManualClock,
}

impl World {
    /// A fresh world at t0.
    pub fn new() -> World {
        let provider = MemoryProvider::new();
        World {
            dir: tempfile::tempdir().expect("tempdir"),
            checks: ScriptedChecks::new(provider.clone()),
            provider,
            recorder: Recorder::default(),
            clock: ManualClock::new(t0()),
        }
    }

    /// The store file.
    pub fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("cutover.db")
    }

    /// Opens the migrations (as a restarted process would).
    pub fn open(&self) -> Migrations {
        Migrations::open(&self.db()).expect("open")
    }

    /// The effects.
    pub fn fx(&self) -> Effects<'_> {
        self.fx_on(&self.clock)
    }

    /// The effects on another clock.
    pub fn fx_on<'a>(&'a self, clock: &'a dyn Clock) -> Effects<'a> {
        Effects {
            provider: &*self.provider,
            checks: &self.checks,
            flusher: &self.recorder,
            mail: &self.recorder,
            clock,
        }
    }

    /// Starts the test migration (with `text`), returning its id.
    pub fn start(&self, m: &Migrations, text: &str) -> i64 {
        let plan = plan_of(text, &self.provider);
        m.start("m.toml", text, &plan, t0()).expect("start")
    }

    /// Moves the clock to the migration's next due time and ticks.
    pub fn tick_when_due(&self, m: &Migrations, id: i64) -> TickReport {
        let due = m
            .status(id)
            .expect("status")
            .next_due
            .expect("something due");
        if due > self.clock.now() {
            self.clock.set(due);
        }
        m.tick(id, &self.fx()).expect("tick")
    }

    /// The www A RRset: (TTL, values).
    pub fn www(&self) -> (u32, Vec<String>) {
        self.provider
            .values("www.example.com.", RecordType::A)
            .expect("www A present")
    }
}

/// Kinds of the steps a tick ran.
pub fn kinds(report: &TickReport) -> Vec<String> {
    report.did.iter().map(|s| s.kind.clone()).collect()
}

/// Seconds from t0.
pub fn since_t0(t: Timestamp) -> i64 {
    t.as_second() - t0().as_second()
}
