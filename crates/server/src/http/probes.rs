//! Probes through the API at the edge: what a request would connect to,
//! held against the site's [`Targets`]; the files a migration file sent
//! through the API may name; and this binary run as a child with a deadline.
//!
//! ```text
//!  CheckRequest │ verify argv (clap, as the child reads it) │ MigrationFile
//!      ──what it connects to──▶ Targets::endpoint|domain ── refused ──▶ 403 + reason (admin tokens: not asked)
//!      ──caller's timeout > [http] probe_timeout ──▶ 400
//!  key_file / token_file ──lexically, then canonically, under [http] migration_dir? ── no ──▶ 403 (same words, found or not)
//!  api_key_env / token_env / secret_env ──▶ 403 (the server's environment is not the caller's)
//!  child: /proc/self/exe (the running binary, even after an upgrade replaced
//!         the file) ──tokio, killed on drop──▶ stopped at probe_timeout ──▶ 504
//!  Targets: rebuilt from the store and the migrations at most every 2 s (and
//!           when a zone changed), one rebuild at a time
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::process::{Output, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cutover_api::{CheckRequest, ErrorCode};
use cutover_migrate::file::{address_of, CheckKind, Move};
use cutover_migrate::provider::ProviderSpec;
use cutover_migrate::{MigrationFile, Migrations};
use cutover_probe::caches::{self, Resolver};
use cutover_probe::service::http::Url;
use cutover_store::Store;
use cutover_zone::Name;

use super::error::ApiError;
use crate::targets::{host_port, AllowRule, Host, Targets};
use cutover_api::verify::{Service, VerifyArgs};

/// How long a built [`Targets`] is used before it is built again.
const TARGETS_REUSE: Duration = Duration::from_secs(2);

/// What the probes of the API share: the admin's rules, the fixed
/// endpoints, the bounds, and the last [`Targets`] built.
pub struct Probes {
    /// `[http] probe_allow`.
    rules: Vec<AllowRule>,
    /// This server's own DNS listeners (loopback for a wildcard address).
    own: Vec<SocketAddr>,
    /// `[http] probe_timeout`.
    pub timeout: Duration,
    /// `[http] migration_dir`.
    pub migration_dir: Option<PathBuf>,
    /// The last targets built: when, at which store generation.
    built: tokio::sync::Mutex<Option<(Instant, u64, Arc<Targets>)>>,
}

impl Probes {
    /// The probes of a control plane with these settings.
    pub fn new(
        rules: Vec<AllowRule>,
        dns_listen: &[SocketAddr],
        timeout: Duration,
        migration_dir: Option<PathBuf>,
    ) -> Probes {
        let mut own = Vec::new();
        for address in dns_listen {
            if address.ip().is_unspecified() {
                let loopback: IpAddr = if address.is_ipv4() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                };
                own.push(SocketAddr::new(loopback, address.port()));
            } else {
                own.push(*address);
            }
        }
        Probes {
            rules,
            own,
            timeout,
            migration_dir,
            built: tokio::sync::Mutex::new(None),
        }
    }

    /// The targets a probe token may reach now (built again when older than
    /// two seconds or when a zone changed).
    pub async fn targets(&self, store: &Arc<Store>) -> Result<Arc<Targets>, ApiError> {
        let mut built = self.built.lock().await;
        let reader = store.clone();
        let generation = super::blocking::blocking(move || Ok(reader.generation()?)).await?;
        if let Some((at, seen, targets)) = built.as_ref() {
            if *seen == generation && at.elapsed() < TARGETS_REUSE {
                return Ok(targets.clone());
            }
        }
        let (store, rules, own) = (store.clone(), self.rules.clone(), self.own.clone());
        let targets = Arc::new(super::blocking::blocking(move || load(&store, rules, &own)).await?);
        *built = Some((Instant::now(), generation, targets.clone()));
        Ok(targets)
    }

    /// Refuses a caller's per-step timeout above `[http] probe_timeout`.
    pub fn check_timeout(&self, timeout: Duration) -> Result<(), ApiError> {
        if timeout > self.timeout {
            return Err(ApiError::bad_request(format!(
                "timeout {timeout:?} is above the most a probe may run through the API \
                 ([http] probe_timeout = {:?})",
                self.timeout
            )));
        }
        Ok(())
    }

    /// Refuses a migration file that names a file outside `[http] migration_dir`
    /// or any environment variable.
    pub fn check_files(&self, file: &MigrationFile) -> Result<(), ApiError> {
        // The server's environment is not the caller's: no `*_env` secret.
        if let Some(refused) = file.env_names_through_the_api().first() {
            return Err(ApiError::new(ErrorCode::Forbidden, refused.to_string()));
        }
        // Every provider the file names: the file's, and each [[zone]]'s.
        for spec in cutover_migrate::routed::specs(file) {
            for (key, path) in spec.secret_files() {
                self.check_secret_file(&key, path)?;
            }
        }
        Ok(())
    }

    /// A secret file a migration sent through the API names: only under
    /// `[http] migration_dir`.
    fn check_secret_file(&self, key: &str, path: &Path) -> Result<(), ApiError> {
        let refused = |why: String| Err(ApiError::new(ErrorCode::Forbidden, why));
        let Some(dir) = &self.migration_dir else {
            return refused(format!(
                "provider.{key}: a migration file sent through the API may name no file on the \
                 server unless [http] migration_dir is set (give the key inline as a [[key]])"
            ));
        };
        // The same words whether the file exists or not, so that a caller
        // learns nothing of the server's files outside the directory.
        let outside = || {
            refused(format!(
                "provider.{key}: the API reads files only under [http] migration_dir ({}), \
                 named by absolute path",
                dir.display()
            ))
        };
        if !path.is_absolute() || !lexical(path).starts_with(lexical(dir)) {
            return outside();
        }
        let (Ok(real), Ok(real_dir)) = (path.canonicalize(), dir.canonicalize()) else {
            // Inside the directory by name: the child says what is missing.
            return Ok(());
        };
        if !real.starts_with(real_dir) {
            return outside();
        }
        Ok(())
    }
}

/// A path with `.` and `..` worked out by name (no file system access).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Builds the targets from the stored zones and migrations.
fn load(store: &Store, rules: Vec<AllowRule>, own: &[SocketAddr]) -> Result<Targets, ApiError> {
    let mut targets = Targets::with_rules(rules);
    for address in own {
        targets.add_endpoint(Host::Ip(address.ip()), address.port());
    }
    // The resolvers `check` and `verify mail` use when given none.
    for resolver in caches::system_resolvers().unwrap_or_default() {
        targets.add_endpoint(Host::Ip(resolver.address.ip()), resolver.address.port());
    }
    for info in store.zones()? {
        targets.add_zone(&info.origin);
        let Some(zone) = store.zone(&info.origin)? else {
            continue;
        };
        for record in zone.records() {
            if let Some(ip) = address_of(&record.rdata) {
                targets.add_address(ip);
            }
            if let Some(name) = record.rdata.target() {
                targets.add_name(&name);
            }
        }
    }
    let migrations = Migrations::open(store.path())
        .map_err(|e| ApiError::internal(format!("the migrations: {e}")))?;
    let summaries = migrations
        .list()
        .map_err(|e| ApiError::internal(format!("the migrations: {e}")))?;
    for summary in summaries {
        // Every zone its plan moves: a `zones = "*"` file names none itself.
        for zone in summary.zones.iter().filter_map(|z| Name::from_str(z).ok()) {
            if !zone.is_root() {
                targets.add_zone(&zone);
            }
        }
        let Ok((name, text)) = migrations.file_text(summary.id) else {
            continue;
        };
        if let Ok(file) = MigrationFile::parse(&text, &name) {
            add_migration(&mut targets, &file);
        }
    }
    Ok(targets)
}

/// Adds what a stored migration names: its zone, the addresses it moves
/// from and to, the hosts it checks, its authorities, resolvers, provider
/// and mail destinations.
fn add_migration(targets: &mut Targets, file: &MigrationFile) {
    // `zones = "*"` names no zone until the store lists them (its plan
    // does, added with the summary): not the root.
    if !file.zone.is_root() {
        targets.add_zone(&file.zone);
    }
    for zone in &file.zones {
        targets.add_zone(&zone.name);
    }
    for spec in cutover_migrate::routed::specs(file) {
        for (host, port) in provider_endpoints(spec) {
            targets.add_endpoint(host, port);
        }
    }
    for moved in &file.moves {
        match moved {
            Move::Address { from, to, .. } => {
                targets.add_address(*from);
                targets.add_address(*to);
            }
            Move::Explicit { rdatas, .. } => {
                for rdata in rdatas {
                    if let Some(ip) = address_of(rdata) {
                        targets.add_address(ip);
                    }
                    if let Some(name) = rdata.target() {
                        targets.add_name(&name);
                    }
                }
            }
        }
    }
    for check in &file.checks {
        let endpoint = match &check.kind {
            CheckKind::Http { url, .. } => Url::parse(url)
                .ok()
                .and_then(|url| Some((Host::parse(&url.host)?, url.port))),
            CheckKind::Smtp { host, port } | CheckKind::Tcp { host, port } => {
                Host::parse(host).map(|host| (host, *port))
            }
        };
        if let Some((host, port)) = endpoint {
            targets.add_host(&host);
            targets.add_endpoint(host, port);
            if let Some(ip) = check.address {
                targets.add_address(ip);
                targets.add_endpoint(Host::Ip(ip), port);
            }
        }
    }
    let own = file.zones.iter().flat_map(|z| &z.authorities);
    for address in file
        .verify
        .authorities
        .iter()
        .chain(&file.verify.resolvers)
        .chain(own)
    {
        targets.add_endpoint(Host::Ip(address.ip()), address.port());
    }
    if let Some(mail) = &file.mail {
        for destination in [&mail.from, &mail.to] {
            if let Some((host, port)) = host_port(destination) {
                targets.add_host(&host);
                targets.add_endpoint(host, port);
            }
        }
    }
}

/// Where a provider connects: an RFC 2136 primary, an HTTP API's host.
fn provider_endpoints(provider: &ProviderSpec) -> Vec<(Host, u16)> {
    match provider {
        ProviderSpec::Embedded => Vec::new(),
        ProviderSpec::Rfc2136 { server, .. } => Host::parse(server)
            .map(|host| (host, 53))
            .or_else(|| host_port(server))
            .into_iter()
            .collect(),
        ProviderSpec::Powerdns { url, .. } => url_endpoint(url).into_iter().collect(),
        ProviderSpec::Cloud { settings, .. } => settings
            .iter()
            .filter(|(key, _)| key == "url")
            .filter_map(|(_, u)| url_endpoint(u))
            .collect(),
    }
}

/// The host and port of an `http://` or `https://` URL.
fn url_endpoint(url: &str) -> Option<(Host, u16)> {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        (url.strip_prefix("http://")?, 80)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    host_port(authority).or_else(|| Some((Host::parse(authority)?, default_port)))
}

/// A refusal: 403 with the reason.
fn forbidden(reason: String) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, reason)
}

/// A 400 naming what does not parse.
fn unreadable(what: &str, text: &str) -> ApiError {
    ApiError::bad_request(format!("{what} {text:?} does not parse"))
}

/// Holds a check request against the targets (a probe token's).
pub fn check_request(targets: &Targets, request: &CheckRequest) -> Result<(), ApiError> {
    let zone = super::error::zone_name(&request.zone)?;
    targets.domain(&zone).map_err(forbidden)?;
    let port = request.port.unwrap_or(53);
    for server in &request.servers {
        let address = server
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .or_else(|_| server.parse::<SocketAddr>())
            .map_err(|_| unreadable("server", server))?;
        targets
            .endpoint(&Host::Ip(address.ip()), address.port())
            .map_err(forbidden)?;
    }
    if request.servers.is_empty() && port != 53 {
        return Err(forbidden(format!(
            "port {port} for the zone's own servers: a probe token asks them on port 53, \
             or on the `servers` it may reach"
        )));
    }
    for entry in &request.resolvers {
        let resolver = Resolver::parse(entry).map_err(|_| unreadable("resolver", entry))?;
        targets
            .endpoint(&Host::Ip(resolver.address.ip()), resolver.address.port())
            .map_err(forbidden)?;
    }
    Ok(())
}

/// `cutover verify`'s command line, read as the child reads it.
#[derive(Debug, Parser)]
#[command(name = "cutover verify", no_binary_name = true)]
struct VerifyLine {
    /// The arguments.
    #[command(flatten)]
    args: VerifyArgs,
}

/// Reads a verify command line (after `verify`) as the child will, and
/// refuses options that name files on the server.
pub fn verify_args(argv: &[String]) -> Result<VerifyArgs, ApiError> {
    let line = VerifyLine::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("bad arguments").trim();
        ApiError::bad_request(first.trim_start_matches("error: ").to_owned())
    })?;
    if line.args.ca_file.is_some() {
        return Err(ApiError::bad_request(
            "--ca-file is not allowed through the API (it names a file on the server)",
        ));
    }
    Ok(line.args)
}

/// Holds a verify command against the targets (a probe token's).
pub fn verify_request(targets: &Targets, args: &VerifyArgs) -> Result<(), ApiError> {
    let endpoint = |text: &str| -> Result<(), ApiError> {
        let (host, port) = host_port(text).ok_or_else(|| unreadable("address", text))?;
        targets.endpoint(&host, port).map_err(forbidden)
    };
    match &args.service {
        Service::Http {
            url,
            address,
            old_address,
            ..
        } => {
            let url = Url::parse(url).map_err(|e| ApiError::bad_request(e.to_string()))?;
            for ip in std::iter::once(address).chain(old_address.iter()) {
                targets
                    .endpoint(&Host::Ip(*ip), url.port)
                    .map_err(forbidden)?;
            }
            Ok(())
        }
        Service::Smtp { address, .. } | Service::Tcp { address } => endpoint(address),
        Service::Imap(mailbox) | Service::Pop3(mailbox) => endpoint(&mailbox.address),
        Service::Mail {
            domain,
            resolver,
            mta_sts_port,
            ..
        } => {
            let domain = super::error::zone_name(domain)?;
            targets.domain(&domain).map_err(forbidden)?;
            if let Some(entry) = resolver {
                let resolver = Resolver::parse(entry).map_err(|_| unreadable("resolver", entry))?;
                targets
                    .endpoint(&Host::Ip(resolver.address.ip()), resolver.address.port())
                    .map_err(forbidden)?;
            }
            let policy_host = Name::from_ascii("mta-sts")
                .and_then(|label| label.append_domain(&domain))
                .map_err(|e| ApiError::bad_request(format!("mta-sts.{domain}: {e}")))?;
            targets
                .endpoint(&Host::Name(policy_host), *mta_sts_port)
                .map_err(forbidden)
        }
    }
}

/// Holds what planning a migration file connects to against the targets
/// (a probe token's): its zone, its provider, its authorities and resolvers.
pub fn migration_file(targets: &Targets, file: &MigrationFile) -> Result<(), ApiError> {
    targets.domain(&file.zone).map_err(forbidden)?;
    for zone in &file.zones {
        targets.domain(&zone.name).map_err(forbidden)?;
    }
    for spec in cutover_migrate::routed::specs(file) {
        if matches!(spec, ProviderSpec::Embedded) {
            continue;
        }
        let endpoints = provider_endpoints(spec);
        if endpoints.is_empty() {
            return Err(forbidden(format!(
                "provider ({}): cannot tell where it connects, so a probe token may not plan it",
                spec.kind()
            )));
        }
        for (host, port) in endpoints {
            targets
                .endpoint(&host, port)
                .map_err(|e| forbidden(format!("provider: {e}")))?;
        }
    }
    let own = file.zones.iter().flat_map(|z| &z.authorities);
    for address in file
        .verify
        .authorities
        .iter()
        .chain(&file.verify.resolvers)
        .chain(own)
    {
        targets
            .endpoint(&Host::Ip(address.ip()), address.port())
            .map_err(|e| forbidden(format!("verify: {e}")))?;
    }
    Ok(())
}

/// This binary as the kernel holds it: `/proc/self/exe` still runs after
/// the file on disk was replaced or deleted by an upgrade (elsewhere: the
/// path the binary was started from).
pub fn this_binary() -> Result<PathBuf, ApiError> {
    if cfg!(target_os = "linux") {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    std::env::current_exe()
        .map_err(|e| ApiError::internal(format!("cannot find the cutover binary: {e}")))
}

/// Runs this binary with `args` (in `dir` when given), stopped after
/// `deadline`; returns what it printed.
pub async fn run_child(
    args: &[std::ffi::OsString],
    dir: Option<&Path>,
    deadline: Duration,
) -> Result<Output, ApiError> {
    let verb = args
        .iter()
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-') && !a.contains('/'))
        .unwrap_or_default()
        .into_owned();
    let mut command = tokio::process::Command::new(this_binary()?);
    #[cfg(unix)]
    command.arg0("cutover");
    command
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("CUTOVER_SERVER")
        .env_remove("CUTOVER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = command
        .spawn()
        .map_err(|e| ApiError::internal(format!("cannot run cutover {verb}: {e}")))?;
    match tokio::time::timeout(deadline, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(ApiError::internal(format!("cutover {verb}: {e}"))),
        Err(_) => Err(ApiError::new(
            ErrorCode::TimedOut,
            format!(
                "cutover {verb} ran longer than [http] probe_timeout ({deadline:?}) and was stopped"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes with a key directory.
    fn probes(dir: Option<&Path>) -> Probes {
        Probes::new(
            Vec::new(),
            &[],
            Duration::from_secs(30),
            dir.map(Path::to_path_buf),
        )
    }

    /// A migration file with an RFC 2136 provider whose key is in `key_file`.
    fn with_key_file(key_file: &str) -> MigrationFile {
        let text = format!(
            "version = 1\nzone = \"example.com.\"\n\
             provider = {{ kind = \"rfc2136\", server = \"192.0.2.53\", key = \"ops.\", key_file = {key_file:?} }}\n\
             [[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n"
        );
        MigrationFile::parse(&text, "move.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn key_files_are_read_only_under_the_migration_dir_and_outside_looks_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(keys.join("ops.key"), "hmac-sha256:ops:c2VjcmV0").unwrap();
        std::fs::write(dir.path().join("secret.key"), "hmac-sha256:ops:c2VjcmV0").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.key"), keys.join("link.key")).unwrap();
        let inside = keys.join("ops.key").display().to_string();
        assert!(
            probes(Some(&keys))
                .check_files(&with_key_file(&inside))
                .is_ok(),
            "expected a key file in the directory allowed"
        );
        let nowhere = probes(None).check_files(&with_key_file(&inside));
        assert!(
            nowhere
                .as_ref()
                .is_err_and(|e| e.message.contains("unless [http] migration_dir")),
            "expected every key file refused without migration_dir, seen {nowhere:?}"
        );
        let messages: Vec<String> = [
            dir.path().join("secret.key").display().to_string(),
            dir.path().join("nothere.key").display().to_string(),
            format!("{}/../secret.key", keys.display()),
            keys.join("link.key").display().to_string(),
            "keys/ops.key".to_owned(),
        ]
        .iter()
        .map(|path| {
            let refused = probes(Some(&keys)).check_files(&with_key_file(path));
            let error = refused.expect_err(path);
            assert_eq!(error.code, ErrorCode::Forbidden, "{path}: expected 403");
            error.message
        })
        .collect();
        assert!(
            messages.windows(2).all(|pair| pair[0] == pair[1]),
            "expected the same words for an existing and a missing file outside, seen {messages:?}"
        );
    }

    #[test]
    fn verify_lines_are_read_as_the_child_reads_them() {
        let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let args = verify_args(&argv(&[
            "--json",
            "tcp",
            "192.0.2.10:6379",
            "--timeout",
            "2h",
        ]))
        .expect("a verify line");
        assert_eq!(
            args.timeout,
            Duration::from_secs(7200),
            "expected the caller's timeout"
        );
        let mut targets = Targets::default();
        targets.add_address("192.0.2.10".parse().unwrap());
        assert!(
            verify_request(&targets, &args).is_err_and(|e| e.code == ErrorCode::Forbidden),
            "expected a port scan of a named address refused"
        );
        assert!(
            verify_args(&argv(&[
                "http",
                "https://x.test/",
                "--address",
                "192.0.2.1",
                "--ca-file",
                "/etc/shadow"
            ]))
            .is_err_and(|e| e.message.contains("--ca-file")),
            "expected --ca-file refused"
        );
        assert!(
            verify_args(&argv(&["rm", "-rf"])).is_err_and(|e| e.code == ErrorCode::BadRequest),
            "expected an unknown service refused"
        );
        let http = verify_args(&argv(&[
            "http",
            "https://www.example.com/",
            "--address",
            "192.0.2.10",
            "--body-contains",
            "x",
        ]))
        .expect("an http line");
        assert!(
            verify_request(&targets, &http).is_ok(),
            "expected HTTPS at a named address allowed"
        );
    }

    #[test]
    fn provider_urls_name_their_host_and_port() {
        assert_eq!(
            url_endpoint("http://127.0.0.1:8081/api"),
            Some((Host::Ip("127.0.0.1".parse().unwrap()), 8081)),
            "expected the PowerDNS API's endpoint"
        );
        assert_eq!(
            url_endpoint("https://api.example.net"),
            Some((Host::parse("api.example.net").unwrap(), 443)),
            "expected the default HTTPS port"
        );
        assert_eq!(
            url_endpoint("https://user@10.0.0.1/"),
            None,
            "expected user info refused"
        );
        assert_eq!(
            url_endpoint("file:///etc/passwd"),
            None,
            "expected other schemes refused"
        );
    }
}
