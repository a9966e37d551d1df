//! The README's grpcurl walk-through, run as written against a server on a fresh
//! database, so it cannot rot: every `sh` block of the walk-through, in order, in one
//! shell (ids captured early are used later), stopping at the first command that fails.

use std::process::Command;

use crate::e2e::wait_serving;
use crate::support::TestDb;
use crate::support::process::{ServeProcess, root, run_ok, tool};

/// The shell blocks between the walk-through's heading and the next top-level section.
fn walk_through_blocks(readme: &str) -> Vec<String> {
    let start = readme.find("## A walk-through with grpcurl").expect("the walk-through heading");
    let end = start + readme[start..].find("\n## API conventions").expect("the section after it");
    let mut blocks = Vec::new();
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("\n```").expect("a closed block");
        blocks.push(body[..close].to_owned());
        rest = &body[close + 4..];
    }
    blocks
}

#[test]
fn the_readme_walk_through_runs_top_to_bottom() {
    let db = TestDb::create();
    let server = ServeProcess::start(&db.url, &[]);
    wait_serving(&server.address);
    run_walk_through(&db.url, &server.address);
}

/// Runs the README's walk-through against the server at `address` on `database_url`.
pub fn run_walk_through(database_url: &str, address: &str) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = walk_through_blocks(&readme);
    assert!(blocks.len() >= 8, "the walk-through's blocks are found: {}", blocks.len());
    // As the reader runs it, with two stand-ins: `cargo run --release -q -- admin ...`
    // is the binary under test on the test's database, and the server's address is
    // the test server's. Streams (WatchViolations) run until Ctrl-C; here they are cut
    // after a few seconds by grpcurl's -max-time.
    let prelude = format!(
        "set -euo pipefail\n\
         export DATABASE_URL='{url}'\n\
         cargo() {{ while [[ $# -gt 0 && $1 != -- ]]; do shift; done; shift; '{bin}' \"$@\"; }}\n",
        url = database_url,
        bin = env!("CARGO_BIN_EXE_billing-commitments"),
    );
    let script = blocks
        .iter()
        .enumerate()
        .map(|(i, block)| format!("echo '>>> block {}' >&2\n{block}\n", i + 1))
        .collect::<String>()
        .replace("localhost:50051", address);
    // Fails with the walk-through's output when a command fails.
    run_ok(Command::new("bash").arg("-c").arg(prelude + &script).current_dir(root()).env(
        "PATH",
        format!("{}:{}", tool("grpcurl").parent().unwrap().display(), std::env::var("PATH").unwrap()),
    ));
}
