//! CommitmentService: creation (with a credit promotion), listing, JSON Patch with etags
//! and history, evaluation, the background evaluator on two instances, the ending config,
//! termination, and isolation.

use std::sync::Arc;

use billing::proto::v1 as pb;
use billing::proto::v1::commit_service_client::CommitServiceClient;
use billing::proto::v1::commitment_service_client::CommitmentServiceClient;
use chrono::{DateTime, Duration, Months, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use prost_types::value::Kind;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, commitments_client, commits as commits_client, create_commit, event, prepaid, promos, record, ts,
    usage_client, violations,
};
use crate::support::server::{Authed, accepting_old_usage};
use crate::support::{TestServer, bad_fields, expect_code, reason};

pub(crate) fn months_ago(n: u32) -> DateTime<Utc> {
    let now = Utc::now();
    let start = now.checked_sub_months(Months::new(n)).unwrap();
    DateTime::from_timestamp(start.timestamp(), 0).unwrap()
}

pub(crate) fn monthly_spend(
    t: &Tenant,
    amount: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> pb::Commitment {
    pb::Commitment {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        time_range: Some(pb::TimeRange { start_time: ts(from), end_time: ts(to) }),
        customer_obligations: Some(pb::Obligations {
            minimum_spend: vec![pb::MinimumSpend {
                period: pb::ObligationPeriod::Month.into(),
                amount: amount.into(),
            }],
            ..Default::default()
        }),
        violation_policy: Some(pb::ViolationPolicy {
            notify_per_customer_violations: true,
            compensate_on_customer_violation: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) async fn create(
    c: &mut CommitmentServiceClient<Authed>,
    commitment: pb::Commitment,
) -> pb::Commitment {
    c.create_commitment(pb::CreateCommitmentRequest {
        commitment: Some(commitment),
        apply_promotion: None,
        request_id: String::new(),
    })
    .await
    .expect("create commitment")
    .into_inner()
    .commitment
    .unwrap()
}

/// A server, a tenant, a commitments client and a commitment of 100 a month that began
/// yesterday and runs 90 days: what the patch tests start from.
async fn a_running_monthly_commitment()
-> (TestServer, Tenant, CommitmentServiceClient<Authed>, pb::Commitment) {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let created =
        create(&mut c, monthly_spend(&t, "100", now - Duration::days(1), now + Duration::days(90))).await;
    (server, t, c, created)
}

/// The commitment `id` as it stands.
async fn current(
    c: &mut pb::commitment_service_client::CommitmentServiceClient<Authed>,
    id: &str,
) -> pb::Commitment {
    c.get_commitment(pb::GetCommitmentRequest { id: id.to_owned(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap()
}

pub(crate) fn string(s: &str) -> prost_types::Value {
    prost_types::Value { kind: Some(Kind::StringValue(s.into())) }
}

pub(crate) fn op(op: &str, path: &str, value: Option<prost_types::Value>) -> pb::PatchOperation {
    pb::PatchOperation { op: op.into(), path: path.into(), value, ..Default::default() }
}

pub(crate) async fn spend(
    server: &TestServer,
    t: &Tenant,
    id: &str,
    amount: &str,
    at: DateTime<Utc>,
    contract: &str,
) {
    let mut e = event(t, id, "CREED", "1", amount);
    e.timestamp = ts(at);
    e.contract_id = contract.into();
    record(&mut usage_client(server, &t.key).await, e).await.expect("record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_keeps_every_field_and_can_apply_a_credit_promotion() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let promotion = promos(&server, &t.key)
        .await
        .create_credit_promotion(pb::CreateCreditPromotionRequest {
            promotion: Some(pb::CreditPromotion {
                name: "Device credit".into(),
                amount_per_cycle: Some("10".into()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .promotion
        .unwrap();
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let sent = pb::Commitment {
        subscription_id: uuid::Uuid::now_v7().to_string(),
        promotion_id: uuid::Uuid::now_v7().to_string(),
        device_id: uuid::Uuid::now_v7().to_string(),
        product_id: t.vod.clone(),
        account_obligations: Some(pb::Obligations {
            minimum_usage: vec![pb::MinimumUsage {
                period: pb::ObligationPeriod::Term.into(),
                quantity: "12".into(),
                product_id: t.vod.clone(),
            }],
            minimum_term_months: 6,
            ..Default::default()
        }),
        early_termination_penalty: Some(pb::Money { amount: "99.90".into(), credit_type: "EUR".into() }),
        ending_config: Some(pb::EndingConfig {
            plan_id: "plan-basic".into(),
            restart_commitment: true,
            extend_prepaid_card_end_time: ts(now),
        }),
        ..monthly_spend(&t, "100", now, now + Duration::days(365))
    };
    let created = c
        .create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(sent.clone()),
            apply_promotion: Some(pb::AppliedPromotion {
                promotion_id: promotion.id.clone(),
                priority: "0".into(),
                applied_time_range: Some(pb::TimeRange { start_time: ts(now), end_time: None }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let commitment = created.commitment.unwrap();
    assert_eq!(commitment.status, pb::CommitmentStatus::Active as i32);
    let applied = &created.first_applied_promotions[0];
    assert_eq!(
        (applied.commitment_id.as_str(), applied.customer_id()),
        (commitment.id.as_str(), t.customer_id.as_str())
    );
    let got = current(&mut c, &commitment.id).await;
    assert_eq!(got, commitment);
    let stored = pb::Commitment {
        id: String::new(),
        status: 0,
        create_time: None,
        update_time: None,
        etag: String::new(),
        created_by: String::new(),
        updated_by: String::new(),
        customer_obligations: sent.customer_obligations.clone(),
        ..got
    };
    let mut expected = sent;
    expected.ending_config.as_mut().unwrap().extend_prepaid_card_end_time =
        stored.ending_config.as_ref().unwrap().extend_prepaid_card_end_time;
    expected.time_range = stored.time_range;
    expected.early_termination_penalty.as_mut().unwrap().amount = "99.9".into();
    assert_eq!(stored, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parts_and_rule_breaches_are_reported_in_one_answer() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let mut bad = monthly_spend(&t, "0", Utc::now(), Utc::now());
    bad.time_range.as_mut().unwrap().start_time = None;
    bad.customer_obligations
        .as_mut()
        .unwrap()
        .minimum_spend
        .push(pb::MinimumSpend { period: pb::ObligationPeriod::Month.into(), amount: "abc".into() });
    bad.account_obligations = Some(pb::Obligations {
        minimum_spend: vec![pb::MinimumSpend {
            period: pb::ObligationPeriod::Month.into(),
            amount: "1".into(),
        }],
        ..Default::default()
    });
    bad.subscription_id = "not-a-uuid".into();
    bad.product_id = uuid::Uuid::now_v7().to_string();
    let status = expect_code(
        c.create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(bad),
            apply_promotion: None,
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "commitment.customer_obligations.minimum_spend[0].amount",
            "commitment.customer_obligations.minimum_spend[1].amount",
            "commitment.product_id",
            "commitment.subscription_id",
            "commitment.time_range.start_time",
        ],
        "parse problems do not hide rule breaches, and no field is blamed twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_breaches_are_named_and_nothing_is_created() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let mut bad = monthly_spend(&t, "0", now, now - Duration::days(1));
    bad.account_obligations = Some(pb::Obligations {
        minimum_spend: vec![pb::MinimumSpend {
            period: pb::ObligationPeriod::Month.into(),
            amount: "1".into(),
        }],
        ..Default::default()
    });
    bad.product_id = uuid::Uuid::now_v7().to_string();
    let status = expect_code(
        c.create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(bad),
            apply_promotion: None,
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "commitment.time_range.end_time",
            "commitment.product_id",
            "commitment.customer_obligations.minimum_spend[0].amount",
            "commitment.subscription_id"
        ]
    );
    let malformed = pb::Commitment { customer: billing::proto::customer_id("x"), ..Default::default() };
    let status = expect_code(
        c.create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(malformed),
            apply_promotion: None,
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["commitment.customer_id", "commitment.time_range.start_time", "commitment.time_range.end_time"]
    );
    assert!(
        c.list_commitments(pb::ListCommitmentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .commitments
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_customer_subscription_device_promotion_and_status() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let device = uuid::Uuid::now_v7().to_string();
    let a = create(
        &mut c,
        pb::Commitment { device_id: device.clone(), ..monthly_spend(&t, "1", now, now + Duration::days(30)) },
    )
    .await;
    let subscription = uuid::Uuid::now_v7().to_string();
    let promotion = uuid::Uuid::now_v7().to_string();
    let b = create(
        &mut c,
        pb::Commitment {
            subscription_id: subscription.clone(),
            promotion_id: promotion.clone(),
            ..monthly_spend(&t, "1", now, now + Duration::days(30))
        },
    )
    .await;
    c.terminate_commitment(pb::TerminateCommitmentRequest { id: b.id.clone(), ..Default::default() })
        .await
        .unwrap();
    let ids = |r: pb::ListCommitmentsResponse| r.commitments.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let list = |req: pb::ListCommitmentsRequest| {
        let mut c = c.clone();
        async move { ids(c.list_commitments(req).await.unwrap().into_inner()) }
    };
    assert_eq!(
        list(pb::ListCommitmentsRequest { device_id: device, ..Default::default() }).await,
        [a.id.as_str()]
    );
    assert_eq!(
        list(pb::ListCommitmentsRequest { subscription_id: subscription, ..Default::default() }).await,
        [b.id.as_str()]
    );
    assert_eq!(
        list(pb::ListCommitmentsRequest { promotion_id: promotion, ..Default::default() }).await,
        [b.id.as_str()]
    );
    assert_eq!(
        list(pb::ListCommitmentsRequest {
            status: pb::CommitmentStatus::Terminated.into(),
            ..Default::default()
        })
        .await,
        [b.id.as_str()]
    );
    assert_eq!(
        list(pb::ListCommitmentsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            page_size: 1,
            ..Default::default()
        })
        .await,
        [a.id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_apply_atomically_and_are_kept_in_history() {
    let (_server, t, mut c, created) = a_running_monthly_commitment().await;
    let patch = |etag: &str, ops: Vec<pb::PatchOperation>| pb::PatchCommitmentRequest {
        id: created.id.clone(),
        etag: etag.into(),
        operations: ops,
        ..Default::default()
    };

    let ok = c
        .patch_commitment(patch(
            &created.etag,
            vec![
                op("test", "/status", Some(string("ACTIVE"))),
                op("replace", "/customer_obligations/minimum_spend/0/amount", Some(string("150"))),
                op("replace", "/ending_config/plan_id", Some(string("plan-b"))),
            ],
        ))
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(ok.customer_obligations.as_ref().unwrap().minimum_spend[0].amount, "150");
    assert_eq!(ok.ending_config.as_ref().unwrap().plan_id, "plan-b");

    let stale = expect_code(
        c.patch_commitment(patch(&created.etag, vec![op("remove", "/device_id", None)])).await,
        Code::Aborted,
    );
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    let failed_test = c
        .patch_commitment(patch(
            "",
            vec![
                op("replace", "/customer_obligations/minimum_spend/0/amount", Some(string("1"))),
                op("test", "/customer_obligations/minimum_spend/0/amount", Some(string("999"))),
            ],
        ))
        .await;
    let status = expect_code(failed_test, Code::FailedPrecondition);
    assert_eq!(reason(&status), "PATCH_TEST_FAILED");
    let immutable = expect_code(
        c.patch_commitment(patch(
            "",
            vec![
                op("replace", "/device_id", Some(string(&uuid::Uuid::now_v7().to_string()))),
                op("replace", "/customer_id", Some(string(&t.customer_id))),
            ],
        ))
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&immutable), ["operations[1].path"]);
    let outside = expect_code(
        c.patch_commitment(patch("", vec![op("remove", "/nowhere", None)])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&outside), ["operations[0].path"]);
    let breaks_rule = expect_code(
        c.patch_commitment(patch(
            "",
            vec![
                op("replace", "/ending_config/plan_id", Some(string("plan-c"))),
                op("replace", "/customer_obligations/minimum_spend/0/amount", Some(string("-5"))),
            ],
        ))
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&breaks_rule), ["operations[1]"]);

    let now_state = current(&mut c, &created.id).await;
    assert_eq!(now_state, ok, "failed patches changed nothing");
    let edits = c
        .list_commitment_edits(pb::ListCommitmentEditsRequest {
            commitment_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .edits;
    assert_eq!(edits.len(), 1, "only the applied patch is in the history");
    let (key_id, _) = billing::domain::api_key::parse_key(&t.key).unwrap();
    assert_eq!(edits[0].edited_by, key_id.to_string());
    assert_eq!(edits[0].operations.len(), 3);
    assert_eq!(edits[0].operations[1].value, Some(string("150")));
    let kinds: Vec<_> = edits[0].operations.iter().map(|o| (o.op.as_str(), o.operation())).collect();
    assert_eq!(
        kinds,
        [("test", pb::PatchOp::Test), ("replace", pb::PatchOp::Replace), ("replace", pb::PatchOp::Replace)],
        "the history names each operation both ways"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_operation_may_be_named_by_its_enum_instead_of_its_rfc_6902_string() {
    let (_server, _t, mut c, created) = a_running_monthly_commitment().await;
    let by_enum = |operation: pb::PatchOp, op: &str, amount: &str| pb::PatchCommitmentRequest {
        id: created.id.clone(),
        operations: vec![pb::PatchOperation {
            operation: operation.into(),
            op: op.into(),
            path: "/customer_obligations/minimum_spend/0/amount".into(),
            value: Some(string(amount)),
            ..Default::default()
        }],
        ..Default::default()
    };
    let patched = c.patch_commitment(by_enum(pb::PatchOp::Replace, "", "150")).await.expect("the enum alone");
    let obligations = patched.into_inner().commitment.unwrap().customer_obligations.unwrap();
    assert_eq!(obligations.minimum_spend[0].amount, "150");
    c.patch_commitment(by_enum(pb::PatchOp::Replace, "replace", "160")).await.expect("both, alike");
    let disagree = expect_code(
        c.patch_commitment(by_enum(pb::PatchOp::Test, "replace", "1")).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&disagree), ["operations[0].operation"]);
    let mut unknown = by_enum(pb::PatchOp::Unspecified, "", "1");
    unknown.operations[0].operation = 99;
    let unknown = expect_code(c.patch_commitment(unknown).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&unknown), ["operations[0].operation"]);
    let neither = expect_code(
        c.patch_commitment(by_enum(pb::PatchOp::Unspecified, "", "1")).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&neither), ["operations[0].op"]);
    let now_state = current(&mut c, &created.id).await;
    assert_eq!(
        now_state.customer_obligations.unwrap().minimum_spend[0].amount,
        "160",
        "refused patches changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_with_the_same_etag_let_exactly_one_through() {
    let (server, t, mut c, created) = a_running_monthly_commitment().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = commitments_client(&server, &t.key).await;
        let req = pb::PatchCommitmentRequest {
            id: created.id.clone(),
            etag: created.etag.clone(),
            operations: vec![op("replace", "/ending_config/plan_id", Some(string(&format!("plan-{i}"))))],
            ..Default::default()
        };
        tasks.push(tokio::spawn(async move { c.patch_commitment(req).await.map(|r| r.into_inner()) }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::Aborted, "{s:?}"),
        }
    }
    assert_eq!(ok, 1);
    let edits = c
        .list_commitment_edits(pb::ListCommitmentEditsRequest {
            commitment_id: created.id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(edits.into_inner().edits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_compares_recorded_spend_with_each_period() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let start = months_ago(2) - Duration::days(1);
    let created = create(&mut c, monthly_spend(&t, "100", start, start + Duration::days(365))).await;
    spend(&server, &t, "m1", "150", start + Duration::days(3), "").await;
    spend(&server, &t, "m2", "40", start.checked_add_months(Months::new(1)).unwrap() + Duration::days(2), "")
        .await;
    spend(&server, &t, "m3", "30", Utc::now() - Duration::minutes(1), "").await;
    let e = c
        .evaluate_commitment(pb::EvaluateCommitmentRequest { id: created.id.clone(), as_of: None })
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<_> =
        e.periods.iter().map(|p| (p.measured.as_str(), p.shortfall.as_str(), p.outcome)).collect();
    use pb::PeriodOutcome as O;
    assert_eq!(
        outcomes,
        [("150", "0", O::Met as i32), ("40", "60", O::Shortfall as i32), ("30", "70", O::Open as i32)]
    );
    let earlier = c
        .evaluate_commitment(pb::EvaluateCommitmentRequest {
            id: created.id,
            as_of: ts(start + Duration::days(10)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(earlier.periods.len(), 1, "only the periods started by the instant");
    assert_eq!(earlier.periods[0].measured, "150");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(server: &TestServer, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(&mut server.db.connect()).unwrap().n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evaluators_close_each_period_exactly_once() {
    let first = TestServer::start_accepting_old_usage().await;
    let second = TestServer::start_with_policy(Arc::clone(&first.db), accepting_old_usage()).await;
    let t = Tenant::create(&first, "Acme").await;
    let mut c = commitments_client(&first, &t.key).await;
    let start = months_ago(3) - Duration::days(1);
    let created = create(&mut c, monthly_spend(&t, "100", start, start + Duration::days(365))).await;
    spend(&first, &t, "m1", "100", start + Duration::days(1), "").await;

    let (a, b) = tokio::join!(first.app.evaluate_due_commitments(), second.app.evaluate_due_commitments());
    assert_eq!(a.unwrap() + b.unwrap(), 3, "three months ended, each closed once");
    assert_eq!(first.app.evaluate_due_commitments().await.unwrap(), 0);
    assert_eq!(count(&first, "SELECT count(*) AS n FROM commitment_periods"), 3);
    assert_eq!(count(&first, "SELECT count(*) AS n FROM violations WHERE kind = 'COMMITMENT_SHORTFALL'"), 2);
    let got = current(&mut c, &created.id).await;
    assert_eq!(got.status, pb::CommitmentStatus::Violated as i32);
    let compensations = c
        .list_compensations(pb::ListCompensationsRequest { commitment_id: created.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .compensations;
    let amounts: Vec<_> = compensations
        .iter()
        .map(|c| (c.compensation_kind(), c.amount.as_ref().unwrap().amount.as_str()))
        .collect();
    assert_eq!(amounts, [(pb::CompensationKind::Shortfall, "100"), (pb::CompensationKind::Shortfall, "100")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_end_a_met_commitment_is_fulfilled_or_restarts() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let subscription = uuid::Uuid::now_v7().to_string();
    let start = months_ago(2);
    let end = months_ago(1);
    let account = |restart: bool| pb::Commitment {
        subscription_id: subscription.clone(),
        customer_obligations: None,
        account_obligations: Some(pb::Obligations {
            minimum_usage: vec![pb::MinimumUsage {
                period: pb::ObligationPeriod::Term.into(),
                quantity: "2".into(),
                product_id: String::new(),
            }],
            ..Default::default()
        }),
        ending_config: Some(pb::EndingConfig {
            restart_commitment: restart,
            plan_id: "next-plan".into(),
            ..Default::default()
        }),
        ..monthly_spend(&t, "1", start, end)
    };
    let kept = create(&mut c, account(false)).await;
    let renewed = create(&mut c, account(true)).await;
    // One unit under the subscription, one under another contract: only the first counts.
    spend(&server, &t, "in", "1", start + Duration::days(1), &subscription).await;
    spend(&server, &t, "out", "1", start + Duration::days(2), "another-contract").await;
    let e = c
        .evaluate_commitment(pb::EvaluateCommitmentRequest { id: kept.id.clone(), as_of: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.periods[0].measured, "1", "account scope counts usage under the subscription only");

    spend(&server, &t, "in-2", "1", start + Duration::days(3), &subscription).await;
    server.app.evaluate_due_commitments().await.unwrap();
    let kept = c
        .get_commitment(pb::GetCommitmentRequest { id: kept.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(kept.status, pb::CommitmentStatus::Fulfilled as i32);
    assert_eq!(kept.end_time, ts(end));
    let renewed = c
        .get_commitment(pb::GetCommitmentRequest { id: renewed.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(renewed.status, pb::CommitmentStatus::Ended as i32);
    let next = current(&mut c, &renewed.successor_id).await;
    assert_eq!(next.status, pb::CommitmentStatus::Active as i32);
    assert_eq!(next.time_range.unwrap().start_time, ts(end), "the next term starts where this one ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_termination_records_the_penalty_and_a_violation() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let mut early = monthly_spend(&t, "1", now - Duration::days(1), now + Duration::days(365));
    early.customer_obligations.as_mut().unwrap().minimum_term_months = 6;
    early.early_termination_penalty = Some(pb::Money { amount: "250".into(), credit_type: String::new() });
    let early = create(&mut c, early).await;
    let done = c
        .terminate_commitment(pb::TerminateCommitmentRequest {
            id: early.id.clone(),
            etag: early.etag.clone(),
            reason: "moved abroad".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.commitment.as_ref().unwrap().status, pb::CommitmentStatus::Terminated as i32);
    let penalty = done.penalty.as_ref().unwrap();
    assert_eq!(penalty.amount.as_ref().unwrap().amount, "250");
    assert_eq!(penalty.compensation_kind(), pb::CompensationKind::EarlyTermination);
    let feed = crate::support::fixtures::violations(&server, &t.key)
        .await
        .list_violations(pb::ListViolationsRequest {
            kinds: vec![pb::ViolationKind::EarlyTermination.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .violations;
    assert_eq!(feed.len(), 1);
    assert!(feed[0].message.contains("moved abroad"));
    assert_eq!(feed[0].commitment_id, early.id);

    let again = expect_code(
        c.terminate_commitment(pb::TerminateCommitmentRequest { id: early.id.clone(), ..Default::default() })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&again), "COMMITMENT_CLOSED");
    let patch = pb::PatchCommitmentRequest {
        id: early.id,
        etag: String::new(),
        operations: vec![op("remove", "/device_id", None)],
        ..Default::default()
    };
    expect_code(c.patch_commitment(patch).await, Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_commitments_are_not_found() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    let now = Utc::now();
    let theirs = create(
        &mut commitments_client(&server, &a.key).await,
        monthly_spend(&a, "1", now, now + Duration::days(30)),
    )
    .await;
    let mut cb = commitments_client(&server, &b.key).await;
    expect_code(
        cb.get_commitment(pb::GetCommitmentRequest { id: theirs.id.clone(), ..Default::default() }).await,
        Code::NotFound,
    );
    assert!(
        cb.list_commitments(pb::ListCommitmentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .commitments
            .is_empty()
    );
    let patch = pb::PatchCommitmentRequest {
        id: theirs.id.clone(),
        etag: String::new(),
        operations: vec![op("remove", "/device_id", None)],
        ..Default::default()
    };
    expect_code(cb.patch_commitment(patch).await, Code::NotFound);
    expect_code(
        cb.evaluate_commitment(pb::EvaluateCommitmentRequest { id: theirs.id.clone(), as_of: None }).await,
        Code::NotFound,
    );
    expect_code(
        cb.terminate_commitment(pb::TerminateCommitmentRequest {
            id: theirs.id.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
    );
    expect_code(
        cb.list_commitment_edits(pb::ListCommitmentEditsRequest {
            commitment_id: theirs.id.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
    );
    expect_code(
        cb.list_compensations(pb::ListCompensationsRequest {
            commitment_id: theirs.id.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
    );
    let status = expect_code(
        cb.create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(monthly_spend(&a, "1", now, now + Duration::days(30))),
            apply_promotion: None,
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["commitment.customer_id"]);
}

/// A caller that addresses a commitment under its subscription, promotion or device (as
/// the telco API's paths do) reaches it only there: under another one it is NOT_FOUND,
/// like an unknown id, and a patch or termination changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_is_reached_only_under_the_subscription_promotion_and_device_it_belongs_to() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let (sub, promo, device) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let created = create(
        &mut c,
        pb::Commitment {
            subscription_id: sub.clone(),
            promotion_id: promo.clone(),
            device_id: device.clone(),
            ..monthly_spend(&t, "100", now - Duration::days(1), now + Duration::days(90))
        },
    )
    .await;
    let other = uuid::Uuid::now_v7().to_string();

    let get = |subscription_id: &str, promotion_id: &str, device_id: &str| pb::GetCommitmentRequest {
        id: created.id.clone(),
        subscription_id: subscription_id.into(),
        promotion_id: promotion_id.into(),
        device_id: device_id.into(),
    };
    c.get_commitment(get(&sub, &promo, &device)).await.expect("under all three of its own");
    c.get_commitment(get(&sub, "", "")).await.expect("under its subscription alone");
    let (other, sub, promo) = (other.as_str(), sub.as_str(), promo.as_str());
    for (s, p, d) in [(other, "", ""), ("", other, ""), ("", "", other), (sub, promo, other)] {
        let status = expect_code(c.get_commitment(get(s, p, d)).await, Code::NotFound);
        assert_eq!(status.message(), format!("commitment {} not found", created.id), "same as an unknown id");
    }
    let status = expect_code(c.get_commitment(get("sub-1", "", "")).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["subscription_id"]);

    let patch = |subscription_id: &str| pb::PatchCommitmentRequest {
        id: created.id.clone(),
        operations: vec![op("replace", "/ending_config/plan_id", Some(string("gold")))],
        subscription_id: subscription_id.into(),
        ..Default::default()
    };
    expect_code(c.patch_commitment(patch(other)).await, Code::NotFound);
    let terminate = pb::TerminateCommitmentRequest {
        id: created.id.clone(),
        device_id: other.into(),
        ..Default::default()
    };
    expect_code(c.terminate_commitment(terminate).await, Code::NotFound);
    let unchanged = c.get_commitment(get("", "", "")).await.unwrap().into_inner().commitment.unwrap();
    assert_eq!(unchanged.etag, created.etag, "nothing was changed under the wrong placement");
    assert_eq!(unchanged.status, created.status);

    let patched = c.patch_commitment(patch(sub)).await.expect("under its own subscription").into_inner();
    assert_eq!(patched.commitment.unwrap().ending_config.unwrap().plan_id, "gold");
}

async fn access_end(commits: &mut CommitServiceClient<Authed>, id: &str) -> Option<prost_types::Timestamp> {
    let commit = commits
        .get_commit(pb::GetCommitRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .commit
        .unwrap();
    commit.access_schedule.unwrap().schedule_items.last().unwrap().ending_before
}

/// At its end a commitment extends the customer's prepaid access still open then and
/// announces the next plan on the feed, each exactly once with two instances
/// evaluating at the same time (and their background jobs running too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_end_a_commitment_extends_open_prepaid_access_and_announces_the_next_plan_once() {
    let first = TestServer::start_accepting_old_usage().await;
    let second = TestServer::start_with_policy(Arc::clone(&first.db), accepting_old_usage()).await;
    let t = Tenant::create(&first, "Acme").await;
    let mut c = commitments_client(&first, &t.key).await;
    let mut commits = commits_client(&first, &t.key).await;
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let (start, end, card_end) = (months_ago(2), now - Duration::minutes(1), now + Duration::days(30));
    let open = create_commit(&mut commits, prepaid(&t, "50", "1", start, now + Duration::hours(1))).await;
    let over = create_commit(&mut commits, prepaid(&t, "50", "2", start, end - Duration::days(1))).await;
    let postpaid = pb::Commit {
        r#type: pb::CommitType::Postpaid.into(),
        invoice_contract_id: uuid::Uuid::now_v7().to_string(),
        invoice_schedule: Some(pb::InvoiceSchedule {
            schedule_items: vec![pb::InvoiceScheduleItem {
                timestamp: ts(now + Duration::hours(1)),
                amount: Some("50".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..prepaid(&t, "50", "3", start, now + Duration::hours(1))
    };
    let postpaid = create_commit(&mut commits, postpaid).await;
    let commitment = create(
        &mut c,
        pb::Commitment {
            ending_config: Some(pb::EndingConfig {
                plan_id: "gold-2027".into(),
                extend_prepaid_card_end_time: ts(card_end),
                ..Default::default()
            }),
            ..monthly_spend(&t, "1", start, end)
        },
    )
    .await;

    let (a, b) = tokio::join!(first.app.evaluate_due_commitments(), second.app.evaluate_due_commitments());
    a.unwrap();
    b.unwrap();
    first.app.evaluate_due_commitments().await.unwrap();

    assert_eq!(access_end(&mut commits, &open.id).await, ts(card_end), "open at the end: extended");
    assert_eq!(access_end(&mut commits, &over.id).await, ts(end - Duration::days(1)), "ended before: kept");
    assert_eq!(access_end(&mut commits, &postpaid.id).await, ts(now + Duration::hours(1)), "postpaid: kept");
    let notes = commits
        .list_commit_ledger(pb::ListCommitLedgerRequest {
            commit_id: open.id.clone(),
            kind: pb::LedgerEntryKind::AccessExtended.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(notes.len(), 1, "one note: {notes:?}");
    assert_eq!((notes[0].amount.as_str(), notes[0].source_id.as_str()), ("0", commitment.id.as_str()));
    assert_eq!(notes[0].running_balance, "50", "a note moves no money");
    let ended = violations(&first, &t.key)
        .await
        .list_violations(pb::ListViolationsRequest {
            kinds: vec![pb::ViolationKind::CommitmentEnded.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .violations;
    assert_eq!(ended.len(), 1, "one COMMITMENT_ENDED: {ended:?}");
    assert_eq!(
        (ended[0].plan_id.as_str(), ended[0].commitment_id.as_str()),
        ("gold-2027", commitment.id.as_str())
    );
    assert_eq!(ended[0].occur_time, ts(end));
    assert!(
        ended[0].message.contains(&open.id) && !ended[0].message.contains(&over.id),
        "{}",
        ended[0].message
    );
}
