//! A browser the tests click in: headless Chromium driven by chromedriver
//! over WebDriver (W3C, JSON over HTTP, spoken with ureq). chromedriver
//! cannot take port 0, so it is started on a picked port and started again
//! on another when that one was taken (`start_on_free_ports`).
//!
//! ```text
//!  test ──HTTP (ureq)──▶ chromedriver --port=P ──▶ chromium --headless ──▶ the dashboard
//!        find / click / accept the confirm dialog / run a script / screenshot
//! ```

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover_peers::{start_on_free_ports, wait_bound, Guard, Ports, Socket, StartError, LOOPBACK};
use serde_json::{json, Value};

/// The W3C name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long one WebDriver command may take on a loaded machine.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A Chromium session; the session and chromedriver end on drop.
pub struct Browser {
    /// chromedriver's base URL.
    base: String,
    /// The session's id.
    session: String,
    /// chromedriver (killed on drop, after the session is deleted).
    _driver: Guard,
    /// The browser's profile.
    _profile: tempfile::TempDir,
}

/// A WebDriver error: its code ("stale element reference") and message.
#[derive(Debug)]
pub struct DriverError {
    /// The W3C error code.
    pub code: String,
    /// What chromedriver said.
    pub message: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, its log in `dir`.
    pub fn start(dir: &Path) -> Browser {
        let log = dir.join("chromedriver.log");
        let (base, driver) = start_on_free_ports("chromedriver", |ports: &mut Ports| {
            let port = ports.pick(&[LOOPBACK]);
            let file = std::fs::File::create(&log).expect("the chromedriver log");
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(file.try_clone().expect("the log"))
                .stderr(file)
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| {
                    StartError::Failed(format!("chromedriver runs (package chromium-driver): {e}"))
                })?;
            let mut guard = Guard {
                child,
                what: "chromedriver",
            };
            let address = std::net::SocketAddr::from((LOOPBACK, port));
            match wait_bound(
                "chromedriver",
                &mut guard.child,
                &[Socket::Tcp(address)],
                &log,
            ) {
                Ok(()) => Ok((format!("http://{address}"), guard)),
                // It says so in its own words when the port (v4 or v6) was taken.
                Err(StartError::Failed(text)) if text.contains("port not available") => {
                    Err(StartError::InUse(text))
                }
                Err(other) => Err(other),
            }
        });
        let profile = tempfile::tempdir().expect("a profile directory");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1800",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let created = command(&base, "POST", "/session", Some(&capabilities)).unwrap_or_else(|e| {
            panic!(
                "expected a Chromium session, seen {e:?}; chromedriver log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a session id, seen {created}"))
            .to_owned();
        Browser {
            base,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    /// A command of this session.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, DriverError> {
        command(
            &self.base,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })))
            .unwrap_or_else(|e| panic!("expected {url} opened, seen {e:?}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub fn script(&self, script: &str, args: Value) -> Result<Value, DriverError> {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// [`Browser::script`], panicking on an error.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.script(script, args)
            .unwrap_or_else(|e| panic!("expected the script to run, seen {e:?}:\n{script}"))
    }

    /// Polls `script` until it returns something `ready` accepts (or
    /// panics after `limit`, naming `what` and the last value seen).
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        script: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.script(script, json!([]));
            if let Ok(value) = &seen {
                if ready(value) {
                    return value.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "expected {what} within {limit:?}, last seen {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` finds, found again when the page redrew it
    /// between the finding and the click (the dashboard redraws every 2 s).
    pub fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tried = self
                .call(
                    "POST",
                    "/element",
                    Some(&json!({"using": "css selector", "value": css})),
                )
                .and_then(|found| {
                    let id = found[ELEMENT].as_str().unwrap_or_default().to_owned();
                    // Away from the sticky header before the click.
                    let mut element = serde_json::Map::new();
                    element.insert(ELEMENT.to_owned(), Value::String(id.clone()));
                    self.script(
                        "arguments[0].scrollIntoView({block: 'center'});",
                        Value::Array(vec![Value::Object(element)]),
                    )?;
                    self.call("POST", &format!("/element/{id}/click"), Some(&json!({})))
                });
            match tried {
                Ok(_) => return,
                Err(e)
                    if Instant::now() < deadline
                        && [
                            "stale element reference",
                            "no such element",
                            "element click intercepted",
                            "element not interactable",
                        ]
                        .contains(&e.code.as_str()) =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("expected {css} clicked, seen {e:?}"),
            }
        }
    }

    /// The text of the open dialog (a `confirm`), once it is open.
    pub fn dialog_text(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.call("GET", "/alert/text", None) {
                Ok(text) => return text.as_str().unwrap_or_default().to_owned(),
                Err(e) if e.code == "no such alert" && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("expected a confirmation dialog, seen {e:?}"),
            }
        }
    }

    /// Accepts the open dialog (OK).
    pub fn accept_dialog(&self) {
        self.call("POST", "/alert/accept", Some(&json!({})))
            .unwrap_or_else(|e| panic!("expected the dialog accepted, seen {e:?}"));
    }

    /// Saves a screenshot of the window as PNG at `file`; returns its size.
    pub fn screenshot(&self, file: &Path) -> usize {
        let shot = self
            .call("GET", "/screenshot", None)
            .unwrap_or_else(|e| panic!("expected a screenshot, seen {e:?}"));
        let png = base64(shot.as_str().unwrap_or_default());
        std::fs::write(file, &png).expect("the screenshot written");
        png.len()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = command(
            &self.base,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// One WebDriver command: the answer's `value`, or its error.
fn command(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, DriverError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(COMMAND_LIMIT))
        .build()
        .into();
    let url = format!("{base}{path}");
    let response = match method {
        "GET" => agent.get(&url).call(),
        "DELETE" => agent.delete(&url).call(),
        _ => agent
            .post(&url)
            .content_type("application/json")
            .send(body.map(Value::to_string).unwrap_or_default()),
    };
    let failed = |message: String| DriverError {
        code: "transport".into(),
        message,
    };
    let mut response = response.map_err(|e| failed(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| failed(e.to_string()))?;
    let answer: Value = serde_json::from_str(&text).map_err(|e| failed(format!("{e}: {text}")))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    match value["error"].as_str() {
        Some(code) if status >= 400 => Err(DriverError {
            code: code.to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        }),
        _ => Ok(value),
    }
}

/// Standard base64 decoded (the screenshot's PNG).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).unwrap_or(0));
        }
    }
    out
}
