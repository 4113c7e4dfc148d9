//! `GET /metrics`: Prometheus text exposition (format 0.0.4).
//!
//! ```text
//!  cutover_nameserver::metrics::totals() ─┐
//!  Store::zones() (serial, records) ──────┼─▶ exposition text
//!  MailControl::metrics() (when [mail]) ──┤
//!  Migrations: states, step outcomes ─────┘  (bounded labels: no migration id, no zone)
//! ```
//!
//! Only non-zero RCODE series are written, except NOERROR which is always
//! there, so a dashboard has a series to start from.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use cutover_nameserver::metrics::{rcode_name, totals, Totals, RCODES};

use super::{blocking, Control};

/// One metric family's header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Series by RCODE of one counter array.
fn by_rcode(out: &mut String, name: &str, extra: &str, counts: &[u64; RCODES]) {
    for (rcode, &count) in counts.iter().enumerate() {
        if count > 0 || rcode == 0 {
            let _ = writeln!(
                out,
                "{name}{{{extra}rcode=\"{}\"}} {count}",
                rcode_name(rcode)
            );
        }
    }
}

/// The nameserver's counters as exposition text.
pub fn nameserver_text(out: &mut String, totals: &Totals) {
    family(
        out,
        "cutover_dns_answers_total",
        "counter",
        "Answers given by the nameserver, by transport and RCODE.",
    );
    by_rcode(
        out,
        "cutover_dns_answers_total",
        "transport=\"udp\",",
        &totals.udp,
    );
    by_rcode(
        out,
        "cutover_dns_answers_total",
        "transport=\"tcp\",",
        &totals.tcp,
    );
    family(
        out,
        "cutover_dns_rrl_total",
        "counter",
        "UDP answers limited by response rate limiting.",
    );
    let _ = writeln!(
        out,
        "cutover_dns_rrl_total{{action=\"slip\"}} {}",
        totals.rrl_slipped
    );
    let _ = writeln!(
        out,
        "cutover_dns_rrl_total{{action=\"drop\"}} {}",
        totals.rrl_dropped
    );
    family(
        out,
        "cutover_dns_updates_total",
        "counter",
        "RFC 2136 UPDATEs, by RCODE of the answer.",
    );
    by_rcode(out, "cutover_dns_updates_total", "", &totals.updates);
    family(
        out,
        "cutover_dns_transfers_total",
        "counter",
        "AXFR/IXFR requests, by RCODE of the first answer.",
    );
    by_rcode(out, "cutover_dns_transfers_total", "", &totals.transfers);
    family(
        out,
        "cutover_dns_notifies_total",
        "counter",
        "NOTIFYs received, by RCODE of the answer.",
    );
    by_rcode(out, "cutover_dns_notifies_total", "", &totals.notifies);
    family(
        out,
        "cutover_dns_unanswered_total",
        "counter",
        "Routed requests that got no answer, by kind.",
    );
    for (kind, count) in ["update", "transfer", "notify"].iter().zip(totals.silent) {
        let _ = writeln!(
            out,
            "cutover_dns_unanswered_total{{kind=\"{kind}\"}} {count}"
        );
    }
}

/// The migrations as exposition text, with labels from bounded sets only
/// (a migration's id or zone is never a label: the series would grow
/// with every migration ever started):
///
/// - `cutover_migrations{state}`: how many are in each state (every state,
///   zeros included);
/// - `cutover_migration_steps_total{step, outcome}`: step attempts over
///   every migration by how they ended — done, skipped, waiting, retrying,
///   failed (counted from the append-only events, so they only grow; the
///   outcomes of `verify_new` and `verify_switch` are the probe results);
/// - `cutover_migrations_overdue`: migrations whose next step is overdue
///   (nothing runs them, or a runner has not for more than a minute).
pub fn migration_text(store: &std::path::Path, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let Ok(migrations) = cutover_migrate::Migrations::open(store) else {
        return out;
    };
    let Ok(list) = migrations.list() else {
        return out;
    };
    family(
        &mut out,
        "cutover_migrations",
        "gauge",
        "Migrations in the store, by state.",
    );
    for state in cutover_migrate::State::ALL {
        let count = list.iter().filter(|s| s.state == state).count();
        let _ = writeln!(out, "cutover_migrations{{state=\"{state}\"}} {count}");
    }
    family(
        &mut out,
        "cutover_migrations_overdue",
        "gauge",
        "Migrations whose next step is overdue: nothing runs them, or the runner has not for a minute.",
    );
    let overdue = list
        .iter()
        .filter(|s| {
            let carrier = crate::scheduler::presence::carrier(store, s.id);
            s.next_due.is_some_and(|due| due <= now)
                && crate::scheduler::presence::attention(s, carrier, now).is_some()
        })
        .count();
    let _ = writeln!(out, "cutover_migrations_overdue {overdue}");
    family(
        &mut out,
        "cutover_migration_steps_total",
        "counter",
        "Step attempts over every migration, by step and outcome (done, skipped, waiting, retrying, failed; verify_* are the probe results).",
    );
    if let Ok(counts) = migrations.step_counts() {
        for (step, outcome, count) in counts {
            let _ = writeln!(
                out,
                "cutover_migration_steps_total{{step=\"{}\",outcome=\"{outcome}\"}} {count}",
                label(&step)
            );
        }
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The control plane's own bounds: connections and probes.
fn http_text(out: &mut String, control: &Control) {
    let (open, refused, evicted) = control.connections.counts();
    let (probes, too_many) = control.budget.counts();
    for (name, kind, help, value) in [
        (
            "cutover_http_connections",
            "gauge",
            "Connections open to the control plane.",
            open as u64,
        ),
        (
            "cutover_http_connections_refused_total",
            "counter",
            "Connections refused at [http] max_connections, every open one busy.",
            refused,
        ),
        (
            "cutover_http_connections_evicted_total",
            "counter",
            "Idle connections closed to make room at [http] max_connections.",
            evicted,
        ),
        (
            "cutover_http_probes_running",
            "gauge",
            "Probes running through the API (admin tokens' not counted).",
            probes as u64,
        ),
        (
            "cutover_http_too_many_requests_total",
            "counter",
            "Requests refused with 429 (over a token's or the total work bound).",
            too_many,
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `GET /metrics`.
pub async fn scrape(State(control): State<Control>) -> Response {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "cutover_up",
        "gauge",
        "1 while the control plane answers.",
    );
    out.push_str("cutover_up 1\n");
    family(
        &mut out,
        "cutover_uptime_seconds",
        "gauge",
        "Seconds since the control plane started.",
    );
    let _ = writeln!(
        out,
        "cutover_uptime_seconds {}",
        control.started.elapsed().as_secs()
    );
    nameserver_text(&mut out, &totals());
    http_text(&mut out, &control);

    let store = control.store.clone();
    let spool = control.mail_spool.clone();
    let gathered = blocking(move || {
        let zones = store.zones().ok();
        let mail = spool.map(|spool| cutover_mail::MailControl::new(spool).metrics());
        let migrations = migration_text(store.path(), jiff::Timestamp::now());
        Ok((zones, mail, migrations))
    })
    .await;
    if let Ok((zones, mail, migrations)) = gathered {
        out.push_str(&migrations);
        if let Some(zones) = zones {
            family(
                &mut out,
                "cutover_zone_serial",
                "gauge",
                "The current SOA serial of each zone in the store.",
            );
            for zone in &zones {
                let _ = writeln!(
                    out,
                    "cutover_zone_serial{{zone=\"{}\"}} {}",
                    label(&zone.origin.to_string()),
                    zone.serial.0
                );
            }
            family(
                &mut out,
                "cutover_zone_records",
                "gauge",
                "Records of each zone in the store.",
            );
            for zone in &zones {
                let _ = writeln!(
                    out,
                    "cutover_zone_records{{zone=\"{}\"}} {}",
                    label(&zone.origin.to_string()),
                    zone.records
                );
            }
        }
        match mail {
            Some(Ok(mail)) => {
                let series: [(&str, &str, &str, u64); 7] = [
                    (
                        "cutover_mail_accepted_total",
                        "counter",
                        "Messages accepted by the relay since it started.",
                        mail.accepted,
                    ),
                    (
                        "cutover_mail_delivered_total",
                        "counter",
                        "Recipients delivered since the relay started.",
                        mail.delivered,
                    ),
                    (
                        "cutover_mail_deferred_total",
                        "counter",
                        "Recipient attempts deferred since the relay started.",
                        mail.deferred,
                    ),
                    (
                        "cutover_mail_bounced_total",
                        "counter",
                        "Recipients failed for good since the relay started.",
                        mail.bounced,
                    ),
                    (
                        "cutover_mail_queued",
                        "gauge",
                        "Messages in the queue now.",
                        mail.queued,
                    ),
                    (
                        "cutover_mail_oldest_seconds",
                        "gauge",
                        "Age of the oldest queued message.",
                        mail.oldest_seconds,
                    ),
                    (
                        "cutover_mail_relay_running",
                        "gauge",
                        "1 when a relay runs on the spool.",
                        u64::from(mail.running),
                    ),
                ];
                for (name, kind, help, value) in series {
                    family(&mut out, name, kind, help);
                    let _ = writeln!(out, "{name} {value}");
                }
            }
            Some(Err(error)) => {
                tracing::debug!("mail metrics unavailable: {error}");
                family(
                    &mut out,
                    "cutover_mail_relay_running",
                    "gauge",
                    "1 when a relay runs on the spool.",
                );
                out.push_str("cutover_mail_relay_running 0\n");
            }
            None => {}
        }
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_a_series_per_nonzero_rcode() {
        let mut totals = Totals::default();
        totals.udp[0] = 5;
        totals.udp[3] = 2;
        totals.tcp[5] = 1;
        totals.rrl_dropped = 7;
        let mut out = String::new();
        nameserver_text(&mut out, &totals);
        for line in [
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"} 5",
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NXDOMAIN\"} 2",
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"REFUSED\"} 1",
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"NOERROR\"} 0",
            "cutover_dns_rrl_total{action=\"drop\"} 7",
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
}
