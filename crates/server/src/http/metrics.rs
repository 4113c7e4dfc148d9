//! `GET /metrics`: the Prometheus text format (0.0.4), written by
//! `prometheus-client` (the Prometheus project's Rust client) from values
//! read at scrape time.
//!
//! ```text
//!  nameserver::metrics::totals() ─────┐  (per-thread relaxed counters, summed here:
//!  the control plane's bounds ────────┤   the answer path never sees a scrape)
//!  Store::zones() (serial, records) ──┼─▶ one Collector each ─▶ Registry ─▶ text
//!  MailControl::metrics() ([mail]) ───┤
//!  Migrations: states, step outcomes ─┘
//! ```
//!
//! Every value is a snapshot taken for the scrape, so each part is a
//! [`Collector`] writing constant metrics rather than live counters kept
//! twice. Only non-zero RCODE series are written, except NOERROR which is
//! always there, so a dashboard has a series to start from.
//!
//! Every label comes from a bounded set:
//!
//! - `transport` (udp, tcp), `rcode` (the 16 of the header), `action`
//!   (slip, drop), `kind` (update, transfer, notify): fixed by the protocol;
//! - `state` and `outcome`: the engine's enums; `step`: the step kinds the
//!   runner records (the plan's nine and the rollback's two), never a
//!   migration's id or file;
//! - `zone` (`cutover_zone_serial`, `cutover_zone_records`): one series per
//!   zone in the store, the set the operator imported (the API has no route
//!   that creates a zone), gone from the next scrape when the zone is
//!   deleted. Mail domains, tokens and addresses are never labels.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use cutover_mail::control::MetricsView;
use cutover_migrate::runner::StepOutcome;
use cutover_nameserver::metrics::{rcode_name, totals, Totals, RCODES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::blocking::blocking;
use super::control::Control;

/// One labelled series: its label pairs and its value.
type Series<const N: usize> = ([(&'static str, String); N], u64);

/// Writes a metric without labels. `name` is the family's name: a counter's
/// `_total` is added by the encoder.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(metric),
        _ => ConstGauge::new(value).encode(metric),
    }
}

/// Writes a metric family, one series per label set.
fn family<const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = Series<N>>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let labels: [(&str, &str); N] = labels.each_ref().map(|(k, v)| (*k, v.as_str()));
        let one = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(one)?,
            _ => ConstGauge::new(value).encode(one)?,
        }
    }
    Ok(())
}

/// The series of one counter array by RCODE, `extra` labels first; zero
/// RCODEs other than NOERROR left out.
fn by_rcode<'a, const N: usize, const M: usize>(
    extra: [(&'static str, &'static str); N],
    counts: &'a [u64; RCODES],
) -> impl Iterator<Item = Series<M>> + 'a {
    counts
        .iter()
        .enumerate()
        .filter(|(rcode, count)| **count > 0 || *rcode == 0)
        .map(move |(rcode, count)| {
            let mut labels: [(&'static str, String); M] =
                std::array::from_fn(|_| ("", String::new()));
            for (slot, (key, value)) in labels.iter_mut().zip(extra) {
                *slot = (key, value.to_owned());
            }
            labels[M - 1] = ("rcode", rcode_name(rcode).to_owned());
            (labels, *count)
        })
}

/// The control plane itself: up, and for how long.
#[derive(Debug)]
struct Process {
    /// Seconds since the control plane started.
    uptime: u64,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        single(
            &mut encoder,
            "cutover_up",
            "1 while the control plane answers.",
            MetricType::Gauge,
            1,
        )?;
        single(
            &mut encoder,
            "cutover_uptime_seconds",
            "Seconds since the control plane started.",
            MetricType::Gauge,
            self.uptime,
        )
    }
}

/// The nameserver's counters, summed over its threads for this scrape.
#[derive(Debug)]
pub struct Nameserver(pub Totals);

impl Collector for Nameserver {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = &self.0;
        family(
            &mut encoder,
            "cutover_dns_answers",
            "Answers given by the nameserver, by transport and RCODE.",
            MetricType::Counter,
            by_rcode::<1, 2>([("transport", "udp")], &totals.udp)
                .chain(by_rcode::<1, 2>([("transport", "tcp")], &totals.tcp)),
        )?;
        family(
            &mut encoder,
            "cutover_dns_rrl",
            "UDP answers limited by response rate limiting.",
            MetricType::Counter,
            [
                ([("action", "slip".to_owned())], totals.rrl_slipped),
                ([("action", "drop".to_owned())], totals.rrl_dropped),
            ],
        )?;
        for (name, help, counts) in [
            (
                "cutover_dns_updates",
                "RFC 2136 UPDATEs, by RCODE of the answer.",
                &totals.updates,
            ),
            (
                "cutover_dns_transfers",
                "AXFR/IXFR requests, by RCODE of the first answer.",
                &totals.transfers,
            ),
            (
                "cutover_dns_notifies",
                "NOTIFYs received, by RCODE of the answer.",
                &totals.notifies,
            ),
        ] {
            family(
                &mut encoder,
                name,
                help,
                MetricType::Counter,
                by_rcode::<0, 1>([], counts),
            )?;
        }
        family(
            &mut encoder,
            "cutover_dns_unanswered",
            "Routed requests that got no answer, by kind.",
            MetricType::Counter,
            ["update", "transfer", "notify"]
                .into_iter()
                .zip(totals.silent)
                .map(|(kind, count)| ([("kind", kind.to_owned())], count)),
        )?;
        single(
            &mut encoder,
            "cutover_update_batches",
            "Write transactions (one fsync each) that committed a batch of UPDATEs.",
            MetricType::Counter,
            totals.update_batches,
        )?;
        single(
            &mut encoder,
            "cutover_updates_committed",
            "UPDATEs that changed a zone, counted in the batch that committed them.",
            MetricType::Counter,
            totals.updates_committed,
        )?;
        single(
            &mut encoder,
            "cutover_updates_waiting",
            "UPDATEs queued for the writer and not answered yet.",
            MetricType::Gauge,
            totals.updates_waiting,
        )
    }
}

/// The control plane's own bounds: connections and probes.
#[derive(Debug)]
struct Http {
    /// Connections open.
    open: u64,
    /// Connections refused at the cap.
    refused: u64,
    /// Idle connections closed to make room.
    evicted: u64,
    /// Probes running.
    probes: u64,
    /// Requests answered 429.
    too_many: u64,
}

impl Collector for Http {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, kind, help, value) in [
            (
                "cutover_http_connections",
                MetricType::Gauge,
                "Connections open to the control plane.",
                self.open,
            ),
            (
                "cutover_http_connections_refused",
                MetricType::Counter,
                "Connections refused at [http] max_connections, every open one busy.",
                self.refused,
            ),
            (
                "cutover_http_connections_evicted",
                MetricType::Counter,
                "Idle connections closed to make room at [http] max_connections.",
                self.evicted,
            ),
            (
                "cutover_http_probes_running",
                MetricType::Gauge,
                "Probes running through the API (admin tokens' not counted).",
                self.probes,
            ),
            (
                "cutover_http_too_many_requests",
                MetricType::Counter,
                "Requests refused with 429 (over a token's or the total work bound).",
                self.too_many,
            ),
        ] {
            single(&mut encoder, name, help, kind, value)?;
        }
        Ok(())
    }
}

/// The migrations in the store: by state, overdue, step attempts.
#[derive(Debug, Default)]
pub struct MigrationCounts {
    /// How many are in each state, every state listed.
    pub states: Vec<(String, u64)>,
    /// How many are overdue.
    pub overdue: u64,
    /// Step attempts by step and outcome.
    pub steps: Vec<(String, StepOutcome, u64)>,
}

impl MigrationCounts {
    /// Reads the migrations of the store at `store`; `None` when it cannot.
    pub fn read(store: &std::path::Path, now: jiff::Timestamp) -> Option<MigrationCounts> {
        let migrations = cutover_migrate::Migrations::open(store).ok()?;
        let list = migrations.list().ok()?;
        let states = cutover_migrate::State::ALL
            .into_iter()
            .map(|state| {
                let count = list.iter().filter(|s| s.state == state).count();
                (state.to_string(), count as u64)
            })
            .collect();
        let overdue = list
            .iter()
            .filter(|s| {
                let carrier = crate::scheduler::presence::carrier(store, s.id);
                s.next_due.is_some_and(|due| due <= now)
                    && crate::scheduler::presence::attention(s, carrier, now).is_some()
            })
            .count() as u64;
        let steps = migrations.step_counts().unwrap_or_default();
        Some(MigrationCounts {
            states,
            overdue,
            steps,
        })
    }
}

impl Collector for MigrationCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            &mut encoder,
            "cutover_migrations",
            "Migrations in the store, by state.",
            MetricType::Gauge,
            self.states
                .iter()
                .map(|(state, count)| ([("state", state.clone())], *count)),
        )?;
        single(
            &mut encoder,
            "cutover_migrations_overdue",
            "Migrations whose next step is overdue: nothing runs them, or the runner has not for a minute.",
            MetricType::Gauge,
            self.overdue,
        )?;
        family(
            &mut encoder,
            "cutover_migration_steps",
            "Step attempts over every migration, by step and outcome (done, skipped, waiting, retrying, failed; verify_* are the probe results).",
            MetricType::Counter,
            self.steps.iter().map(|(step, outcome, count)| {
                (
                    [("step", step.clone()), ("outcome", outcome.to_string())],
                    *count,
                )
            }),
        )
    }
}

/// The `cutover agent`s by location, online and offline, and the jobs
/// queued again after a lease passed.
#[derive(Debug)]
struct Agents {
    /// (location, state, count).
    counts: Vec<(String, &'static str, u64)>,
    /// Jobs queued again since serve started.
    requeued: u64,
}

impl Collector for Agents {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            &mut encoder,
            "cutover_agents",
            "Agents that polled since serve started, by location and state (online; offline: silent past [agents] offline_after, never counted as agreeing).",
            MetricType::Gauge,
            self.counts.iter().map(|(location, state, count)| {
                (
                    [("location", location.clone()), ("state", state.to_string())],
                    *count,
                )
            }),
        )?;
        single(
            &mut encoder,
            "cutover_agent_jobs_requeued",
            "Agent jobs queued again because their lease passed without a result.",
            MetricType::Counter,
            self.requeued,
        )
    }
}

/// The zones in the store: serial and size of each.
#[derive(Debug)]
struct Zones(Vec<(String, u64, u64)>);

impl Collector for Zones {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            &mut encoder,
            "cutover_zone_serial",
            "The current SOA serial of each zone in the store.",
            MetricType::Gauge,
            self.0
                .iter()
                .map(|(zone, serial, _)| ([("zone", zone.clone())], *serial)),
        )?;
        family(
            &mut encoder,
            "cutover_zone_records",
            "Records of each zone in the store.",
            MetricType::Gauge,
            self.0
                .iter()
                .map(|(zone, _, records)| ([("zone", zone.clone())], *records)),
        )
    }
}

/// Each secondary zone's last successful check of its primary.
#[derive(Debug)]
struct Secondaries(Vec<(String, i64)>);

impl Collector for Secondaries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        family(
            &mut encoder,
            "cutover_secondary_last_success_timestamp_seconds",
            "Unix time of each secondary zone's last successful check of its primary (up to date, or a transfer stored); the SOA expire counts from it.",
            MetricType::Gauge,
            self.0
                .iter()
                .map(|(zone, at)| ([("zone", zone.clone())], u64::try_from(*at).unwrap_or(0))),
        )
    }
}

/// The mail relay's counters, or that none runs on the spool.
#[derive(Debug)]
struct Mail(Option<MetricsView>);

/// What `cutover_mail_relay_running` says.
const RELAY_RUNNING: &str = "1 when a relay runs on the spool.";

impl Collector for Mail {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(mail) = &self.0 else {
            return single(
                &mut encoder,
                "cutover_mail_relay_running",
                RELAY_RUNNING,
                MetricType::Gauge,
                0,
            );
        };
        for (name, kind, help, value) in [
            (
                "cutover_mail_accepted",
                MetricType::Counter,
                "Messages accepted by the relay since it started.",
                mail.accepted,
            ),
            (
                "cutover_mail_delivered",
                MetricType::Counter,
                "Recipients delivered since the relay started.",
                mail.delivered,
            ),
            (
                "cutover_mail_deferred",
                MetricType::Counter,
                "Recipient attempts deferred since the relay started.",
                mail.deferred,
            ),
            (
                "cutover_mail_bounced",
                MetricType::Counter,
                "Recipients failed for good since the relay started.",
                mail.bounced,
            ),
            (
                "cutover_mail_queued",
                MetricType::Gauge,
                "Messages in the queue now.",
                mail.queued,
            ),
            (
                "cutover_mail_oldest_seconds",
                MetricType::Gauge,
                "Age of the oldest queued message.",
                mail.oldest_seconds,
            ),
            (
                "cutover_mail_relay_running",
                MetricType::Gauge,
                RELAY_RUNNING,
                u64::from(mail.running),
            ),
        ] {
            single(&mut encoder, name, help, kind, value)?;
        }
        Ok(())
    }
}

/// Writes the registry in the Prometheus text format.
fn text(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        // Writing to a String fails only if a collector does.
        tracing::warn!("metrics: the exposition could not be written: {error}");
    }
    out
}

/// `GET /metrics`.
pub async fn scrape(State(control): State<Control>) -> Response {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Process {
        uptime: control.started.elapsed().as_secs(),
    }));
    registry.register_collector(Box::new(Nameserver(totals())));
    let mut counts: std::collections::BTreeMap<(String, &'static str), u64> =
        std::collections::BTreeMap::new();
    for row in control.agents.agents() {
        let location = row.location.clone();
        counts.entry((location.clone(), "online")).or_default();
        counts.entry((location.clone(), "offline")).or_default();
        *counts
            .entry((location, if row.online { "online" } else { "offline" }))
            .or_default() += 1;
    }
    registry.register_collector(Box::new(Agents {
        counts: counts.into_iter().map(|((l, s), c)| (l, s, c)).collect(),
        requeued: control.agents.requeued(),
    }));
    let (open, refused, evicted) = control.connections.counts();
    let (probes, too_many) = control.budget.counts();
    registry.register_collector(Box::new(Http {
        open: open as u64,
        refused,
        evicted,
        probes: probes as u64,
        too_many,
    }));

    let store = control.store.clone();
    let spool = control.mail_spool.clone();
    let gathered = blocking(move || {
        let zones = store.zones().ok();
        let secondaries = store.secondary_checks().ok();
        let mail = spool.map(|spool| cutover_mail::MailControl::new(spool).metrics());
        let migrations = MigrationCounts::read(store.path(), jiff::Timestamp::now());
        Ok((zones, secondaries, mail, migrations))
    })
    .await;
    if let Ok((zones, secondaries, mail, migrations)) = gathered {
        if let Some(checks) = secondaries.filter(|c| !c.is_empty()) {
            registry.register_collector(Box::new(Secondaries(
                checks
                    .into_iter()
                    .map(|(zone, at)| (zone.to_string(), at.as_second()))
                    .collect(),
            )));
        }
        if let Some(migrations) = migrations {
            registry.register_collector(Box::new(migrations));
        }
        if let Some(zones) = zones {
            registry.register_collector(Box::new(Zones(
                zones
                    .iter()
                    .map(|zone| {
                        (
                            zone.origin.to_string(),
                            u64::from(zone.serial.0),
                            zone.records,
                        )
                    })
                    .collect(),
            )));
        }
        match mail {
            Some(Ok(mail)) => registry.register_collector(Box::new(Mail(Some(mail)))),
            Some(Err(error)) => {
                tracing::debug!("mail metrics unavailable: {error}");
                registry.register_collector(Box::new(Mail(None)));
            }
            None => {}
        }
    }
    (
        [(
            CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text(&registry),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of one collector.
    fn exposition(collector: impl Collector) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        text(&registry)
    }

    #[test]
    fn the_text_has_a_series_per_nonzero_rcode() {
        let mut totals = Totals::default();
        totals.udp[0] = 5;
        totals.udp[3] = 2;
        totals.tcp[5] = 1;
        totals.rrl_dropped = 7;
        totals.updates[9] = 1;
        let out = exposition(Nameserver(totals));
        for line in [
            "# TYPE cutover_dns_answers_total counter",
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"} 5",
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NXDOMAIN\"} 2",
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"REFUSED\"} 1",
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"NOERROR\"} 0",
            "cutover_dns_rrl_total{action=\"drop\"} 7",
            "cutover_dns_updates_total{rcode=\"NOTAUTH\"} 1",
            "cutover_dns_unanswered_total{kind=\"notify\"} 0",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "expected the line {line:?}, seen:\n{out}"
            );
        }
        assert!(
            !out.contains("SERVFAIL"),
            "expected no zero SERVFAIL series, seen:\n{out}"
        );
    }

    #[test]
    fn every_metric_keeps_its_name_type_and_help() {
        let mail = MetricsView {
            accepted: 3,
            delivered: 2,
            deferred: 1,
            bounced: 0,
            queued: 1,
            oldest_seconds: 9,
            running: true,
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Process { uptime: 4 }));
        registry.register_collector(Box::new(Nameserver(Totals::default())));
        registry.register_collector(Box::new(Http {
            open: 1,
            refused: 2,
            evicted: 3,
            probes: 0,
            too_many: 5,
        }));
        registry.register_collector(Box::new(MigrationCounts {
            states: vec![("done".into(), 1)],
            overdue: 0,
            steps: vec![("switch".into(), StepOutcome::Done, 1)],
        }));
        registry.register_collector(Box::new(Zones(vec![(
            "example.test.".into(),
            2026112601,
            5,
        )])));
        registry.register_collector(Box::new(Mail(Some(mail))));
        registry.register_collector(Box::new(Secondaries(vec![(
            "example.test.".into(),
            1_780_000_000,
        )])));
        let out = text(&registry);
        // The names, types and one series of each, as dashboards know them.
        for (name, kind, series) in [
            (
                "cutover_secondary_last_success_timestamp_seconds",
                "gauge",
                "cutover_secondary_last_success_timestamp_seconds{zone=\"example.test.\"} 1780000000",
            ),
            ("cutover_up", "gauge", "cutover_up 1"),
            (
                "cutover_uptime_seconds",
                "gauge",
                "cutover_uptime_seconds 4",
            ),
            (
                "cutover_dns_answers_total",
                "counter",
                "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"} 0",
            ),
            (
                "cutover_dns_rrl_total",
                "counter",
                "cutover_dns_rrl_total{action=\"slip\"} 0",
            ),
            (
                "cutover_dns_updates_total",
                "counter",
                "cutover_dns_updates_total{rcode=\"NOERROR\"} 0",
            ),
            (
                "cutover_dns_transfers_total",
                "counter",
                "cutover_dns_transfers_total{rcode=\"NOERROR\"} 0",
            ),
            (
                "cutover_dns_notifies_total",
                "counter",
                "cutover_dns_notifies_total{rcode=\"NOERROR\"} 0",
            ),
            (
                "cutover_dns_unanswered_total",
                "counter",
                "cutover_dns_unanswered_total{kind=\"update\"} 0",
            ),
            (
                "cutover_http_connections",
                "gauge",
                "cutover_http_connections 1",
            ),
            (
                "cutover_http_connections_refused_total",
                "counter",
                "cutover_http_connections_refused_total 2",
            ),
            (
                "cutover_http_connections_evicted_total",
                "counter",
                "cutover_http_connections_evicted_total 3",
            ),
            (
                "cutover_http_probes_running",
                "gauge",
                "cutover_http_probes_running 0",
            ),
            (
                "cutover_http_too_many_requests_total",
                "counter",
                "cutover_http_too_many_requests_total 5",
            ),
            (
                "cutover_migrations",
                "gauge",
                "cutover_migrations{state=\"done\"} 1",
            ),
            (
                "cutover_migrations_overdue",
                "gauge",
                "cutover_migrations_overdue 0",
            ),
            (
                "cutover_migration_steps_total",
                "counter",
                "cutover_migration_steps_total{step=\"switch\",outcome=\"done\"} 1",
            ),
            (
                "cutover_zone_serial",
                "gauge",
                "cutover_zone_serial{zone=\"example.test.\"} 2026112601",
            ),
            (
                "cutover_zone_records",
                "gauge",
                "cutover_zone_records{zone=\"example.test.\"} 5",
            ),
            (
                "cutover_mail_accepted_total",
                "counter",
                "cutover_mail_accepted_total 3",
            ),
            (
                "cutover_mail_delivered_total",
                "counter",
                "cutover_mail_delivered_total 2",
            ),
            (
                "cutover_mail_deferred_total",
                "counter",
                "cutover_mail_deferred_total 1",
            ),
            (
                "cutover_mail_bounced_total",
                "counter",
                "cutover_mail_bounced_total 0",
            ),
            ("cutover_mail_queued", "gauge", "cutover_mail_queued 1"),
            (
                "cutover_mail_oldest_seconds",
                "gauge",
                "cutover_mail_oldest_seconds 9",
            ),
            (
                "cutover_mail_relay_running",
                "gauge",
                "cutover_mail_relay_running 1",
            ),
        ] {
            for line in [format!("# TYPE {name} {kind}"), series.to_owned()] {
                assert!(
                    out.lines().any(|l| l == line),
                    "expected the line {line:?}, seen:\n{out}"
                );
            }
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("# HELP {name} ")) && !l.ends_with("..")),
                "expected a help line for {name}, seen:\n{out}"
            );
        }
        assert!(
            !out.contains("# EOF") && !out.contains("# UNIT"),
            "expected the 0.0.4 text format, not OpenMetrics, seen:\n{out}"
        );
    }

    #[test]
    fn no_relay_reads_as_not_running() {
        assert_eq!(
            exposition(Mail(None)),
            "# HELP cutover_mail_relay_running 1 when a relay runs on the spool.\n\
             # TYPE cutover_mail_relay_running gauge\n\
             cutover_mail_relay_running 0\n",
            "expected the one gauge at 0"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let out = exposition(Zones(vec![("we\"ird\\.".into(), 1, 1)]));
        assert!(
            out.contains("cutover_zone_serial{zone=\"we\\\"ird\\\\.\"} 1"),
            "expected the quote and backslash escaped, seen:\n{out}"
        );
    }
}
