//! Credit types are explicit: ISO 4217 currencies are known, custom types are declared
//! per organization before use, and limits on rated amount judge only amounts in their
//! own currency.

use crate::support::limit_of;
use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use tonic::Code;

use crate::support::fixtures::{Tenant, commits, create_commit, event, prepaid, record, usage_client};
use crate::support::server::{Authed, Key};
use crate::support::{TestServer, bad_fields, expect_code};
use crate::usage::set_limits;

async fn credit_types(
    server: &TestServer,
    key: &str,
) -> pb::credit_type_service_client::CreditTypeServiceClient<Authed> {
    pb::credit_type_service_client::CreditTypeServiceClient::with_interceptor(
        server.channel().await,
        Key::bearer(key),
    )
}

fn declare(code: &str) -> pb::CreateCreditTypeRequest {
    pb::CreateCreditTypeRequest {
        credit_type: Some(pb::CreditType {
            code: code.into(),
            name: "Platform credits".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_credit_type_is_declared_before_use() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut in_credits =
        prepaid(&t, "100", "1", Utc::now() - Duration::days(1), Utc::now() + Duration::days(30));
    in_credits.access_schedule.as_mut().unwrap().credit_type = "credits".into();
    let status = expect_code(
        c.create_commit(pb::CreateCommitRequest {
            commit: Some(in_credits.clone()),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["commit.access_schedule.credit_type"]);
    let mut u = usage_client(&server, &t.key).await;
    let mut e = event(&t, "e-1", "CREED", "1", "5");
    e.credit_type = "CREDITS".into();
    assert_eq!(bad_fields(&record(&mut u, e.clone()).await.unwrap_err()), ["event.credit_type"]);

    let mut types = credit_types(&server, &t.key).await;
    let declared =
        types.create_credit_type(declare("Credits")).await.unwrap().into_inner().credit_type.unwrap();
    assert_eq!(declared.code, "CREDITS", "kept upper-case");
    expect_code(types.create_credit_type(declare("credits")).await, Code::AlreadyExists);
    let status = expect_code(types.create_credit_type(declare("eur")).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["credit_type.code"], "a currency needs no declaration");
    let listed = types.list_credit_types(pb::ListCreditTypesRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.credit_types.iter().map(|t| t.code.as_str()).collect::<Vec<_>>(), ["CREDITS"]);

    create_commit(&mut c, in_credits).await;
    let o = record(&mut u, e).await.unwrap();
    assert_eq!((o.drawdowns.len(), o.overage.as_str()), (1, "0"), "drawn from the CREDITS commit");

    let other = Tenant::create(&server, "Other").await;
    let mut u = usage_client(&server, &other.key).await;
    let mut theirs = event(&other, "e-1", "CREED", "1", "5");
    theirs.credit_type = "CREDITS".into();
    assert_eq!(
        bad_fields(&record(&mut u, theirs).await.unwrap_err()),
        ["event.credit_type"],
        "declared per org"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_rated_amount_judge_only_their_currency() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let eur_daily = pb::AllowanceLimits {
        accumulated_maximum_rated_amount_per_day: Some("100".into()),
        accumulated_maximum_usage_per_day: Some("10".into()),
        currency: "eur".into(),
        ..Default::default()
    };
    set_limits(&server, &t, eur_daily).await;
    let mut u = usage_client(&server, &t.key).await;
    let in_eur = |id: &str, amount: &str| pb::UsageEvent {
        credit_type: "EUR".into(),
        ..event(&t, id, "CREED", "1", amount)
    };
    assert_eq!(record(&mut u, in_eur("a", "80")).await.unwrap().decision, pb::UsageDecision::Allowed as i32);
    // 80 EUR + 80 USD is not 160 against a 100 EUR maximum: the USD event is refused.
    let usd = event(&t, "b", "CREED", "1", "80");
    assert_eq!(bad_fields(&record(&mut u, usd).await.unwrap_err()), ["event.credit_type"]);
    let next = record(&mut u, in_eur("c", "20")).await.unwrap();
    let amount_check =
        next.checks.iter().find(|c| limit_of(&c.limit_ref).2 == pb::LimitMeasure::RatedAmount).unwrap();
    assert_eq!((next.decision, amount_check.used.as_str()), (pb::UsageDecision::Allowed as i32, "100"));

    // With only usage maxima, any currency counts toward them.
    let usage_only =
        pb::AllowanceLimits { accumulated_maximum_usage_per_day: Some("10".into()), ..Default::default() };
    let t2 = Tenant::create(&server, "Beta").await;
    set_limits(&server, &t2, usage_only).await;
    let mut u2 = usage_client(&server, &t2.key).await;
    let jpy = pb::UsageEvent { credit_type: "JPY".into(), ..event(&t2, "y", "CREED", "3", "500") };
    let o = record(&mut u2, jpy).await.unwrap();
    assert_eq!((o.decision, o.checks[0].used.as_str()), (pb::UsageDecision::Allowed as i32, "3"));
}
