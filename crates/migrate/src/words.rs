//! The engine's records in words: a step's evidence as the lines a
//! person reads (changes, answers, serials, checks, flushes, mail actions),
//! and durations as `3 min 20 s`. Shared by `migrate show|run`, the demo
//! and the scheduler's log, so all say the same.

use std::time::Duration;

use serde_json::Value;

/// A JSON value as text: a string as is, anything else as JSON.
fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// An action's result as `(ok, words)`: `{ok, detail}` as the runner
/// writes it, or `{"Ok": …}` / `{"Err": …}` as stores written before it hold.
fn result_of(v: &Value) -> (bool, String) {
    if let Some(ok) = v["ok"].as_bool() {
        return (ok, text(&v["detail"]));
    }
    if let Some(result) = v.get("result") {
        return result_of(result);
    }
    match (v.get("Ok"), v.get("Err")) {
        (Some(said), _) => (true, text(said)),
        (_, Some(said)) => (false, text(said)),
        _ => (true, text(v)),
    }
}

/// The mail actions of a step's evidence, in words: the runner's
/// `[{action, domain, to?, ok, detail}]`, or the `{action: Result}`
/// objects of stores written before it.
fn mail_lines(mail: &Value) -> Vec<String> {
    let actions: Vec<(String, Value)> = match mail {
        Value::Array(items) => items
            .iter()
            .flat_map(|item| match item["action"].as_str() {
                Some(action) => vec![(action.to_string(), item.clone())],
                None => item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    };
    actions
        .into_iter()
        .map(|(action, result)| {
            let (ok, said) = result_of(&result);
            let what = match (result["domain"].as_str(), result["to"].as_str()) {
                (Some(domain), Some(to)) => format!("{action} {domain} to {to}"),
                (Some(domain), None) => format!("{action} {domain}"),
                _ => action,
            };
            if ok {
                format!("mail {what}: {said}")
            } else {
                format!("mail {what} FAILED: {said}")
            }
        })
        .collect()
}

/// A step's evidence as lines a person reads: changes, servers' answers,
/// serials, check results, problems, flushes, mail actions.
pub fn evidence_lines(evidence: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for change in evidence["changes"].as_array().into_iter().flatten() {
        let side = |r: &Value| match r.is_null() {
            true => "(absent)".to_string(),
            false => format!(
                "{} {}",
                r["ttl"],
                r["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        out.push(format!(
            "{} {}: {} → {}",
            text(&change["name"]),
            text(&change["type"]),
            side(&change["old"]),
            side(&change["new"])
        ));
    }
    if let Some(note) = evidence["note"].as_str() {
        out.push(note.to_string());
    }
    if let Some(wait) = evidence["why"].as_str() {
        out.push(wait.to_string());
    }
    if let (Some(since), Some(until)) = (
        evidence["waited_since"].as_str(),
        evidence["until"].as_str(),
    ) {
        out.push(format!("waited from {since} until {until}"));
    }
    if let (Some(since), Some(at)) = (
        evidence["awaited_since"].as_str(),
        evidence["approved_at"].as_str(),
    ) {
        out.push(format!("awaited approval from {since} until {at}"));
    }
    for (role, servers) in [
        ("authority", &evidence["survey"]["authorities"]),
        ("resolver", &evidence["survey"]["resolvers"]),
    ] {
        for server in servers.as_array().into_iter().flatten() {
            let answers: Vec<String> = server["answers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match a["error"].as_str() {
                    Some(e) => format!("{} {}: {e}", text(&a["name"]), text(&a["rtype"])),
                    None => format!(
                        "{} {} {} {}",
                        text(&a["name"]),
                        a["ttl"],
                        text(&a["rtype"]),
                        a["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                })
                .collect();
            let serial = server["serial"]
                .as_u64()
                .map(|s| format!("serial {s}; "))
                .unwrap_or_default();
            out.push(format!(
                "{role} {} answered: {serial}{}",
                text(&server["server"]),
                answers.join("; ")
            ));
        }
    }
    if let Some(serials) = evidence["serials"].as_object() {
        let all: Vec<String> = serials.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push(match all.is_empty() {
            true => "serials noted: none (no authority gave one)".to_string(),
            false => format!("serials noted: {}", all.join(", ")),
        });
    }
    if let Some(floor) = evidence["ttl_floor"].as_u64() {
        out.push(format!("TTL floor: the servers keep at least {floor}s"));
    }
    for check in evidence["checks"].as_array().into_iter().flatten() {
        let ok = check["ok"].as_bool().unwrap_or(false);
        out.push(format!(
            "{} {}: {}",
            if ok { "ok  " } else { "FAIL" },
            text(&check["what"]),
            text(&check["detail"])
        ));
    }
    for problem in evidence["problems"].as_array().into_iter().flatten() {
        out.push(format!("problem: {}", text(problem)));
    }
    for lagging in evidence["waiting_for"].as_array().into_iter().flatten() {
        out.push(format!("waiting for: {}", text(lagging)));
    }
    for flushed in evidence["flushed"].as_array().into_iter().flatten() {
        let (ok, said) = result_of(flushed);
        out.push(if ok {
            format!("flush {}: {said}", text(&flushed["cache"]))
        } else {
            format!("flush {} FAILED: {said}", text(&flushed["cache"]))
        });
    }
    for lagging in evidence["still_lagging"].as_array().into_iter().flatten() {
        out.push(format!("still lagging: {}", text(lagging)));
    }
    out.extend(mail_lines(&evidence["mail"]));
    if let Some(conflict) = evidence["conflict"].as_str() {
        out.push(format!("CONFLICT: {conflict}"));
    }
    if let Some(refused) = evidence["refused"].as_str() {
        out.push(format!("the provider refused: {refused}"));
    }
    if let Some(unreachable) = evidence["unreachable"].as_str() {
        out.push(format!("the provider could not be reached: {unreachable}"));
    }
    out
}

/// A duration to the nearest second, in at most two units past two
/// minutes, in the form the plan uses (`cutover_zone::duration::words`):
/// "42s", "1m 59s", "3m 20s", "2h 5m", "3d 4h".
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let whole = match s {
        0..=7199 => s,
        7200..=172_799 => s - s % 60,
        _ => s - s % 3600,
    };
    cutover_zone::duration::words(Duration::from_secs(whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `migrate show` and the plan print durations in one form
    /// (`cutover_zone::duration::words`), which reads back as a duration.
    #[test]
    fn durations_read_as_in_the_plan() {
        for (secs, text) in [
            (42, "42s"),
            (119, "1m 59s"),
            (200, "3m 20s"),
            (7_530, "2h 5m"),
            (5 * 86_400 + 4 * 3600 + 59, "5d 4h"),
        ] {
            assert_eq!(seconds(Duration::from_secs(secs)), text, "{secs} s");
        }
        assert_eq!(
            seconds(Duration::from_millis(41_600)),
            "42s",
            "to the nearest second"
        );
        assert_eq!(
            crate::plan::words(200),
            seconds(Duration::from_secs(200)),
            "the plan's words"
        );
    }

    #[test]
    fn mail_and_flush_evidence_read_as_words_old_and_new() {
        let new = json!({
            "mail": [
                {"action": "hold", "domain": "example.test", "ok": true, "detail": "example.test held"},
                {"action": "retarget", "domain": "example.test", "to": "new:25", "ok": false, "detail": "no relay"}
            ],
            "flushed": [{"cache": "unbound", "ok": true, "detail": "flushed unbound 127.0.0.1"}]
        });
        assert_eq!(
            evidence_lines(&new),
            [
                "flush unbound: flushed unbound 127.0.0.1",
                "mail hold example.test: example.test held",
                "mail retarget example.test to new:25 FAILED: no relay",
            ]
        );
        // As stores written before these words hold it: Rust's Result.
        let old = json!({
            "mail": [{"hold": {"Ok": "example.test held"}}, {"retarget": {"Err": "no relay"}}],
            "flushed": [{"cache": "unbound", "result": {"Ok": "flushed unbound"}}]
        });
        let lines = evidence_lines(&old);
        assert_eq!(
            lines,
            [
                "flush unbound: flushed unbound",
                "mail hold: example.test held",
                "mail retarget FAILED: no relay",
            ]
        );
        assert!(!lines.concat().contains("Ok"), "{lines:?}");
        let release = json!({"mail": {"release": {"Ok": "example.test released"}}});
        assert_eq!(
            evidence_lines(&release),
            ["mail release: example.test released"]
        );
    }
}
