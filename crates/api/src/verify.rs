//! The arguments of `cutover verify`, which is also what
//! `POST /api/v1/checks/verify` carries (`VerifyRequest { kind, args }`):
//! the one grammar the CLI parses its command line with and the server
//! parses a request with (to see what the probe would connect to before it
//! runs it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use cutover_zone::duration::DurationError;

/// The longest `--timeout` (and `--interval`): a day (a wait past it is a
/// typing mistake, and every deadline computed from it fits the clock).
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// `--timeout`: how long one step may take, from 1ms to [`MAX_WAIT`]
/// (`500ms`, `2s`, `1.5`, `1m`), read by `cutover_zone::duration`.
pub fn timeout(text: &str) -> Result<Duration, DurationError> {
    cutover_zone::duration::duration(text, Duration::from_millis(1)..=MAX_WAIT)
}

/// The arguments of `cutover verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every finding is healthy, 1 otherwise, \
                        2 on a bad command line."
)]
pub struct VerifyArgs {
    /// The service to check.
    #[command(subcommand)]
    pub service: Service,
    /// Print the observation and the findings as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long each step (connect, handshake, reply) may take (500ms, 5s…;
    /// 1ms to 1 day).
    #[arg(long, global = true, default_value = "5s", value_parser = timeout)]
    pub timeout: Duration,
    /// Trust the CA certificates of this PEM file instead of Mozilla's roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// The services `verify` can check.
#[derive(Debug, Subcommand)]
pub enum Service {
    /// GET a URL from a pinned address (as curl --resolve): status, body,
    /// certificate, and the differences from the old address.
    Http {
        /// The URL (http:// or https://); SNI and Host come from it.
        url: String,
        /// The address to connect to instead of resolving the URL's host.
        #[arg(long)]
        address: IpAddr,
        /// The current address, to compare the answers of old and new.
        #[arg(long, value_name = "IP")]
        old_address: Option<IpAddr>,
        /// The status the new address must answer (default: any below 400).
        #[arg(long, value_name = "N")]
        expect_status: Option<u16>,
        /// A text the body must contain.
        #[arg(long, value_name = "TEXT")]
        body_contains: Option<String>,
    },
    /// SMTP at an address: banner, EHLO, STARTTLS and its certificate, and
    /// whether a recipient would be accepted (RSET, never DATA).
    Smtp {
        /// HOST:PORT or IP:PORT ([IPv6]:PORT).
        address: String,
        /// The name the certificate must be valid for (default: HOST, or the IP).
        #[arg(long, value_name = "NAME")]
        server_name: Option<String>,
        /// Upgrade with STARTTLS and check the certificate (it must be offered).
        #[arg(long)]
        starttls: bool,
        /// A recipient to test with RCPT TO (the probe never sends DATA).
        #[arg(long, value_name = "ADDRESS")]
        rcpt: Option<String>,
        /// The name sent in EHLO.
        #[arg(long, default_value = "cutover.invalid")]
        helo: String,
    },
    /// Does a TCP connection open, and how fast.
    Tcp {
        /// HOST:PORT or IP:PORT ([IPv6]:PORT).
        address: String,
    },
    /// IMAP at an address: banner, capabilities, STARTTLS and its certificate.
    Imap(MailboxArgs),
    /// POP3 at an address: banner, capabilities, STLS and its certificate.
    Pop3(MailboxArgs),
    /// Mail readiness for moving a domain's mail to a new IP: MX, SPF, PTR, MTA-STS.
    Mail {
        /// The mail domain.
        domain: String,
        /// The address mail will come from and go to after the move.
        #[arg(long, value_name = "IP")]
        new_ip: IpAddr,
        /// The recursive resolver to ask (IP or IP:PORT; default: the first
        /// of /etc/resolv.conf).
        #[arg(long, value_name = "IP[:PORT]")]
        resolver: Option<String>,
        /// The port of the MTA-STS policy server.
        #[arg(long, default_value_t = 443)]
        mta_sts_port: u16,
    },
}

/// The arguments of the IMAP and POP3 checks.
#[derive(Debug, Args)]
pub struct MailboxArgs {
    /// HOST:PORT or IP:PORT ([IPv6]:PORT).
    pub address: String,
    /// The name the certificate must be valid for (default: HOST, or the IP).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Upgrade with STARTTLS/STLS and check the certificate (it must be offered).
    #[arg(long)]
    pub starttls: bool,
}
