//! A mail submission server on loopback: aiosmtpd (Python, from PyPI,
//! installed by `.ci/run`), the SMTP server of Python's own mail tools,
//! with TLS from a test CA's certificate, AUTH required and one login. It
//! binds port 0 itself and prints the port it holds, so there is no port
//! race; each message it takes is printed as one line the test reads.
//!
//! ```text
//!  client ──TCP──▶ aiosmtpd (127.0.0.1:PORT)  STARTTLS required, or TLS from the first byte
//!                  AUTH PLAIN/LOGIN required (one user), then MAIL, RCPT, DATA
//!                  └─ "msg\tUSER\tTLS\tFROM\tTO,TO\tJSON(data)" on stdout ──▶ Submission::messages
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Guard;

/// The child's program: argv = mode, cert, key, user, password.
const SCRIPT: &str = r#"
import asyncio, json, socket, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
mode, cert, key, user, password = sys.argv[1:6]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        who = str(session.auth_data)
        tls = "tls" if server.transport.get_extra_info("ssl_object") is not None else "plain"
        print("msg\t%s\t%s\t%s\t%s\t%s" % (who, tls, envelope.mail_from, ",".join(envelope.rcpt_tos),
              json.dumps(envelope.content.decode("utf-8", "replace"))), flush=True)
        return "250 2.0.0 taken"

def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password:
        return AuthResult(success=True, auth_data=user)
    return AuthResult(success=False, handled=False)

def factory():
    if mode == "starttls":
        return SMTP(Handler(), hostname="submission.test", tls_context=ctx, require_starttls=True,
                    authenticator=authenticator, auth_required=True, auth_require_tls=True)
    return SMTP(Handler(), hostname="submission.test", authenticator=authenticator,
                auth_required=True, auth_require_tls=False)

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
sock.listen(16)
server = loop.run_until_complete(loop.create_server(factory, sock=sock, ssl=ctx if mode == "tls" else None))
print("port\t%d" % sock.getsockname()[1], flush=True)
loop.run_forever()
"#;

/// How the server takes TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// STARTTLS, required before anything else (port 587's way).
    StartTls,
    /// TLS from the first byte (port 465's way).
    Implicit,
}

/// A running submission server.
pub struct Submission {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Each message taken: `msg\tUSER\tTLS\tFROM\tTO,TO\tJSON(data)`.
    messages: Arc<Mutex<Vec<String>>>,
    /// The child, killed on drop.
    _guard: Guard,
}

impl Submission {
    /// Starts aiosmtpd with `cert`/`key` (PEM files), taking `tls` and the
    /// one login `user`/`password`; panics with the reason when python3
    /// or aiosmtpd is missing.
    pub fn start(tls: Tls, cert: &Path, key: &Path, user: &str, password: &str) -> Submission {
        let mode = match tls {
            Tls::StartTls => "starttls",
            Tls::Implicit => "tls",
        };
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(mode)
            .arg(cert)
            .arg(key)
            .arg(user)
            .arg(password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (aiosmtpd 1.4.6 is installed by .ci/run)");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let guard = Guard {
            child,
            what: "aiosmtpd",
        };
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("reading aiosmtpd's port");
        let port: u16 = line
            .trim_end()
            .strip_prefix("port\t")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "aiosmtpd did not start (is `aiosmtpd==1.4.6` installed?): it printed {line:?}"
                )
            });
        let messages = Arc::new(Mutex::new(Vec::new()));
        let taken = Arc::clone(&messages);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                taken.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Submission {
            addr: format!("127.0.0.1:{port}"),
            messages,
            _guard: guard,
        }
    }

    /// The messages taken so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `limit` for a message; the messages then.
    pub fn wait_for_message(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let messages = self.messages();
            if !messages.is_empty() || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
