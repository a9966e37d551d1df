//! Every write that takes an etag refuses a stale one (ABORTED), and every write aimed at
//! another organization's resource is NOT_FOUND; either way the owner's data, read back,
//! is unchanged.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use tonic::Code;

use crate::commitments::{create, monthly_spend};
use crate::support::fixtures::{
    Tenant, allowances, commitments_client, commits, create_commit, prepaid, promos,
};
use crate::support::{TestServer, expect_code, reason};
use crate::usage::{daily_amount, set_limits};

/// Two tenants; `owner` holds one commit, commitment, promo and limits.
struct Two {
    server: TestServer,
    owner: Tenant,
    intruder: Tenant,
    commit: pb::Commit,
    commitment: pb::Commitment,
    promo: pb::BillingPromo,
}

async fn two() -> Two {
    let server = TestServer::start().await;
    let owner = Tenant::create(&server, "Owner").await;
    let intruder = Tenant::create(&server, "Intruder").await;
    let now = Utc::now();
    let commit = create_commit(
        &mut commits(&server, &owner.key).await,
        prepaid(&owner, "100", "1", now - Duration::days(1), now + Duration::days(30)),
    )
    .await;
    let commitment = create(
        &mut commitments_client(&server, &owner.key).await,
        monthly_spend(&owner, "1", now, now + Duration::days(30)),
    )
    .await;
    let promo = promos(&server, &owner.key)
        .await
        .create_billing_promo(pb::CreateBillingPromoRequest {
            promo: Some(pb::BillingPromo {
                r#type: pb::BillingPromoType::Rewards.into(),
                product_type: pb::ProductKind::Service.into(),
                product: owner.vod.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .promo
        .unwrap();
    set_limits(&server, &owner, daily_amount("100", "0")).await;
    Two { server, owner, intruder, commit, commitment, promo }
}

impl Two {
    /// The owner's resources as they are now.
    async fn snapshot(&self) -> (pb::Commit, pb::Commitment, pb::BillingPromo, pb::AllowanceLimits) {
        let key = &self.owner.key;
        let commit = commits(&self.server, key)
            .await
            .get_commit(pb::GetCommitRequest { id: self.commit.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .commit
            .unwrap();
        let commitment = commitments_client(&self.server, key)
            .await
            .get_commitment(pb::GetCommitmentRequest { id: self.commitment.id.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .commitment
            .unwrap();
        let promo = promos(&self.server, key)
            .await
            .get_billing_promo(pb::GetBillingPromoRequest { id: self.promo.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .promo
            .unwrap();
        let limits = allowances(&self.server, key)
            .await
            .get_allowance_limits(pb::GetAllowanceLimitsRequest {
                customer: billing::proto::customer_id(self.owner.customer_id.clone()),
            })
            .await
            .unwrap()
            .into_inner()
            .limits
            .unwrap();
        (commit, commitment, promo, limits)
    }
}

/// Each guarded write, sent with `key` and `etag`.
async fn guarded_writes(t: &Two, key: &str, etag: &str) -> Vec<(&'static str, tonic::Status)> {
    let s = &t.server;
    let mut out = Vec::new();
    let void = pb::VoidCommitRequest {
        id: t.commit.id.clone(),
        etag: etag.into(),
        reason: "x".into(),
        request_id: String::new(),
    };
    out.push(("VoidCommit", commits(s, key).await.void_commit(void).await.unwrap_err()));
    let terminate = pb::TerminateCommitmentRequest {
        id: t.commitment.id.clone(),
        etag: etag.into(),
        reason: "x".into(),
        ..Default::default()
    };
    out.push((
        "TerminateCommitment",
        commitments_client(s, key).await.terminate_commitment(terminate).await.unwrap_err(),
    ));
    let delete = pb::DeleteBillingPromoRequest { id: t.promo.id.clone(), etag: etag.into() };
    out.push(("DeleteBillingPromo", promos(s, key).await.delete_billing_promo(delete).await.unwrap_err()));
    let replace = pb::ReplaceAllowanceLimitsRequest {
        limits: Some(pb::AllowanceLimits {
            customer: billing::proto::customer_id(t.owner.customer_id.clone()),
            etag: etag.into(),
            ..daily_amount("1", "0")
        }),
    };
    out.push((
        "ReplaceAllowanceLimits",
        allowances(s, key).await.replace_allowance_limits(replace).await.unwrap_err(),
    ));
    let delete = pb::DeleteAllowanceLimitsRequest {
        customer: billing::proto::customer_id(t.owner.customer_id.clone()),
        etag: etag.into(),
    };
    out.push((
        "DeleteAllowanceLimits",
        allowances(s, key).await.delete_allowance_limits(delete).await.unwrap_err(),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_etag_is_aborted_on_every_guarded_write_and_changes_nothing() {
    let t = two().await;
    let before = t.snapshot().await;
    // An etag no resource has: every resource's current one differs.
    for (call, status) in guarded_writes(&t, &t.owner.key, "\"999\"").await {
        assert_eq!(status.code(), Code::Aborted, "{call}: {status:?}");
        assert_eq!(reason(&status), "ETAG_MISMATCH", "{call}");
    }
    assert_eq!(t.snapshot().await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_writes_are_not_found_and_change_nothing() {
    let t = two().await;
    let before = t.snapshot().await;
    for (call, status) in guarded_writes(&t, &t.intruder.key, "").await {
        assert_eq!(status.code(), Code::NotFound, "{call}: {status:?}");
    }
    let adjust = pb::AdjustCommitBalanceRequest {
        commit_id: t.commit.id.clone(),
        segment_index: 0,
        amount: "-50".into(),
        reason: "theft".into(),
        request_id: String::new(),
    };
    expect_code(
        commits(&t.server, &t.intruder.key).await.adjust_commit_balance(adjust).await,
        Code::NotFound,
    );
    assert_eq!(t.snapshot().await, before, "the owner's data is untouched");
}
