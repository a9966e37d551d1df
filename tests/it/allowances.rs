//! AllowanceService: replace, get, update with the seed's actions, delete, validation,
//! etags and isolation.

use billing::proto::v1 as pb;
use billing::proto::v1::service_allowance::Selector;
use tonic::Code;

use crate::support::fixtures::{Tenant, allowances};
use crate::support::{TestServer, bad_fields, expect_code, reason};

fn seed_limits(t: &Tenant) -> pb::AllowanceLimits {
    pb::AllowanceLimits {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        accumulated_maximum_rated_amount_per_day: Some("100".into()),
        accumulated_maximum_rated_amount_per_month: Some("1000".into()),
        accumulated_maximum_usage_per_day: Some("10".into()),
        accumulated_maximum_usage_per_month: Some("25".into()),
        accumulated_maximum_usage_per_transaction: Some("5".into()),
        percentage_of_allowed_exceeded_usage_limit: Some("30".into()),
        block_services_not_included_in_usage_allowance_limits_settings: true,
        warning_thresholds: vec!["80".into()],
        usage_services_allowance: vec![pb::ServiceAllowance {
            selector: Some(Selector::Service("CREED".into())),
            maximum_rated_amount_per_month: Some("105".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn action(action: pb::AllowanceAction, selector: Selector) -> pb::ServiceAllowanceChange {
    pb::ServiceAllowanceChange {
        action: action.into(),
        allowance: Some(pb::ServiceAllowance { selector: Some(selector), ..Default::default() }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_then_get_returns_every_field() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut a = allowances(&server, &t.key).await;
    let none = a
        .get_allowance_limits(pb::GetAllowanceLimitsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
        })
        .await;
    expect_code(none, Code::NotFound);
    let stored = a
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(seed_limits(&t)) })
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    let got = a
        .get_allowance_limits(pb::GetAllowanceLimitsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!(got, stored);
    let sent = pb::AllowanceLimits { currency: "USD".into(), ..seed_limits(&t) };
    let output_only = pb::AllowanceLimits {
        update_time: None,
        etag: String::new(),
        created_by: String::new(),
        updated_by: String::new(),
        ..got
    };
    assert_eq!(output_only, sent, "USD by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_follows_the_seed_actions_atomically() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut a = allowances(&server, &t.key).await;
    let mut limits = seed_limits(&t);
    limits.usage_services_allowance.push(pb::ServiceAllowance {
        selector: Some(Selector::ServiceType("Usage Services".into())),
        maximum_usage_per_day: Some("7".into()),
        ..Default::default()
    });
    a.replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(limits) }).await.unwrap();

    let mut update_type = action(pb::AllowanceAction::Update, Selector::ServiceType("Usage Services".into()));
    update_type.allowance.as_mut().unwrap().maximum_rated_amount_per_transaction = Some("23".into());
    let req = pb::UpdateAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        accumulated_maximum_rated_amount_per_day: Some("150".into()),
        accumulated_maximum_usage_per_month: Some(String::new()),
        soft: Some(true),
        usage_services_allowance: vec![
            action(pb::AllowanceAction::Add, Selector::ServiceFamily("Channels".into())),
            update_type,
            action(pb::AllowanceAction::Remove, Selector::Service("CREED".into())),
        ],
        ..Default::default()
    };
    let updated = a.update_allowance_limits(req).await.unwrap().into_inner().limits.unwrap();
    assert_eq!(updated.accumulated_maximum_rated_amount_per_day.as_deref(), Some("150"));
    assert_eq!(updated.accumulated_maximum_usage_per_month, None, "\"\" clears a maximum");
    assert_eq!(updated.accumulated_maximum_usage_per_day.as_deref(), Some("10"), "fields not given are kept");
    assert!(updated.soft);
    let selectors: Vec<_> =
        updated.usage_services_allowance.iter().map(|s| s.selector.clone().unwrap()).collect();
    assert_eq!(
        selectors,
        [Selector::ServiceType("Usage Services".into()), Selector::ServiceFamily("Channels".into())]
    );
    let kept = &updated.usage_services_allowance[0];
    assert_eq!(kept.maximum_usage_per_day.as_deref(), Some("7"), "update changes only the fields given");
    assert_eq!(kept.maximum_rated_amount_per_transaction.as_deref(), Some("23"));

    // One bad action fails the whole call and names its index.
    let bad = pb::UpdateAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        accumulated_maximum_rated_amount_per_day: Some("1".into()),
        usage_services_allowance: vec![
            action(pb::AllowanceAction::Remove, Selector::ServiceFamily("Channels".into())),
            action(pb::AllowanceAction::Add, Selector::ServiceType("Usage Services".into())),
            action(pb::AllowanceAction::Remove, Selector::Service("CREED".into())),
        ],
        ..Default::default()
    };
    let status = expect_code(a.update_allowance_limits(bad).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["usage_services_allowance[1]", "usage_services_allowance[2]"]);
    let after = a
        .get_allowance_limits(pb::GetAllowanceLimitsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
        })
        .await
        .unwrap();
    assert_eq!(after.into_inner().limits.unwrap(), updated, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_name_every_field() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut a = allowances(&server, &t.key).await;
    let mut limits = seed_limits(&t);
    limits.accumulated_maximum_rated_amount_per_day = Some("-1".into());
    limits.percentage_of_allowed_exceeded_usage_limit = Some("5000".into());
    limits.warning_thresholds = vec!["0".into(), "abc".into()];
    limits.usage_services_allowance = vec![
        pb::ServiceAllowance { selector: Some(Selector::Service("NOPE".into())), ..Default::default() },
        pb::ServiceAllowance { selector: None, ..Default::default() },
    ];
    let status = expect_code(
        a.replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(limits) }).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "limits.accumulated_maximum_rated_amount_per_day",
            "limits.percentage_of_allowed_exceeded_usage_limit",
            "limits.warning_thresholds[1]",
            "limits.warning_thresholds[0]",
            "limits.usage_services_allowance[1]",
            "limits.usage_services_allowance[0]",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_etag_is_aborted_and_delete_removes() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut a = allowances(&server, &t.key).await;
    let first = a
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(seed_limits(&t)) })
        .await
        .unwrap();
    let first = first.into_inner().limits.unwrap();
    let with_etag = pb::UpdateAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        etag: first.etag.clone(),
        soft: Some(true),
        ..Default::default()
    };
    a.update_allowance_limits(with_etag.clone()).await.unwrap();
    assert_eq!(
        reason(&expect_code(a.update_allowance_limits(with_etag).await, Code::Aborted)),
        "ETAG_MISMATCH"
    );
    let del = pb::DeleteAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        etag: first.etag,
    };
    expect_code(a.delete_allowance_limits(del).await, Code::Aborted);
    a.delete_allowance_limits(pb::DeleteAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        etag: String::new(),
    })
    .await
    .unwrap();
    expect_code(
        a.get_allowance_limits(pb::GetAllowanceLimitsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
        })
        .await,
        Code::NotFound,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_customer_limits_are_not_found() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    allowances(&server, &a.key)
        .await
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(seed_limits(&a)) })
        .await
        .unwrap();
    let mut cb = allowances(&server, &b.key).await;
    expect_code(
        cb.get_allowance_limits(pb::GetAllowanceLimitsRequest {
            customer: billing::proto::customer_id(a.customer_id.clone()),
        })
        .await,
        Code::NotFound,
    );
    expect_code(
        cb.replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(seed_limits(&a)) })
            .await,
        Code::NotFound,
    );
    let upd = pb::UpdateAllowanceLimitsRequest {
        customer: billing::proto::customer_id(a.customer_id.clone()),
        soft: Some(true),
        ..Default::default()
    };
    expect_code(cb.update_allowance_limits(upd).await, Code::NotFound);
    expect_code(
        cb.delete_allowance_limits(pb::DeleteAllowanceLimitsRequest {
            customer: billing::proto::customer_id(a.customer_id.clone()),
            etag: String::new(),
        })
        .await,
        Code::NotFound,
    );
}
