//! The process's file descriptors: the soft limit raised to the hard one
//! at start, and every listener's connection budget checked against it
//! (DNS over TCP, the mail relay, the control plane each have their own,
//! so one of them exhausted leaves the others answering).

use crate::config::Config;

/// Descriptors kept for everything that is not a client connection: the
/// store and its side files, the spool, log files, zone transfers out,
/// probes and children, the listeners themselves.
pub const RESERVE: u64 = 256;

/// Every listener's connection budget: (config key, connections).
pub fn budgets(config: &Config) -> Vec<(&'static str, u64)> {
    let mut out = vec![(
        "[dns] tcp_max_connections",
        config.dns.tcp_max_connections as u64,
    )];
    if let Some(mail) = &config.mail {
        out.push(("[mail] max_connections", mail.max_connections as u64));
    }
    if let Some(http) = &config.http {
        out.push(("[http] max_connections", http.max_connections as u64));
    }
    out
}

/// Why the budgets do not fit under `limit` open files with [`RESERVE`]
/// kept, or `None` when they do.
pub fn overcommitted(budgets: &[(&'static str, u64)], limit: u64) -> Option<String> {
    let total: u64 = budgets.iter().map(|(_, n)| n).sum::<u64>() + RESERVE;
    if total <= limit {
        return None;
    }
    let parts: Vec<String> = budgets
        .iter()
        .map(|(key, n)| format!("{key} = {n}"))
        .collect();
    Some(format!(
        "the listeners' connection budgets ({}) and {RESERVE} descriptors kept for the store,          spool, transfers and probes add up to {total}, above the open-file limit {limit}:          under a flood the last listener to fill would fail to accept (EMFILE) before its          budget is reached; lower a budget or raise LimitNOFILE",
        parts.join(", ")
    ))
}

/// Raises the soft limit of open files to the hard limit and logs the
/// figure with every listener's budget; budgets that do not fit under it
/// are logged as a warning (each listener still refuses past its own
/// budget and backs off on EMFILE). A limit that cannot be raised is
/// logged, not fatal.
pub fn raise_descriptor_limit(config: &Config) {
    let budgets = budgets(config);
    match descriptor_limit::raise() {
        Ok((before, after)) => {
            let said: Vec<String> = budgets.iter().map(|(k, n)| format!("{k} = {n}")).collect();
            if before == after {
                tracing::info!(
                    limit = after,
                    budgets = %said.join(", "),
                    "open files: the soft limit is already the hard limit, {after}"
                );
            } else {
                tracing::info!(
                    limit = after,
                    budgets = %said.join(", "),
                    "open files: soft limit raised from {before} to the hard limit, {after}"
                );
            }
            if let Some(why) = overcommitted(&budgets, after) {
                tracing::warn!("{why}");
            }
        }
        Err(error) => tracing::warn!("open files: cannot read or raise the limit: {error}"),
    }
}

/// The process's limit of open files (RLIMIT_NOFILE).
mod descriptor_limit {
    /// Raises the soft limit to the hard limit; returns (before, after).
    pub fn raise() -> std::io::Result<(libc::rlim_t, libc::rlim_t)> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = limit.rlim_cur;
        // An unlimited hard limit still stops at the kernel's fs.nr_open.
        let target = if limit.rlim_max == libc::RLIM_INFINITY {
            std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(1 << 20)
        } else {
            limit.rlim_max
        };
        if limit.rlim_cur < target {
            limit.rlim_cur = target;
            // SAFETY: setrlimit reads one rlimit from the struct given.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((before, limit.rlim_cur))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_that_do_not_fit_under_the_limit_are_named() {
        let budgets = [
            ("[dns] tcp_max_connections", 1024),
            ("[mail] max_connections", 1000),
            ("[http] max_connections", 256),
        ];
        assert_eq!(overcommitted(&budgets, 1 << 20), None);
        let why = overcommitted(&budgets, 1024).expect("2,536 do not fit in 1,024");
        assert!(
            why.contains("[mail] max_connections = 1000") && why.contains("add up to 2536"),
            "expected the budgets and their sum named, saw {why:?}"
        );
    }
}
