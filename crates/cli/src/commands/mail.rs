//! `cutover mail …`: the relay's queue and the move controls. Each command
//! goes to the running relay through its control socket, or works on the
//! spool at rest when no relay runs (see `cutover_mail::control`).
//!
//! ```text
//!  cutover mail queue|show|hold|release|retarget|flush|delete
//!     ──▶ MailControl (spool from [mail] spool or --spool)
//!           ├─ relay running: spool/control.sock, one JSON request
//!           └─ at rest: spool/lock taken, spool read and written directly
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand};
use cutover_mail::queue::Selector;
use cutover_mail::{MailControl, QueuedMessage};

use crate::commands::common::{timestamp, Unconfirmed};
use crate::commands::table::{Table, Tone};
use cutover_server::config::Config;

/// `cutover mail`.
#[derive(Debug, Args)]
pub struct MailArgs {
    /// The spool directory (default: the config's `[mail] spool`).
    #[arg(long, global = true, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: MailCommand,
}

/// The verbs of `cutover mail`.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// List the queue: id, age, size, held, each recipient's state, attempts, last error.
    Queue {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One message: envelope, recipients, headers.
    Show {
        /// The queue id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold mail: nothing selected is delivered until released (a domain:
    /// its mail arriving later too). Prints how many queued messages it held.
    Hold(Target),
    /// Release held mail; it is due at once. Prints how many it released.
    Release(Target),
    /// Send a domain's mail to HOST[:PORT] from now on; its deferred mail that
    /// is not held goes there at once. Held mail STAYS HELD: release it with
    /// `cutover mail release --domain DOMAIN` once the new server is ready,
    /// or give --release. Persists across restarts.
    Retarget {
        /// The domain.
        domain: String,
        /// The new destination: host, host:port or [v6]:port (port 25 by default).
        destination: String,
        /// Release the domain's held mail too: it goes to the new destination at once.
        #[arg(long)]
        release: bool,
        /// Keep the domain's held mail held (the default; kept for scripts).
        #[arg(long, hide = true, conflicts_with = "release")]
        keep_held: bool,
    },
    /// Try waiting mail that is not held now.
    Flush(Target),
    /// Delete mail without a bounce (needs --yes).
    Delete {
        /// What to delete.
        #[command(flatten)]
        target: Target,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
}

/// What a control applies to: a message id, `--domain D` or `--all`.
#[derive(Debug, Args)]
pub struct Target {
    /// A queue id.
    #[arg(conflicts_with_all = ["domain", "all"], required_unless_present_any = ["domain", "all"])]
    pub id: Option<String>,
    /// Every message with a recipient in this domain (and, for hold/release, the domain itself).
    #[arg(long, conflicts_with = "all")]
    pub domain: Option<String>,
    /// Everything.
    #[arg(long)]
    pub all: bool,
}

impl Target {
    /// The queue's selector.
    fn selector(&self) -> Selector {
        match (&self.id, &self.domain) {
            (Some(id), _) => Selector::Message(id.clone()),
            (None, Some(domain)) => Selector::Domain(domain.clone()),
            (None, None) => Selector::All,
        }
    }
}

/// Runs `cutover mail …`.
pub fn run(args: &MailArgs, config_path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut routes = std::collections::BTreeMap::new();
    let spool = match &args.spool {
        Some(spool) => spool.clone(),
        None => {
            let config = Config::find(config_path)?
                .context("no config file found: give --config FILE or --spool DIR")?;
            let mail = config
                .mail
                .context("the config has no [mail] section: give --spool DIR")?;
            // For listings of the spool at rest; the config was validated.
            routes = mail.routes();
            mail.spool
        }
    };
    let mut control = MailControl::new(spool);
    control.routes = routes;
    match &args.command {
        MailCommand::Queue { json } => {
            let queue = control.queue()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&queue)?);
            } else {
                print!(
                    "{}",
                    render_queue(
                        &queue,
                        crate::commands::common::colour_on(&std::io::stdout())
                    )
                );
            }
        }
        MailCommand::Show { id, json } => {
            let message = control.show(id)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&message)?);
            } else {
                print!("{}", render_message(&message));
            }
        }
        MailCommand::Hold(target) => {
            let selector = target.selector();
            report("held", control.hold(selector.clone())?);
            if let Selector::Domain(domain) = &selector {
                println!("mail for {domain} arriving from now on is held too");
            }
        }
        MailCommand::Release(target) => {
            report("released (due now)", control.release(target.selector())?);
            at_rest(&control);
        }
        MailCommand::Flush(target) => {
            report("due now", control.flush(target.selector())?);
            at_rest(&control);
        }
        MailCommand::Retarget {
            domain,
            destination,
            release,
            keep_held: _,
        } => {
            let retargeted = control.retarget(domain, destination, *release)?;
            println!("{domain} now goes to {destination}");
            if *release {
                report("released", retargeted.released);
            }
            report("due now", retargeted.due);
            if !retargeted.held.is_empty() {
                report("held: they stay held", retargeted.held);
                println!(
                    "release them with `cutover mail release --domain {domain}` \
                     once {destination} is ready"
                );
            }
            at_rest(&control);
        }
        MailCommand::Delete { target, yes } => {
            if !*yes {
                return Err(Unconfirmed(format!(
                    "deleting {} drops mail without telling its senders",
                    describe(&target.selector())
                ))
                .into());
            }
            report("deleted", control.delete(target.selector())?);
        }
    }
    Ok(())
}

/// What a selector means, in words.
fn describe(selector: &Selector) -> String {
    match selector {
        Selector::All => "every queued message".into(),
        Selector::Domain(domain) => format!("the mail for {domain}"),
        Selector::Message(id) => format!("message {id}"),
    }
}

/// Says so when no relay runs: the spool was changed at rest, and nothing
/// due is sent until the relay starts.
fn at_rest(control: &MailControl) {
    if !control.is_running() {
        println!(
            "no relay is running on {}: nothing is sent until it starts",
            control.spool().display()
        );
    }
}

/// Prints how many messages an operation touched, and which.
fn report(what: &str, ids: Vec<String>) {
    println!("{} message(s) {what}", ids.len());
    for id in ids {
        println!("  {id}");
    }
}

/// A short age: 42s, 5m, 3h, 2d.
fn age(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds}s"),
        120..=7199 => format!("{}m", seconds / 60),
        7200..=172_799 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// The queue as a table, one line per recipient with its message's id,
/// age, size, hold and sender, so that `grep DOMAIN` shows all of a
/// domain's mail with where each recipient stands; then the count. The
/// same here and through `--server`.
pub fn render_queue(queue: &[QueuedMessage], colour: bool) -> String {
    if queue.is_empty() {
        return "mail queue is empty\n".into();
    }
    let mut table = Table::new([
        "ID",
        "AGE",
        "SIZE",
        "HELD",
        "SENDER",
        "RECIPIENT",
        "STATE",
        "ATTEMPTS",
        "LAST ERROR",
    ])
    .right(&[1, 2, 7]);
    for message in queue {
        let sender = if message.sender.is_empty() {
            "<>"
        } else {
            &message.sender
        };
        let columns = |recipient: &str, state: &str, attempts: String, error: &str| {
            [
                message.id.clone(),
                age(message.age_seconds),
                message.size.to_string(),
                if message.held { "yes" } else { "no" }.to_owned(),
                sender.to_owned(),
                recipient.to_owned(),
                state.to_owned(),
                attempts,
                error.to_owned(),
            ]
        };
        if message.recipients.is_empty() {
            table.row(columns("-", "-", "-".into(), ""));
        }
        for recipient in &message.recipients {
            let tone = match recipient.state.as_str() {
                "failed" => Tone::Alarm,
                _ => Tone::Plain,
            };
            table.toned(
                tone,
                columns(
                    &recipient.address,
                    &recipient.state,
                    recipient.attempts.to_string(),
                    recipient.last_error.as_deref().unwrap_or(""),
                ),
            );
        }
    }
    let mut out = table.render(colour);
    out.push_str(&format!("{} message(s)\n", queue.len()));
    out
}

/// One message in full.
fn render_message(message: &QueuedMessage) -> String {
    let at = |seconds: u64| timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
    let mut out = format!(
        "id:       {}\nsender:   <{}>\nreceived: {} ({} ago)\nsize:     {}\nheld:     {}\n",
        message.id,
        message.sender,
        at(message.received),
        age(message.age_seconds),
        message.size,
        if message.held { "yes" } else { "no" }
    );
    for recipient in &message.recipients {
        out.push_str(&format!(
            "rcpt:     {} {} attempts={} next={} to={}\n",
            recipient.address,
            recipient.state,
            recipient.attempts,
            at(recipient.next_attempt),
            recipient.destination.as_deref().unwrap_or("(no route)")
        ));
        if let Some(error) = &recipient.last_error {
            out.push_str(&format!("          last error: {error}\n"));
        }
    }
    if let Some(headers) = &message.headers {
        out.push('\n');
        out.push_str(&headers.replace("\r\n", "\n"));
    }
    out
}
