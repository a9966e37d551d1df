//! `UsageService`: thin handlers over the usage use cases.

mod events;
pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::usage_batcher::{BatcherConfig, UsageBatcher};
use crate::app::{App, Caller, clock};
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
        let Caller { org, tokens, .. } = caller(&req)?;
        let input = mapping::event("event".into(), req.into_inner().event, true, clock::now());
        let outcome = self.batcher.record(org, input).await?;
        Ok(Response::new(pb::RecordUsageResponse { outcome: Some(mapping::outcome(outcome, &tokens)) }))
    }

    async fn record_usage_batch(
        &self,
        req: Request<pb::RecordUsageBatchRequest>,
    ) -> Result<Response<pb::RecordUsageBatchResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let inputs = mapping::batch(req.into_inner(), clock::now())?;
        let results = self.app.record_usage_batch(org, inputs.into()).await?;
        Ok(Response::new(pb::RecordUsageBatchResponse {
            results: results.into_iter().map(|r| mapping::batch_result(r, &tokens)).collect(),
        }))
    }

    async fn check_usage(
        &self,
        req: Request<pb::CheckUsageRequest>,
    ) -> Result<Response<pb::CheckUsageResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let input = mapping::event("event".into(), req.into_inner().event, false, clock::now());
        let outcome = self.app.check_usage(org, input).await?;
        Ok(Response::new(pb::CheckUsageResponse { outcome: Some(mapping::outcome(outcome, &tokens)) }))
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

    async fn void_usage_event(
        &self,
        req: Request<pb::VoidUsageEventRequest>,
    ) -> Result<Response<pb::VoidUsageEventResponse>, Status> {
        let caller = caller(&req)?;
        let (event_id, reason) = events::void(req.into_inner())?;
        let (event, already_voided) = self.app.void_usage_event(caller, event_id, reason).await?;
        let event = events::recorded(event, &caller.tokens);
        Ok(Response::new(pb::VoidUsageEventResponse { event: Some(event), already_voided }))
    }

    async fn list_usage_events(
        &self,
        req: Request<pb::ListUsageEventsRequest>,
    ) -> Result<Response<pb::ListUsageEventsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let (filter, key, page) = events::list(req.into_inner(), tokens)?;
        let page = self.app.list_usage_events(org, filter, page, key).await?;
        Ok(Response::new(pb::ListUsageEventsResponse {
            events: page.items.into_iter().map(|e| events::recorded(e, &tokens)).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
