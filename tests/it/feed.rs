//! The violation feed: replay then live without gap or duplicate, resumption (after a
//! client drops, after a restart), several instances, filters, isolation, a stalled
//! subscriber, OUT_OF_RANGE, shutdown, and history pages.

use std::sync::Arc;
use std::time::Duration;

use billing::domain::violation::{StartAt, ViolationFilter};
use billing::proto::v1 as pb;
use billing::proto::v1::watch_violations_request::Start;
use tonic::Code;
use tonic::codec::Streaming;

use crate::support::fixtures::{Tenant, block_everything, raise, violations};
use crate::support::{TestServer, expect_code, reason, wait_until};

async fn watch(server: &TestServer, key: &str, start: Start) -> Streaming<pb::WatchViolationsResponse> {
    let req = pb::WatchViolationsRequest { start: Some(start), ..Default::default() };
    violations(server, key).await.watch_violations(req).await.expect("watch").into_inner()
}

/// The next `n` violations of a stream, failing after 10 s of silence.
async fn take(stream: &mut Streaming<pb::WatchViolationsResponse>, n: usize) -> Vec<pb::Violation> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("stream went silent after {} of {n} violations", out.len()));
        out.push(next.expect("stream error").expect("stream ended").violation.unwrap());
    }
    out
}

/// Reads a stream to its end: how many violations came, and the status that ended it.
/// Panics if it ends with OK; the limit is for a stream that never ends, not a pace.
async fn read_to_end(stream: &mut Streaming<pb::WatchViolationsResponse>) -> (usize, tonic::Status) {
    let mut received = 0;
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => panic!("the stream finished with OK after {received} violations"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream ends");
    (received, end)
}

fn seqs(v: &[pb::Violation]) -> Vec<i64> {
    v.iter().map(|x| x.sequence).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_has_no_gap_or_duplicate_at_the_seam() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "before", 30).await;
    let mut stream = watch(&server, &t.key, Start::FromBeginning(true)).await;
    let writer = async {
        for round in 0..3 {
            raise(&server, &t, &format!("during-{round}"), 10).await;
        }
    };
    let (received, ()) = tokio::join!(take(&mut stream, 60), writer);
    assert_eq!(seqs(&received), (1..=60).collect::<Vec<_>>());
    assert!(received.iter().all(|v| v.kind == pb::ViolationKind::LimitBlock as i32));
    assert_eq!(received[59].cursor, server.cursor(&t.key, 60).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_after_its_last_cursor() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "a", 10).await;
    let mut first = watch(&server, &t.key, Start::FromBeginning(true)).await;
    let got = take(&mut first, 4).await;
    drop(first);
    raise(&server, &t, "b", 5).await;
    let mut resumed = watch(&server, &t.key, Start::AfterCursor(got[3].cursor.clone())).await;
    assert_eq!(seqs(&take(&mut resumed, 11).await), (5..=15).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_after_a_restart_with_what_was_raised_meanwhile() {
    let first = TestServer::start().await;
    let other = TestServer::start_on(Arc::clone(&first.db)).await;
    let t = Tenant::create(&first, "Acme").await;
    block_everything(&first, &t).await;
    raise(&first, &t, "a", 3).await;
    let mut stream = watch(&first, &t.key, Start::FromBeginning(true)).await;
    let seen = take(&mut stream, 3).await;

    let (db, addr) = (Arc::clone(&first.db), first.addr);
    first.stop().await.expect("clean stop");
    let ended =
        tokio::time::timeout(Duration::from_secs(5), stream.message()).await.expect("the stream ends");
    let status = ended.expect_err("ends with a status");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "SHUTTING_DOWN");

    raise(&other, &t, "while-down", 4).await;
    let restarted = TestServer::restart_on(db, addr).await;
    let mut resumed = watch(&restarted, &t.key, Start::AfterCursor(seen[2].cursor.clone())).await;
    assert_eq!(seqs(&take(&mut resumed, 4).await), [4, 5, 6, 7], "what was raised while it was down");
    raise(&other, &t, "after", 2).await;
    assert_eq!(seqs(&take(&mut resumed, 2).await), [8, 9], "then live");
}

/// Shutdown is not an outage: a stream asked for while the instance stops is refused as
/// SHUTTING_DOWN (retry elsewhere at once), not as the database being unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_during_shutdown_is_refused_as_shutting_down() {
    let mut server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let caller = server.app.authenticate(&t.key).await.expect("the key is valid");
    server.signal_stop();
    server.join().await.expect("clean stop");
    let refused = server
        .feed
        .watch(caller, StartAt::Now, ViolationFilter::default())
        .await
        .err()
        .expect("no stream once stopped");
    let status = tonic::Status::from(refused);
    assert_eq!((status.code(), reason(&status)), (Code::Unavailable, "SHUTTING_DOWN".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_committed_on_one_instance_reaches_a_subscriber_on_another() {
    let writer = TestServer::start().await;
    let reader = TestServer::start_on(Arc::clone(&writer.db)).await;
    let t = Tenant::create(&writer, "Acme").await;
    block_everything(&writer, &t).await;
    let mut stream = watch(&reader, &t.key, Start::FromNow(true)).await;
    for round in 0..5 {
        raise(&writer, &t, &format!("x{round}"), 10).await;
    }
    let got = take(&mut stream, 50).await;
    assert_eq!(seqs(&got), (1..=50).collect::<Vec<_>>());
    assert_eq!(got[0].event_id, "x0-0");
    assert_eq!(reader.feed.subscribers(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_customer_and_kinds() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    let other = t.another_customer(&server, "ACR2").await;
    let t2 =
        Tenant { customer_id: other.clone(), key: t.key.clone(), vod: t.vod.clone(), fuel: t.fuel.clone() };
    block_everything(&server, &t2).await;
    let mut mine = violations(&server, &t.key)
        .await
        .watch_violations(pb::WatchViolationsRequest {
            start: Some(Start::FromBeginning(true)),
            customer: billing::proto::customer_id(t.customer_id.clone()),
            kinds: vec![pb::ViolationKind::LimitBlock.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let mut warnings_only = violations(&server, &t.key)
        .await
        .watch_violations(pb::WatchViolationsRequest {
            start: Some(Start::FromBeginning(true)),
            kinds: vec![pb::ViolationKind::LimitWarning.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    raise(&server, &t2, "theirs", 3).await;
    raise(&server, &t, "mine", 2).await;
    let got = take(&mut mine, 2).await;
    assert!(got.iter().all(|v| v.customer_id == t.customer_id));
    assert_eq!(seqs(&got), [4, 5]);
    let silent = tokio::time::timeout(Duration::from_millis(500), warnings_only.message()).await;
    assert!(silent.is_err(), "no violation of that kind was raised");

    let unknown = pb::WatchViolationsRequest {
        customer: billing::proto::customer_id(uuid::Uuid::now_v7().to_string()),
        ..Default::default()
    };
    expect_code(violations(&server, &t.key).await.watch_violations(unknown).await, Code::NotFound);
    let bad = pb::WatchViolationsRequest {
        kinds: vec![99],
        customer: billing::proto::customer_id("nope"),
        ..Default::default()
    };
    let status =
        expect_code(violations(&server, &t.key).await.watch_violations(bad).await, Code::InvalidArgument);
    assert_eq!(crate::support::bad_fields(&status), ["customer_id", "kinds[0]"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_only_its_own_organizations_violations() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    block_everything(&server, &a).await;
    block_everything(&server, &b).await;
    let mut b_stream = watch(&server, &b.key, Start::FromBeginning(true)).await;
    raise(&server, &a, "a", 5).await;
    raise(&server, &b, "b", 1).await;
    let got = take(&mut b_stream, 1).await;
    assert_eq!((got[0].event_id.as_str(), got[0].sequence), ("b-0", 1), "B's feed has its own sequence");
    let silent = tokio::time::timeout(Duration::from_millis(500), b_stream.message()).await;
    assert!(silent.is_err(), "nothing of A's");
    let listed = violations(&server, &b.key)
        .await
        .list_violations(pb::ListViolationsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.into_inner().violations.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_blocks_neither_writers_nor_other_subscribers_and_loses_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    let mut stalled = watch(&server, &t.key, Start::FromNow(true)).await;
    let mut live = watch(&server, &t.key, Start::FromNow(true)).await;
    // More than the broadcast channel and the HTTP/2 window hold.
    let started = std::time::Instant::now();
    for round in 0..4 {
        raise(&server, &t, &format!("r{round}"), 1000).await;
    }
    let writing = started.elapsed();
    let got = take(&mut live, 4000).await;
    assert_eq!(seqs(&got), (1..=4000).collect::<Vec<_>>(), "the live subscriber got everything, in order");
    assert!(writing < Duration::from_secs(30), "writers were not held up ({writing:?})");
    // Now the stalled one reads: it catches up from the table, in order, without loss.
    let caught_up = take(&mut stalled, 4000).await;
    assert_eq!(seqs(&caught_up), (1..=4000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_no_longer_retained_or_ahead_is_out_of_range_with_its_reason_for_watch_and_list() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "old", 5).await;
    let pruned =
        server.app.prune_violations(billing::app::clock::now() + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(pruned.violations, 5);
    raise(&server, &t, "new", 2).await;
    let mut c = violations(&server, &t.key).await;
    let stale = pb::WatchViolationsRequest {
        start: Some(Start::AfterCursor(server.cursor(&t.key, 2).await)),
        ..Default::default()
    };
    let status = expect_code(c.watch_violations(stale).await, Code::OutOfRange);
    assert_eq!(reason(&status), "CURSOR_NOT_RETAINED");
    let ahead = pb::WatchViolationsRequest {
        start: Some(Start::AfterCursor(server.cursor(&t.key, 99).await)),
        ..Default::default()
    };
    let status = expect_code(c.watch_violations(ahead).await, Code::OutOfRange);
    assert_eq!(reason(&status), "CURSOR_AHEAD");
    // ListViolations judges its cursor the same way instead of paging from what is left.
    let tokens = server.app.authenticate(&t.key).await.unwrap().tokens;
    let list = |after: i64| pb::ListViolationsRequest {
        after_cursor: billing::domain::violation::cursor_of(after, &tokens),
        ..Default::default()
    };
    let status = expect_code(c.list_violations(list(2)).await, Code::OutOfRange);
    assert_eq!(reason(&status), "CURSOR_NOT_RETAINED");
    let status = expect_code(c.list_violations(list(99)).await, Code::OutOfRange);
    assert_eq!(reason(&status), "CURSOR_AHEAD");
    let listed = c.list_violations(list(5)).await.expect("right before what is retained").into_inner();
    assert_eq!(listed.violations.iter().map(|v| v.sequence).collect::<Vec<_>>(), [6, 7]);
    let first = pb::ListViolationsRequest { page_size: 1, ..Default::default() };
    let first = c.list_violations(first).await.unwrap().into_inner();
    assert_eq!(first.violations[0].sequence, 6, "without a cursor the list starts at what is retained");
    let mut from_start = watch(&server, &t.key, Start::FromBeginning(true)).await;
    assert_eq!(seqs(&take(&mut from_start, 2).await), [6, 7], "the beginning is what is retained");
    let exact = watch(&server, &t.key, Start::AfterCursor(server.cursor(&t.key, 5).await)).await;
    drop(exact);
    // Pruned between two pages: the next page is OUT_OF_RANGE, not a silent skip to 8.
    server.app.prune_violations(billing::app::clock::now() + chrono::Duration::seconds(1)).await.unwrap();
    raise(&server, &t, "newer", 1).await;
    let next =
        pb::ListViolationsRequest { page_size: 1, page_token: first.next_page_token, ..Default::default() };
    let status = expect_code(c.list_violations(next).await, Code::OutOfRange);
    assert_eq!(reason(&status), "CURSOR_NOT_RETAINED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_clients_free_their_subscriptions() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let streams: Vec<_> =
        futures::future::join_all((0..20).map(|_| watch(&server, &t.key, Start::FromNow(true)))).await;
    assert_eq!(server.feed.subscribers(), 20);
    drop(streams);
    for _ in 0..100 {
        if server.feed.subscribers() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} subscriptions left after their clients went away", server.feed.subscribers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_in_sequence_order_with_filters() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "h", 7).await;
    let mut c = violations(&server, &t.key).await;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_violations(pb::ListViolationsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.violations);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seqs(&all), (1..=7).collect::<Vec<_>>());
    let after = c
        .list_violations(pb::ListViolationsRequest {
            after_cursor: all[4].cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&after.violations), [6, 7]);
    let none = c
        .list_violations(pb::ListViolationsRequest {
            kinds: vec![pb::ViolationKind::CommitExhausted.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.violations.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_lags_repairs_from_the_table_and_crosses_the_seam_without_duplicates() {
    // A tiny live channel and stream buffer: a subscriber whose client does not read
    // while 1,500 violations are written is sure to lag (more than the channel, the
    // buffer and the HTTP/2 window hold), and the live messages it then finds were
    // already read from the table (the replay/live seam).
    let mut config = crate::support::server::test_server_config();
    config.feed.live_capacity = 4;
    config.feed.stream_buffer = 1;
    let db = Arc::new(crate::support::db::TestDb::create());
    let server = TestServer::start_with(db, config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    let mut stalled = watch(&server, &t.key, Start::FromNow(true)).await;
    for round in 0..3 {
        raise(&server, &t, &format!("r{round}"), 500).await;
    }
    let got = take(&mut stalled, 1500).await;
    assert_eq!(seqs(&got), (1..=1500).collect::<Vec<_>>(), "every violation once, in order");
    let stats = server.feed.stats();
    assert!(stats.lagged >= 1, "the lagged path ran: {stats:?}");
    assert!(
        stats.duplicates_skipped >= 1,
        "live messages already read from the table were skipped: {stats:?}"
    );
    // Nothing extra is queued: the next message is the next violation.
    raise(&server, &t, "after", 1).await;
    assert_eq!(seqs(&take(&mut stalled, 1).await), [1501]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_filters_are_capped_and_repeats_filter_like_one() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "b", 2).await;
    let mut c = violations(&server, &t.key).await;
    let block: i32 = pb::ViolationKind::LimitBlock.into();
    // 500,000 values (half a megabyte on the wire) are refused with one violation.
    let flood = pb::ListViolationsRequest { kinds: vec![block; 500_000], ..Default::default() };
    let status = expect_code(c.list_violations(flood).await, Code::InvalidArgument);
    assert_eq!(crate::support::bad_fields(&status), ["kinds"]);
    let watch_flood = pb::WatchViolationsRequest { kinds: vec![block; 65], ..Default::default() };
    expect_code(c.watch_violations(watch_flood).await, Code::InvalidArgument);
    // Up to the cap, a repeated kind filters exactly like the kind once.
    let once = pb::ListViolationsRequest { kinds: vec![block], ..Default::default() };
    let repeated = pb::ListViolationsRequest { kinds: vec![block; 64], ..Default::default() };
    let once = c.list_violations(once).await.unwrap().into_inner().violations;
    let repeated = c.list_violations(repeated).await.unwrap().into_inner().violations;
    assert!(!once.is_empty());
    assert_eq!(seqs(&once), seqs(&repeated));
}

/// A server with a one-message stream buffer, and a stream of its tenant's key whose
/// client has not read while 600 violations were written: the stream's buffer is full.
async fn a_subscriber_that_does_not_read() -> (TestServer, Tenant, Streaming<pb::WatchViolationsResponse>) {
    let mut config = crate::support::server::test_server_config();
    config.feed.stream_buffer = 1;
    let db = Arc::new(crate::support::db::TestDb::create());
    let server = TestServer::start_with(db, config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    // A small HTTP/2 window (16 KiB, a few dozen violations): the client's transport
    // cannot take in all 600 on its own, so the server's stream task is blocked sending
    // whatever the machine's pace. (With the default 2 MiB window all 600 could be
    // delivered into the client's buffers before the stream ends.)
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(16 * 1024)
        .connect()
        .await
        .unwrap();
    let mut client = pb::violation_service_client::ViolationServiceClient::with_interceptor(
        channel,
        crate::support::server::Key::bearer(&t.key),
    );
    let req = pb::WatchViolationsRequest { start: Some(Start::FromNow(true)), ..Default::default() };
    let behind = client.watch_violations(req).await.expect("watch").into_inner();
    raise(&server, &t, "r", 600).await;
    (server, t, behind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_far_behind_at_shutdown_still_ends_with_unavailable_never_ok() {
    // At shutdown the buffer is full, and the end must not wait behind it.
    let (server, _, mut behind) = a_subscriber_that_does_not_read().await;
    server.stop().await.expect("clean stop");
    let (received, end) = read_to_end(&mut behind).await;
    assert!(received < 600, "the server did not deliver everything before its end ({received})");
    assert_eq!((end.code(), reason(&end)), (Code::Unavailable, "SHUTTING_DOWN".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_streams_on_every_instance_and_spares_the_others() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(Arc::clone(&a.db)).await;
    let t = Tenant::create(&a, "Acme").await;
    block_everything(&a, &t).await;
    let org = a.org_of(&t.key).await;
    let other_key = a.key_for(org).await;
    let mut doomed = watch(&b, &t.key, Start::FromNow(true)).await;
    let mut spared = watch(&b, &other_key, Start::FromNow(true)).await;

    let (id, _) = billing::domain::api_key::parse_key(&t.key).unwrap();
    a.admin.revoke_api_key(id).await.unwrap();
    let (_, end) = read_to_end(&mut doomed).await;
    assert_eq!((end.code(), reason(&end)), (Code::Unauthenticated, "API_KEY_REVOKED".to_owned()));
    let other = Tenant { key: other_key.clone(), ..t };
    raise(&a, &other, "after", 1).await;
    assert_eq!(take(&mut spared, 1).await.len(), 1, "a stream of another key keeps delivering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_a_stream_whose_client_is_not_reading() {
    // The stream's task is blocked sending when the key is revoked, and must not wait
    // for the client to read them all first.
    let (server, t, mut behind) = a_subscriber_that_does_not_read().await;
    let (id, _) = billing::domain::api_key::parse_key(&t.key).unwrap();
    server.admin.revoke_api_key(id).await.unwrap();
    // Reading starts once the instance knows of the revocation (calls with the key are
    // refused): read at once, the 600 could all arrive before the notice does.
    let feed = violations(&server, &t.key).await;
    wait_until("the instance refuses the revoked key", || {
        let mut feed = feed.clone();
        async move { feed.list_violations(pb::ListViolationsRequest::default()).await.is_err() }
    })
    .await;
    let (received, end) = read_to_end(&mut behind).await;
    assert_eq!((end.code(), reason(&end)), (Code::Unauthenticated, "API_KEY_REVOKED".to_owned()));
    assert!(received < 600, "the stream ended before delivering everything ({received})");
}
