//! Judging what the checks saw: service checks pinned before the switch,
//! and after it every authority's serial and every server's answer.

use std::collections::BTreeMap;

use cutover_zone::Serial;

use std::net::IpAddr;

use super::Effects;
use crate::file::{Check, LOCAL};
use crate::observe::{CheckResult, Survey};
use crate::plan::Plan;

/// Every check pinned to its address, or to each new address, from each
/// of `locations` (each result named with its location when `named`).
pub(super) fn pinned_checks(
    plan: &Plan,
    fx: &Effects<'_>,
    locations: &[String],
) -> Vec<(String, CheckResult)> {
    let mut out = Vec::new();
    for check in &plan.checks {
        let pins = match check.address {
            Some(a) => vec![Some(a)],
            None if plan.new_addresses.is_empty() => vec![None],
            None => plan.new_addresses.iter().copied().map(Some).collect(),
        };
        for pin in pins {
            out.extend(services_from(plan, fx, check, pin, locations));
        }
    }
    out
}

/// One service check from each of `locations`, each result named with its
/// location when the checks run from more than `local`.
pub(super) fn services_from(
    plan: &Plan,
    fx: &Effects<'_>,
    check: &Check,
    pin: Option<IpAddr>,
    locations: &[String],
) -> Vec<(String, CheckResult)> {
    let named = named(locations);
    fx.checks
        .services_from(locations, check, pin, &plan.verify)
        .into_iter()
        .map(|(location, mut result)| {
            if named {
                result.what = format!("{} from {location}", result.what);
            }
            (location, result)
        })
        .collect()
}

/// True when servers and checks are named with their location: the checks
/// run from more than the local process alone.
pub(super) fn named(locations: &[String]) -> bool {
    !(locations.len() == 1 && locations[0] == LOCAL)
}

/// The failed checks of each location, in words ("what: detail").
pub(super) fn failed_checks(
    locations: &[String],
    results: &[(String, CheckResult)],
) -> Vec<(String, Vec<String>)> {
    locations
        .iter()
        .map(|location| {
            let failed = results
                .iter()
                .filter(|(l, r)| l == location && !r.ok)
                .map(|(_, r)| format!("{}: {}", r.what, r.detail))
                .collect();
            (location.clone(), failed)
        })
        .collect()
}

/// Whether enough locations saw what they should: each location with no
/// problem agrees, and at least the quorum (`None`: every location) must.
#[derive(Debug)]
pub(super) struct Verdict {
    /// Enough locations agree.
    pub agreed: bool,
    /// Every problem of every location (what fails the step when not agreed).
    pub problems: Vec<String>,
    /// Each location: whether it agrees, and its problems (the evidence).
    pub locations: serde_json::Value,
    /// Agreed although some locations did not: which, in words.
    pub note: Option<String>,
}

/// Counts the locations with no problem against the quorum. A location
/// that could not be asked has a problem ("fra1: no agent online"), so it
/// never counts as agreeing.
pub(super) fn verdict(quorum: Option<u32>, per_location: &[(String, Vec<String>)]) -> Verdict {
    let total = per_location.len();
    let needed = quorum.map_or(total, |q| q as usize);
    let agreeing: Vec<&str> = per_location
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(l, _)| l.as_str())
        .collect();
    let disagreeing: Vec<&str> = per_location
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(l, _)| l.as_str())
        .collect();
    let mut problems: Vec<String> = per_location
        .iter()
        .flat_map(|(_, p)| p.iter().cloned())
        .collect();
    if total == 0 {
        problems.push("no location to check from".to_string());
    } else if needed > total {
        problems.push(format!(
            "a quorum of {needed} locations cannot be met: only {total} known ({})",
            per_location
                .iter()
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let agreed = total > 0 && needed <= total && agreeing.len() >= needed;
    let note = (agreed && !disagreeing.is_empty()).then(|| {
        format!(
            "{} of {total} locations agree (quorum {needed}); {} did not: {}",
            agreeing.len(),
            disagreeing.join(", "),
            problems.join("; ")
        )
    });
    let locations = per_location
        .iter()
        .map(|(l, p)| serde_json::json!({"location": l, "agrees": p.is_empty(), "problems": p}))
        .collect();
    Verdict {
        agreed,
        problems,
        locations,
        note,
    }
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

    /// Locations with their problems.
    fn located(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(l, p)| (l.to_string(), p.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn every_location_must_agree_by_default() {
        let v = verdict(
            None,
            &located(&[
                ("local", &[]),
                (
                    "fra1",
                    &["resolver 10.0.0.1 from fra1 answers www A with 192.0.2.10"],
                ),
            ]),
        );
        assert!(
            !v.agreed,
            "expected fra1's old value to fail the quorum all: {v:?}"
        );
        assert_eq!(
            v.problems,
            ["resolver 10.0.0.1 from fra1 answers www A with 192.0.2.10"]
        );
        let v = verdict(None, &located(&[("local", &[]), ("fra1", &[])]));
        assert!(v.agreed && v.note.is_none(), "{v:?}");
    }

    #[test]
    fn a_quorum_counts_agreeing_locations_and_names_the_others() {
        let per = located(&[
            ("local", &[]),
            ("fra1", &["fra1: no agent online"]),
            ("nyc1", &[]),
        ]);
        let v = verdict(Some(2), &per);
        assert!(v.agreed, "{v:?}");
        let note = v.note.expect("a note naming fra1");
        assert!(
            note.contains("2 of 3 locations agree (quorum 2); fra1 did not: fra1: no agent online"),
            "{note}"
        );
        assert!(!verdict(Some(3), &per).agreed, "expected 2 of 3 short of 3");
    }

    #[test]
    fn a_quorum_larger_than_the_locations_known_never_agrees() {
        let v = verdict(Some(3), &located(&[("local", &[])]));
        assert!(!v.agreed);
        assert!(
            v.problems[0].contains("a quorum of 3 locations cannot be met: only 1 known (local)"),
            "{:?}",
            v.problems
        );
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
