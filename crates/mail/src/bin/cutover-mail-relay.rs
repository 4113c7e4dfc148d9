//! A standalone runner of the mail relay, for black-box tests and manual
//! runs until the `cutover` CLI serves it:
//!
//! ```text
//! cutover-mail-relay --listen 127.0.0.1:2525 --spool DIR --hostname mx.example
//!     --domain example.com=alice,bob --route example.com=10.0.0.2:25
//!     [--route '*=smarthost:25'] [--retry-ms 60000] [--tls-cert PEM --tls-key PEM]
//!     [--max-connections-per-client 10] [--max-connections 1000] [--stress-timeout-ms 10000]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cutover_mail::server::tls_from_pem;
use cutover_mail::{Policy, Relay, RelayConfig, SmtpCourier};

/// Parsed command line.
struct Arguments {
    /// Listening address.
    listen: SocketAddr,
    /// The relay config.
    config: RelayConfig,
}

/// Reads the command line; Err names the bad argument.
fn arguments() -> Result<Arguments, String> {
    let mut listen = None;
    let mut spool = None;
    let mut policy = Policy::new("localhost");
    let mut routes = Vec::new();
    let mut retry = None;
    let mut certificate = None;
    let mut key = None;
    let mut max_connections = None;
    let mut max_sessions = None;
    let mut stress_timeout = None;
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                listen = Some(value.parse().map_err(|_| format!("bad --listen {value}"))?)
            }
            "--spool" => spool = Some(PathBuf::from(value)),
            "--hostname" => policy.hostname = value,
            "--domain" => {
                let (domain, users) = value
                    .split_once('=')
                    .ok_or(format!("bad --domain {value}"))?;
                policy = policy.relay(domain, users.split(','));
            }
            "--route" => {
                let (domain, destination) = value
                    .split_once('=')
                    .ok_or(format!("bad --route {value}"))?;
                routes.push((
                    domain.to_string(),
                    destination.parse().map_err(|e| format!("{e}"))?,
                ));
            }
            "--retry-ms" => {
                retry = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad --retry-ms {value}"))?,
                )
            }
            "--tls-cert" => certificate = Some(PathBuf::from(value)),
            "--tls-key" => key = Some(PathBuf::from(value)),
            "--max-connections-per-client" => {
                max_connections = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad --max-connections-per-client {value}"))?,
                )
            }
            "--max-connections" => {
                max_sessions = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad --max-connections {value}"))?,
                )
            }
            "--stress-timeout-ms" => {
                stress_timeout = Some(Duration::from_millis(
                    value
                        .parse()
                        .map_err(|_| format!("bad --stress-timeout-ms {value}"))?,
                ))
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    let mut config = RelayConfig::new(spool.ok_or("--spool is required")?, policy);
    config.routes = routes.into_iter().collect();
    if let Some(milliseconds) = retry {
        config.schedule.first_retry = Duration::from_millis(milliseconds);
        config.schedule.max_retry = Duration::from_millis(milliseconds * 4);
    }
    if let Some(count) = max_connections {
        config.max_connections_per_client = count;
    }
    if let Some(count) = max_sessions {
        config.max_connections = count;
    }
    if let Some(timeout) = stress_timeout {
        config.stress_timeout = timeout;
    }
    if let (Some(certificate), Some(key)) = (certificate, key) {
        config.tls = Some(tls_from_pem(&certificate, &key).map_err(|e| e.to_string())?);
    }
    Ok(Arguments { listen, config })
}

/// Runs the relay until killed.
fn main() -> ExitCode {
    let arguments = match arguments() {
        Ok(arguments) => arguments,
        Err(error) => {
            eprintln!("cutover-mail-relay: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cutover-mail-relay: runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let courier = SmtpCourier::new(
            arguments.config.policy.hostname.clone(),
            vec![arguments.listen],
        );
        let relay = Relay::open(arguments.config, courier)?;
        let listener = relay.listen(arguments.listen).await?;
        println!("listening on {}", arguments.listen);
        let delivery = relay.clone();
        tokio::spawn(async move { delivery.deliver().await });
        let controls = relay.clone();
        tokio::spawn(async move {
            if let Err(error) = controls.serve_control().await {
                eprintln!("cutover-mail-relay: {error}");
            }
        });
        relay.serve(listener).await;
        Ok::<(), cutover_mail::RelayError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cutover-mail-relay: {error}");
            ExitCode::FAILURE
        }
    }
}
