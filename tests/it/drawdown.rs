//! The drawdown engine over the wire: preview, apply, idempotency, applicability, and
//! balances under concurrent drawdowns from several service instances.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Numeric};
use rust_decimal::Decimal;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, apply, commits, create_commit, far_ahead, long_ago, prepaid, ts, usage,
};
use crate::support::{TestServer, bad_fields, expect_code};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drawdown_follows_priority_splits_and_reports_overage() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let second = create_commit(&mut c, prepaid(&t, "50", "2", long_ago(), far_ahead())).await;
    let first = create_commit(&mut c, prepaid(&t, "20", "1", long_ago(), far_ahead())).await;

    let preview = c
        .preview_drawdown(pb::PreviewDrawdownRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            usage: Some(usage(&t.vod, "100")),
        })
        .await
        .unwrap()
        .into_inner();
    let applied = apply(&mut c, &t, "u-1", usage(&t.vod, "100")).await.unwrap();
    assert_eq!(preview.drawdowns, applied.drawdowns, "preview predicts exactly what apply does");
    let parts: Vec<_> = applied
        .drawdowns
        .iter()
        .map(|d| (d.commit_id.as_str(), d.amount.as_str(), d.remaining_after.as_str()))
        .collect();
    assert_eq!(parts, [(first.id.as_str(), "20", "0"), (second.id.as_str(), "50", "0")]);
    assert_eq!(applied.overage, "30");
    assert!(!applied.replayed);

    let next = apply(&mut c, &t, "u-2", usage(&t.vod, "5")).await.unwrap();
    assert!(next.drawdowns.is_empty() && next.overage == "5", "nothing left to draw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_records_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    for _ in 0..3 {
        c.preview_drawdown(pb::PreviewDrawdownRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            usage: Some(usage(&t.vod, "40")),
        })
        .await
        .unwrap();
    }
    let balance =
        c.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.id, at: None }).await.unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_key_returns_the_first_answer_and_changes_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    let u = usage(&t.vod, "10");
    let first = apply(&mut c, &t, "same-key", u.clone()).await.unwrap();
    let again = apply(&mut c, &t, "same-key", u.clone()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.drawdown_id.as_str(), &again.drawdowns),
        (first.drawdown_id.as_str(), &first.drawdowns)
    );
    let mut changed = u;
    changed.amount = "11".into();
    expect_code(apply(&mut c, &t, "same-key", changed).await, Code::AlreadyExists);
    let balance =
        c.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.id, at: None }).await.unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "40", "drawn once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_applicable_commits_draw() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut by_tag = prepaid(&t, "100", "1", long_ago(), far_ahead());
    by_tag.applicable_product_tags = vec!["fuel".into()];
    let by_tag = create_commit(&mut c, by_tag).await;
    let mut by_spec = prepaid(&t, "100", "2", long_ago(), far_ahead());
    by_spec.specifiers = vec![pb::CommitSpecifier {
        product_id: t.vod.clone(),
        pricing_group_values: [("region".to_string(), "EU".to_string())].into(),
        ..Default::default()
    }];
    let by_spec = create_commit(&mut c, by_spec).await;
    let mut by_contract = prepaid(&t, "100", "3", long_ago(), far_ahead());
    by_contract.applicable_contract_ids = vec!["contract-1".into()];
    let by_contract = create_commit(&mut c, by_contract).await;

    let drawn_from =
        |r: pb::ApplyDrawdownResponse| r.drawdowns.into_iter().map(|d| d.commit_id).collect::<Vec<_>>();
    assert_eq!(
        drawn_from(apply(&mut c, &t, "fuel", usage(&t.fuel, "1")).await.unwrap()),
        [by_tag.id.as_str()]
    );
    let mut eu = usage(&t.vod, "1");
    eu.group_values = BTreeMap::from([("region".to_string(), "EU".to_string())]).into_iter().collect();
    assert_eq!(drawn_from(apply(&mut c, &t, "vod-eu", eu).await.unwrap()), [by_spec.id.as_str()]);
    let mut us = usage(&t.vod, "1");
    us.group_values = [("region".to_string(), "US".to_string())].into();
    assert!(drawn_from(apply(&mut c, &t, "vod-us", us.clone()).await.unwrap()).is_empty());
    us.contract_id = "contract-1".into();
    assert_eq!(drawn_from(apply(&mut c, &t, "vod-us-contract", us).await.unwrap()), [by_contract.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_is_invalid_argument_and_unknown_customer_not_found() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut future = usage(&t.vod, "1");
    future.timestamp = ts(Utc::now() + Duration::days(2));
    assert_eq!(
        bad_fields(&expect_code(apply(&mut c, &t, "f", future).await, Code::InvalidArgument)),
        ["usage.timestamp"]
    );
    let bad = pb::RatedUsage { product_id: "x".into(), amount: "-1".into(), ..Default::default() };
    assert_eq!(
        bad_fields(&expect_code(apply(&mut c, &t, "", bad).await, Code::InvalidArgument)),
        ["idempotency_key", "usage.product_id", "usage.amount", "usage.timestamp"]
    );
    let unknown = usage(&uuid::Uuid::now_v7().to_string(), "1");
    assert_eq!(
        bad_fields(&expect_code(apply(&mut c, &t, "p", unknown).await, Code::InvalidArgument)),
        ["usage.product_id"]
    );
    let stranger = pb::ApplyDrawdownRequest {
        idempotency_key: "s".into(),
        customer: billing::proto::customer_id(uuid::Uuid::now_v7().to_string()),
        usage: Some(usage(&t.vod, "1")),
    };
    expect_code(c.apply_drawdown(stranger).await, Code::NotFound);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = diesel::sql_types::Nullable<Numeric>)]
    total: Option<Decimal>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_drawdowns_from_two_instances_never_overdraw_or_lose_an_allocation() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(Arc::clone(&first.db)).await;
    let t = Tenant::create(&first, "Acme").await;
    let mut c = commits(&first, &t.key).await;
    let a = create_commit(&mut c, prepaid(&t, "1000", "1", long_ago(), far_ahead())).await;
    let b = create_commit(&mut c, prepaid(&t, "733.37", "2", long_ago(), far_ahead())).await;

    // 2 instances x 8 clients x 25 calls of 1.00..9.99: about 5,500 asked of 1,733.37.
    let mut tasks = Vec::new();
    for (instance, server) in [&first, &second].into_iter().enumerate() {
        for client in 0..8 {
            let mut c = commits(server, &t.key).await;
            let (customer, product) = (t.customer_id.clone(), t.vod.clone());
            tasks.push(tokio::spawn(async move {
                let mut asked = Decimal::ZERO;
                let mut answers = Vec::new();
                for call in 0..25 {
                    let amount =
                        Decimal::new(100 + ((instance * 997 + client * 131 + call * 37) % 900) as i64, 2);
                    asked += amount;
                    let req = pb::ApplyDrawdownRequest {
                        idempotency_key: format!("{instance}-{client}-{call}"),
                        customer: billing::proto::customer_id(customer.clone()),
                        usage: Some(usage(&product, &amount.to_string())),
                    };
                    answers.push(c.apply_drawdown(req).await.expect("apply").into_inner());
                }
                (asked, answers)
            }));
        }
    }
    let mut asked = Decimal::ZERO;
    let mut drawn = Decimal::ZERO;
    let mut overage = Decimal::ZERO;
    let mut draws = 0_i64;
    for task in tasks {
        let (a, answers) = task.await.unwrap();
        asked += a;
        for r in answers {
            drawn += r.drawdowns.iter().map(|d| dec(&d.amount)).sum::<Decimal>();
            draws += r.drawdowns.len() as i64;
            overage += dec(&r.overage);
        }
    }
    assert_eq!(drawn + overage, asked, "every unit is either drawn or overage");
    assert_eq!(drawn, dec("1733.37"), "both commits are used up exactly");

    let mut conn = first.db.connect();
    let mismatched: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM commit_segments s WHERE s.remaining < 0 OR s.remaining <> \
         (SELECT COALESCE(SUM(amount), 0) FROM commit_ledger l \
          WHERE l.org_id = s.org_id AND l.commit_id = s.commit_id AND l.segment_idx = s.idx)",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(
        mismatched.n, 0,
        "each balance equals its grants minus its ledgered drawdowns, and none is negative"
    );
    let ledgered: Sum =
        diesel::sql_query("SELECT -SUM(amount) AS total FROM commit_ledger WHERE kind = 'DRAWDOWN'")
            .get_result(&mut conn)
            .unwrap();
    assert_eq!(ledgered.total, Some(drawn), "no allocation was lost or doubled");
    let entries: Count = diesel::sql_query("SELECT count(*) AS n FROM commit_ledger WHERE kind = 'DRAWDOWN'")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(entries.n, draws);
    for id in [a.id, b.id] {
        let balance =
            c.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: id, at: None }).await.unwrap();
        assert_eq!(balance.into_inner().balance.unwrap().amount, "0");
    }
}
