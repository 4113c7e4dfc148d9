//! The HTTP API of `cutover serve`, route by route, against the real binary:
//! the OpenAPI document against the router, authentication failures, bad
//! input (a clear error, nothing changed), zones and records through the
//! update path, checks, the mail queue of a running relay, migrations from
//! a file to their timeline, and the event streams.

mod control;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use control::{assert_error, assert_schema, ok, raw, send_mail, validate_openapi, Site};
use serde_json::{json, Value};

/// The zone's current serial, through the API.
fn serial(site: &Site) -> u64 {
    let (status, zone) = site.call(
        "GET",
        "/api/v1/zones/example.test.",
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the zone, seen {zone}");
    zone["serial"].as_u64().expect("a serial")
}

#[test]
fn the_document_and_the_router_list_the_same_routes() {
    let site = Site::start("");
    let (status, document) = site.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(status, 200, "expected the document, seen {status}");
    if let Err(said) = validate_openapi(&document) {
        panic!("expected the served document valid OpenAPI, the validator said:\n{said}");
    }
    let text = document.to_string();
    for needle in ["::", "cutover_api", "cutover_migrate", "crate::"] {
        assert!(
            !text.contains(needle),
            "expected no Rust type path ({needle:?}) in the document, seen it near {:?}",
            text.find(needle)
                .map(|at| &text[at.saturating_sub(80)..(at + 40).min(text.len())])
        );
    }
    for piece in text.split("#/components/schemas/").skip(1) {
        let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(
            document["components"]["schemas"].get(&name).is_some(),
            "expected every referenced schema in the document, seen {name} missing"
        );
    }
    // The answers' check is strict: a key no schema declares, deep inside,
    // is refused (every answer `Site::call` gets goes through it).
    let undeclared = json!({"zones": [{"origin": "e.", "serial": 1, "records": 2,
        "updated_at": "t", "undeclared": true}]});
    assert!(
        std::panic::catch_unwind(|| assert_schema("ZoneList", &undeclared)).is_err(),
        "expected an undeclared nested key refused"
    );
    for name in cutover_api::types::SERVED_ELSEWHERE {
        assert!(
            document["components"]["schemas"][name]["properties"].is_object(),
            "expected the served schema {name} in full, seen {}",
            document["components"]["schemas"][name]
        );
    }
    let operations = cutover_api::openapi::operations(&document);
    assert_eq!(
        operations.len(),
        cutover_api::ROUTES.len(),
        "expected one operation per route, seen {operations:?}"
    );
    for (method, path) in &operations {
        let concrete = path.replace("{zone}", "example.test.").replace("{id}", "1");
        let public = document["paths"][path][method.to_ascii_lowercase()]["security"]
            .as_array()
            .is_some_and(|s| s.is_empty());
        let (status, kind, body) =
            raw(&site.url(&concrete), method, None, Some("{}")).expect("the request goes");
        if public {
            assert_eq!(
                status, 200,
                "{method} {path}: expected 200 without a token, seen {status} {body}"
            );
        } else {
            assert_eq!(status, 401, "{method} {path}: expected 401 without a token (the route exists and is guarded), seen {status} {body}");
            assert!(
                kind.starts_with("application/json"),
                "{method} {path}: expected a JSON error, seen {kind}"
            );
        }
    }
    // And the router serves nothing the document does not list.
    for (method, path) in [
        ("GET", "/api/v1/nothing"),
        ("GET", "/api/v2/zones"),
        ("POST", "/api/v1/zones/example.test./versions"),
    ] {
        let (status, _, body) =
            raw(&site.url(path), method, Some(&site.admin), Some("{}")).expect("the request goes");
        assert!(
            status == 404 || status == 405,
            "{method} {path}: expected 404 or 405, seen {status} {body}"
        );
    }
    assert_error(
        &site.call("GET", "/api/v1/nothing", Some(&site.admin), None),
        404,
        "not_found",
        "an unknown path",
    );
}

#[test]
fn tokens_are_checked_and_scoped() {
    let site = Site::start("");
    assert_error(
        &site.call("GET", "/api/v1/zones", None, None),
        401,
        "unauthenticated",
        "no token",
    );
    assert_error(
        &site.call("GET", "/api/v1/zones", Some("cutover_0000"), None),
        401,
        "bad_token",
        "a wrong token",
    );
    let (status, who) = site.call("GET", "/api/v1/whoami", Some(&site.reader), None);
    assert_eq!(
        (status, who["name"].as_str(), who["scope"].as_str()),
        (200, Some("viewer"), Some("read")),
        "expected the read token, seen {who}"
    );
    let before = serial(&site);
    let change = r#"{"action":"set","name":"www","type":"A","data":"127.0.0.9"}"#;
    assert_error(
        &site.call(
            "POST",
            "/api/v1/zones/example.test./records",
            Some(&site.reader),
            Some(change),
        ),
        403,
        "forbidden",
        "a read token on an admin route",
    );
    assert_eq!(
        serial(&site),
        before,
        "expected the refused change to change nothing"
    );
    // A revoked token stops working at once.
    ok(
        "token revoke",
        site.run(&[
            "--store",
            site.store.to_str().unwrap(),
            "token",
            "revoke",
            "viewer",
        ]),
    );
    assert_error(
        &site.call("GET", "/api/v1/zones", Some(&site.reader), None),
        401,
        "bad_token",
        "a revoked token",
    );
    let listed = ok(
        "token list",
        site.run(&["--store", site.store.to_str().unwrap(), "token", "list"]),
    );
    assert!(
        listed.contains("ops") && listed.contains("admin") && !listed.contains("viewer"),
        "expected only ops listed, seen {listed}"
    );
    assert!(
        !listed.contains(site.admin.trim_start_matches("cutover_")),
        "expected no secret in the listing"
    );
}

#[test]
fn zones_and_records_through_the_update_path() {
    let site = Site::start("");
    let admin = Some(site.admin.as_str());
    let (status, list) = site.call("GET", "/api/v1/zones", admin, None);
    assert_eq!(status, 200, "expected the list, seen {list}");
    assert_schema("ZoneList", &list);
    assert_schema("ZoneSummary", &list["zones"][0]);
    assert_eq!(
        list["zones"][0]["origin"], "example.test.",
        "expected the zone, seen {list}"
    );
    assert_eq!(
        list["zones"][0]["records"], 5,
        "expected 5 records, seen {list}"
    );

    let (status, zone) = site.call("GET", "/api/v1/zones/example.test", admin, None);
    assert_eq!(
        status, 200,
        "expected the zone (a relative name is made absolute), seen {zone}"
    );
    assert_schema("ZoneView", &zone);
    assert_schema("RecordView", &zone["records"][0]);
    let www: Vec<&Value> = zone["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "www.example.test.")
        .collect();
    assert_eq!(www.len(), 1, "expected one www record, seen {zone}");
    assert_eq!(
        (
            www[0]["type"].as_str(),
            www[0]["data"].as_str(),
            www[0]["ttl"].as_u64()
        ),
        (Some("A"), Some("127.0.0.2"), Some(2)),
        "expected www A, seen {}",
        www[0]
    );

    let before = serial(&site);
    // Dry run: the diff, nothing applied.
    let (status, dry) = site.call(
        "POST",
        "/api/v1/zones/example.test./records",
        admin,
        Some(r#"{"action":"add","name":"api","type":"A","data":"192.0.2.50","dry_run":true}"#),
    );
    assert_eq!(
        (status, dry["applied"].as_bool()),
        (200, Some(false)),
        "expected a dry run, seen {dry}"
    );
    assert_eq!(
        dry["diff"]["added"]
            .as_array()
            .map(|a| a.iter().any(|r| r["name"] == "api.example.test.")),
        Some(true),
        "expected api in the dry diff, seen {dry}"
    );
    assert_eq!(
        serial(&site),
        before,
        "expected the dry run to change nothing"
    );

    // A real change: serial up, journalled, served.
    let (status, done) = site.call(
        "POST",
        "/api/v1/zones/example.test./records",
        admin,
        Some(r#"{"action":"add","name":"api","type":"A","data":"192.0.2.50","ttl":120}"#),
    );
    assert_eq!(
        (status, done["applied"].as_bool()),
        (200, Some(true)),
        "expected the change applied, seen {done}"
    );
    let after = serial(&site);
    assert!(
        after > before,
        "expected the serial to rise from {before}, seen {after}"
    );
    assert_eq!(
        done["diff"]["to"].as_u64(),
        Some(after),
        "expected the diff to end at the new serial, seen {done}"
    );

    let (status, versions) = site.call("GET", "/api/v1/zones/example.test./versions", admin, None);
    assert_eq!(status, 200, "expected versions, seen {versions}");
    let last = versions["versions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["serial"].as_u64(),
        Some(after),
        "expected the last version at the new serial, seen {versions}"
    );
    assert!(
        last["comment"]
            .as_str()
            .unwrap()
            .contains("api: record add api A"),
        "expected the API's comment, seen {last}"
    );

    let (status, diff) = site.call("GET", "/api/v1/zones/example.test./diff", admin, None);
    assert_eq!(status, 200, "expected the last diff, seen {diff}");
    assert_schema("DiffView", &diff);
    assert_eq!(
        (diff["from"].as_u64(), diff["to"].as_u64()),
        (Some(before), Some(after)),
        "expected the last change, seen {diff}"
    );
    let added: Vec<String> = diff["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["name"].as_str().unwrap(),
                r["ttl"],
                r["type"].as_str().unwrap(),
                r["data"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        added.contains(&"api.example.test. 120 A 192.0.2.50".to_owned()),
        "expected api added, seen {added:?}"
    );
    let (status, explicit) = site.call(
        "GET",
        &format!("/api/v1/zones/example.test./diff?from={before}&to={after}"),
        admin,
        None,
    );
    assert_eq!(
        (status, &explicit),
        (200, &diff),
        "expected the same diff with from and to"
    );

    // The nameserver serves the change (the reload watcher follows the store).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = std::process::Command::new("kdig")
            .args([
                "+short",
                "+retry=0",
                "+time=1",
                &format!("@{}", site.dns.ip()),
                "-p",
                &site.dns.port().to_string(),
                "api.example.test.",
                "A",
            ])
            .output()
            .expect("kdig runs");
        if String::from_utf8_lossy(&answer.stdout).trim() == "192.0.2.50" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected api.example.test. A 192.0.2.50 served within 5 s, seen {:?}",
            String::from_utf8_lossy(&answer.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Set and delete.
    let (status, set) = site.call(
        "POST",
        "/api/v1/zones/example.test./records",
        admin,
        Some(r#"{"action":"set","name":"api.example.test.","type":"A","data":"192.0.2.51"}"#),
    );
    assert_eq!(status, 200, "expected the set, seen {set}");
    assert_eq!(
        set["diff"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == "api.example.test.")
            .count(),
        1,
        "expected the old api record removed, seen {set}"
    );
    let (status, deleted) = site.call(
        "POST",
        "/api/v1/zones/example.test./records",
        admin,
        Some(r#"{"action":"delete","name":"api","type":"A"}"#),
    );
    assert_eq!(
        (status, deleted["applied"].as_bool()),
        (200, Some(true)),
        "expected the delete, seen {deleted}"
    );
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let site = Site::start("");
    let admin = Some(site.admin.as_str());
    let before = serial(&site);
    let records = "/api/v1/zones/example.test./records";
    for (body, status, code, what) in [
        ("{not json", 400, "bad_request", "a body that is not JSON"),
        (
            r#"{"action":"add","name":"www","type":"A"}"#,
            400,
            "bad_request",
            "an add without data",
        ),
        (
            r#"{"action":"add","name":"www","type":"A","data":"not-an-address"}"#,
            400,
            "bad_request",
            "bad A data",
        ),
        (
            r#"{"action":"add","name":"www","type":"NOPE","data":"1.2.3.4"}"#,
            400,
            "bad_request",
            "an unknown type",
        ),
        (
            r#"{"action":"add","name":"www.elsewhere.","type":"A","data":"1.2.3.4"}"#,
            400,
            "bad_request",
            "a name outside the zone",
        ),
        (
            r#"{"action":"add","name":"www","type":"A","data":"1.2.3.4","surprise":1}"#,
            400,
            "bad_request",
            "an unknown field",
        ),
        (
            r#"{"action":"move","name":"www","type":"A","data":"1.2.3.4"}"#,
            400,
            "bad_request",
            "an unknown action",
        ),
        (
            r#"{"action":"delete","name":"nothere","type":"A"}"#,
            422,
            "rejected",
            "deleting what is not there",
        ),
        (
            r#"{"action":"delete","name":"www","type":"A","data":"10.9.9.9"}"#,
            422,
            "rejected",
            "deleting a record that is not there",
        ),
    ] {
        assert_error(
            &site.call("POST", records, admin, Some(body)),
            status,
            code,
            what,
        );
        assert_eq!(serial(&site), before, "{what}: expected nothing changed");
    }
    // RFC 2136 lets a wire UPDATE drop a CNAME beside other data silently;
    // a person asked for it, so it is refused with the reason.
    let cname = r#"{"action":"add","name":"www","type":"CNAME","data":"other"}"#;
    assert_error(
        &site.call("POST", records, admin, Some(cname)),
        422,
        "rejected",
        "a CNAME beside other data",
    );
    assert_eq!(
        serial(&site),
        before,
        "a CNAME beside data: expected nothing changed"
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/zones/nothere.test./records",
            admin,
            Some(r#"{"action":"add","name":"www","type":"A","data":"1.2.3.4"}"#),
        ),
        404,
        "not_found",
        "an unknown zone",
    );
    assert_error(
        &site.call("GET", "/api/v1/zones/nothere.test.", admin, None),
        404,
        "not_found",
        "showing an unknown zone",
    );
    assert_error(
        &site.call(
            "GET",
            "/api/v1/zones/example.test./diff?from=abc",
            admin,
            None,
        ),
        400,
        "bad_request",
        "a bad serial",
    );
    assert_error(
        &site.call(
            "GET",
            "/api/v1/zones/example.test./diff?color=red",
            admin,
            None,
        ),
        400,
        "bad_request",
        "an unknown parameter",
    );
    assert_error(
        &site.call(
            "GET",
            "/api/v1/zones/example.test./diff?from=1&to=2",
            admin,
            None,
        ),
        404,
        "not_found",
        "versions not in the journal",
    );
    assert_error(
        &site.call("GET", "/api/v1/migrations/abc", admin, None),
        400,
        "bad_request",
        "a bad migration id",
    );
    assert_error(
        &site.call("GET", "/api/v1/migrations/999", admin, None),
        404,
        "not_found",
        "an unknown migration",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/checks/check",
            admin,
            Some(r#"{"zone":"example.test.","names":["--watch"]}"#),
        ),
        400,
        "bad_request",
        "an option smuggled as a name",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/checks/verify",
            admin,
            Some(r#"{"kind":"rm","args":[]}"#),
        ),
        400,
        "bad_request",
        "an unknown service",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/checks/verify",
            admin,
            Some(r#"{"kind":"http","args":["https://x.test/","--ca-file","/etc/shadow"]}"#),
        ),
        400,
        "bad_request",
        "a file on the server named through the API",
    );
    assert_error(
        &site.call("POST", "/api/v1/mail/hold", admin, Some(r#"{"all":true}"#)),
        503,
        "unavailable",
        "mail without [mail]",
    );
    assert_eq!(
        serial(&site),
        before,
        "expected nothing changed by any bad request"
    );
}

#[test]
fn checks_return_the_commands_observations() {
    let site = Site::start("");
    let request = json!({"zone": "example.test.", "names": ["www"], "types": ["A"], "servers": [site.dns.to_string()], "resolvers": [format!("self={}", site.dns)], "timeout": "1s"});
    assert_error(
        &site.call(
            "POST",
            "/api/v1/checks/check",
            Some(&site.reader),
            Some(&request.to_string()),
        ),
        403,
        "forbidden",
        "a check with a read token",
    );
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/check",
        Some(&site.prober),
        Some(&request.to_string()),
    );
    assert_eq!(status, 200, "expected the check's report, seen {result}");
    let servers = result["report"]["servers"].as_array().expect("server rows");
    assert_eq!(servers.len(), 1, "expected one server row, seen {result}");
    assert_eq!(
        servers[0]["records"],
        json!(["127.0.0.2"]),
        "expected www's address from the server, seen {}",
        servers[0]
    );
    assert_eq!(
        result["report"]["newest_serial"], 2026112601,
        "expected the zone's serial, seen {result}"
    );
    // A request's timeout is read as the command line reads one: "2s" as
    // before, words and bare seconds too; nonsense is a 400 with the reason.
    for timeout in ["1 second", "1500ms", "2"] {
        let mut worded = request.clone();
        worded["timeout"] = json!(timeout);
        let (status, result) = site.call(
            "POST",
            "/api/v1/checks/check",
            Some(&site.prober),
            Some(&worded.to_string()),
        );
        assert_eq!(status, 200, "timeout {timeout:?}: seen {result}");
    }
    for (timeout, reason) in [
        ("soon", "timeout: invalid duration \"soon\": expected seconds or a number with a unit, e.g. 90, 90s, 500ms"),
        ("1 month", "months and years have no fixed length"),
        ("0s", "timeout: duration \"0s\" is out of range: expected 1ms to 1d"),
    ] {
        let mut bad = request.clone();
        bad["timeout"] = json!(timeout);
        let seen = site.call(
            "POST",
            "/api/v1/checks/check",
            Some(&site.prober),
            Some(&bad.to_string()),
        );
        assert_error(&seen, 400, "bad_request", "a timeout that is no duration");
        let message = seen.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "expected {reason:?}, seen {message:?}");
    }

    // The nameserver's own TCP port is a target the probe token may reach.
    let verify = json!({"kind": "tcp", "args": [site.dns.to_string()]});
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/verify",
        Some(&site.prober),
        Some(&verify.to_string()),
    );
    assert_eq!(
        (status, result["ok"].as_bool()),
        (200, Some(true)),
        "expected the TCP check of the nameserver's own port to pass, seen {result}"
    );
    // Port 1 is named by nothing: only an admin may probe it.
    let closed = json!({"kind": "tcp", "args": ["127.0.0.1:1", "--timeout", "1s"]});
    assert_error(
        &site.call(
            "POST",
            "/api/v1/checks/verify",
            Some(&site.prober),
            Some(&closed.to_string()),
        ),
        403,
        "forbidden",
        "a port no zone names, with a probe token",
    );
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/verify",
        Some(&site.admin),
        Some(&closed.to_string()),
    );
    assert_eq!(
        (status, result["ok"].as_bool()),
        (200, Some(false)),
        "expected a closed port to fail the check, seen {result}"
    );
}

#[test]
fn the_mail_queue_is_steered_through_the_api() {
    // The destination is down: a port the test holds without listening.
    let (_down, down) = control::refusing_tcp(control::LOOPBACK);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut smtp = 0;
    let site = Site::start_picking(|ports| {
        smtp = ports.pick(&[control::LOOPBACK]);
        format!(
            "[mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\nspool = {spool:?}\nfirst_retry = \"30s\"\nmax_retry = \"60s\"\nconnect_timeout = \"1s\"\n\
             [[mail.domain]]\nname = \"ourdom.test\"\ndestination = \"{down}\"\nrecipients = [\"@ourdom.test\"]\n"
        )
    });
    let admin = Some(site.admin.as_str());
    let (status, queue) = site.call("GET", "/api/v1/mail/queue", Some(&site.reader), None);
    assert_eq!(
        (status, queue["messages"].as_array().map(Vec::len)),
        (200, Some(0)),
        "expected an empty queue, seen {queue}"
    );
    send_mail(
        std::net::SocketAddr::from(([127, 0, 0, 1], smtp)),
        "alice@ourdom.test",
    );
    let (status, queue) = site.call("GET", "/api/v1/mail/queue", Some(&site.reader), None);
    assert_eq!(status, 200, "expected the queue, seen {queue}");
    assert_schema("MailQueue", &queue);
    assert_schema("MailMessage", &queue["messages"][0]);
    assert_schema("MailRecipient", &queue["messages"][0]["recipients"][0]);
    let messages = queue["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "expected the message queued (its destination is down), seen {queue}"
    );
    let id = messages[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        messages[0]["recipients"][0]["address"], "alice@ourdom.test",
        "expected the recipient, seen {queue}"
    );

    let (status, shown) = site.call(
        "GET",
        &format!("/api/v1/mail/queue/{id}"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the message, seen {shown}");
    assert!(
        shown["headers"]
            .as_str()
            .is_some_and(|h| h.contains("Subject: move")),
        "expected its headers, seen {shown}"
    );
    assert_error(
        &site.call(
            "GET",
            "/api/v1/mail/queue/nothere",
            Some(&site.reader),
            None,
        ),
        404,
        "not_found",
        "an unknown message",
    );

    assert_error(
        &site.call(
            "POST",
            "/api/v1/mail/hold",
            Some(&site.reader),
            Some(r#"{"domain":"ourdom.test"}"#),
        ),
        403,
        "forbidden",
        "hold with a read token",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/mail/hold",
            admin,
            Some(r#"{"domain":"ourdom.test","all":true}"#),
        ),
        400,
        "bad_request",
        "two selectors",
    );
    assert_error(
        &site.call("POST", "/api/v1/mail/hold", admin, Some(r#"{}"#)),
        400,
        "bad_request",
        "no selector",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/mail/retarget",
            admin,
            Some(r#"{"domain":"ourdom.test","destination":"a b"}"#),
        ),
        400,
        "bad_request",
        "a bad destination",
    );

    let (status, held) = site.call(
        "POST",
        "/api/v1/mail/hold",
        admin,
        Some(&json!({"message": id}).to_string()),
    );
    assert_eq!(
        (status, held["changed"].clone()),
        (200, json!([id])),
        "expected the message held, seen {held}"
    );
    let (_, queue) = site.call("GET", "/api/v1/mail/queue", admin, None);
    assert_eq!(
        queue["messages"][0]["held"], true,
        "expected held in the queue, seen {queue}"
    );

    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new = sink.local_addr().unwrap();
    let (status, retarget) = site.call(
        "POST",
        "/api/v1/mail/retarget",
        admin,
        Some(
            &json!({"domain": "ourdom.test", "destination": new.to_string(), "keep_held": true})
                .to_string(),
        ),
    );
    assert_eq!(status, 200, "expected the retarget, seen {retarget}");
    let (_, queue) = site.call("GET", "/api/v1/mail/queue", admin, None);
    assert_eq!(
        queue["messages"][0]["recipients"][0]["destination"],
        new.to_string(),
        "expected the new destination, seen {queue}"
    );
    let (status, released) = site.call(
        "POST",
        "/api/v1/mail/release",
        admin,
        Some(&json!({"message": id}).to_string()),
    );
    assert_eq!(status, 200, "expected the release, seen {released}");
    let (_, queue) = site.call("GET", "/api/v1/mail/queue", admin, None);
    assert_eq!(
        queue["messages"]
            .as_array()
            .and_then(|m| m.first())
            .map(|m| m["held"].clone())
            .unwrap_or(json!(false)),
        false,
        "expected not held any more, seen {queue}"
    );
    let (status, flushed) = site.call("POST", "/api/v1/mail/flush", admin, Some(r#"{"all":true}"#));
    assert_eq!(status, 200, "expected the flush, seen {flushed}");
    // The relay now connects to the new destination.
    sink.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match sink.accept() {
            Ok((connection, _)) => {
                drop(connection);
                break;
            }
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "expected the relay to deliver to the new destination within 15 s; log:\n{}",
                    site.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads server-sent events from `path` until one named `name` arrives.
fn first_event(site: &Site, path: &str, token: &str, name: &str) -> String {
    let mut stream = TcpStream::connect(site.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = stream.read(&mut buffer).expect("the event stream");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        if let Some(start) = seen.find(&format!("event: {name}\n")) {
            if let Some(end) = seen[start..].find("\n\n") {
                return seen[start..start + end].to_owned();
            }
        }
    }
    panic!("expected an event {name} from {path}, seen {seen:?}");
}

#[test]
fn migrations_from_a_file_to_their_timeline() {
    let site = Site::start("");
    let admin = Some(site.admin.as_str());
    let (status, list) = site.call("GET", "/api/v1/migrations", Some(&site.reader), None);
    assert_eq!(
        (status, list["migrations"].as_array().map(Vec::len)),
        (200, Some(0)),
        "expected no migrations, seen {list}"
    );
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"earliest\"\nmargin = 1\nobserve = \"60s\"\n[verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
        site.dns
    );
    let body = json!({"file_name": "move-web.toml", "text": text}).to_string();
    let bad = json!({"file_name": "move-web.toml", "text": "version = 1\nzone = \"example.test.\"\nsurprise = 1\n"}).to_string();
    assert_error(
        &site.call("POST", "/api/v1/migrations/plan", admin, Some(&bad)),
        400,
        "bad_request",
        "a bad migration file",
    );
    let (_, list) = site.call("GET", "/api/v1/migrations", admin, None);
    assert_eq!(
        list["migrations"].as_array().map(Vec::len),
        Some(0),
        "expected the bad file to start nothing, seen {list}"
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/migrations",
            admin,
            Some(&json!({"file_name": "../x", "text": text}).to_string()),
        ),
        400,
        "bad_request",
        "a file name with a path",
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/migrations",
            Some(&site.reader),
            Some(&body),
        ),
        403,
        "forbidden",
        "starting with a read token",
    );

    assert_error(
        &site.call(
            "POST",
            "/api/v1/migrations/plan",
            Some(&site.reader),
            Some(&body),
        ),
        403,
        "forbidden",
        "planning with a read token",
    );
    let (status, plan) = site.call(
        "POST",
        "/api/v1/migrations/plan",
        Some(&site.prober),
        Some(&body),
    );
    assert_eq!(status, 200, "expected the plan, seen {plan}");
    assert_eq!(
        plan["changes"][0]["name"], "www.example.test.",
        "expected www to move, seen {plan}"
    );
    let (_, list) = site.call("GET", "/api/v1/migrations", admin, None);
    assert_eq!(
        list["migrations"].as_array().map(Vec::len),
        Some(0),
        "expected planning to start nothing, seen {list}"
    );

    let (status, created) = site.call("POST", "/api/v1/migrations", admin, Some(&body));
    assert_eq!(
        status, 200,
        "expected the migration started, seen {created}"
    );
    let id = created["id"].as_i64().expect("an id");
    let (status, detail) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the detail, seen {detail}");
    assert_schema("MigrationDetail", &detail);
    assert_schema("MigrationSummary", &detail["summary"]);
    assert_schema("MigrationPlan", &detail["plan"]);
    assert_eq!(
        detail["summary"]["carried_by"], "serve",
        "expected serve's scheduler named as what runs it, seen {}",
        detail["summary"]
    );
    assert_eq!(
        detail["events"][0]["text"], "started by the operator from move-web.toml",
        "expected the start as the first event, seen {}",
        detail["events"]
    );
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.first().copied(),
        Some("lower_ttls"),
        "expected the timeline to start by lowering, seen {kinds:?}"
    );
    assert!(
        kinds.contains(&"switch"),
        "expected a switch step, seen {kinds:?}"
    );
    let event = first_event(
        &site,
        &format!("/api/v1/migrations/{id}/events"),
        &site.reader,
        "migration",
    );
    assert!(
        event.contains(&format!("\"id\":{id}")),
        "expected the migration in its event, seen {event}"
    );

    // The scheduler lowers the TTL, waits for the caches (2 s) and switches.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, audit) = site.call(
            "GET",
            &format!("/api/v1/migrations/{id}/audit"),
            Some(&site.reader),
            None,
        );
        if audit["entries"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["step"] == "switch" && e["status"] == "applied")
        }) {
            assert_eq!(
                audit["entries"][0]["new"]["ttl"], 1,
                "expected the TTL lowered to 1, seen {audit}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected the switch in the audit within 30 s, seen {audit}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The server publishes the switch within its reload interval (250 ms).
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, matrix) = loop {
        // A probe token asks the servers again (a reader would get the last matrix known).
        let (status, matrix) = site.call(
            "GET",
            &format!("/api/v1/migrations/{id}/propagation"),
            Some(&site.prober),
            None,
        );
        if status != 200
            || matrix["rows"][0]["cells"][0]["state"] == "new"
            || Instant::now() > deadline
        {
            break (status, matrix);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "expected the matrix, seen {matrix}");
    assert_schema("Propagation", &matrix);
    assert_eq!(
        matrix["questions"],
        json!(["www.example.test. A"]),
        "expected www A as the moving record, seen {matrix}"
    );
    assert_eq!(
        matrix["rows"][0]["cells"][0]["state"], "new",
        "expected the server on the new address after the switch, seen {matrix}"
    );

    let (status, paused) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/pause"),
        admin,
        Some(r#"{"reason":"lunch"}"#),
    );
    assert_eq!(
        (status, paused["state"].as_str()),
        (200, Some("paused")),
        "expected paused, seen {paused}"
    );
    let (status, resumed) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/resume"),
        admin,
        None,
    );
    assert!(
        status == 200 && resumed["state"] != "paused",
        "expected resumed, seen {status} {resumed}"
    );
    let (status, rolled) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/rollback"),
        admin,
        Some("{}"),
    );
    assert_eq!(
        status, 200,
        "expected the rollback requested, seen {rolled}"
    );
    let (status, aborted) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/abort"),
        admin,
        Some(r#"{"reason":"test over"}"#),
    );
    assert!(
        status == 200 || status == 422,
        "expected the abort answered, seen {status} {aborted}"
    );
    // Once it has ended, steering it is refused and changes nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    let final_state = loop {
        let (_, detail) = site.call("GET", &format!("/api/v1/migrations/{id}"), admin, None);
        let state = detail["summary"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["aborted", "rolled_back", "done", "failed"].contains(&state.as_str()) {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "expected the migration to end within 20 s, seen {detail}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    if final_state != "rolled_back" {
        assert_error(
            &site.call(
                "POST",
                &format!("/api/v1/migrations/{id}/pause"),
                admin,
                Some("{}"),
            ),
            422,
            "rejected",
            "pausing an ended migration",
        );
        let (_, detail) = site.call("GET", &format!("/api/v1/migrations/{id}"), admin, None);
        assert_eq!(
            detail["summary"]["state"], final_state,
            "expected the refused pause to change nothing, seen {detail}"
        );
    }
    let (status, list) = site.call("GET", "/api/v1/migrations", Some(&site.reader), None);
    assert_eq!(
        (status, list["migrations"][0]["id"].as_i64()),
        (200, Some(id)),
        "expected the migration listed, seen {list}"
    );
    // The answers speak the engine's words, never Rust's.
    let (_, detail) = site.call("GET", &format!("/api/v1/migrations/{id}"), admin, None);
    let text = detail.to_string();
    for raw in ["\"Ok\"", "\"Err\"", "Some(", "None"] {
        assert!(!text.contains(raw), "expected no {raw} in {text}");
    }
    let events: Vec<(&str, &str)> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["cause"].as_str().unwrap_or_default(),
                e["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for (cause, head) in [
        ("operator", "paused by the operator: lunch"),
        ("operator", "resumed by the operator"),
        ("automatic", "switch: done"),
    ] {
        assert!(
            events
                .iter()
                .any(|(c, t)| *c == cause && t.starts_with(head)),
            "expected a {cause} event {head:?}…, seen {events:?}"
        );
    }
}

#[test]
fn events_the_dashboard_and_metrics_are_served() {
    let site = Site::start("");
    let event = first_event(&site, "/api/v1/events", &site.reader, "zones");
    assert!(
        event.contains("example.test."),
        "expected the zones in the first event, seen {event}"
    );
    let (status, kind, page) = site.text("/");
    assert_eq!(status, 200, "expected the page");
    assert!(
        kind.starts_with("text/html")
            && page.contains("<title>cutover</title>")
            && page.contains("/dashboard.js"),
        "expected the dashboard page, seen {kind}"
    );
    let (status, kind, script) = site.text("/dashboard.js");
    assert!(
        status == 200 && kind.starts_with("text/javascript") && script.contains("/api/v1"),
        "expected the script, seen {status} {kind}"
    );
    let (status, kind, _) = site.text("/dashboard.css");
    assert!(
        status == 200 && kind.starts_with("text/css"),
        "expected the style sheet, seen {status} {kind}"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://") && !script.contains("https://"),
        "expected nothing fetched from elsewhere"
    );
    let (status, kind, metrics) = site.text("/metrics");
    assert!(
        status == 200 && kind.starts_with("text/plain"),
        "expected metrics, seen {status} {kind}"
    );
    assert!(
        metrics.contains("cutover_zone_serial{zone=\"example.test.\"} 2026112601"),
        "expected the zone's serial, seen:\n{metrics}"
    );
}

#[test]
fn the_cli_acts_through_a_remote_serve() {
    let site = Site::start("");
    let url = format!("http://{}", site.http);
    let remote = |token: &str, args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token];
        all.extend_from_slice(args);
        control::cutover(&all)
    };
    let listed = ok("remote zone list", remote(&site.reader, &["zone", "list"]));
    assert!(
        listed.contains("example.test.") && listed.contains("2026112601"),
        "expected the zone listed remotely, seen {listed}"
    );
    let before = serial(&site);
    let refused = remote(
        &site.reader,
        &["record", "add", "example.test.", "api", "A", "192.0.2.60"],
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "expected a read token refused with status 1"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "expected the API's error, seen {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        serial(&site),
        before,
        "expected the refused change to change nothing"
    );
    let added = ok(
        "remote record add",
        remote(
            &site.admin,
            &[
                "record",
                "add",
                "example.test.",
                "api",
                "A",
                "192.0.2.60",
                "--ttl",
                "90",
            ],
        ),
    );
    assert!(
        added.contains("+ api.example.test. 90 IN A 192.0.2.60"),
        "expected the diff printed, seen {added}"
    );
    assert!(serial(&site) > before, "expected the serial to rise");
    let set = ok(
        "remote record set",
        remote(
            &site.admin,
            &["record", "set", "example.test.", "api", "A", "192.0.2.61"],
        ),
    );
    assert!(
        set.contains("- api.example.test. 90 IN A 192.0.2.60")
            && set.contains("+ api.example.test. 90 IN A 192.0.2.61"),
        "expected the set's diff, seen {set}"
    );
    let deleted = ok(
        "remote record delete",
        remote(
            &site.admin,
            &["record", "delete", "example.test.", "api", "A"],
        ),
    );
    assert!(
        deleted.contains("- api.example.test. 90 IN A 192.0.2.61"),
        "expected the delete's diff, seen {deleted}"
    );
    let migrations = ok(
        "remote migrate list",
        remote(&site.reader, &["migrate", "list"]),
    );
    assert!(
        migrations.contains("no migrations"),
        "expected no migrations, seen {migrations}"
    );
    let missing = remote(&site.reader, &["migrate", "show", "42"]);
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("no migration with id 42"),
        "expected the API's not-found message, seen {}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let mail = remote(&site.reader, &["mail", "queue"]);
    assert!(
        !mail.status.success()
            && String::from_utf8_lossy(&mail.stderr).contains("mail is not configured"),
        "expected mail unavailable, seen {}",
        String::from_utf8_lossy(&mail.stderr)
    );
    let wrong = remote("cutover_nope", &["zone", "list"]);
    assert!(
        !wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("bad_token"),
        "expected a wrong token refused, seen {}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

/// The number of versions of example.test. in its journal.
fn versions(site: &Site) -> usize {
    let (status, list) = site.call(
        "GET",
        "/api/v1/zones/example.test./versions",
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the versions, seen {list}");
    list["versions"].as_array().map_or(0, Vec::len)
}

/// The records of example.test. as `name ttl type data` lines, sorted.
fn records(site: &Site) -> Vec<String> {
    let (status, zone) = site.call(
        "GET",
        "/api/v1/zones/example.test.",
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the zone, seen {zone}");
    let mut lines: Vec<String> = zone["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] != "SOA")
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["name"].as_str().unwrap(),
                r["ttl"],
                r["type"].as_str().unwrap(),
                r["data"].as_str().unwrap()
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The addresses the nameserver answers for `name` A now, sorted.
fn served_addresses(site: &Site, name: &str) -> Vec<String> {
    let answer = std::process::Command::new("kdig")
        .args([
            "+short",
            "+retry=0",
            "+time=2",
            &format!("@{}", site.dns.ip()),
            "-p",
            &site.dns.port().to_string(),
            name,
            "A",
        ])
        .output()
        .expect("kdig runs");
    let mut lines: Vec<String> = String::from_utf8_lossy(&answer.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn rrsets_patch_applies_many_changes_in_one_version() {
    let site = Site::start("");
    let admin = Some(site.admin.as_str());
    let path = "/api/v1/zones/example.test./rrsets";
    let body = r#"{"rrsets":[
        {"name":"www.example.test.","type":"A","ttl":300,"changetype":"REPLACE",
         "records":[{"content":"192.0.2.1","disabled":false},{"content":"192.0.2.2","disabled":false}]},
        {"name":"other.example.test.","type":"A","changetype":"DELETE"},
        {"name":"mail","type":"MX","ttl":600,"changetype":"EXTEND","records":[{"content":"10 www"}]}
    ]}"#;
    let (serial_before, versions_before, records_before) =
        (serial(&site), versions(&site), records(&site));

    // A read token may not change anything.
    let refused = site.call("PATCH", path, Some(&site.reader), Some(body));
    assert_error(&refused, 403, "forbidden", "a read token patching");

    // Dry run: the diff the real run makes, nothing written.
    let (status, dry) = site.call("PATCH", &format!("{path}?dry_run=true"), admin, Some(body));
    assert_eq!(
        (status, dry["applied"].as_bool()),
        (200, Some(false)),
        "expected a dry run, seen {dry}"
    );
    assert_schema("ChangeResult", &dry);
    assert_eq!(
        (serial(&site), versions(&site), records(&site)),
        (serial_before, versions_before, records_before.clone()),
        "expected the dry run to write nothing"
    );

    let (status, done) = site.call("PATCH", path, admin, Some(body));
    assert_eq!(
        (status, done["applied"].as_bool()),
        (200, Some(true)),
        "expected the patch applied, seen {done}"
    );
    assert_eq!(
        (
            &done["diff"]["from"],
            &done["diff"]["to"],
            &done["diff"]["added"],
            &done["diff"]["removed"]
        ),
        (
            &dry["diff"]["from"],
            &dry["diff"]["to"],
            &dry["diff"]["added"],
            &dry["diff"]["removed"]
        ),
        "expected the real run to do what the dry run showed"
    );
    // Answered once served: the nameserver answers the new RRset at once.
    assert_eq!(
        served_addresses(&site, "www.example.test."),
        vec!["192.0.2.1".to_owned(), "192.0.2.2".to_owned()],
        "expected the change served when the PATCH answered"
    );
    assert_eq!(
        (serial(&site), versions(&site)),
        (serial_before + 1, versions_before + 1),
        "expected three RRset changes in one version, one serial"
    );
    let after = records(&site);
    for line in [
        "www.example.test. 300 A 192.0.2.1",
        "www.example.test. 300 A 192.0.2.2",
        "mail.example.test. 600 MX 10 www.example.test.",
    ] {
        assert!(
            after.contains(&line.to_owned()),
            "expected {line} in {after:?}"
        );
    }
    assert!(
        !after.iter().any(|r| r.starts_with("other.example.test.")),
        "expected other deleted, seen {after:?}"
    );

    // The same patch again holds nothing new, and says so.
    let again = r#"{"rrsets":[{"name":"www.example.test.","type":"A","ttl":300,"changetype":"REPLACE",
        "records":[{"content":"192.0.2.2"},{"content":"192.0.2.1"}]}]}"#;
    let (status, same) = site.call("PATCH", path, admin, Some(again));
    assert_eq!(
        (status, same["applied"].as_bool()),
        (200, Some(false)),
        "expected nothing applied, seen {same}"
    );
    assert!(
        same["note"]
            .as_str()
            .is_some_and(|n| n.contains("nothing written")),
        "expected the note to say nothing was written, seen {same}"
    );

    // A record that does not read, or a change the rules drop: the entry
    // named, nothing written, not even the good entries before it.
    let (serial_now, records_now) = (serial(&site), records(&site));
    let unreadable = r#"{"rrsets":[
        {"name":"api","type":"A","changetype":"REPLACE","records":[{"content":"192.0.2.9"}]},
        {"name":"bad","type":"A","changetype":"REPLACE","records":[{"content":"not-an-address"}]}]}"#;
    let seen = site.call("PATCH", path, admin, Some(unreadable));
    assert_error(&seen, 400, "bad_request", "a record that does not read");
    assert!(
        seen.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rrsets[1]"),
        "expected the entry named, seen {}",
        seen.1
    );
    let dropped = r#"{"rrsets":[
        {"name":"api","type":"A","changetype":"REPLACE","records":[{"content":"192.0.2.9"}]},
        {"name":"www","type":"CNAME","changetype":"EXTEND","records":[{"content":"api"}]}]}"#;
    let seen = site.call("PATCH", path, admin, Some(dropped));
    assert_error(&seen, 422, "rejected", "a CNAME beside data");
    let message = seen.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("rrsets[1]") && message.contains("CNAME"),
        "expected the entry and the rule named, seen {message}"
    );
    assert_eq!(
        (serial(&site), records(&site)),
        (serial_now, records_now),
        "expected a refused patch to write nothing"
    );
}

#[test]
fn record_apply_through_a_remote_serve_is_one_version() {
    let site = Site::start("");
    let url = format!("http://{}", site.http);
    let changes = site.dir.path().join("changes.txt");
    std::fs::write(
        &changes,
        "# two addresses for www, one new name, one gone\n\
         set www 120 A 192.0.2.71\n\
         set www 120 A 192.0.2.72\n\
         add api TXT \"hello world\"\n\
         delete other A\n",
    )
    .unwrap();
    let file = changes.to_str().unwrap();
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", site.admin.as_str()];
        all.extend_from_slice(args);
        control::cutover(&all)
    };
    let (serial_before, versions_before) = (serial(&site), versions(&site));
    let dry = ok(
        "remote record apply --dry-run",
        remote(&["record", "apply", "example.test.", file, "--dry-run"]),
    );
    assert_eq!(
        (serial(&site), versions(&site)),
        (serial_before, versions_before),
        "expected the dry run to write nothing"
    );
    let done = ok(
        "remote record apply",
        remote(&["record", "apply", "example.test.", file]),
    );
    assert_eq!(
        dry.replace("serial would go", "serial")
            .replace("dry run: nothing changed\n", ""),
        done,
        "expected the real run to print what the dry run showed"
    );
    assert!(
        done.contains("+ www.example.test. 120 IN A 192.0.2.72")
            && done.contains("- other.example.test. 300 IN A 192.0.2.99"),
        "expected the diff printed, seen {done}"
    );
    assert_eq!(
        (serial(&site), versions(&site)),
        (serial_before + 1, versions_before + 1),
        "expected one version for the whole file"
    );
    // A bad line: its place, exit 1, nothing sent.
    std::fs::write(&changes, "add x A 192.0.2.1\nadd y A 192.0.2.999\n").unwrap();
    let bad = remote(&["record", "apply", "example.test.", file]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        bad.status.code() == Some(1) && stderr.contains(&format!("{file}:2:9: expected A data")),
        "expected exit 1 naming {file}:2:9, seen {:?}: {stderr}",
        bad.status.code()
    );
    // A refusal by the server's rules names the line too.
    std::fs::write(&changes, "add x A 192.0.2.1\ndelete nothing A\n").unwrap();
    let refused = remote(&["record", "apply", "example.test.", file]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused.status.code() == Some(1) && stderr.contains(&format!("{file}:2")),
        "expected exit 1 naming line 2, seen {:?}: {stderr}",
        refused.status.code()
    );
    assert_eq!(
        serial(&site),
        serial_before + 1,
        "expected the refused files to write nothing"
    );
}

#[test]
fn the_control_plane_speaks_https_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.path().join("api.pem"), dir.path().join("api.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let store = dir.path().join("cutover.db");
    let token = ok(
        "token create",
        control::cutover(&[
            "--store",
            store.to_str().unwrap(),
            "token",
            "create",
            "ops",
            "--scope",
            "admin",
        ]),
    )
    .trim()
    .to_owned();
    let config = dir.path().join("cutover.toml");
    let log = dir.path().join("serve.log");
    let (http, _serve) = control::start_on_free_ports("cutover serve", |ports| {
        let dns = ports.on(control::LOOPBACK);
        let http = ports.pick(&[control::LOOPBACK]);
        std::fs::write(
            &config,
            format!("store = {store:?}\n[dns]\nlisten = [\"{dns}\"]\nudp_workers = 1\n[http]\nlisten = \"127.0.0.1:{http}\"\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
        )
        .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = control::Guard {
            child,
            what: "cutover serve",
        };
        let [udp, tcp] = control::Socket::dns(dns);
        let https = control::Socket::Tcp(std::net::SocketAddr::from((control::LOOPBACK, http)));
        control::wait_bound("cutover serve", &mut serve.child, &[udp, tcp, https], &log)?;
        Ok((http, serve))
    });
    let curl = |url: &str, extra: &[&str]| {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "--resolve",
                &format!("localhost:{http}:127.0.0.1"),
                "-w",
                "\n%{http_code}",
            ])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl runs")
    };
    let https = format!("https://localhost:{http}/api/v1/whoami");
    let auth = format!("Authorization: Bearer {token}");
    let deadline = Instant::now() + control::SERVE_LIMIT;
    let answer = loop {
        let out = curl(&https, &["--cacert", cert.to_str().unwrap(), "-H", &auth]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "expected HTTPS within {:?}, seen {}",
            control::SERVE_LIMIT,
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        answer.contains("\"name\":\"ops\"") && answer.ends_with("\n200"),
        "expected whoami over HTTPS, seen {answer}"
    );
    let untrusted = curl(&https, &["-H", &auth]);
    assert!(
        !untrusted.status.success(),
        "expected curl to refuse the self-signed certificate without --cacert"
    );
    let plain = curl(&format!("http://localhost:{http}/api/v1/openapi.json"), &[]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        !text.contains("openapi"),
        "expected no plain HTTP on the TLS port, seen {text}"
    );
}
