//! Zero downtime, measured: a client resolving through Unbound and
//! requesting every 50 ms while cutover moves www from the old server
//! (127.0.0.2) to the new one (127.0.0.3), with times scaled down
//! (original TTL 10 s, lowered to 2 s).
//!
//! ```text
//!  client ──50 ms──▶ Unbound (cache) ──stub──▶ cutover serve ◀── scheduler runs the migration
//!     └──GET /──▶ old 127.0.0.2 │ new 127.0.0.3   (same port)
//! ```
//!
//! Four runs: the migration (no failed request; every request on the new
//! server within the lowered TTL + 1 s of the switch; the old one still
//! answering until then), the naive switch (`cutover record set` with the
//! original TTL: convergence ≈ the original TTL, printed), a migration
//! whose new server fails its health check after the switch (automatic
//! rollback, still no failed request), and a migration that flushes Unbound
//! through its control channel once the switch is served (clients move
//! within the retry interval instead of the low TTL).

mod migration;

use std::net::IpAddr;
use std::time::Duration;

use migration::*;

/// The original TTL of www, scaled down from an hour.
const ORIGINAL_TTL: u32 = 10;

/// The old and the new web server, on one port of their own addresses,
/// bound and held here before they serve.
fn old_and_new() -> (u16, HttpServer, HttpServer) {
    let [old, new]: [std::net::TcpListener; 2] = hold_tcp(&[OLD.octets(), NEW.octets()])
        .try_into()
        .expect("two listeners");
    let port = old.local_addr().expect("a bound listener").port();
    (
        port,
        HttpServer::start(old, "old"),
        HttpServer::start(new, "new"),
    )
}

/// Waits (at most 60 s) until migration `id` is done, failed, rolled back
/// or paused; its summary.
fn until_it_stops(site: &Site, id: i64) -> serde_json::Value {
    wait_state(
        site,
        id,
        &["done", "failed", "rolled_back", "paused"],
        Duration::from_secs(60),
    )
}

/// The naive switch: the cache keeps sending clients to the old server for
/// as long as the original TTL, measured from a fresh cache entry.
#[test]
fn a_naive_switch_takes_the_original_ttl_to_converge() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::new(ORIGINAL_TTL);
    let _serve = site.serve(&[]);
    let cache = unbound(&runtime, site.addr);
    let (port, old, new) = old_and_new();
    let client = Client::start(cache.addr, site.addr, port);

    // Switch right after the cache fetched www afresh (TTL left = the original).
    wait_for(
        &client,
        Duration::from_secs(15),
        "a fresh cache entry",
        |s| {
            s.last()
                .is_some_and(|s| matches!(s.resolved, Ok((_, ttl)) if ttl == ORIGINAL_TTL))
        },
    );
    let store = arg(&site.store);
    ok(
        "record set",
        cutover(
            &[
                "--store",
                &store,
                "record",
                "set",
                "example.test.",
                "www",
                "A",
                &NEW.to_string(),
            ],
            &[],
        ),
    );
    let switched_from = client.samples().last().map(|s| s.at).unwrap_or_default();
    wait_for(
        &client,
        Duration::from_secs(u64::from(ORIGINAL_TTL) + 5),
        "the client reaching the new server",
        |s| {
            s.last()
                .is_some_and(|s| s.served_by.as_deref() == Ok("new"))
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let samples = client.finish();
    let switch = switched_at(&samples, IpAddr::V4(NEW), switched_from)
        .expect("the authoritative server answered the new address");
    let last_old = last_served_by(&samples, "old", Duration::MAX).expect("old served");
    let convergence = last_old.saturating_sub(switch);
    println!(
        "naive switch: clients kept reaching the old server for {:.1} s after the switch (original TTL {ORIGINAL_TTL} s)",
        convergence.as_secs_f64()
    );
    assert!(
        failures(&samples).is_empty(),
        "expected no failed request, saw {:?}",
        failures(&samples)
    );
    let ttl = f64::from(ORIGINAL_TTL);
    assert!(
        convergence.as_secs_f64() >= ttl - 2.0 && convergence.as_secs_f64() <= ttl + 1.0,
        "expected a convergence of about {ttl} s (the original TTL), saw {convergence:.2?}"
    );
    assert!(
        old.served() > 0 && new.served() > 0,
        "both servers served: old {}, new {}",
        old.served(),
        new.served()
    );
}

/// The migration: lower, wait, verify the new server, switch, verify,
/// observe, restore, run by `cutover serve`'s scheduler, with no failed
/// request and every client on the new server within the low TTL + 1 s.
#[test]
fn a_migration_moves_every_client_within_the_low_ttl_and_none_fails() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::new(ORIGINAL_TTL);
    let _serve = site.serve(&[]);
    let cache = unbound(&runtime, site.addr);
    let (port, old, new) = old_and_new();
    let client = Client::start(cache.addr, site.addr, port);
    wait_for(
        &client,
        Duration::from_secs(5),
        "the client served by old",
        |s| s.iter().any(|s| s.served_by.as_deref() == Ok("old")),
    );

    let file = site.migration_file(&migration_text(site.addr, cache.addr, port));
    let id = start(&site, &file);
    let summary = until_it_stops(&site, id);
    std::thread::sleep(Duration::from_secs(1));
    let samples = client.finish();
    assert_eq!(
        summary["state"],
        "done",
        "expected the migration done, saw {summary}; serve log:\n{}",
        site.log()
    );

    assert!(
        failures(&samples).is_empty(),
        "expected no failed request in {} requests, saw {:?}",
        samples.len(),
        failures(&samples)
    );
    let switch = switched_at(&samples, IpAddr::V4(NEW), Duration::ZERO)
        .expect("the authoritative server answered the new address");
    // Before the switch, the cache held www at the low TTL only.
    let before: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at + Duration::from_secs(1) >= switch && s.at < switch)
        .collect();
    assert!(
        !before.is_empty(),
        "the client made requests in the second before the switch"
    );
    for s in &before {
        let ttl = s.resolved.as_ref().map(|(_, ttl)| *ttl).unwrap_or(u32::MAX);
        assert!(
            ttl <= 2,
            "expected the cache to hold www at TTL ≤ 2 before the switch, saw {ttl} at {:.2?}",
            s.at
        );
    }
    // After the switch: on the new server within the low TTL + 1 s, and
    // the old one answering whoever the cache still sent there.
    let limit = switch + Duration::from_secs(3);
    let late_old: Vec<Duration> = samples
        .iter()
        .filter(|s| s.at >= limit && s.served_by.as_deref() == Ok("old"))
        .map(|s| s.at)
        .collect();
    assert!(
        late_old.is_empty(),
        "expected every request on the new server from {limit:.2?} (switch {switch:.2?} + 2 s TTL + 1 s), saw old at {late_old:.2?}"
    );
    let last_old = last_served_by(&samples, "old", Duration::MAX).unwrap_or_default();
    println!(
        "migration: switch at {:.2} s; clients on the new server {:.2} s after it (low TTL 2 s); {} requests, 0 failed; old served {}, new served {}",
        switch.as_secs_f64(),
        last_old.saturating_sub(switch).as_secs_f64(),
        samples.len(),
        old.served(),
        new.served()
    );
    assert!(
        new.served() > 0 && new.health_checks() > 0,
        "expected the new server checked ({} health checks) and used ({} requests)",
        new.health_checks(),
        new.served()
    );
    let detail = show(&site, id);
    let audit = detail["audit"].as_array().expect("an audit array");
    let steps: Vec<&str> = audit
        .iter()
        .map(|a| a["step"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        ["lower_ttls", "switch", "restore_ttls"],
        "expected one audited change per step that writes, saw {audit:?}"
    );
    let end = address(site.addr, "www.example.test.", false).expect("www answers");
    assert_eq!(
        end,
        (IpAddr::V4(NEW), ORIGINAL_TTL),
        "expected www on the new address with its original TTL at the end"
    );
}

/// The new server fails its health check right after the switch: the
/// verification fails its three tries, the switch is reverted with the low
/// TTL still in place, and clients go back to the old server — with no
/// failed request.
#[test]
fn a_failing_new_server_is_rolled_back_automatically_without_a_failed_request() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::new(ORIGINAL_TTL);
    let _serve = site.serve(&[]);
    let cache = unbound(&runtime, site.addr);
    let (port, _old, new) = old_and_new();
    let client = Client::start(cache.addr, site.addr, port);

    let file = site.migration_file(&migration_text(site.addr, cache.addr, port));
    let id = start(&site, &file);
    // The moment the switch is served, the new server's health check fails.
    wait_for(&client, Duration::from_secs(40), "the switch", |s| {
        s.iter().any(|s| s.authoritative == Some(IpAddr::V4(NEW)))
    });
    new.set_healthy(false);
    let summary = wait_state(
        &site,
        id,
        &["rolled_back", "done", "failed"],
        Duration::from_secs(40),
    );
    assert_eq!(
        summary["state"],
        "rolled_back",
        "expected an automatic rollback, saw {summary}; serve log:\n{}",
        site.log()
    );
    let reason = summary["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("healthz") || reason.contains("503"),
        "expected the reason to name the failed check, saw {reason:?}"
    );
    std::thread::sleep(Duration::from_secs(4));
    let samples = client.finish();
    assert!(
        failures(&samples).is_empty(),
        "expected no failed request in {} requests, saw {:?}",
        samples.len(),
        failures(&samples)
    );
    let switch = switched_at(&samples, IpAddr::V4(NEW), Duration::ZERO).expect("a switch");
    let back = switched_at(&samples, IpAddr::V4(OLD), switch).expect("the switch reverted");
    let limit = back + Duration::from_secs(3);
    let late_new: Vec<Duration> = samples
        .iter()
        .filter(|s| s.at >= limit && s.served_by.as_deref() == Ok("new"))
        .map(|s| s.at)
        .collect();
    assert!(
        late_new.is_empty(),
        "expected every request back on the old server from {limit:.2?}, saw new at {late_new:.2?}"
    );
    let reverted = address(site.addr, "www.example.test.", false).expect("www answers");
    assert_eq!(
        reverted,
        (IpAddr::V4(OLD), 2),
        "expected www back on the old address with the low TTL still in place"
    );
    println!(
        "rollback: switch at {:.2} s, reverted at {:.2} s ({} requests, 0 failed); reason: {reason}",
        switch.as_secs_f64(),
        back.as_secs_f64(),
        samples.len()
    );
}

/// With the cache listed in the migration's `[flush]` and its control
/// channel in the config, the flush step empties Unbound of www right after
/// the switch: clients reach the new server at once instead of within the
/// low TTL — still with no failed request.
#[test]
fn flushing_the_cache_at_the_switch_moves_clients_at_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::new(ORIGINAL_TTL);
    // Unbound first, on ports it holds (its stub, cutover, is not up yet),
    // so that serve's config can name its control port.
    let cache = unbound_controlled(&runtime, site.addr);
    let control = cache.control.expect("Unbound's remote control").port();
    let mut config = std::fs::read_to_string(&site.config).unwrap();
    config = config.replacen(
        "[dns]",
        &format!(
            "[flush]\nlocal = false\n[[flush.unbound]]\ncontrol = \"127.0.0.1:{control}\"\n\n[dns]"
        ),
        1,
    );
    std::fs::write(&site.config, config).unwrap();
    let _serve = site.serve(&[]);
    runtime.block_on(cache.wait_answering("example.test."));
    let (port, _old, _new) = old_and_new();
    let client = Client::start(cache.addr, site.addr, port);

    let text = migration_text(site.addr, cache.addr, port) + "[flush]\ncaches = [\"unbound\"]\n";
    let file = site.migration_file(&text);
    let id = start(&site, &file);
    let summary = until_it_stops(&site, id);
    std::thread::sleep(Duration::from_millis(500));
    let samples = client.finish();
    assert_eq!(
        summary["state"],
        "done",
        "expected done, saw {summary}; log:\n{}",
        site.log()
    );
    assert!(
        failures(&samples).is_empty(),
        "expected no failed request, saw {:?}",
        failures(&samples)
    );
    let detail = show(&site, id);
    // The flush waits (retrying) until the authority serves the switch, then flushes.
    let attempts: Vec<String> = detail["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "flush_caches")
        .map(|s| s["evidence"].to_string())
        .collect();
    assert!(
        attempts
            .last()
            .is_some_and(|said| said.contains("flushed unbound")),
        "expected the last flush attempt to have flushed Unbound, saw {attempts:?}"
    );
    // Waiting is not failing (issue "every word true", 5): the attempts
    // before the authority served the switch waited, the last one flushed.
    let outcomes: Vec<&str> = detail["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "flush_caches")
        .map(|s| s["outcome"].as_str().unwrap_or("none"))
        .collect();
    let (last, before) = outcomes.split_last().expect("a flush attempt");
    assert!(
        *last == "done" && before.iter().all(|o| *o == "waiting"),
        "expected waits, then one flush done, nothing failed; saw {outcomes:?}"
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()], &[]),
    );
    assert!(
        !shown.contains("flush caches     failed") && !shown.contains("\"Ok\""),
        "expected no failed flush and no raw Result in migrate show:\n{shown}"
    );
    // Each wait is told in text with its reason, as in JSON.
    for waited in detail["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "flush_caches" && s["outcome"] == "waiting")
    {
        let reason = waited["reason"].as_str().expect("a wait has its reason");
        assert!(
            shown.contains("flush caches     waiting") && shown.contains(reason),
            "expected the wait and its reason ({reason}) in migrate show's text:\n{shown}"
        );
    }
    let switch = switched_at(&samples, IpAddr::V4(NEW), Duration::ZERO).expect("a switch");
    let last_old = last_served_by(&samples, "old", Duration::MAX).unwrap_or_default();
    let lag = last_old.saturating_sub(switch);
    println!(
        "flushed at the switch: the last request on the old server came {:.2} s after it (low TTL 2 s)",
        lag.as_secs_f64()
    );
    // The flush is retried every verify.interval (1 s) until the authority
    // serves the switch; without it the cache keeps old answers up to the
    // low TTL (2 s) — measured here at 2.5 s before the flush waited.
    assert!(
        lag < Duration::from_millis(1500),
        "expected clients on the new server within the retry interval (1 s) of the switch once the cache is flushed, the old one served {lag:.2?} after it"
    );
}
