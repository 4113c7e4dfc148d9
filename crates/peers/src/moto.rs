//! moto's Route 53 on loopback: the real API (XML over HTTP, the same
//! routes and errors) served by `moto.server.ThreadedMotoServer` in a
//! python3 child that binds port 0 and prints the port it holds, so there
//! is no port race. The same child is "someone else": it creates hosted
//! zones and edits records through boto3 on a line protocol over its
//! stdin/stdout.
//!
//! ```text
//!  test ──"zone\tNAME"──────────────────────────▶ python3 ──boto3──▶ moto (127.0.0.1:PORT)
//!       ──"set\tID\tNAME\tTYPE\tTTL\tVALUE…"───▶          (UPSERT)
//!       ◀─"ok[\tID]" │ "error\tWHY"───────────────
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use crate::Guard;

/// The child's program: the server, then commands until stdin closes.
const SCRIPT: &str = r#"
import sys
from moto.server import ThreadedMotoServer
import boto3
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server._server.server_port
client = boto3.client("route53", endpoint_url="http://127.0.0.1:%d" % port,
    aws_access_key_id="someone-else", aws_secret_access_key="someone-elses-secret",
    region_name="us-east-1")
print("port\t%d" % port, flush=True)
n = 0
for line in sys.stdin:
    parts = line.rstrip("\n").split("\t")
    try:
        if parts[0] == "zone":
            n += 1
            r = client.create_hosted_zone(Name=parts[1], CallerReference="cutover-test-%d" % n)
            print("ok\t" + r["HostedZone"]["Id"].split("/")[-1], flush=True)
        elif parts[0] == "set":
            records = [{"Value": v} for v in parts[5:]]
            client.change_resource_record_sets(HostedZoneId=parts[1], ChangeBatch={"Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": {"Name": parts[2], "Type": parts[3],
                 "TTL": int(parts[4]), "ResourceRecords": records}}]})
            print("ok", flush=True)
        else:
            print("error\tunknown command " + parts[0], flush=True)
    except Exception as e:
        print("error\t" + str(e).replace("\n", " "), flush=True)
server.stop()
"#;

/// A running moto server with Route 53.
pub struct Moto {
    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    /// Commands to the child.
    stdin: ChildStdin,
    /// Its answers.
    stdout: BufReader<ChildStdout>,
    /// The child, killed on drop.
    _guard: Guard,
}

impl Moto {
    /// Starts moto; panics with the reason when python3 or moto is missing.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Starts moto checking credentials from the first request on: an
    /// access key it does not know is refused (403 InvalidClientTokenId),
    /// as AWS refuses one. Its helper cannot create zones then.
    pub fn start_checking_credentials() -> Moto {
        Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    /// Starts moto with `env` added to its environment.
    fn start_with(env: &[(&str, &str)]) -> Moto {
        let mut child = Command::new("python3")
            .envs(env.iter().copied())
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (moto[server] 5.2.1 is installed by .ci/run)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let guard = Guard {
            child,
            what: "moto",
        };
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading moto's port");
        let port: u16 = line
            .trim_end()
            .strip_prefix("port\t")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "moto did not start (is `moto[server]==5.2.1` installed?): it printed {line:?}"
                )
            });
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            stdin,
            stdout,
            _guard: guard,
        }
    }

    /// One command; its answer after `ok`, or a panic with moto's error.
    fn command(&mut self, parts: &[&str]) -> String {
        writeln!(self.stdin, "{}", parts.join("\t")).expect("writing to moto's helper");
        self.stdin.flush().expect("flushing to moto's helper");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading moto's helper");
        let line = line.trim_end();
        match line.strip_prefix("ok") {
            Some(rest) => rest.trim_start_matches('\t').to_string(),
            None => panic!("moto refused {parts:?}: {line:?}"),
        }
    }

    /// Creates a hosted zone; its id (`Z…`, without `/hostedzone/`).
    pub fn create_zone(&mut self, name: &str) -> String {
        self.command(&["zone", name])
    }

    /// Someone else's edit: UPSERT of `name` `rtype` with `ttl` and `values`
    /// (zone-file form) through boto3.
    pub fn upsert(&mut self, zone_id: &str, name: &str, rtype: &str, ttl: u32, values: &[&str]) {
        let ttl = ttl.to_string();
        let mut parts = vec!["set", zone_id, name, rtype, ttl.as_str()];
        parts.extend_from_slice(values);
        self.command(&parts);
    }

    /// Loads a zone file's RRsets (owner names absolute, one record a line:
    /// `NAME TTL IN TYPE DATA`) into the hosted zone `zone_id`, the SOA and
    /// apex NS replacing moto's own.
    pub fn load(&mut self, zone_id: &str, lines: &[(String, u32, String, String)]) {
        let mut sets: Vec<(String, u32, String, Vec<String>)> = Vec::new();
        for (name, ttl, rtype, data) in lines {
            match sets.iter_mut().find(|(n, _, t, _)| n == name && t == rtype) {
                Some(set) => set.3.push(data.clone()),
                None => sets.push((name.clone(), *ttl, rtype.clone(), vec![data.clone()])),
            }
        }
        for (name, ttl, rtype, values) in &sets {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            self.upsert(zone_id, name, rtype, *ttl, &values);
        }
    }
}
