//! What this site can and cannot do of what a migration file asks, found
//! before it starts: the config's relay and caches (`[mail]`, `[flush]`),
//! and who could read a secret stored with it.
//!
//! ```text
//!  file [mail] ──config [mail] relays the domain? delivers to mail.from?──▶ hazards
//!  file [flush] ──cutover_flush dry run: a cache here or in the config?──▶ hazards
//!  inline secret ──store's mode and folder: readable by others?──────────▶ hazard
//! ```

use std::path::Path;

use cutover_migrate::{FileError, MigrationFile};

use cutover_server::scheduler::Site;

/// How the store can be read by others than its owner, if it can: its mode
/// lets its group or everyone read it, and its folder lets them in.
pub(super) fn exposure(store: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(store).ok()?.permissions().mode();
    let folder = store
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder_mode = std::fs::metadata(folder).ok()?.permissions().mode();
    let others = mode & 0o004 != 0 && folder_mode & 0o001 != 0;
    let group = mode & 0o040 != 0 && folder_mode & 0o010 != 0;
    match (others, group) {
        (true, _) => Some(format!(
            "every user of this machine can read (mode {:o}, in a folder they may enter)",
            mode & 0o777
        )),
        (false, true) => Some(format!(
            "its group can read (mode {:o}, in a folder the group may enter)",
            mode & 0o777
        )),
        _ => None,
    }
}

/// A mail destination in a comparable form: lower-case host without
/// brackets or final dot, and the port (25 when not given).
fn destination(text: &str) -> (String, u16) {
    let text = text.trim();
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && port.parse::<u16>().is_ok() => {
            (host, port.parse().unwrap_or(25))
        }
        _ => (text, 25),
    };
    (
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        port,
    )
}

/// What this site's relay and caches cannot do of what the file asks: a
/// `[mail]` domain the config's relay does not relay, a cache of `[flush]`
/// found neither running here nor in the config.
pub(super) fn site_hazards(
    file: &MigrationFile,
    site: &Site,
    config: Option<&Path>,
) -> Vec<FileError> {
    let mut out = Vec::new();
    let which = match config {
        Some(path) => format!("the config {}", path.display()),
        None => "the config (./cutover.toml, else /etc/cutover/cutover.toml)".to_string(),
    };
    if let (Some(mv), Some(spot)) = (&file.mail, file.spots.mail) {
        let relayed = site.mail.as_ref().and_then(|relay| {
            relay.domain.iter().find(|d| {
                d.name
                    .get_ref()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(mv.domain.trim_end_matches('.'))
            })
        });
        if let Some(domain) = relayed {
            if destination(&domain.destination) != destination(&mv.from) {
                out.push(file.error_at(
                    file.spots.mail_from.unwrap_or(spot),
                    format!(
                        "mail.from {:?} is not where the relay delivers {}'s mail ({:?} in {which}): a rollback would send the mail to {:?}, not back where it went",
                        mv.from, mv.domain, domain.destination, mv.from
                    ),
                ));
            }
        } else if site.mail.is_none() && !site.relays.is_empty() {
            // Only other relays ([[relay]]): what they relay is theirs to
            // say; a relay that cannot do it fails the mail step, named.
        } else {
            let why = match &site.mail {
                None => "has no [mail] relay".to_string(),
                Some(_) => format!("relays no [[mail.domain]] named {:?}", mv.domain),
            };
            out.push(file.error_at(
                spot,
                format!("[mail] asks the relay to hold, retarget and release {}'s mail, but {which} {why}: the mail steps would do nothing", mv.domain),
            ));
        }
    }
    for (cache, spot) in file.flush.caches.iter().zip(&file.spots.caches) {
        let only = match cache.parse::<cutover_flush::Kind>() {
            Ok(kind) => vec![kind],
            Err(_) => Vec::new(),
        };
        let report =
            cutover_flush::flush(&site.flush, &cutover_flush::Scope::Everything, &only, true);
        let reachable = report
            .caches
            .iter()
            .any(|e| matches!(e.outcome, cutover_flush::Outcome::WouldRun));
        if !reachable {
            out.push(file.error_at(
                *spot,
                format!("no {cache} cache runs on this machine, and {which} lists none in [flush]: the flush step would flush nothing"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration file moving www, with a `[mail]` for example.test.
    const FILE: &str =
        "version = 1\nzone = \"example.test.\"\nprovider = { kind = \"embedded\" }\n\
        [[move]]\nfrom = \"192.0.2.1\"\nto = \"192.0.2.2\"\n\
        [mail]\ndomain = \"example.test\"\nfrom = \"192.0.2.1:25\"\nto = \"192.0.2.2:25\"\n";

    /// The mail hazards of [`FILE`] on a site whose config is `config`.
    fn mail_hazards(config: &str) -> Vec<String> {
        let file = MigrationFile::parse(FILE, "m.toml").unwrap();
        let config = cutover_server::config::Config::parse(config, "c.toml").unwrap();
        let site = Site::of(Some(&config));
        site_hazards(&file, &site, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn other_relays_alone_are_a_relay_for_the_mail_steps() {
        let none = mail_hazards("");
        assert!(
            none.iter().any(|h| h.contains("has no [mail] relay")),
            "no relay at all is refused: {none:?}"
        );
        let relays = mail_hazards(
            "[[relay]]\nname = \"mx2\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n",
        );
        assert!(relays.is_empty(), "[[relay]] only: {relays:?}");
    }
}
