//! The migration's flush step carried out by `cutover_flush`: each cache
//! the migration file lists (a kind such as "unbound", or "all") is
//! flushed of the moved names, on this machine and in the config's
//! `[flush]` section; the evidence says what was flushed, or why nothing
//! (or not everything) was.

use cutover_flush::{Kind, Outcome, Report, Scope, Settings};

/// The migration engine's flush step, carried out with the config's
/// `[flush]` section: each cache the migration file lists (a kind such as
/// "unbound", or "all") is flushed of the moved names.
#[derive(Clone, Debug, Default)]
pub struct CacheFlusher {
    /// The `[flush]` section of the config.
    pub settings: Settings,
}

impl crate::Flusher for CacheFlusher {
    fn flush(&self, cache: &str, names: &[cutover_zone::Name]) -> Result<String, String> {
        let only = match cache {
            "all" => vec![],
            kind => vec![kind.parse::<Kind>().map_err(|e| e.to_string())?],
        };
        // A wildcard's answers are cached under the names asked for: flush
        // the subtree it covers.
        let tree = names.iter().any(|n| n.is_wildcard());
        let texts: Vec<String> = names
            .iter()
            .map(|n| {
                let text = n.to_string();
                text.strip_prefix("*.").map(str::to_string).unwrap_or(text)
            })
            .collect();
        let scope = Scope::from_names(&texts, tree).map_err(|e| e.to_string())?;
        let report = cutover_flush::flush(&self.settings, &scope, &only, false);
        summary(cache, &report)
    }
}

/// One line for the migration's evidence: what was flushed, or why nothing
/// (or not everything) was.
fn summary(cache: &str, report: &Report) -> Result<String, String> {
    let said = |wanted: fn(&Outcome) -> bool| -> Vec<String> {
        report
            .caches
            .iter()
            .filter(|e| wanted(&e.outcome))
            .map(|e| match &e.outcome {
                Outcome::Failed { why } | Outcome::NotRunning { why } => {
                    format!("{} {}: {why}", e.cache, e.instance)
                }
                _ => format!("{} {} ({})", e.cache, e.instance, e.scope),
            })
            .collect()
    };
    let flushed = said(|o| matches!(o, Outcome::Flushed));
    let failed = said(|o| matches!(o, Outcome::Failed { .. }));
    if !failed.is_empty() {
        return Err(format!(
            "failed: {}{}",
            failed.join("; "),
            if flushed.is_empty() {
                String::new()
            } else {
                format!("; flushed: {}", flushed.join("; "))
            }
        ));
    }
    if flushed.is_empty() {
        let absent = said(|o| matches!(o, Outcome::NotRunning { .. }));
        return Err(format!(
            "no {cache} cache to flush here or in the config ({})",
            absent.join("; ")
        ));
    }
    Ok(format!("flushed {}", flushed.join("; ")))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use cutover_flush::{DnsmasqPidFile, Entry};

    use super::*;
    use crate::Flusher;

    #[test]
    fn the_migration_flusher_says_why_nothing_was_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("gone.pid");
        let flusher = CacheFlusher {
            settings: Settings {
                local: false,
                dnsmasq: vec![DnsmasqPidFile {
                    pid_file: pid_file.clone(),
                }],
                ..Settings::default()
            },
        };
        let names = [cutover_zone::Name::from_str("*.web.example.com.").unwrap()];
        let why = flusher
            .flush("dnsmasq", &names)
            .expect_err("nothing runs, so nothing is flushed");
        assert!(
            why.starts_with("no dnsmasq cache to flush") && why.contains("gone.pid"),
            "expected the reason naming the pid file, saw {why:?}"
        );
        assert!(
            flusher
                .flush("pdns", &names)
                .unwrap_err()
                .contains("unknown cache"),
            "an unknown kind is refused"
        );
    }

    #[test]
    fn a_summary_names_what_was_flushed_and_what_failed() {
        let entry = |cache, outcome| Entry {
            cache,
            instance: "pid 7".into(),
            scope: "www.example.com.".into(),
            outcome,
            commands: vec![],
        };
        let mut report = Report {
            caches: vec![entry(Kind::Unbound, Outcome::Flushed)],
            advice: vec![],
        };
        assert_eq!(
            summary("unbound", &report),
            Ok("flushed unbound pid 7 (www.example.com.)".to_string())
        );
        report.caches.push(entry(
            Kind::Bind,
            Outcome::Failed {
                why: "rndc: connection refused".into(),
            },
        ));
        assert_eq!(
            summary("all", &report),
            Err("failed: bind pid 7: rndc: connection refused; flushed: unbound pid 7 (www.example.com.)".to_string())
        );
    }
}
