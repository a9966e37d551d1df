//! End to end with clients written by others: the real binary (serve and admin), driven
//! by grpcurl through reflection and by a Python client generated from proto/.

use std::time::{Duration, Instant};

use crate::support::TestDb;
use crate::support::process::{ServeProcess, admin, generated_python_client, grpcurl, python_scenario};

/// Waits until grpcurl's health check says SERVING.
pub(crate) fn wait_serving(address: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let (ok, out, _) = grpcurl(address, &["grpc.health.v1.Health/Check"]);
        if ok && out.contains("\"SERVING\"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server at {address} never became SERVING");
}

/// An org and key made with the operator commands, checking they print one value alone.
pub(crate) fn org_and_key(url: &str) -> (String, String) {
    let org = admin(url, &["admin", "create-org", "E2E Org"]);
    let org = org.strip_suffix('\n').expect("one line");
    assert!(uuid::Uuid::parse_str(org).is_ok(), "create-org prints the id alone: {org:?}");
    let key = admin(url, &["admin", "create-api-key", "--org", org]);
    let key = key.strip_suffix('\n').expect("one line");
    assert!(
        key.starts_with("bck_") && !key.contains(char::is_whitespace),
        "create-api-key prints the key alone"
    );
    (org.to_owned(), key.to_owned())
}

#[test]
fn grpcurl_lists_checks_health_and_creates_a_customer() {
    let db = TestDb::create();
    let mut server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    let (_, key) = org_and_key(&db.url);
    let auth = format!("authorization: Bearer {key}");

    let (ok, services, err) = grpcurl(&server.address, &["list"]);
    assert!(ok, "{err}");
    for s in [
        "billing.commitments.v1.CustomerService",
        "billing.commitments.v1.ProductService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.lines().any(|l| l == s), "{s} not listed: {services}");
    }

    let body = r#"{"customer":{"external_id":"ACR0000001392","name":"Grpcurl Customer","time_zone":"Europe/Athens"}}"#;
    let (ok, out, err) = grpcurl(
        &server.address,
        &["-H", &auth, "-d", body, "billing.commitments.v1.CustomerService/CreateCustomer"],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["customer"]["externalId"], "ACR0000001392");

    let (ok, out, _) = grpcurl(
        &server.address,
        &["-H", &auth, "-d", "{}", "billing.commitments.v1.CustomerService/ListCustomers"],
    );
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["customers"][0]["id"], created["customer"]["id"]);

    let (ok, _, err) =
        grpcurl(&server.address, &["-d", "{}", "billing.commitments.v1.CustomerService/ListCustomers"]);
    assert!(!ok && err.contains("Unauthenticated"), "no key is refused: {err}");

    let status = server.terminate(Duration::from_secs(15)).expect("exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
}

/// What the generated Python client observed running `scenario` against a new server
/// with a new organization.
fn python_on_a_fresh_server(scenario: &str) -> serde_json::Value {
    let db = TestDb::create();
    let server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    let (_, key) = org_and_key(&db.url);
    let generated = generated_python_client();
    python_scenario(generated.path(), &server.address, &key, scenario)
}

#[test]
fn generated_python_client_checks_health_and_creates_a_customer() {
    let seen = python_on_a_fresh_server("catalog");
    assert_eq!(seen["health"], "SERVING");
    assert_eq!(seen["listed_ids"][0], seen["created_id"]);
    assert_eq!(seen["invalid_code"], "INVALID_ARGUMENT");
    assert_eq!(seen["no_key_code"], "UNAUTHENTICATED");
}

#[test]
fn revoke_api_key_command_takes_the_key_or_its_id() {
    let db = TestDb::create();
    let server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    let (org, key) = org_and_key(&db.url);
    let auth = format!("authorization: Bearer {key}");
    let list = ["-H", &auth, "-d", "{}", "billing.commitments.v1.CustomerService/ListCustomers"];
    assert!(grpcurl(&server.address, &list).0);
    admin(&db.url, &["admin", "revoke-api-key", &key]);
    let (ok, _, err) = grpcurl(&server.address, &list);
    assert!(!ok && err.contains("Unauthenticated"), "{err}");
    let listed = admin(&db.url, &["admin", "list-api-keys", "--org", &org]);
    assert!(listed.lines().all(|l| !l.ends_with("\t-")), "every key shows its revocation time: {listed}");
}

#[test]
fn generated_python_client_receives_a_violation_from_the_feed() {
    let seen = python_on_a_fresh_server("feed");
    assert_eq!(seen["decision"], "USAGE_DECISION_BLOCKED");
    assert_eq!(seen["kind"], "VIOLATION_KIND_LIMIT_BLOCK");
    assert_eq!(seen["event_id"], "py-evt-1");
    assert_eq!(seen["sequence"], 1);
}

/// `PatchOperation.from` was a Python keyword, which the generated class could not take;
/// as `from_path` a typed Python client makes a JSON Patch `move`.
#[test]
fn generated_python_client_moves_a_value_with_a_json_patch() {
    let seen = python_on_a_fresh_server("patch");
    assert_eq!(seen["before"], serde_json::json!(["100", "1000"]));
    assert_eq!(seen["after"], serde_json::json!(["1000", "100"]));
}

/// The README's reservation walk-through, as grpcurl sends it (JSON names, a duration as
/// "600s", decimals as strings): reserve, extend, commit less than held, the balance
/// before and after, and a balance alert with the states it reports.
#[test]
fn grpcurl_reserves_extends_commits_and_reads_balances_and_alert_states() {
    let db = TestDb::create();
    let mut server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    let (_, key) = org_and_key(&db.url);
    let auth = format!("authorization: Bearer {key}");
    let call = |method: &str, body: String| -> serde_json::Value {
        let path = format!("billing.commitments.v1.{method}");
        let (ok, out, err) = grpcurl(&server.address, &["-H", &auth, "-d", &body, &path]);
        assert!(ok, "{method}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let customer = call(
        "CustomerService/CreateCustomer",
        r#"{"customer":{"external_id":"ACR9","name":"Walk-through"}}"#.into(),
    )["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = call(
        "ProductService/CreateProduct",
        r#"{"product":{"code":"CREED","name":"Creed","kind":"PRODUCT_KIND_SERVICE"}}"#.into(),
    )["product"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        "CommitService/CreateCommit",
        format!(
            r#"{{"commit":{{"type":"COMMIT_TYPE_PREPAID","customer_id":"{customer}","product_id":"{product}","priority":"1",
            "access_schedule":{{"schedule_items":[{{"amount":"100","starting_at":"2000-01-01T00:00:00Z","ending_before":"2100-01-01T00:00:00Z"}}]}}}}}}"#
        ),
    );
    let alert = call(
        "AlertService/CreateBalanceAlert",
        format!(r#"{{"customer_id":"{customer}","threshold_percent":"50"}}"#),
    );
    assert_eq!(alert["alert"]["status"], "ALERT_STATUS_OK");

    let held = call(
        "ReservationService/ReserveUsage",
        format!(
            r#"{{"request_id":"call-77-start","customer_id":"{customer}","product_code":"CREED",
            "quantity":"10","rated_amount":"25","ttl":"600s","allow_partial":true}}"#
        ),
    );
    assert_eq!(held["decision"], "RESERVATION_DECISION_GRANTED");
    let id = held["reservation"]["id"].as_str().unwrap().to_owned();
    let more = call(
        "ReservationService/ExtendReservation",
        format!(
            r#"{{"reservation_id":"{id}","request_id":"call-77-more","additional_quantity":"5",
            "additional_rated_amount":"30","ttl":"600s"}}"#
        ),
    );
    assert_eq!(more["reservation"]["grantedRatedAmount"], "55");
    let balance = call("ReservationService/GetCustomerBalance", format!(r#"{{"customer_id":"{customer}"}}"#));
    let usd = &balance["balances"][0];
    assert_eq!(
        (&usd["balance"], &usd["reserved"], &usd["available"]),
        (&"100".into(), &"55".into(), &"45".into())
    );
    let states = call("AlertService/ListAlertStates", format!(r#"{{"customer_id":"{customer}"}}"#));
    assert_eq!(states["balanceAlerts"][0]["status"], "ALERT_STATUS_ALARM", "45 of 100 is below 50 %");

    let done = call(
        "ReservationService/CommitReservation",
        format!(r#"{{"reservation_id":"{id}","event_id":"call-77","quantity":"8","rated_amount":"20"}}"#),
    );
    assert_eq!(done["reservation"]["state"], "RESERVATION_STATE_COMMITTED");
    assert_eq!(done["outcome"]["drawdowns"][0]["amount"], "20");
    let balance = call("ReservationService/GetCustomerBalance", format!(r#"{{"customer_id":"{customer}"}}"#));
    assert_eq!(balance["balances"][0]["available"], "80");
    let states = call("AlertService/ListAlertStates", format!(r#"{{"customer_id":"{customer}"}}"#));
    assert_eq!(states["balanceAlerts"][0]["status"], "ALERT_STATUS_OK", "recovered: 80 of 100");

    let status = server.terminate(Duration::from_secs(15)).expect("exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
}

/// `serve --help` groups its flags by what they set, instead of one list of forty.
#[test]
fn serve_help_groups_its_flags() {
    let out = crate::support::process::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_billing-commitments")).args(["serve", "--help"]),
    );
    let headings: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ') && l.ends_with(':')).collect();
    for heading in
        ["Server:", "Database:", "TLS:", "Telemetry:", "Violation feed:", "Background jobs:", "Usage:"]
    {
        assert!(headings.contains(&heading), "{heading} missing from {headings:?}");
    }
    let server = out.split("Server:").nth(1).and_then(|rest| rest.split("\n\n").next()).unwrap_or_default();
    assert!(server.contains("--listen") && !server.contains("--database-url"), "{server}");
}

/// The pool and the service's own login are `serve`'s: operator commands name only the
/// database they act on.
#[test]
fn admin_help_names_the_database_but_not_the_service_pool() {
    let out = crate::support::process::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_billing-commitments")).args([
            "admin",
            "create-org",
            "--help",
        ]),
    );
    assert!(out.contains("--database-url"), "{out}");
    for serve_only in ["--db-pool-size", "--database-role", "--app-database-url", "--db-max-waiting"] {
        assert!(!out.contains(serve_only), "{serve_only} is serve's: {out}");
    }
}
