//! Page tokens and feed cursors are sealed for the organization they were issued to: a
//! token altered by the client, or one issued to another organization, is refused as
//! INVALID_ARGUMENT before anything in it reaches the database.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use billing::proto::v1 as pb;
use billing::proto::v1::watch_violations_request::Start;

use crate::support::fixtures::{
    Tenant, apply, block_everything, commits, create_commit, days_from_today, prepaid, raise, usage,
    violations,
};
use crate::support::{TestServer, bad_fields};

/// `token` with the position it carries replaced by `position`, as a client that
/// decodes the base64 and edits the JSON inside would make it.
fn with_position(token: &str, position: &str) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(token).expect("a base64url token");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let start = text.find(r#""p":""#).expect("the token carries a position") + 5;
    let end = start + text[start..].find('"').expect("the position ends");
    let mut forged = bytes[..start].to_vec();
    forged.extend_from_slice(position.as_bytes());
    forged.extend_from_slice(&bytes[end..]);
    URL_SAFE_NO_PAD.encode(forged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_altered_by_the_client_is_invalid_argument_not_an_internal_error() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit =
        create_commit(&mut c, prepaid(&t, "100", "1", days_from_today(-10), days_from_today(10))).await;
    for n in 0..2 {
        apply(&mut c, &t, &format!("draw-{n}"), usage(&t.vod, "5")).await.expect("drawdown");
    }
    let list = |page_token: String| pb::ListCommitLedgerRequest {
        commit_id: commit.id.clone(),
        page_size: 1,
        page_token,
        ..Default::default()
    };
    let first = c.list_commit_ledger(list(String::new())).await.unwrap().into_inner();
    assert!(!first.next_page_token.is_empty(), "three entries, one per page");
    c.list_commit_ledger(list(first.next_page_token.clone())).await.expect("the token as issued is read");

    // The last is well formed but 190,000 years before PostgreSQL's first timestamp: read
    // unsealed, it reached the database and came back INTERNAL.
    let before_time = "-6000000000000000000|00000000-0000-0000-0000-000000000000";
    for position in ["not a position", "'; SELECT 1; --", before_time] {
        let forged = with_position(&first.next_page_token, position);
        let status = c.list_commit_ledger(list(forged)).await.expect_err("an altered token is refused");
        assert_eq!(bad_fields(&status), ["page_token"], "{position:?}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_page_token_is_invalid_argument_though_the_filters_match() {
    let server = TestServer::start().await;
    let ours = Tenant::create(&server, "Acme").await;
    let theirs = Tenant::create(&server, "Globex").await;
    for external_id in ["ACR2", "ACR3"] {
        ours.another_customer(&server, external_id).await;
        theirs.another_customer(&server, external_id).await;
    }
    let page =
        |page_token: String| pb::ListCustomersRequest { page_size: 1, page_token, ..Default::default() };
    let token = server.customers(&theirs.key).await.list_customers(page(String::new())).await.unwrap();
    let token = token.into_inner().next_page_token;
    assert!(!token.is_empty());

    let mut customers = server.customers(&ours.key).await;
    let status = customers.list_customers(page(token)).await.expect_err("their token is not ours");
    assert_eq!(bad_fields(&status), ["page_token"]);
    let own = customers.list_customers(page(String::new())).await.unwrap().into_inner().next_page_token;
    customers.list_customers(page(own)).await.expect("our own token is read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_cursor_is_invalid_argument_for_watch_and_list() {
    let server = TestServer::start().await;
    let ours = Tenant::create(&server, "Acme").await;
    let theirs = Tenant::create(&server, "Globex").await;
    for t in [&ours, &theirs] {
        block_everything(&server, t).await;
        raise(&server, t, "blocked", 3).await;
    }
    let first = pb::ListViolationsRequest { page_size: 1, ..Default::default() };
    let listed = violations(&server, &theirs.key).await.list_violations(first).await.unwrap().into_inner();
    let their_cursor = listed.violations[0].cursor.clone();

    let mut c = violations(&server, &ours.key).await;
    let list = pb::ListViolationsRequest { after_cursor: their_cursor.clone(), ..Default::default() };
    let status = c.list_violations(list).await.expect_err("their cursor is not ours");
    assert_eq!(bad_fields(&status), ["after_cursor"]);
    let watch =
        pb::WatchViolationsRequest { start: Some(Start::AfterCursor(their_cursor)), ..Default::default() };
    let status = c.watch_violations(watch).await.expect_err("their cursor is not ours");
    assert_eq!(bad_fields(&status), ["after_cursor"]);

    let own = server.cursor(&ours.key, 1).await;
    let list = pb::ListViolationsRequest { after_cursor: own, ..Default::default() };
    let after_one = c.list_violations(list).await.expect("our own cursor is read").into_inner();
    assert_eq!(after_one.violations.iter().map(|v| v.sequence).collect::<Vec<_>>(), [2, 3]);
}
