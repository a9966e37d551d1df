//! AllowanceService: replace, get, update with the seed's actions, delete, validation,
//! etags and isolation.

use billing::proto::v1 as pb;
use billing::proto::v1::service_allowance::Selector;
use tonic::Code;

use crate::support::fixtures::{Tenant, allowances, event, record, usage_client};
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

/// Limits allowing `per_transaction` units per event, nothing else.
fn per_transaction(t: &Tenant, per_transaction: &str) -> pb::ReplaceAllowanceLimitsRequest {
    pb::ReplaceAllowanceLimitsRequest {
        limits: Some(pb::AllowanceLimits {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            accumulated_maximum_usage_per_transaction: Some(per_transaction.into()),
            ..Default::default()
        }),
    }
}

/// Records 5 units of CREED on `usage` as event `id`: its decision.
async fn five_units(
    usage: &mut billing::proto::v1::usage_service_client::UsageServiceClient<crate::support::server::Authed>,
    t: &Tenant,
    id: &str,
) -> pb::UsageDecision {
    record(usage, event(t, id, "CREED", "5", "5")).await.expect("record").decision()
}

/// The customer's limits version, as the usage path reads it from the customer's row.
fn limits_version(conn: &mut diesel::PgConnection, customer: &str) -> i64 {
    use billing::db::schema::customers;
    use diesel::prelude::*;
    customers::table
        .filter(customers::id.eq(customer.parse::<uuid::Uuid>().unwrap()))
        .select(customers::limits_version)
        .get_result(conn)
        .unwrap()
}

/// Instance B caches the customer's limits; each change made through instance A (replaced,
/// then deleted) is used by B's very next event, with no wait: B's cached entry is for a
/// version the customer's row no longer names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_changed_through_one_instance_are_used_at_once_by_another_that_cached_them() {
    use billing::proto::v1::UsageDecision::{Allowed, Blocked};

    let a = TestServer::start().await;
    let b = TestServer::start_with_app(std::sync::Arc::clone(&a.db), |app| app).await;
    let t = Tenant::create(&a, "Acme").await;
    let mut on_a = allowances(&a, &t.key).await;
    let mut on_b = usage_client(&b, &t.key).await;
    on_a.replace_allowance_limits(per_transaction(&t, "10")).await.unwrap();
    assert_eq!(five_units(&mut on_b, &t, "first").await, Allowed);
    assert_eq!(b.app.limits_cache().len(), 1, "B keeps what it read under the lock");

    on_a.replace_allowance_limits(per_transaction(&t, "1")).await.unwrap();
    assert_eq!(five_units(&mut on_b, &t, "after-replace").await, Blocked);

    on_a.delete_allowance_limits(pb::DeleteAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        etag: String::new(),
    })
    .await
    .unwrap();
    assert_eq!(five_units(&mut on_b, &t, "after-delete").await, Allowed);
}

/// A cached entry is used without reading the limits: changed behind every instance's
/// back (the version's trigger disabled), B still allows what an instance without the
/// cache blocks; a change made in SQL with the trigger in place moves the version, and B
/// uses it like one made through the API; a truncation, which could not, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_limits_are_used_without_a_read_and_any_writer_moves_their_version() {
    use billing::proto::v1::UsageDecision::{Allowed, Blocked};
    use diesel::connection::SimpleConnection;

    let a = TestServer::start_with_app(std::sync::Arc::new(crate::support::db::TestDb::create()), |app| {
        app.with_limits_cache(0)
    })
    .await;
    let b = TestServer::start_with_app(std::sync::Arc::clone(&a.db), |app| app).await;
    let t = Tenant::create(&a, "Acme").await;
    allowances(&a, &t.key).await.replace_allowance_limits(per_transaction(&t, "10")).await.unwrap();
    let (mut usage_a, mut usage_b) = (usage_client(&a, &t.key).await, usage_client(&b, &t.key).await);
    assert_eq!(five_units(&mut usage_b, &t, "warm").await, Allowed);
    assert!(a.app.limits_cache().is_empty(), "capacity 0 keeps nothing");

    let mut owner = a.db.connect();
    let version = limits_version(&mut owner, &t.customer_id);
    owner
        .batch_execute(
            "BEGIN; ALTER TABLE allowance_limits DISABLE TRIGGER limits_changed;
             UPDATE allowance_limits SET max_usage_per_transaction = 1;
             ALTER TABLE allowance_limits ENABLE TRIGGER limits_changed; COMMIT;",
        )
        .unwrap();
    assert_eq!(five_units(&mut usage_a, &t, "on-a").await, Blocked, "A reads the limits");
    assert_eq!(five_units(&mut usage_b, &t, "on-b").await, Allowed, "B uses its cached limits");

    owner.batch_execute("UPDATE allowance_limits SET max_usage_per_transaction = 2").unwrap();
    assert_eq!(limits_version(&mut owner, &t.customer_id), version + 1);
    assert_eq!(five_units(&mut usage_b, &t, "on-b-after").await, Blocked);

    // A truncation could not move the versions: it is refused, and DELETE moves them.
    let refused = owner.batch_execute("TRUNCATE allowance_limits").unwrap_err().to_string();
    assert!(refused.contains("cannot be truncated"), "{refused}");
    owner.batch_execute("DELETE FROM allowance_limits").unwrap();
    assert_eq!(limits_version(&mut owner, &t.customer_id), version + 2);
    assert_eq!(five_units(&mut usage_b, &t, "on-b-deleted").await, Allowed);
}

/// The migration gives every customer that has limits a version (1) and the others none
/// (0, which the usage path never reads limits for); and a customer's counters written
/// for the usage path (here the version) do not make the writing key its last changer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_version_starts_at_one_for_customers_with_limits_and_names_no_writer() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let without = t.another_customer(&server, "ACR2").await;
    let org = server.org_of(&t.key).await;
    let second = server.key_for(org).await;
    allowances(&server, &second).await.replace_allowance_limits(per_transaction(&t, "10")).await.unwrap();
    let mut conn = server.db.connect();
    assert_eq!(limits_version(&mut conn, &t.customer_id), 1);
    let customer = t.customer(&server).await;
    let key_id = |key: &str| billing::domain::api_key::parse_key(key).unwrap().0.to_string();
    assert_eq!(
        customer.updated_by,
        key_id(&t.key),
        "setting limits with another key is no change of the customer"
    );
    assert_ne!(key_id(&t.key), key_id(&second));

    allowances(&server, &second).await.replace_allowance_limits(per_transaction(&t, "20")).await.unwrap();
    assert_eq!(limits_version(&mut conn, &t.customer_id), 2);
    crate::support::db::rerun_migrations_from(&mut conn, "20261204140000");
    assert_eq!(limits_version(&mut conn, &t.customer_id), 1, "backfilled");
    assert_eq!(limits_version(&mut conn, &without), 0);
}
