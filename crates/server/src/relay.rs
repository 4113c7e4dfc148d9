//! The mail relay inside `cutover serve`, on its own small runtime, and
//! the migration engine's mail steps carried out by its controls.
//!
//! ```text
//!  [mail] ──MailConfig::relay_config──▶ RelayConfig (policy, routes, limits, schedule)
//!                                          │
//!  MailService::start ──▶ runtime thread: Relay::serve (one task per listen address)
//!                                         Relay::deliver (the delivery loop)
//!                                         Relay::serve_control (spool/control.sock)
//!                                         certificate watch (reload on change, every 2 s)
//!  drop(MailService) ──▶ runtime shut down (the spool is already durable)
//!  MigrationMail (hold / retarget / release) ──▶ cutover_mail::MailControl (control socket, or the spool at rest)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use cutover_mail::server::tls_from_pem;
use cutover_mail::{Relay, SmtpCourier};

use crate::config::mail::{MailConfig, MailTls};

/// The relay running inside `cutover serve`; stops when dropped.
pub struct MailService {
    /// The relay's runtime (its tasks stop when it is shut down).
    runtime: Option<tokio::runtime::Runtime>,
    /// The addresses it listens on (the port the system chose for `:0`).
    addresses: Vec<std::net::SocketAddr>,
}

impl MailService {
    /// Opens the spool, binds every address and starts serving, delivering
    /// and answering controls. Errors (a bad spool, a busy port, a second
    /// relay on the spool) come back before anything is served.
    pub fn start(config: &MailConfig) -> anyhow::Result<MailService> {
        let relay_config = config
            .relay_config()
            .map_err(|message| anyhow::anyhow!("[mail]: {message}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mail")
            .enable_all()
            .build()
            .context("cannot start the mail relay's runtime")?;
        let mut courier = SmtpCourier::new(config.hostname.clone(), config.listen.clone());
        courier.connect_timeout = config.connect_timeout;
        let relay = Relay::open(relay_config, courier).context("cannot open the mail relay")?;
        let mut addresses = Vec::new();
        for address in &config.listen {
            let listener = runtime.block_on(relay.listen(*address))?;
            let address = listener.local_addr().unwrap_or(*address);
            addresses.push(address);
            tracing::info!("mail relay listening on {address}");
            let serving = relay.clone();
            runtime.spawn(async move { serving.serve(listener).await });
        }
        let delivering = relay.clone();
        runtime.spawn(async move { delivering.deliver().await });
        let controlling = relay.clone();
        runtime.spawn(async move {
            if let Err(error) = controlling.serve_control().await {
                tracing::error!("mail controls unavailable: {error}");
            }
        });
        if let Some(tls) = config.tls.clone() {
            let reloading = relay.clone();
            runtime.spawn(async move { watch_certificate(reloading, tls).await });
        }
        Ok(MailService {
            runtime: Some(runtime),
            addresses,
        })
    }

    /// The addresses the relay listens on.
    pub fn local_addrs(&self) -> &[std::net::SocketAddr] {
        &self.addresses
    }
}

impl Drop for MailService {
    /// Stops the relay's tasks without waiting for them.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The migration engine's mail steps (hold, retarget, release) carried out
/// by the relay's controls: on the running relay, or on the spool at rest.
#[derive(Debug, Clone)]
pub struct MigrationMail(pub cutover_mail::MailControl);

impl MigrationMail {
    /// The controls of the relay configured in `[mail]`.
    pub fn new(config: &MailConfig) -> Self {
        MigrationMail(cutover_mail::MailControl::new(config.spool.clone()))
    }
}

impl cutover_migrate::MailControl for MigrationMail {
    /// `cutover mail hold --domain DOMAIN`.
    fn hold(&self, domain: &str) -> Result<String, String> {
        let selector = cutover_mail::queue::Selector::Domain(domain.to_string());
        let held = self.0.hold(selector).map_err(|e| e.to_string())?;
        Ok(format!(
            "{domain} held: {} queued message(s) held, and its mail arriving from now on",
            held.len()
        ))
    }

    /// `cutover mail retarget DOMAIN DESTINATION` (holds kept: the
    /// migration releases in a step of its own).
    fn retarget(&self, domain: &str, destination: &str) -> Result<String, String> {
        let retargeted = self
            .0
            .retarget(domain, destination, false)
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "{domain} now goes to {destination}: {} message(s) due now, {} held until the release",
            retargeted.due.len(),
            retargeted.held.len()
        ))
    }

    /// `cutover mail release --domain DOMAIN`.
    fn release(&self, domain: &str) -> Result<String, String> {
        let selector = cutover_mail::queue::Selector::Domain(domain.to_string());
        let released = self.0.release(selector).map_err(|e| e.to_string())?;
        Ok(format!(
            "{domain} released: {} message(s) released, due now",
            released.len()
        ))
    }
}

/// Reloads the STARTTLS certificate when its files change (checked every 2 s).
async fn watch_certificate(relay: Relay<SmtpCourier>, tls: MailTls) {
    let stamp = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: (Option<SystemTime>, Option<SystemTime>) = (stamp(&tls.cert), stamp(&tls.key));
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = (stamp(&tls.cert), stamp(&tls.key));
        if now == seen {
            continue;
        }
        match tls_from_pem(&tls.cert, &tls.key) {
            Ok(config) => {
                relay.reload_tls(Some(Arc::clone(&config)));
                seen = now;
                tracing::info!(cert = %tls.cert.display(), "mail STARTTLS certificate reloaded");
            }
            Err(error) => {
                tracing::warn!("new mail certificate not loaded, keeping the old: {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migration engine's steps reach the spool (at rest here) and the
    /// retarget is persisted in the spool's controls.
    #[test]
    fn migration_steps_reach_the_spool() {
        use cutover_migrate::MailControl as _;
        let directory = tempfile::tempdir().unwrap();
        let spool = directory.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let mail = MigrationMail(cutover_mail::MailControl::new(&spool));
        let said = mail.hold("ourdom.test").unwrap();
        assert!(said.contains("ourdom.test held"), "{said}");
        let said = mail.retarget("ourdom.test", "192.0.2.7:2525").unwrap();
        assert!(said.contains("192.0.2.7:2525"), "{said}");
        let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
        assert_eq!(
            controls, "route ourdom.test 192.0.2.7:2525\nhold ourdom.test\n",
            "persisted controls"
        );
        mail.release("ourdom.test").unwrap();
        let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
        assert_eq!(
            controls, "route ourdom.test 192.0.2.7:2525\n",
            "hold lifted"
        );
        // Each step again (the runner asks again after any relay failed):
        // the same persisted controls, nothing held or released twice.
        let said = mail.hold("ourdom.test").unwrap();
        assert!(said.contains("held: 0 queued message(s) held"), "{said}");
        mail.hold("ourdom.test").unwrap();
        mail.retarget("ourdom.test", "192.0.2.7:2525").unwrap();
        mail.retarget("ourdom.test", "192.0.2.7:2525").unwrap();
        let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
        assert_eq!(
            controls, "route ourdom.test 192.0.2.7:2525\nhold ourdom.test\n",
            "holding and retargeting twice is the same control"
        );
        mail.release("ourdom.test").unwrap();
        let said = mail.release("ourdom.test").unwrap();
        assert!(said.contains("released: 0 message(s) released"), "{said}");
        let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
        assert_eq!(
            controls, "route ourdom.test 192.0.2.7:2525\n",
            "released twice"
        );
        let error = mail.retarget("ourdom.test", "bad host:x").unwrap_err();
        assert!(error.contains("invalid destination"), "{error}");
    }
}
