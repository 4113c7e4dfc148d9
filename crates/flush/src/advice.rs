//! What to do by hand for the caches cutover cannot reach from this machine:
//! other operating systems, browsers and the JVM each keep their own.

use serde::Serialize;

/// One cache out of reach, and how its owner empties it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Advice {
    /// Where the cache lives: "macOS", "Chrome", "Java"…
    pub platform: &'static str,
    /// The exact command or place to go.
    pub command: &'static str,
    /// What else to know, or empty.
    pub note: &'static str,
}

/// The advice for every platform cutover knows, in a fixed order.
pub fn everywhere() -> Vec<Advice> {
    let advice = |platform, command, note| Advice {
        platform,
        command,
        note,
    };
    vec![
        advice(
            "Linux (systemd-resolved)",
            "sudo resolvectl flush-caches",
            "on other Linux machines; nscd: sudo nscd -i hosts",
        ),
        advice(
            "macOS",
            "sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder",
            "",
        ),
        advice("Windows", "ipconfig /flushdns", "in an administrator prompt"),
        advice(
            "Chrome, Chromium, Edge",
            "chrome://net-internals/#dns",
            "press \"Clear host cache\", then flush socket pools at chrome://net-internals/#sockets",
        ),
        advice(
            "Firefox",
            "about:networking#dns",
            "press \"Clear DNS Cache\"",
        ),
        advice(
            "Java",
            "networkaddress.cache.ttl=30",
            "set in $JAVA_HOME/conf/security/java.security (or Security.setProperty) and restart \
             the JVM; with a security manager the JVM caches forever by default",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_of_the_brief_has_its_command() {
        let all = everywhere();
        let command = |platform: &str| {
            all.iter()
                .find(|a| a.platform.starts_with(platform))
                .map(|a| a.command)
                .unwrap_or_else(|| panic!("expected advice for {platform}"))
        };
        assert_eq!(
            command("macOS"),
            "sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder"
        );
        assert_eq!(command("Windows"), "ipconfig /flushdns");
        assert_eq!(command("Chrome"), "chrome://net-internals/#dns");
        assert_eq!(command("Firefox"), "about:networking#dns");
        assert!(command("Java").contains("networkaddress.cache.ttl"));
    }
}
