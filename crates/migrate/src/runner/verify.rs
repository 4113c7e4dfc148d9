//! Judging what the checks saw: service checks pinned before the switch,
//! and after it every authority's serial and every server's answer.

use std::collections::BTreeMap;

use cutover_zone::Serial;

use super::Effects;
use crate::observe::{CheckResult, Survey};
use crate::plan::Plan;

/// Every check pinned to its address, or to each new address.
pub(super) fn pinned_checks(plan: &Plan, fx: &Effects<'_>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for check in &plan.checks {
        let pins = match check.address {
            Some(a) => vec![a],
            None => plan.new_addresses.clone(),
        };
        if pins.is_empty() {
            out.push(fx.checks.service(check, None, &plan.verify));
        }
        for pin in pins {
            out.push(fx.checks.service(check, Some(pin), &plan.verify));
        }
    }
    out
}

/// Normalised values for comparison.
fn normal(values: &[String]) -> Vec<String> {
    let mut v: Vec<String> = values.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

/// What is wrong after the switch: serials not risen, old values served
/// (`zone`: the changes of that zone only, as asked of its servers; `None`:
/// every change).
pub(super) fn judge_switch(
    plan: &Plan,
    zone: Option<&str>,
    serials: &BTreeMap<String, u32>,
    survey: &Survey,
) -> Vec<String> {
    let mut problems = Vec::new();
    if survey.authorities.is_empty() {
        problems.push(match zone.filter(|_| plan.many_zones()) {
            Some(zone) => format!("no authoritative server of {zone} could be asked"),
            None => "no authoritative server could be asked".to_string(),
        });
    }
    problems.extend(survey.problems.iter().cloned());
    for a in &survey.authorities {
        match (serials.get(&a.server), a.serial) {
            (Some(before), Some(now)) if !Serial(now).is_newer_than(Serial(*before)) => problems
                .push(format!(
                    "{} still serves serial {now} (noted {before} before the switch)",
                    a.server
                )),
            (_, None) => problems.push(format!("{} gave no SOA serial", a.server)),
            _ => {}
        }
    }
    for (role, servers) in [
        ("authority", &survey.authorities),
        ("resolver", &survey.resolvers),
    ] {
        for s in servers {
            for c in plan
                .changes
                .iter()
                .filter(|c| zone.is_none_or(|z| plan.zone_of(c).eq_ignore_ascii_case(z)))
            {
                let seen = s
                    .answers
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&c.name) && a.rtype == c.rtype);
                match seen {
                    Some(a) if a.error.is_none() && normal(&a.values) == normal(&c.after) => {}
                    Some(a) => problems.push(format!(
                        "{role} {} answers {} {} with {}",
                        s.server,
                        c.name,
                        c.rtype,
                        a.error.clone().unwrap_or_else(|| a.values.join(" "))
                    )),
                    None => problems.push(format!(
                        "{role} {} gave no answer for {} {}",
                        s.server, c.name, c.rtype
                    )),
                }
            }
        }
    }
    problems
}

/// The highest TTL an authority serves for a moving RRset once it has the
/// lowered version: authorities still at an older serial (a secondary not
/// yet updated) serve the old TTL and say nothing about a floor. Without the
/// provider's serial, only TTLs that differ from the original count.
pub(super) fn served_floor(plan: &Plan, survey: &Survey, applied: Option<u32>) -> Option<u32> {
    let mut floor = None;
    for a in &survey.authorities {
        let current = match (applied, a.serial) {
            (Some(applied), Some(seen)) => {
                seen == applied || Serial(seen).is_newer_than(Serial(applied))
            }
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !current {
            continue;
        }
        for c in &plan.changes {
            let Some(ttl) = a
                .answers
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&c.name) && x.rtype == c.rtype)
                .and_then(|x| x.ttl)
            else {
                continue;
            };
            if applied.is_none() && c.before.as_ref().is_some_and(|b| b.ttl == ttl) {
                continue;
            }
            floor = floor.max(Some(ttl));
        }
    }
    floor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::MigrationFile;
    use crate::observe::{Answered, Observations, ServerView};
    use cutover_zone::zonefile::parse_str;

    /// A plan moving www from 192.0.2.10 to 198.51.100.20.
    fn plan() -> Plan {
        let zone = parse_str(
            "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n",
            "z",
            None,
        )
        .expect("zone")
        .zone;
        let file = MigrationFile::parse(
            "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n",
            "m.toml",
        )
        .expect("file");
        crate::plan::plan(
            &file,
            &zone,
            &Observations::default(),
            jiff::Timestamp::UNIX_EPOCH,
        )
        .expect("plan")
    }

    /// A server answering www A with `value`.
    fn view(server: &str, serial: Option<u32>, value: &str) -> ServerView {
        ServerView {
            server: server.into(),
            serial,
            answers: vec![Answered {
                name: "www.example.com.".into(),
                rtype: "A".into(),
                ttl: Some(60),
                values: vec![value.into()],
                error: None,
            }],
        }
    }

    /// Serials noted before the switch: both authorities at 5.
    fn noted() -> BTreeMap<String, u32> {
        [("ns1".to_string(), 5), ("ns2".to_string(), 5)].into()
    }

    #[test]
    fn all_new_everywhere_is_no_problem() {
        let survey = Survey {
            authorities: vec![
                view("ns1", Some(6), "198.51.100.20"),
                view("ns2", Some(6), "198.51.100.20"),
            ],
            resolvers: vec![view("r", None, "198.51.100.20")],
            problems: vec![],
        };
        let problems = judge_switch(&plan(), None, &noted(), &survey);
        assert!(problems.is_empty(), "expected none, saw {problems:?}");
    }

    #[test]
    fn a_lagging_authority_and_a_stale_resolver_are_named() {
        let survey = Survey {
            authorities: vec![
                view("ns1", Some(6), "198.51.100.20"),
                view("ns2", Some(5), "192.0.2.10"),
            ],
            resolvers: vec![view("r", None, "192.0.2.10")],
            problems: vec![],
        };
        let problems = judge_switch(&plan(), None, &noted(), &survey);
        assert_eq!(
            problems.len(),
            3,
            "serial, authority value, resolver value: {problems:?}"
        );
        assert!(
            problems[0].contains("ns2 still serves serial 5"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("authority ns2 answers www.example.com. A with 192.0.2.10"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].contains("resolver r answers"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn a_floor_counts_only_authorities_that_have_the_lowered_version() {
        let mut lagging = view("ns2", Some(5), "192.0.2.10");
        lagging.answers[0].ttl = Some(300);
        let mut current = view("ns1", Some(6), "192.0.2.10");
        current.answers[0].ttl = Some(120);
        let survey = Survey {
            authorities: vec![current, lagging],
            ..Survey::default()
        };
        assert_eq!(
            served_floor(&plan(), &survey, Some(6)),
            Some(120),
            "ns2 at serial 5 still serves the old TTL: not a floor"
        );
        assert_eq!(
            served_floor(&plan(), &survey, Some(7)),
            None,
            "nobody has serial 7 yet"
        );
        // Without the provider's serial, the original TTL (300) says nothing.
        assert_eq!(served_floor(&plan(), &survey, None), Some(120));
    }

    #[test]
    fn no_authority_at_all_is_a_failure() {
        let problems = judge_switch(&plan(), None, &noted(), &Survey::default());
        assert_eq!(
            problems,
            vec!["no authoritative server could be asked".to_string()]
        );
    }
}
