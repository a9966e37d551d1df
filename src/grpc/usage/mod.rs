//! `UsageService`: thin handlers over the usage use cases.

pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::usage_batcher::{BatcherConfig, UsageBatcher};
use crate::app::{App, clock};
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{parsed_timestamp, require_id};
use crate::proto::v1 as pb;
use crate::proto::v1::usage_service_server::UsageService;

pub struct UsageApi {
    app: App,
    batcher: UsageBatcher,
}

impl UsageApi {
    pub fn new(app: App, batching: BatcherConfig) -> Self {
        Self { batcher: UsageBatcher::new(app.clone(), batching), app }
    }
}

#[tonic::async_trait]
impl UsageService for UsageApi {
    async fn record_usage(
        &self,
        req: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let org = caller(&req)?.org;
        let input = mapping::event("event".into(), req.into_inner().event, true, clock::now());
        let outcome = self.batcher.record(org, input).await?;
        Ok(Response::new(pb::RecordUsageResponse { outcome: Some(mapping::outcome(outcome)) }))
    }

    async fn record_usage_batch(
        &self,
        req: Request<pb::RecordUsageBatchRequest>,
    ) -> Result<Response<pb::RecordUsageBatchResponse>, Status> {
        let org = caller(&req)?.org;
        let inputs = mapping::batch(req.into_inner(), clock::now())?;
        let results = self.app.record_usage(org, inputs.into()).await?;
        Ok(Response::new(pb::RecordUsageBatchResponse {
            results: results.into_iter().map(mapping::batch_result).collect(),
        }))
    }

    async fn check_usage(
        &self,
        req: Request<pb::CheckUsageRequest>,
    ) -> Result<Response<pb::CheckUsageResponse>, Status> {
        let org = caller(&req)?.org;
        let input = mapping::event("event".into(), req.into_inner().event, false, clock::now());
        let outcome = self.app.check_usage(org, input).await?;
        Ok(Response::new(pb::CheckUsageResponse { outcome: Some(mapping::outcome(outcome)) }))
    }

    async fn get_allowance_usage(
        &self,
        req: Request<pb::GetAllowanceUsageRequest>,
    ) -> Result<Response<pb::GetAllowanceUsageResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let customer = require_id("customer_id", &req.customer_id)?;
        let mut v = Violations::default();
        let at = parsed_timestamp(&mut v, "at", &req.at).into_valid();
        v.finish(())?;
        let (limits, lines) = self.app.allowance_usage(org, customer, at.unwrap_or_else(clock::now)).await?;
        Ok(Response::new(pb::GetAllowanceUsageResponse {
            limits: Some(crate::grpc::allowance::mapping::limits(limits)),
            usage: lines.into_iter().map(mapping::usage_line).collect(),
        }))
    }
}
