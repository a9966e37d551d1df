//! `CommitService`: thin handlers over the commit and drawdown use cases.

pub mod drawdown;
mod ledger;
pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller, clock};
use crate::domain::page::PageRequest;
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{parsed_timestamp, require_id};
use crate::grpc::customer_ref;
use crate::grpc::request_id::{request_id, with_request_id};
use crate::proto::v1 as pb;
use crate::proto::v1::commit_service_server::CommitService;

pub struct CommitApi {
    app: App,
}

impl CommitApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl CommitService for CommitApi {
    async fn create_commit(
        &self,
        req: Request<pb::CreateCommitRequest>,
    ) -> Result<Response<pb::CreateCommitResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id_in(&self.app, org, "commit.", &mut req.commit).await?;
        let (request, request_problems) = request_id(&req, |r| &mut r.request_id);
        let (draft, mut violations) = mapping::create(req);
        violations.extend(request_problems);
        let commit = self.app.create_commit(org, draft, violations, request).await?;
        Ok(Response::new(pb::CreateCommitResponse { commit: Some(mapping::commit(commit)) }))
    }

    async fn get_commit(
        &self,
        req: Request<pb::GetCommitRequest>,
    ) -> Result<Response<pb::GetCommitResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("id", &req.get_ref().id)?;
        let commit = self.app.get_commit(org, id).await?;
        Ok(Response::new(pb::GetCommitResponse { commit: Some(mapping::commit(commit)) }))
    }

    async fn list_commits(
        &self,
        req: Request<pb::ListCommitsRequest>,
    ) -> Result<Response<pb::ListCommitsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (filter, key, page) = mapping::list(req, tokens)?;
        let page = self.app.list_commits(org, filter, page, key).await?;
        Ok(Response::new(pb::ListCommitsResponse {
            commits: page.items.into_iter().map(mapping::commit).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_commit(
        &self,
        req: Request<pb::UpdateCommitRequest>,
    ) -> Result<Response<pb::UpdateCommitResponse>, Status> {
        let org = caller(&req)?.org;
        let (id, etag, changes, violations) = mapping::update(req.into_inner())?;
        let commit = self.app.update_commit(org, id, etag, changes, violations).await?;
        Ok(Response::new(pb::UpdateCommitResponse { commit: Some(mapping::commit(commit)) }))
    }

    async fn void_commit(
        &self,
        req: Request<pb::VoidCommitRequest>,
    ) -> Result<Response<pb::VoidCommitResponse>, Status> {
        let org = caller(&req)?.org;
        let request = request_id(req.get_ref(), |r| &mut r.request_id);
        let (request, (id, etag, reason)) = with_request_id(request, mapping::void(req.into_inner()))?;
        let commit = self.app.void_commit(org, id, etag, reason, request).await?;
        Ok(Response::new(pb::VoidCommitResponse { commit: Some(mapping::commit(commit)) }))
    }

    async fn get_commit_balance(
        &self,
        req: Request<pb::GetCommitBalanceRequest>,
    ) -> Result<Response<pb::GetCommitBalanceResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("commit_id", &req.commit_id)?;
        let mut v = Violations::default();
        let at = parsed_timestamp(&mut v, "at", &req.at).into_valid();
        v.finish(())?;
        let balance = self.app.commit_balance(org, id, at.unwrap_or_else(clock::now)).await?;
        Ok(Response::new(ledger::balance(balance)))
    }

    async fn list_commit_ledger(
        &self,
        req: Request<pb::ListCommitLedgerRequest>,
    ) -> Result<Response<pb::ListCommitLedgerResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let id = require_id("commit_id", &req.commit_id)?;
        let mut v = Violations::default();
        let key = format!("commit={}|kind={}", req.commit_id, req.kind);
        let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
        let kind =
            crate::grpc::convert::parsed_enum(&mut v, "kind", req.kind, ledger::ledger_kind).into_valid();
        v.finish(())?;
        let page = self.app.commit_ledger(org, id, kind, page, key).await?;
        Ok(Response::new(pb::ListCommitLedgerResponse {
            entries: page
                .items
                .into_iter()
                .map(|(e, running)| ledger::ledger_entry(e, Some(running)))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn adjust_commit_balance(
        &self,
        req: Request<pb::AdjustCommitBalanceRequest>,
    ) -> Result<Response<pb::AdjustCommitBalanceResponse>, Status> {
        let org = caller(&req)?.org;
        let adjustment = ledger::adjustment(req.into_inner())?;
        let (entry, running) = self.app.adjust_commit(org, adjustment).await?;
        Ok(Response::new(pb::AdjustCommitBalanceResponse {
            entry: Some(ledger::ledger_entry(entry, Some(running))),
        }))
    }

    async fn preview_drawdown(
        &self,
        req: Request<pb::PreviewDrawdownRequest>,
    ) -> Result<Response<pb::PreviewDrawdownResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (customer, usage) = drawdown::preview(req, clock::now())?;
        let allocation = self.app.preview_drawdown(org, customer, usage).await?;
        Ok(Response::new(drawdown::preview_response(allocation)))
    }

    async fn apply_drawdown(
        &self,
        req: Request<pb::ApplyDrawdownRequest>,
    ) -> Result<Response<pb::ApplyDrawdownResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (key, customer, usage) = drawdown::apply(req, clock::now())?;
        let outcome = self.app.apply_drawdown(org, key, customer, usage).await?;
        Ok(Response::new(drawdown::apply_response(outcome)))
    }
}
