//! `CommitmentService`: thin handlers over the commitment use cases.

pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller, clock};
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{non_empty, parse_id, parsed_timestamp, require_id};
use crate::grpc::customer_ref;
use crate::grpc::promo::mapping::applied;
use crate::grpc::request_id::request_id;
use crate::proto::v1 as pb;
use crate::proto::v1::commitment_service_server::CommitmentService;

pub struct CommitmentApi {
    app: App,
}

impl CommitmentApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

/// The page of a list request scoped to one commitment.
fn page_of(
    id: &str,
    page_size: i32,
    page_token: &str,
    tokens: TokenKey,
) -> Result<(String, PageRequest), Status> {
    let mut v = Violations::default();
    let key = format!("commitment={id}");
    let page = PageRequest::parse(page_size, page_token, &key, tokens, &mut v);
    Ok(v.finish((key, page))?)
}

#[tonic::async_trait]
impl CommitmentService for CommitmentApi {
    async fn create_commitment(
        &self,
        req: Request<pb::CreateCommitmentRequest>,
    ) -> Result<Response<pb::CreateCommitmentResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id_in(&self.app, org, "commitment.", &mut req.commitment).await?;
        customer_ref::by_id_in(&self.app, org, "apply_promotion.", &mut req.apply_promotion).await?;
        let (request, request_problems) = request_id(&req, |r| &mut r.request_id);
        let (new, mut v) = mapping::create(req);
        v.extend(request_problems);
        let (commitment, views) = self.app.create_commitment(org, new, v, request).await?;
        Ok(Response::new(pb::CreateCommitmentResponse {
            commitment: Some(mapping::commitment(commitment)),
            first_applied_promotions: views.into_iter().map(applied).collect(),
        }))
    }

    async fn get_commitment(
        &self,
        req: Request<pb::GetCommitmentRequest>,
    ) -> Result<Response<pb::GetCommitmentResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let mut v = Violations::default();
        let id = parse_id(&mut v, "id", &req.id);
        let placement = mapping::placement(&mut v, &req.subscription_id, &req.promotion_id, &req.device_id);
        let (Some(id), true) = (id, v.is_empty()) else { return Err(v.into()) };
        let c = self.app.get_commitment(org, id, placement).await?;
        Ok(Response::new(pb::GetCommitmentResponse { commitment: Some(mapping::commitment(c)) }))
    }

    async fn list_commitments(
        &self,
        req: Request<pb::ListCommitmentsRequest>,
    ) -> Result<Response<pb::ListCommitmentsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (filter, key, page) = mapping::list(req, tokens)?;
        let page = self.app.list_commitments(org, filter, page, key).await?;
        Ok(Response::new(pb::ListCommitmentsResponse {
            commitments: page.items.into_iter().map(mapping::commitment).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn patch_commitment(
        &self,
        req: Request<pb::PatchCommitmentRequest>,
    ) -> Result<Response<pb::PatchCommitmentResponse>, Status> {
        let who = caller(&req)?;
        let (id, placement, etag, ops) = mapping::patch(req.into_inner())?;
        let c = self.app.patch_commitment(who, id, placement, etag, ops).await?;
        Ok(Response::new(pb::PatchCommitmentResponse { commitment: Some(mapping::commitment(c)) }))
    }

    async fn list_commitment_edits(
        &self,
        req: Request<pb::ListCommitmentEditsRequest>,
    ) -> Result<Response<pb::ListCommitmentEditsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let id = require_id("commitment_id", &req.commitment_id)?;
        let (key, page) = page_of(&req.commitment_id, req.page_size, &req.page_token, tokens)?;
        let page = self.app.list_commitment_edits(org, id, page, key).await?;
        Ok(Response::new(pb::ListCommitmentEditsResponse {
            edits: page.items.into_iter().map(mapping::edit).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn evaluate_commitment(
        &self,
        req: Request<pb::EvaluateCommitmentRequest>,
    ) -> Result<Response<pb::EvaluateCommitmentResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("id", &req.id)?;
        let mut v = Violations::default();
        let as_of = parsed_timestamp(&mut v, "as_of", &req.as_of).into_valid();
        v.finish(())?;
        let e = self.app.evaluate_commitment(org, id, as_of.unwrap_or_else(clock::now)).await?;
        Ok(Response::new(mapping::evaluation(e)))
    }

    async fn terminate_commitment(
        &self,
        req: Request<pb::TerminateCommitmentRequest>,
    ) -> Result<Response<pb::TerminateCommitmentResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let (request, mut v) = request_id(&req, |r| &mut r.request_id);
        let id = parse_id(&mut v, "id", &req.id);
        let placement = mapping::placement(&mut v, &req.subscription_id, &req.promotion_id, &req.device_id);
        crate::domain::text::check_length(&mut v, "reason", &req.reason, 0, 500);
        let (Some(id), true) = (id, v.is_empty()) else { return Err(v.into()) };
        let reason = non_empty(req.reason);
        let (c, penalty) =
            self.app.terminate_commitment(org, id, placement, req.etag, reason, request).await?;
        Ok(Response::new(pb::TerminateCommitmentResponse {
            commitment: Some(mapping::commitment(c)),
            penalty: penalty.map(mapping::compensation),
        }))
    }

    async fn list_compensations(
        &self,
        req: Request<pb::ListCompensationsRequest>,
    ) -> Result<Response<pb::ListCompensationsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let id = require_id("commitment_id", &req.commitment_id)?;
        let (key, page) = page_of(&req.commitment_id, req.page_size, &req.page_token, tokens)?;
        let page = self.app.list_compensations(org, id, page, key).await?;
        Ok(Response::new(pb::ListCompensationsResponse {
            compensations: page.items.into_iter().map(mapping::compensation).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
