//! The primary behind `cutover serve`: what the nameserver routes off its
//! answer path (UPDATE, NOTIFY, AXFR/IXFR, TSIG-signed messages), answered
//! from the store.
//!
//! ```text
//!  triage (the server's receiving thread): bad TSIG ─▶ answered there; unsigned UPDATE
//!        from an address no rule names ─▶ REFUSED there; verified ─▶ signed lane; else unsigned lane
//!  routed request ──tsig::verify_request (RFC 8945 order)── rejected ──▶ FORMERR / NOTAUTH(+TSIG)
//!        │ unsigned or verified (signer kept)
//!        ├─ UPDATE ─▶ admit (parse; a secondary's zone: REFUSED) ─▶ queue (group commit, queue.rs)
//!        │            ─▶ the leader: writer lock ─▶ Store::batch: ONE write transaction (BEGIN IMMEDIATE):
//!        │               each member in turn, in a savepoint, on the version the ones before it left
//!        │               (re-read if another writer moved it) ─▶ update::apply(zone, policy)
//!        │               ─▶ its own version; refused: its own RCODE, nothing written (commit.rs)
//!        │            ─▶ COMMIT: one fsync ─▶ publish each zone changed once, patched (ArcSwap)
//!        │            ─▶ every member answered (NOERROR only now) ─▶ NOTIFY out
//!        ├─ AXFR/IXFR (ACL: transfer_keys / transfer_from) ─▶ axfr_messages │ ixfr_messages(journal)
//!        ├─ NOTIFY ─▶ NOERROR ack (we are the primary: nothing to fetch)
//!        └─ QUERY (signed, or not classified cheaply) ─▶ answer(&Catalog)
//!  every response ──signer.sign (each message of a stream)──▶ out
//! ```
//!
//! UPDATEs that arrive while a batch commits wait in the queue and go
//! together in the next (at most `queue::MAX_MEMBERS`, `queue::MAX_BYTES`):
//! one transaction and one fsync for all, each still its own version in
//! the journal (IXFR and history stay per update), each answered only once
//! that transaction is durable; a batch of one is the update alone, on the
//! thread that received it. The UDP thread hands the requests waiting in
//! its lanes over together (`Primary::handle_all`), TCP requests each wait
//! in their own blocking task.
//!
//! Writers are serialised by one mutex, and against other writers (the CLI,
//! another `serve` on the same store) by the store's write transaction, in
//! which the UPDATE is worked out on the version it is written over
//! (`Store::update_zone`): a concurrent write makes it re-read the zone,
//! never fail. The zone last written is kept (with the store generation it
//! belongs to) so an UPDATE does not reload it, and an UPDATE's diff, once
//! stored, is applied to it in place (`edit::apply_in_place`: the touched
//! RRsets only, no copy of the zone).
//! Publishing goes through the `served` map the reload watcher also holds,
//! so the two never overwrite each other's catalog and the watcher does not
//! rebuild a zone the primary already published.

pub mod clock;
mod commit;
pub mod notifier;
mod pending;
pub mod queue;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use cutover_nameserver::primary::{
    bare_response, streams, Lane, Request, Triage, AXFR, IXFR, OPCODE_NOTIFY, OPCODE_QUERY,
    OPCODE_UPDATE,
};
use cutover_nameserver::snapshot::Rebuild;
use cutover_nameserver::transfer::{axfr_messages, ixfr_messages, message_limit, Question};
use cutover_nameserver::tsig::{
    signature_len, verify_request, Key, KeyRing, Rejection, ResponseSigner, Verified,
};
use cutover_nameserver::update::{self, Policy, Rule, Update, UpdateRcode};
use cutover_nameserver::{answer, Catalog, Primary, Transport, ZoneSnapshot};
use cutover_store::{Held, Store, StoreError};
use cutover_zone::{Name, RecordType, Serial, Zone, ZoneDiff};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

pub use self::clock::wall_clock;
use crate::config::{Config, UpdatePrefix};
use crate::secondary::handle::{NotifyVerdict, Secondaries};
use notifier::Notifier;
use pending::Pending;
use queue::Queue;

/// RCODE NOTIMP.
const NOTIMP: u8 = 4;
/// RCODE REFUSED.
const REFUSED: u8 = 5;
/// RCODE NOTAUTH.
const NOTAUTH: u8 = 9;
/// RCODE FORMERR.
const FORMERR: u8 = 1;
/// RCODE SERVFAIL.
const SERVFAIL: u8 = 2;

/// How often refused requests are logged at most (with a count).
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A log line that is written at most once per interval: the first event
/// of an interval is logged at once, the others are counted and the count
/// goes with the next line written. Lock-free: a flood of events costs two
/// atomic operations each.
pub struct ThrottledLog {
    /// The shortest time between two lines, in milliseconds.
    interval_ms: u64,
    /// Time zero of `next_at`.
    epoch: std::time::Instant,
    /// Milliseconds after the epoch before which nothing is logged.
    next_at: AtomicU64,
    /// Events not logged since the last line.
    skipped: AtomicU64,
}

impl ThrottledLog {
    /// A log writing at most one line per `interval`.
    pub fn new(interval: std::time::Duration) -> ThrottledLog {
        ThrottledLog {
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            epoch: std::time::Instant::now(),
            next_at: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// Notes one event: logged (at info) when no line was written in the
    /// last interval, with the number of events left out since; counted
    /// otherwise.
    pub fn note(&self, what: std::fmt::Arguments<'_>) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next_at = self.next_at.load(Ordering::Relaxed);
        let due = now >= next_at
            && self
                .next_at
                .compare_exchange(
                    next_at,
                    now.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if !due {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.skipped.swap(0, Ordering::Relaxed) {
            0 => tracing::info!("{what}"),
            left_out => tracing::info!(
                "{what} (and {left_out} more like it since the last such line, at most one per {} s)",
                self.interval_ms / 1000
            ),
        }
    }
}

/// The zones served, with the serial published for each; shared by the
/// reload watcher and the primary (whoever publishes holds the lock).
pub type Served = Arc<Mutex<BTreeMap<Name, Serial>>>;

/// Who may transfer one zone.
#[derive(Clone, Debug, Default)]
struct TransferAcl {
    /// Keys that may.
    keys: Vec<Name>,
    /// Addresses that may, unsigned.
    from: Vec<UpdatePrefix>,
}

/// The primary: the store, the published catalog and the policies.
pub struct StorePrimary {
    /// Its own handle on the store (the watcher has another).
    store: Store,
    /// What the server answers from.
    catalog: Arc<ArcSwap<Catalog>>,
    /// The serials published, shared with the watcher.
    served: Served,
    /// Every configured TSIG key.
    keys: KeyRing,
    /// Who may UPDATE what, and the caps.
    policy: Policy,
    /// Who may transfer each zone.
    transfers: BTreeMap<Name, TransferAcl>,
    /// Serialises writers; holds the zone last written.
    writer: Mutex<Written>,
    /// The UPDATEs waiting for the writer (group commit).
    queue: Queue<Pending>,
    /// Tells the secondaries about changes.
    notifier: Notifier,
    /// The zones this server is a secondary of (read-only here; their
    /// primaries' NOTIFYs go to the refresh thread).
    secondaries: Secondaries,
    /// The clock, seconds since the epoch (TSIG, serials).
    clock: fn() -> u64,
    /// Refused requests (bad TSIG, unsigned UPDATEs from strangers), logged
    /// once per interval with a count: a flood must not flood the log.
    refusals: ThrottledLog,
}

/// The zones as last written or read by the writer, each valid while the
/// store's generation is still the one it was read at.
#[derive(Default)]
struct Written {
    /// Zones by origin.
    zones: BTreeMap<Name, Held>,
}

impl std::fmt::Debug for StorePrimary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePrimary")
            .field("store", &self.store.path())
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The key ring of every `[[key]]` in the config.
pub fn key_ring(config: &Config) -> anyhow::Result<KeyRing> {
    let keys = config
        .key
        .iter()
        .map(|k| Key::from_config(k).map_err(|e| anyhow::anyhow!("key {}: {e}", k.name)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeyRing::from_keys(keys)?)
}

/// The UPDATE policy the config's `[[zone]]` entries describe.
pub fn update_policy(config: &Config) -> Policy {
    let mut policy = Policy::deny_all();
    policy.max_records = config.dns.max_update_records;
    policy.max_rrset = config.dns.max_rrset_records;
    for zone in &config.zone {
        for key in &zone.update_keys {
            policy
                .keys
                .push((key.clone(), Rule::whole_zone(zone.name.clone())));
        }
        for rule in &zone.update_rule {
            let grant = Rule {
                zones: vec![zone.name.clone()],
                names: rule.names.clone(),
                types: rule.types.clone(),
            };
            policy.keys.push((rule.key.clone(), grant));
        }
        for prefix in &zone.allow_unsigned_update_from {
            policy
                .unsigned
                .push((*prefix, Rule::whole_zone(zone.name.clone())));
        }
    }
    policy
}

impl StorePrimary {
    /// A primary on the store at `store_path`, publishing into `catalog`.
    pub fn new(
        config: &Config,
        store_path: &std::path::Path,
        catalog: Arc<ArcSwap<Catalog>>,
        served: Served,
        notifier: Notifier,
        secondaries: Secondaries,
    ) -> anyhow::Result<StorePrimary> {
        let transfers = config
            .zone
            .iter()
            .map(|zone| {
                let acl = TransferAcl {
                    keys: zone.transfer_keys.clone(),
                    from: zone.transfer_from.clone(),
                };
                (zone.name.clone(), acl)
            })
            .collect();
        Ok(StorePrimary {
            store: Store::open(store_path)?,
            catalog,
            served,
            keys: key_ring(config)?,
            policy: update_policy(config),
            transfers,
            writer: Mutex::new(Written::default()),
            queue: Queue::new(queue::LIMITS),
            notifier,
            secondaries,
            clock: wall_clock,
            refusals: ThrottledLog::new(REFUSAL_LOG_INTERVAL),
        })
    }

    /// The writer lock (a panic in another writer leaves nothing half-done:
    /// the store rolled back).
    fn writer(&self) -> MutexGuard<'_, Written> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current zone `origin` (from the cache when the store has not
    /// changed since it was read), `None` when it is not in the store.
    fn zone(&self, written: &mut Written, origin: &Name) -> Result<Option<Arc<Zone>>, StoreError> {
        let generation = self.store.generation()?;
        if let Some(held) = written.zones.get(origin) {
            if held.generation == generation {
                return Ok(Some(Arc::clone(&held.zone)));
            }
        }
        let Some(held) = self.store.held_zone(origin)? else {
            written.zones.remove(origin);
            return Ok(None);
        };
        let zone = Arc::clone(&held.zone);
        written.zones.insert(origin.clone(), held);
        Ok(Some(zone))
    }

    /// An UPDATE made ready for the writer: parsed, for a zone this server
    /// is the primary of; else its answer (unsigned).
    fn admit(
        &self,
        request: &[u8],
        key: Option<&Name>,
        client: SocketAddr,
    ) -> Result<Pending, Vec<u8>> {
        let parsed = match Update::parse(request) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::info!(%client, "UPDATE refused: {error}");
                return Err(update::response(request, error.rcode()));
            }
        };
        let who = match key {
            Some(key) => format!("key {key}"),
            None => format!("unsigned from {}", client.ip()),
        };
        if let Some(upstream) = self.secondaries.upstream(&parsed.zone) {
            // As BIND without update forwarding: a secondary's zone changes
            // on its primary only.
            tracing::info!(%client, zone = %parsed.zone,
                "UPDATE by {who} refused: the zone is a secondary here, changed on its primary ({})",
                upstream.primaries.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            return Err(update::response(request, UpdateRcode::Refused));
        }
        Ok(Pending {
            request: request.to_vec(),
            parsed,
            key: key.cloned(),
            client,
            who,
            now: u32::try_from((self.clock)()).unwrap_or(u32::MAX),
        })
    }

    /// Applies UPDATEs and returns their responses (unsigned), in order.
    ///
    /// Each is worked out inside a write transaction (a batch's:
    /// [`commit`]) on the version it is written over — the one the UPDATEs
    /// before it in the batch left, or, when another writer (`cutover
    /// record`, another `serve` on the same store) changed the zone since
    /// this primary last read it, that newer version, prerequisites
    /// included, instead of failing with SERVFAIL. Answered once the batch
    /// is durable.
    fn updates(&self, requests: Vec<(&[u8], Option<&Name>, SocketAddr)>) -> Vec<Vec<u8>> {
        let mut answers: Vec<Option<Vec<u8>>> = Vec::with_capacity(requests.len());
        let mut members = Vec::new();
        for (request, key, client) in requests {
            match self.admit(request, key, client) {
                Ok(pending) => {
                    let bytes = pending.request.len();
                    let fallback = update::response(request, UpdateRcode::ServFail);
                    members.push((pending, bytes, fallback));
                    answers.push(None);
                }
                Err(answer) => answers.push(Some(answer)),
            }
        }
        if !members.is_empty() {
            let queued = members.len() as u64;
            cutover_nameserver::metrics::updates_queued(queued);
            let committed = self.queue.submit(members, |taker| self.commit_batch(taker));
            cutover_nameserver::metrics::updates_answered(queued);
            let mut committed = committed.into_iter();
            for answer in answers.iter_mut().filter(|a| a.is_none()) {
                *answer = committed.next();
            }
        }
        answers.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// Publishes the snapshot of `zone`, the version `diff` made, under the
    /// `served` lock the watcher also takes (held by the caller): the served
    /// snapshot patched with the RRsets the diff touched when it is the
    /// version the diff starts from (O(change)), otherwise one built from
    /// scratch (O(zone): a cut or DNAME came or went, the overlay is due
    /// for compaction, or another writer's version is served).
    fn publish(
        &self,
        origin: &Name,
        zone: &Zone,
        diff: &ZoneDiff,
        served: &mut BTreeMap<Name, Serial>,
    ) {
        let current = self.catalog.load();
        let patched = match current.get(origin) {
            Some(old) if served.get(origin) == Some(&diff.from) => {
                old.patched_with_zone(zone, diff)
            }
            _ => Err(Rebuild::Mismatch("another version is served".to_string())),
        };
        let snapshot = match patched {
            Ok(snapshot) => Arc::new(snapshot),
            Err(why) => {
                tracing::debug!(zone = %origin, "snapshot built from scratch: {why}");
                Arc::new(ZoneSnapshot::build(zone))
            }
        };
        let serial = snapshot.serial();
        let next = self.catalog.load().with_zone(snapshot);
        self.catalog.store(Arc::new(next));
        served.insert(origin.clone(), serial);
    }

    /// Answers an AXFR or IXFR: every message, unsigned.
    fn transfer(
        &self,
        request: &[u8],
        parsed: &Request,
        key: Option<&Key>,
        client: SocketAddr,
        transport: Transport,
    ) -> Vec<Vec<u8>> {
        let refuse = |rcode: u8| vec![bare_response(request, rcode, false)];
        let Some(qname) = parsed.qname.as_deref().and_then(name_from_wire) else {
            return refuse(FORMERR);
        };
        if parsed.qtype == AXFR && !streams(transport) {
            return refuse(NOTIMP);
        }
        let mut origin = qname.to_lowercase();
        origin.set_fqdn(true);
        let allowed = self.transfers.get(&origin).is_some_and(|acl| {
            key.is_some_and(|k| acl.keys.contains(&k.name))
                || (key.is_none() && acl.from.iter().any(|p| p.contains(client.ip())))
        });
        let kind = if parsed.qtype == AXFR { "AXFR" } else { "IXFR" };
        if !allowed {
            tracing::info!(zone = %origin, %client, "{kind} refused by the transfer ACL");
            return refuse(REFUSED);
        }
        let zone = {
            let mut written = self.writer();
            self.zone(&mut written, &origin)
        };
        let zone = match zone {
            Ok(Some(zone)) => zone,
            Ok(None) => return refuse(NOTAUTH),
            Err(error) => {
                tracing::error!(zone = %origin, "{kind}: cannot read the zone: {error}");
                return refuse(SERVFAIL);
            }
        };
        let question = Question {
            name: qname,
            qtype: RecordType::from(parsed.qtype),
        };
        let limit = message_limit(key);
        let built = if parsed.qtype == AXFR {
            axfr_messages(&zone, parsed.id, &question, limit).map(|m| (m, "full".to_string()))
        } else {
            let Some(client_serial) = parsed.client_serial.map(Serial) else {
                return refuse(FORMERR);
            };
            let current = zone.serial().unwrap_or(Serial(0));
            let (journal, client_serial) = if streams(transport) {
                (
                    self.store
                        .journal(&origin, client_serial)
                        .unwrap_or_default(),
                    client_serial,
                )
            } else {
                // Over UDP: our SOA alone; the client comes back over TCP.
                (Vec::new(), current)
            };
            ixfr_messages(&zone, &journal, client_serial, parsed.id, &question, limit)
                .map(|r| (r.messages, format!("{:?}", r.form).to_lowercase()))
        };
        match built {
            Ok((messages, form)) => {
                tracing::info!(zone = %origin, %client, messages = messages.len(),
                    "{kind} out: {form}, serial {}", zone.serial().unwrap_or(Serial(0)));
                messages
            }
            Err(error) => {
                tracing::error!(zone = %origin, "{kind}: {error}");
                refuse(SERVFAIL)
            }
        }
    }

    /// The answer to a request whose TSIG was rejected (logged, at most
    /// once per interval with a count); `None` when it cannot be built.
    fn rejected(
        &self,
        request: &[u8],
        client: SocketAddr,
        rejection: &Rejection,
        now: u64,
    ) -> Option<Vec<u8>> {
        self.refusals
            .note(format_args!("TSIG: {rejection} (from {client})"));
        let mut response = bare_response(request, 0, false);
        match rejection.answer(&mut response, now) {
            Ok(()) => Some(response),
            Err(error) => {
                tracing::warn!("TSIG error answer not built: {error}");
                None
            }
        }
    }

    /// Whether any zone takes unsigned UPDATEs from `client`.
    fn may_update_unsigned(&self, client: SocketAddr) -> bool {
        self.policy
            .unsigned
            .iter()
            .any(|(prefix, _)| prefix.contains(client.ip()))
    }

    /// What `update` answers an unsigned UPDATE from an address no rule
    /// names, without the writer lock: FORMERR when it does not parse,
    /// NOTAUTH for a zone not served, REFUSED otherwise.
    fn refuse_unsigned_update(&self, request: &[u8]) -> Vec<u8> {
        let rcode = match Update::parse(request) {
            Err(error) => error.rcode(),
            Ok(parsed) => {
                let served = self
                    .catalog
                    .load()
                    .zones()
                    .any(|zone| *zone.origin() == parsed.zone);
                if served {
                    UpdateRcode::Refused
                } else {
                    UpdateRcode::NotAuth
                }
            }
        };
        update::response(request, rcode)
    }

    /// Answers a NOTIFY: for a secondary zone, from one of its primaries
    /// (signed with its `primary_key` when it has one), a refresh now and
    /// NOERROR, else REFUSED; for a zone we are the primary of, NOERROR
    /// (nothing to fetch); NOTAUTH for a zone not served.
    fn notify_in(
        &self,
        request: &[u8],
        parsed: &Request,
        client: SocketAddr,
        key: Option<&Name>,
    ) -> Vec<u8> {
        let Some(mut name) = parsed.qname.as_deref().and_then(name_from_wire) else {
            return bare_response(request, FORMERR, false);
        };
        name = name.to_lowercase();
        name.set_fqdn(true);
        match self.secondaries.notified(&name, client, key) {
            Some(NotifyVerdict::Accepted) => return bare_response(request, 0, true),
            Some(refusal) => {
                self.refusals.note(format_args!(
                    "NOTIFY for {name} from {client} refused: {}",
                    match refusal {
                        NotifyVerdict::NotFromPrimary => "not from one of its primaries",
                        _ => "not signed with the zone's primary_key",
                    }
                ));
                return bare_response(request, REFUSED, false);
            }
            None => {}
        }
        let served = self.catalog.load().zones().any(|z| *z.origin() == name);
        match served {
            true => bare_response(request, 0, true),
            false => bare_response(request, NOTAUTH, false),
        }
    }
}

impl Primary for StorePrimary {
    /// On the receiving thread: a TSIG that does not verify is answered
    /// there (BADKEY, BADSIG, BADTIME, FORMERR, as `handle` would); an
    /// unsigned UPDATE from an address no `allow_unsigned_update_from`
    /// names is refused there; a verified signature takes the signed lane.
    fn triage(
        &self,
        request: &[u8],
        client: SocketAddr,
        _transport: Transport,
        response: &mut Vec<u8>,
    ) -> Triage {
        let Some(parsed) = Request::parse(request) else {
            return Triage::Drop;
        };
        let now = (self.clock)();
        match verify_request(request, &self.keys, now) {
            Ok(Verified::Signed(_)) => Triage::Queue(Lane::Signed),
            Ok(Verified::Unsigned) => {
                if parsed.opcode != OPCODE_UPDATE || self.may_update_unsigned(client) {
                    return Triage::Queue(Lane::Unsigned);
                }
                *response = self.refuse_unsigned_update(request);
                self.refusals.note(format_args!(
                    "UPDATE refused: unsigned from {}, which no allow_unsigned_update_from names",
                    client.ip()
                ));
                Triage::Answer
            }
            Err(rejection) => match self.rejected(request, client, &rejection, now) {
                Some(answer) => {
                    *response = answer;
                    Triage::Answer
                }
                None => Triage::Drop,
            },
        }
    }

    fn handle(
        &self,
        request: &[u8],
        client: SocketAddr,
        transport: Transport,
        responses: &mut Vec<Vec<u8>>,
    ) {
        let Some(parsed) = Request::parse(request) else {
            return;
        };
        let now = (self.clock)();
        let mut signer: Option<ResponseSigner> = match verify_request(request, &self.keys, now) {
            Ok(Verified::Unsigned) => None,
            Ok(Verified::Signed(signer)) => Some(signer),
            Err(rejection) => {
                responses.extend(self.rejected(request, client, &rejection, now));
                return;
            }
        };
        let key = signer.as_ref().map(|s| Arc::clone(s.key()));
        match parsed.opcode {
            OPCODE_UPDATE => responses.extend(self.updates(vec![(
                request,
                key.as_ref().map(|k| &k.name),
                client,
            )])),
            OPCODE_NOTIFY => responses.push(self.notify_in(
                request,
                &parsed,
                client,
                key.as_ref().map(|k| &k.name),
            )),
            OPCODE_QUERY if parsed.qtype == AXFR || parsed.qtype == IXFR => {
                responses.extend(self.transfer(request, &parsed, key.as_deref(), client, transport))
            }
            OPCODE_QUERY => {
                let mut response = Vec::new();
                if answer(&self.catalog.load(), request, transport, &mut response) {
                    if let (Transport::Udp, Some(key)) = (transport, key.as_deref()) {
                        fit_signed_udp(request, &mut response, key);
                    }
                    responses.push(response);
                }
            }
            _ => responses.push(bare_response(request, NOTIMP, false)),
        }
        if let Some(signer) = signer.as_mut() {
            sign_all(signer, responses, client, now);
        }
    }

    /// UPDATEs among the run go to the writer together (one batch when
    /// nobody else is committing), the rest are handled one by one.
    fn handle_all(
        &self,
        requests: &[(&[u8], SocketAddr)],
        transport: Transport,
        responses: &mut Vec<Vec<Vec<u8>>>,
    ) {
        responses.clear();
        responses.resize_with(requests.len(), Vec::new);
        let now = (self.clock)();
        let mut updates: Vec<(usize, Option<ResponseSigner>)> = Vec::new();
        for (index, (request, client)) in requests.iter().enumerate() {
            let update = Request::parse(request).is_some_and(|p| p.opcode == OPCODE_UPDATE);
            if !update {
                self.handle(request, *client, transport, &mut responses[index]);
                continue;
            }
            match verify_request(request, &self.keys, now) {
                Ok(Verified::Unsigned) => updates.push((index, None)),
                Ok(Verified::Signed(signer)) => updates.push((index, Some(signer))),
                Err(rejection) => {
                    responses[index].extend(self.rejected(request, *client, &rejection, now))
                }
            }
        }
        let answers = self.updates(
            updates
                .iter()
                .map(|(index, signer)| {
                    let (request, client) = requests[*index];
                    (request, signer.as_ref().map(|s| &s.key().name), client)
                })
                .collect(),
        );
        for ((index, signer), answer) in updates.into_iter().zip(answers) {
            let messages = &mut responses[index];
            messages.push(answer);
            if let Some(mut signer) = signer {
                sign_all(&mut signer, messages, requests[index].1, now);
            }
        }
    }
}

/// Signs every response message in order; cuts the list at the first that
/// cannot be signed (logged).
fn sign_all(
    signer: &mut ResponseSigner,
    responses: &mut Vec<Vec<u8>>,
    client: SocketAddr,
    now: u64,
) {
    for (index, response) in responses.iter_mut().enumerate() {
        if let Err(error) = signer.sign(response, now) {
            tracing::error!(%client, "cannot sign response message {index}: {error}");
            responses.truncate(index);
            break;
        }
    }
}

/// Makes room for the TSIG a UDP answer will carry: when the answer and
/// the signature do not fit the client's size (EDNS, else 512), the answer
/// becomes the question alone with TC set, so the client retries over TCP.
fn fit_signed_udp(request: &[u8], response: &mut Vec<u8>, key: &Key) {
    let limit = cutover_nameserver::wire::Query::parse(request)
        .and_then(|q| q.edns)
        .map_or(512, |e| usize::from(e.udp_size).clamp(512, 1232));
    if response.len() + signature_len(key) <= limit || response.len() < 12 {
        return;
    }
    let rcode = response[3] & 0x0f;
    let authoritative = response[2] & 0x04 != 0;
    *response = bare_response(request, rcode, authoritative);
    if let Some(flags) = response.get_mut(2) {
        *flags |= 0x02;
    }
}

/// A name from its uncompressed wire form.
fn name_from_wire(wire: &[u8]) -> Option<Name> {
    let mut decoder = BinDecoder::new(wire);
    Name::read(&mut decoder).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config from TOML text.
    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn the_policy_grants_what_the_config_says_and_nothing_else() {
        let config = config(
            "[dns]\nmax_update_records = 7\nmax_rrset_records = 3\n\
             [[key]]\nname = \"ops.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\
             [[key]]\nname = \"web.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\
             [[zone]]\nname = \"example.com.\"\nupdate_keys = [\"ops.\"]\n\
             allow_unsigned_update_from = [\"127.0.0.1/32\"]\n\
             [[zone.update_rule]]\nkey = \"web.\"\nnames = [\"*.web.example.com.\"]\ntypes = [\"A\"]\n",
        );
        let policy = update_policy(&config);
        assert_eq!(
            (policy.max_records, policy.max_rrset),
            (7, 3),
            "caps from [dns]"
        );
        let zone: Name = "example.com.".parse().unwrap();
        let (ops, web): (Name, Name) = ("ops.".parse().unwrap(), "web.".parse().unwrap());
        let local = "127.0.0.1".parse().unwrap();
        let remote = "192.0.2.1".parse().unwrap();
        let rules = |key: Option<&Name>, from| policy.rules_for(&zone, key, from).count();
        assert_eq!(rules(Some(&ops), remote), 1, "ops: the whole zone");
        assert_eq!(rules(None, local), 1, "unsigned from 127.0.0.1");
        assert_eq!(rules(None, remote), 0, "unsigned from elsewhere: nothing");
        let web_rule = policy.rules_for(&zone, Some(&web), remote).next().unwrap();
        let a = Some(RecordType::A);
        assert!(web_rule.allows(&"x.web.example.com.".parse().unwrap(), a));
        assert!(
            !web_rule.allows(&"www.example.com.".parse().unwrap(), a),
            "outside *.web"
        );
        assert!(
            !web_rule.allows(
                &"x.web.example.com.".parse().unwrap(),
                Some(RecordType::TXT)
            ),
            "A only"
        );
    }

    #[test]
    fn a_signed_udp_answer_that_would_not_fit_is_truncated_to_the_question() {
        let key = Key::from_text("k.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
        let mut request = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        request.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
        let mut small = bare_response(&request, 0, true);
        small.extend_from_slice(&[0; 100]);
        let before = small.clone();
        fit_signed_udp(&request, &mut small, &key);
        assert_eq!(small, before, "100 bytes and a signature fit 512");
        let mut large = bare_response(&request, 0, true);
        large.extend_from_slice(&[0; 480]);
        fit_signed_udp(&request, &mut large, &key);
        assert_eq!(large.len(), request.len(), "question only");
        assert_eq!(large[2] & 0x02, 0x02, "TC set");
        assert_eq!(large[2] & 0x04, 0x04, "AA kept");
    }
}
