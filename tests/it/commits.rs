//! CommitService: every seed field, the seed rules over the wire, uniqueness keys,
//! listing, updates, voids, balances, the ledger, adjustments, and closing ended segments.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, apply, commits, create_commit, day, days_from_today, far_ahead, long_ago, prepaid, ts, usage,
};
use crate::support::{TestServer, bad_fields, expect_code, reason};

fn every_field(t: &Tenant, contract: &str) -> pb::Commit {
    pb::Commit {
        r#type: pb::CommitType::Prepaid.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product_id: t.vod.clone(),
        priority: "2.5".into(),
        access_schedule: Some(pb::AccessSchedule {
            credit_type: "USD".into(),
            schedule_items: vec![
                pb::AccessScheduleItem {
                    amount: "600".into(),
                    starting_at: ts(day(2026, 1, 1)),
                    ending_before: ts(day(2026, 7, 1)),
                },
                pb::AccessScheduleItem {
                    amount: "400.50".into(),
                    starting_at: ts(day(2026, 7, 1)),
                    ending_before: ts(day(2027, 1, 1)),
                },
            ],
        }),
        invoice_schedule: Some(pb::InvoiceSchedule {
            credit_type: "USD".into(),
            do_not_invoice: false,
            schedule_items: vec![pb::InvoiceScheduleItem {
                timestamp: ts(day(2026, 1, 1)),
                amount: None,
                unit_price: Some("100".into()),
                quantity: Some("2".into()),
            }],
            recurring_schedule: Some(pb::RecurringSchedule {
                amount_distribution: pb::AmountDistribution::DividedRounded.into(),
                starting_at: ts(day(2026, 2, 1)),
                ending_before: ts(day(2026, 5, 1)),
                frequency: pb::Frequency::Monthly.into(),
                amount: Some("100".into()),
                unit_price: None,
                quantity: None,
            }),
        }),
        applicable_product_ids: vec![],
        applicable_product_tags: vec![],
        specifiers: vec![pb::CommitSpecifier {
            product_id: String::new(),
            product_tags: vec!["vod".into()],
            pricing_group_values: [("region".to_string(), "EU".to_string())].into(),
            presentation_group_values: [("channel".to_string(), "web".to_string())].into(),
            exclude: vec![pb::SpecifierExclusion { product_tags: vec!["adult".into()] }],
        }],
        applicable_contract_ids: vec!["contract-7".into()],
        custom_fields: [("deal".to_string(), "Q1-2026".to_string())].into(),
        rate_type: "COMMIT_RATE".into(),
        name: Some("Annual prepaid".into()),
        description: "Signed by ops".into(),
        invoice_contract_id: contract.into(),
        netsuite_sales_order_id: "SO-1".into(),
        salesforce_opportunity_id: "OPP-1".into(),
        uniqueness_key: Some("deal-2026-q1".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_field_round_trips_with_the_expanded_invoice_schedule() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let contract = uuid::Uuid::now_v7().to_string();
    let sent = every_field(&t, &contract);
    let created = create_commit(&mut c, sent.clone()).await;

    let got = c
        .get_commit(pb::GetCommitRequest { id: created.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .commit
        .unwrap();
    assert_eq!(got, created, "get returns what create returned");
    let stored_input = pb::Commit {
        id: String::new(),
        invoice_charges: vec![],
        access_end_time: None,
        create_time: None,
        update_time: None,
        etag: String::new(),
        created_by: String::new(),
        updated_by: String::new(),
        ..got.clone()
    };
    let mut expected = sent;
    expected.access_schedule.as_mut().unwrap().schedule_items[1].amount = "400.5".into();
    assert_eq!(stored_input, expected, "every seed field is kept");
    let charges: Vec<_> = got.invoice_charges.iter().map(|c| c.amount.as_str()).collect();
    assert_eq!(
        charges,
        ["200", "33.33", "33.33", "33.34"],
        "explicit 100x2 then 100 divided over three months"
    );
    assert_eq!(got.access_end_time, ts(day(2027, 1, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_breach_is_reported_at_once_and_nothing_is_created() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let bad = pb::Commit {
        r#type: pb::CommitType::Postpaid.into(),
        customer: billing::proto::customer_id(uuid::Uuid::now_v7().to_string()),
        product_id: "not-a-uuid".into(),
        priority: "1.0.0".into(),
        access_schedule: Some(pb::AccessSchedule {
            credit_type: String::new(),
            schedule_items: vec![
                pb::AccessScheduleItem {
                    amount: "-1".into(),
                    starting_at: ts(day(2026, 2, 1)),
                    ending_before: ts(day(2026, 1, 1)),
                },
                pb::AccessScheduleItem {
                    amount: "1e3".into(),
                    starting_at: None,
                    ending_before: ts(day(2026, 1, 1)),
                },
            ],
        }),
        applicable_product_tags: vec!["vod".into()],
        specifiers: vec![pb::CommitSpecifier { product_tags: vec!["vod".into()], ..Default::default() }],
        name: Some(String::new()),
        uniqueness_key: Some("x".repeat(129)),
        ..Default::default()
    };
    let status = expect_code(
        c.create_commit(pb::CreateCommitRequest { commit: Some(bad), request_id: String::new() }).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "commit.access_schedule.schedule_items[1].amount",
            "commit.product_id",
            "commit.priority",
            "commit.customer_id",
            "commit.access_schedule.schedule_items[0].amount",
            "commit.access_schedule.schedule_items[0].ending_before",
            "commit.access_schedule.schedule_items[1].starting_at",
            "commit.access_schedule.schedule_items",
            "commit.invoice_schedule",
            "commit.invoice_contract_id",
            "commit.specifiers",
            "commit.name",
            "commit.uniqueness_key",
        ]
    );
    let listed = c.list_commits(pb::ListCommitsRequest::default()).await.unwrap().into_inner();
    assert!(listed.commits.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_uniqueness_key_is_already_exists_and_creates_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut commit = prepaid(&t, "100", "1", day(2026, 1, 1), day(2027, 1, 1));
    commit.uniqueness_key = Some("once".into());
    create_commit(&mut c, commit.clone()).await;
    commit.access_schedule.as_mut().unwrap().schedule_items[0].amount = "999".into();
    let status = expect_code(
        c.create_commit(pb::CreateCommitRequest { commit: Some(commit), request_id: String::new() }).await,
        Code::AlreadyExists,
    );
    assert_eq!(reason(&status), "ALREADY_EXISTS");
    assert_eq!(
        c.list_commits(pb::ListCommitsRequest::default()).await.unwrap().into_inner().commits.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postpaid_commit_follows_its_rules() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut commit = prepaid(&t, "1000", "1", day(2026, 1, 1), day(2027, 1, 1));
    commit.r#type = pb::CommitType::Postpaid.into();
    commit.invoice_contract_id = uuid::Uuid::now_v7().to_string();
    commit.invoice_schedule = Some(pb::InvoiceSchedule {
        schedule_items: vec![pb::InvoiceScheduleItem {
            timestamp: ts(day(2027, 1, 1)),
            amount: Some("999".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    let status = expect_code(
        c.create_commit(pb::CreateCommitRequest { commit: Some(commit.clone()), request_id: String::new() })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["commit.invoice_schedule.schedule_items[0]"],
        "total must equal the access amount"
    );
    commit.invoice_schedule.as_mut().unwrap().schedule_items[0].amount = Some("1000".into());
    let created = create_commit(&mut c, commit).await;
    assert_eq!(created.r#type, pb::CommitType::Postpaid as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_customer_type_and_activity_and_pages() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let other = t.another_customer(&server, "ACR2").await;
    let mut c = commits(&server, &t.key).await;
    let a = create_commit(&mut c, prepaid(&t, "1", "1", day(2026, 1, 1), day(2026, 6, 1))).await;
    let b = create_commit(&mut c, prepaid(&t, "1", "1", day(2026, 6, 1), day(2027, 1, 1))).await;
    let mut theirs = prepaid(&t, "1", "1", day(2026, 1, 1), day(2027, 1, 1));
    theirs.customer = billing::proto::customer_id(other.clone());
    let o = create_commit(&mut c, theirs).await;
    let ids = |r: pb::ListCommitsResponse| r.commits.into_iter().map(|c| c.id).collect::<Vec<_>>();

    let mine = pb::ListCommitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        ..Default::default()
    };
    assert_eq!(ids(c.list_commits(mine).await.unwrap().into_inner()), [a.id.clone(), b.id.clone()]);
    let in_march = pb::ListCommitsRequest { active_at: ts(day(2026, 3, 1)), ..Default::default() };
    assert_eq!(ids(c.list_commits(in_march).await.unwrap().into_inner()), [a.id.clone(), o.id.clone()]);
    let at_june_first = pb::ListCommitsRequest { active_at: ts(day(2026, 6, 1)), ..Default::default() };
    assert_eq!(
        ids(c.list_commits(at_june_first).await.unwrap().into_inner()),
        [b.id.clone(), o.id.clone()],
        "ends are exclusive"
    );
    let postpaid = pb::ListCommitsRequest { r#type: pb::CommitType::Postpaid.into(), ..Default::default() };
    assert!(c.list_commits(postpaid).await.unwrap().into_inner().commits.is_empty());

    let first = c
        .list_commits(pb::ListCommitsRequest { page_size: 2, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let second = c
        .list_commits(pb::ListCommitsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!([ids(first), ids(second)].concat(), [a.id, b.id, o.id]);
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_only_what_may_change_with_an_etag() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let created = create_commit(&mut c, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    let new_end = days_from_today(3650 + 365);
    let req = pb::UpdateCommitRequest {
        commit: Some(pb::Commit {
            id: created.id.clone(),
            etag: created.etag.clone(),
            name: Some("Renamed".into()),
            priority: "0.5".into(),
            custom_fields: [("k".to_string(), "v".to_string())].into(),
            access_end_time: ts(new_end),
            customer: billing::proto::customer_id("ignored"),
            ..Default::default()
        }),
        update_mask: mask(&["name", "priority", "custom_fields", "access_end_time"]),
    };
    let updated = c.update_commit(req.clone()).await.unwrap().into_inner().commit.unwrap();
    assert_eq!(updated.name.as_deref(), Some("Renamed"));
    assert_eq!(updated.priority, "0.5");
    assert_eq!(updated.access_end_time, ts(new_end));
    assert_eq!(updated.customer_id(), created.customer_id(), "not a mutable field");

    let status = expect_code(c.update_commit(req).await, Code::Aborted);
    assert_eq!(reason(&status), "ETAG_MISMATCH");
    let bad = pb::UpdateCommitRequest {
        commit: Some(pb::Commit {
            id: created.id.clone(),
            access_end_time: ts(day(2020, 1, 1)),
            ..Default::default()
        }),
        update_mask: mask(&["customer_id", "access_end_time"]),
    };
    let status = expect_code(c.update_commit(bad).await, Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        ["update_mask.paths[0]", "commit.access_end_time"],
        "both problems at once"
    );
    let past = pb::UpdateCommitRequest {
        commit: Some(pb::Commit {
            id: created.id.clone(),
            access_end_time: ts(day(2020, 1, 1)),
            ..Default::default()
        }),
        update_mask: mask(&["access_end_time"]),
    };
    let status = expect_code(c.update_commit(past).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["commit.access_end_time"]);
    let no_mask = pb::UpdateCommitRequest {
        commit: Some(pb::Commit { id: created.id, ..Default::default() }),
        update_mask: None,
    };
    assert_eq!(
        bad_fields(&expect_code(c.update_commit(no_mask).await, Code::InvalidArgument)),
        ["update_mask"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn void_writes_off_the_balance_and_stops_drawdowns() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let created = create_commit(&mut c, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    apply(&mut c, &t, "before-void", usage(&t.vod, "30")).await.unwrap();
    let voided = c
        .void_commit(pb::VoidCommitRequest {
            id: created.id.clone(),
            etag: String::new(),
            reason: "customer churned".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .commit
        .unwrap();
    assert!(voided.void_time.is_some());
    let after = apply(&mut c, &t, "after-void", usage(&t.vod, "10")).await.unwrap();
    assert!(after.drawdowns.is_empty() && after.overage == "10", "a voided commit draws nothing");
    let balance = c
        .get_commit_balance(pb::GetCommitBalanceRequest { commit_id: created.id.clone(), at: None })
        .await
        .unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "0");
    let again = c.void_commit(pb::VoidCommitRequest { id: created.id.clone(), ..Default::default() }).await;
    assert_eq!(reason(&expect_code(again, Code::FailedPrecondition)), "COMMIT_VOIDED");
    let ledger = c
        .list_commit_ledger(pb::ListCommitLedgerRequest { commit_id: created.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> =
        ledger.entries.iter().map(|e| (e.kind, e.amount.as_str(), e.running_balance.as_str())).collect();
    use pb::LedgerEntryKind as K;
    assert_eq!(
        kinds,
        [(K::Grant as i32, "100", "100"), (K::Drawdown as i32, "-30", "70"), (K::Void as i32, "-70", "0")]
    );
    assert_eq!(ledger.entries[2].reason, "customer churned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_is_known_at_any_instant() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = Utc::now();
    let mut commit = prepaid(&t, "100", "1", now - Duration::days(10), now + Duration::days(10));
    commit.access_schedule.as_mut().unwrap().schedule_items.push(pb::AccessScheduleItem {
        amount: "50".into(),
        starting_at: ts(now + Duration::days(10)),
        ending_before: ts(now + Duration::days(20)),
    });
    let created = create_commit(&mut c, commit).await;
    let mut u = usage(&t.vod, "40");
    u.timestamp = ts(now - Duration::days(5));
    apply(&mut c, &t, "past-usage", u).await.unwrap();

    let at =
        |t: chrono::DateTime<Utc>| pb::GetCommitBalanceRequest { commit_id: created.id.clone(), at: ts(t) };
    let amount = |r: pb::GetCommitBalanceResponse| r.balance.unwrap().amount;
    assert_eq!(
        amount(c.get_commit_balance(at(now - Duration::days(11))).await.unwrap().into_inner()),
        "0",
        "before it starts"
    );
    assert_eq!(amount(c.get_commit_balance(at(now - Duration::days(6))).await.unwrap().into_inner()), "100");
    assert_eq!(amount(c.get_commit_balance(at(now - Duration::days(4))).await.unwrap().into_inner()), "60");
    let future = c.get_commit_balance(at(now + Duration::days(15))).await.unwrap().into_inner();
    assert_eq!(
        future.segments[0].state,
        pb::SegmentState::Expired as i32,
        "the first segment will have expired"
    );
    assert_eq!(amount(future), "50", "only the second segment's grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_move_the_balance_but_never_below_zero_and_replay_by_request_id() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let created = create_commit(&mut c, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    let adjust = |amount: &str, request_id: &str| pb::AdjustCommitBalanceRequest {
        commit_id: created.id.clone(),
        segment_index: 0,
        amount: amount.into(),
        reason: "goodwill".into(),
        request_id: request_id.into(),
    };
    let first = c.adjust_commit_balance(adjust("25", "adj-1")).await.unwrap().into_inner().entry.unwrap();
    let replay = c.adjust_commit_balance(adjust("25", "adj-1")).await.unwrap().into_inner().entry.unwrap();
    assert_eq!(first.id, replay.id, "a retry returns the first entry");
    expect_code(c.adjust_commit_balance(adjust("26", "adj-1")).await, Code::AlreadyExists);
    let status = expect_code(c.adjust_commit_balance(adjust("-126", "")).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INSUFFICIENT_BALANCE");
    c.adjust_commit_balance(adjust("-125", "")).await.expect("down to exactly zero");
    let status = expect_code(c.adjust_commit_balance(adjust("0", "")).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["amount"]);
    let mut missing = adjust("1", "");
    missing.segment_index = 5;
    assert_eq!(
        bad_fields(&expect_code(c.adjust_commit_balance(missing).await, Code::InvalidArgument)),
        ["segment_index"]
    );
    let balance =
        c.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: created.id, at: None }).await.unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_segments_expire_or_true_up_exactly_once() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = Utc::now();
    let ended =
        create_commit(&mut c, prepaid(&t, "100", "1", now - Duration::days(30), now - Duration::days(1)))
            .await;
    let mut post = prepaid(&t, "500", "1", now - Duration::days(30), now - Duration::days(1));
    post.r#type = pb::CommitType::Postpaid.into();
    post.invoice_contract_id = uuid::Uuid::now_v7().to_string();
    post.invoice_schedule = Some(pb::InvoiceSchedule {
        schedule_items: vec![pb::InvoiceScheduleItem {
            timestamp: ts(now - Duration::days(1)),
            amount: Some("500".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    let post = create_commit(&mut c, post).await;

    // Two closers at once (as two instances would): each segment closes once.
    let (a, b) = tokio::join!(server.app.close_due_segments(), server.app.close_due_segments());
    assert_eq!(a.unwrap() + b.unwrap(), 2);
    assert_eq!(server.app.close_due_segments().await.unwrap(), 0);

    let ledger = |id: String| pb::ListCommitLedgerRequest { commit_id: id, ..Default::default() };
    let entries = c.list_commit_ledger(ledger(ended.id)).await.unwrap().into_inner().entries;
    let last = entries.last().unwrap();
    assert_eq!(
        (last.kind, last.amount.as_str(), last.running_balance.as_str()),
        (pb::LedgerEntryKind::Expiry as i32, "-100", "0")
    );
    assert_eq!(
        last.effective_time,
        ts(now - Duration::days(1)).map(|mut t| {
            t.nanos = t.nanos / 1000 * 1000;
            t
        })
    );
    let entries = c.list_commit_ledger(ledger(post.id)).await.unwrap().into_inner().entries;
    assert_eq!(entries.last().unwrap().kind, pb::LedgerEntryKind::TrueUp as i32);
    assert_eq!(entries.last().unwrap().amount, "-500", "the whole unused commitment is trued up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_pages_keep_running_balances_and_filter_by_kind() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let created = create_commit(&mut c, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    for i in 0..5 {
        apply(&mut c, &t, &format!("k{i}"), usage(&t.vod, "10")).await.unwrap();
    }
    let mut token = String::new();
    let mut running = Vec::new();
    loop {
        let page = c
            .list_commit_ledger(pb::ListCommitLedgerRequest {
                commit_id: created.id.clone(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        running.extend(page.entries.into_iter().map(|e| e.running_balance));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(running, ["100", "90", "80", "70", "60", "50"]);
    let drawdowns = c
        .list_commit_ledger(pb::ListCommitLedgerRequest {
            commit_id: created.id,
            kind: pb::LedgerEntryKind::Drawdown.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drawdowns.entries.len(), 5);
    assert_eq!(drawdowns.entries[0].running_balance, "90", "running balances count every kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_commit_is_not_found_for_every_call() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    let mut ca = commits(&server, &a.key).await;
    let mut cb = commits(&server, &b.key).await;
    let theirs = create_commit(&mut ca, prepaid(&a, "100", "1", long_ago(), far_ahead())).await;
    let id = theirs.id.clone();
    expect_code(cb.get_commit(pb::GetCommitRequest { id: id.clone() }).await, Code::NotFound);
    assert!(
        cb.list_commits(pb::ListCommitsRequest::default()).await.unwrap().into_inner().commits.is_empty()
    );
    let upd = pb::UpdateCommitRequest {
        commit: Some(pb::Commit { id: id.clone(), ..Default::default() }),
        update_mask: mask(&["name"]),
    };
    expect_code(cb.update_commit(upd).await, Code::NotFound);
    expect_code(
        cb.void_commit(pb::VoidCommitRequest { id: id.clone(), ..Default::default() }).await,
        Code::NotFound,
    );
    expect_code(
        cb.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: id.clone(), at: None }).await,
        Code::NotFound,
    );
    expect_code(
        cb.list_commit_ledger(pb::ListCommitLedgerRequest { commit_id: id.clone(), ..Default::default() })
            .await,
        Code::NotFound,
    );
    let adj = pb::AdjustCommitBalanceRequest {
        commit_id: id.clone(),
        amount: "1".into(),
        reason: "x".into(),
        ..Default::default()
    };
    expect_code(cb.adjust_commit_balance(adj).await, Code::NotFound);
    // B cannot draw on A's customer, nor create a commit for it.
    let draw = pb::ApplyDrawdownRequest {
        idempotency_key: "k".into(),
        customer: billing::proto::customer_id(a.customer_id.clone()),
        usage: Some(usage(&a.vod, "1")),
    };
    expect_code(cb.apply_drawdown(draw).await, Code::NotFound);
    let status = expect_code(
        cb.create_commit(pb::CreateCommitRequest {
            commit: Some(prepaid(&a, "1", "1", day(2026, 1, 1), day(2027, 1, 1))),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["commit.customer_id", "commit.product_id"]);
    let balance =
        ca.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: id, at: None }).await.unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "100", "untouched");
}

/// AIP-134: UpdateCommit without a mask changes the fields the request sets (before,
/// a mask was required).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_without_a_mask_changes_the_fields_that_are_set() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let created = create_commit(&mut c, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    let req = pb::UpdateCommitRequest {
        commit: Some(pb::Commit {
            id: created.id.clone(),
            description: "Renewal".into(),
            ..Default::default()
        }),
        update_mask: None,
    };
    let updated = c.update_commit(req).await.expect("a partial update").into_inner().commit.unwrap();
    assert_eq!(updated.description, "Renewal");
    assert_eq!((updated.priority, updated.access_end_time), (created.priority, created.access_end_time));
}
