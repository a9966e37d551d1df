//! The client examples of examples/, each generated from proto/ by scripts/gen-clients
//! in its own language, run against a real server: they create a customer, record
//! usage, and follow the violation feed, resuming after a disconnect from a cursor.

use std::process::Command;

use crate::e2e::{org_and_key, wait_serving};
use crate::support::TestDb;
use crate::support::process::{ServeProcess, root, run_ok, tool};

/// A server on a fresh database and an API key of a new organization.
fn server_and_key() -> (TestDb, ServeProcess, String) {
    let db = TestDb::create();
    let server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    let (_, key) = org_and_key(&db.url);
    (db, server, key)
}

/// Generates `language`'s client into examples/<language>/gen (one test per language
/// writes there, so tests never share it).
fn generate(language: &str) {
    run_ok(Command::new(root().join("scripts/gen-clients")).arg(language));
}

/// Every example prints the same summary as its last line; this checks what it saw:
/// the call within the limit allowed, the two past it blocked, the first blocked one
/// delivered from the beginning of the feed, and the one made while disconnected
/// delivered on resuming after the kept cursor, and nothing before it.
fn assert_followed_and_resumed(stdout: &str) {
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no summary printed: {stdout:?}"));
    let seen: serde_json::Value = serde_json::from_str(last).expect("summary is JSON");
    assert_eq!(seen["decisions"], serde_json::json!(["ALLOWED", "BLOCKED", "BLOCKED"]), "{seen}");
    let event = |which: &str| seen[which]["eventId"].as_str().unwrap_or_default().to_owned();
    assert!(event("first").ends_with("-2"), "first violation is the second call's: {seen}");
    assert!(event("resumed").ends_with("-3"), "resuming delivers the call made while away: {seen}");
    assert_eq!(seen["first"]["kind"], "LIMIT_BLOCK");
    assert_eq!(seen["resumed"]["kind"], "LIMIT_BLOCK");
    assert_eq!(
        seen["resumed"]["sequence"].as_i64(),
        seen["first"]["sequence"].as_i64().map(|s| s + 1),
        "resumed right after the cursor: {seen}"
    );
}

#[test]
fn typescript_example_records_usage_and_resumes_the_violation_feed() {
    let (_db, server, key) = server_and_key();
    generate("typescript");
    let dir = root().join("examples/typescript");
    // The generated code and the example type-check under `strict` before they run.
    run_ok(Command::new(dir.join("node_modules/.bin/tsc")).arg("--noEmit").current_dir(&dir));
    let stdout = run_ok(
        Command::new(dir.join("node_modules/.bin/tsx"))
            .arg("src/example.ts")
            .current_dir(&dir)
            .env("BILLING_ADDRESS", format!("http://{}", server.address))
            .env("BILLING_API_KEY", &key),
    );
    assert_followed_and_resumed(&stdout);
}

#[test]
fn python_example_records_usage_and_resumes_the_violation_feed() {
    let (_db, server, key) = server_and_key();
    generate("python");
    let stdout = run_ok(
        Command::new(tool("python"))
            .arg(root().join("examples/python/example.py"))
            .env("BILLING_ADDRESS", &server.address)
            .env("BILLING_API_KEY", &key),
    );
    assert_followed_and_resumed(&stdout);
}

/// Go comes from Debian's packages (scripts/gen-clients installs them when missing).
#[test]
fn go_example_records_usage_and_resumes_the_violation_feed() {
    let (_db, server, key) = server_and_key();
    generate("go");
    let stdout = run_ok(
        Command::new(root().join("examples/go/run.sh"))
            .env("BILLING_ADDRESS", &server.address)
            .env("BILLING_API_KEY", &key),
    );
    assert_followed_and_resumed(&stdout);
}
