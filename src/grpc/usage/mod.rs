//! `UsageService`: thin handlers over the usage use cases.

mod events;
pub mod mapping;

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::app::usage_batcher::{BatcherConfig, UsageBatcher};
use crate::app::{App, Caller, clock};
use crate::domain::ids::{CustomerId, OrgId};
use crate::grpc::auth::caller;
use crate::grpc::convert::{instant_or_now, require_id};
use crate::grpc::customer_ref;
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

    /// The customers of the external ids `events` name, looked up in one query (none
    /// when every event names its customer by id).
    async fn known_customers<'a>(
        &self,
        org: OrgId,
        events: impl IntoIterator<Item = &'a pb::UsageEvent>,
    ) -> Result<HashMap<String, CustomerId>, Status> {
        Ok(self.app.customer_ids_by_external_id(org, mapping::external_ids(events)).await?)
    }
}

#[tonic::async_trait]
impl UsageService for UsageApi {
    async fn record_usage(
        &self,
        req: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let event = req.into_inner().event;
        let known = self.known_customers(org, event.iter()).await?;
        let input = mapping::event("event".into(), event, true, clock::now(), &known);
        let outcome = self.batcher.record(org, input).await?;
        Ok(Response::new(pb::RecordUsageResponse { outcome: Some(mapping::outcome(outcome, &tokens)) }))
    }

    async fn record_usage_batch(
        &self,
        req: Request<pb::RecordUsageBatchRequest>,
    ) -> Result<Response<pb::RecordUsageBatchResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        mapping::check_batch_size(&req)?;
        let known = self.known_customers(org, &req.events).await?;
        let inputs = mapping::batch(req, clock::now(), &known)?;
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
        let event = req.into_inner().event;
        let known = self.known_customers(org, event.iter()).await?;
        let input = mapping::event("event".into(), event, false, clock::now(), &known);
        let outcome = self.app.check_usage(org, input).await?;
        Ok(Response::new(pb::CheckUsageResponse { outcome: Some(mapping::outcome(outcome, &tokens)) }))
    }

    async fn get_allowance_usage(
        &self,
        req: Request<pb::GetAllowanceUsageRequest>,
    ) -> Result<Response<pb::GetAllowanceUsageResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let (limits, lines) = self.app.allowance_usage(org, customer, instant_or_now("at", &req.at)?).await?;
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
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (filter, key, page) = events::list(req, tokens)?;
        let page = self.app.list_usage_events(org, filter, page, key).await?;
        Ok(Response::new(pb::ListUsageEventsResponse {
            events: page.items.into_iter().map(|e| events::recorded(e, &tokens)).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
