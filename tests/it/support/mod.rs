#![allow(dead_code)] // Each test module uses its own part of the shared support.

//! Shared test support: databases, servers, clients, and assertions on gRPC errors.

pub mod db;
pub mod fixtures;
pub mod populate;
pub mod private_pg;
pub mod process;
pub mod server;

use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use db::TestDb;
pub use server::{Key, TestServer};

/// Field paths of the `BadRequest` detail of an INVALID_ARGUMENT status.
/// Which maximum a check, total, alert or violation is about: scope, scope name,
/// measure and period.
pub fn limit_of(
    r: &Option<billing::proto::v1::LimitRef>,
) -> (billing::proto::v1::LimitScope, &str, billing::proto::v1::LimitMeasure, billing::proto::v1::LimitPeriod)
{
    let r = r.as_ref().expect("limit_ref is set");
    (r.scope(), r.scope_name.as_str(), r.measure(), r.period())
}

pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "expected INVALID_ARGUMENT, got {status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// Asserts a call failed with `code`, returning the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got success: {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status: {s:?}");
            s
        }
    }
}

/// Installs a test log subscriber once per process (set RUST_LOG to see logs).
pub fn init_logs() {
    let _ = billing::telemetry::init(billing::telemetry::LogFormat::Pretty, "warn", None);
}

/// Field paths of the `BadRequest` inside a `google.rpc.Status` (a batch item's error).
pub fn rpc_status_fields(s: &tonic_types::pb::Status) -> Vec<String> {
    let status = Status::with_details(
        Code::from_i32(s.code),
        s.message.clone(),
        prost::Message::encode_to_vec(s).into(),
    );
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Waits until `check` holds, asking again every few milliseconds; panics naming `what`
/// if it never does within a limit meant for a stuck system, not a slow one.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < give_up, "never happened: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
