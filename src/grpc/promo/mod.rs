//! `PromoService`: thin handlers over the promo and credit promotion use cases.

pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller};
use crate::domain::page::PageRequest;
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{non_empty, require_id};
use crate::grpc::customer_ref;
use crate::grpc::request_id::request_id;
use crate::proto::v1 as pb;
use crate::proto::v1::promo_service_server::PromoService;

pub struct PromoApi {
    app: App,
}

impl PromoApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl PromoService for PromoApi {
    async fn create_billing_promo(
        &self,
        req: Request<pb::CreateBillingPromoRequest>,
    ) -> Result<Response<pb::CreateBillingPromoResponse>, Status> {
        let who = caller(&req)?;
        let (request, request_problems) = request_id(req.get_ref(), |r| &mut r.request_id);
        let (draft, mut v) = mapping::create(req.into_inner());
        v.extend(request_problems);
        let promo = self.app.create_billing_promo(who, draft, v, request).await?;
        Ok(Response::new(pb::CreateBillingPromoResponse { promo: Some(mapping::promo(promo)) }))
    }

    async fn get_billing_promo(
        &self,
        req: Request<pb::GetBillingPromoRequest>,
    ) -> Result<Response<pb::GetBillingPromoResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("id", &req.get_ref().id)?;
        let promo = self.app.get_billing_promo(org, id).await?;
        Ok(Response::new(pb::GetBillingPromoResponse { promo: Some(mapping::promo(promo)) }))
    }

    async fn list_billing_promos(
        &self,
        req: Request<pb::ListBillingPromosRequest>,
    ) -> Result<Response<pb::ListBillingPromosResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let (filter, key, page) = mapping::list(req.into_inner(), tokens)?;
        let page = self.app.list_billing_promos(org, filter, page, key).await?;
        Ok(Response::new(pb::ListBillingPromosResponse {
            promos: page.items.into_iter().map(mapping::promo).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_billing_promo(
        &self,
        req: Request<pb::UpdateBillingPromoRequest>,
    ) -> Result<Response<pb::UpdateBillingPromoResponse>, Status> {
        let org = caller(&req)?.org;
        let (id, etag, changes, v) = mapping::update(req.into_inner())?;
        let promo = self.app.update_billing_promo(org, id, etag, changes, v).await?;
        Ok(Response::new(pb::UpdateBillingPromoResponse { promo: Some(mapping::promo(promo)) }))
    }

    async fn delete_billing_promo(
        &self,
        req: Request<pb::DeleteBillingPromoRequest>,
    ) -> Result<Response<pb::DeleteBillingPromoResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("id", &req.id)?;
        self.app.delete_billing_promo(org, id, req.etag).await?;
        Ok(Response::new(pb::DeleteBillingPromoResponse {}))
    }

    async fn evaluate_basket(
        &self,
        req: Request<pb::EvaluateBasketRequest>,
    ) -> Result<Response<pb::EvaluateBasketResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let basket = mapping::basket(req)?;
        let evaluation = self.app.evaluate_basket(org, basket).await?;
        Ok(Response::new(mapping::evaluation(evaluation)))
    }

    async fn list_rewards(
        &self,
        req: Request<pb::ListRewardsRequest>,
    ) -> Result<Response<pb::ListRewardsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let mut v = Violations::default();
        let key = format!("customer={}|available={}", req.customer_id(), req.available_only);
        let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
        v.finish(())?;
        let page = self.app.list_rewards(org, customer, req.available_only, page, key).await?;
        Ok(Response::new(pb::ListRewardsResponse {
            rewards: page.items.into_iter().map(mapping::reward).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn redeem_reward(
        &self,
        req: Request<pb::RedeemRewardRequest>,
    ) -> Result<Response<pb::RedeemRewardResponse>, Status> {
        let org = caller(&req)?.org;
        let (reward, units, request_id) = mapping::redeem(req.into_inner())?;
        let reward = self.app.redeem_reward(org, reward, units, request_id).await?;
        Ok(Response::new(pb::RedeemRewardResponse { reward: Some(mapping::reward(reward)) }))
    }

    async fn create_credit_promotion(
        &self,
        req: Request<pb::CreateCreditPromotionRequest>,
    ) -> Result<Response<pb::CreateCreditPromotionResponse>, Status> {
        let org = caller(&req)?.org;
        let (request, request_problems) = request_id(req.get_ref(), |r| &mut r.request_id);
        let (draft, mut v) = mapping::credit_promotion(req.into_inner());
        v.extend(request_problems);
        let p = self.app.create_credit_promotion(org, draft, v, request).await?;
        Ok(Response::new(pb::CreateCreditPromotionResponse {
            promotion: Some(mapping::credit_promotion_to_wire(p)),
        }))
    }

    async fn list_credit_promotions(
        &self,
        req: Request<pb::ListCreditPromotionsRequest>,
    ) -> Result<Response<pb::ListCreditPromotionsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let mut v = Violations::default();
        let page = PageRequest::parse(req.page_size, &req.page_token, "", tokens, &mut v);
        v.finish(())?;
        let page = self.app.list_credit_promotions(org, page, String::new()).await?;
        Ok(Response::new(pb::ListCreditPromotionsResponse {
            promotions: page.items.into_iter().map(mapping::credit_promotion_to_wire).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn apply_promotion(
        &self,
        req: Request<pb::ApplyPromotionRequest>,
    ) -> Result<Response<pb::ApplyPromotionResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id_in(&self.app, org, "applied.", &mut req.applied).await?;
        let (request, mut v) = request_id(&req, |r| &mut r.request_id);
        let applied = req.applied.unwrap_or_default();
        let draft = v.nested("applied", |v| mapping::application(v, &applied));
        let view = self.app.apply_promotion(org, draft, v, request).await?;
        Ok(Response::new(pb::ApplyPromotionResponse { applied: Some(mapping::applied(view)) }))
    }

    async fn list_applied_promotions(
        &self,
        req: Request<pb::ListAppliedPromotionsRequest>,
    ) -> Result<Response<pb::ListAppliedPromotionsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let mut v = Violations::default();
        let key = format!("customer={}|removed={}", req.customer_id(), req.include_removed);
        let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
        v.finish(())?;
        let page = self.app.list_applied_promotions(org, customer, req.include_removed, page, key).await?;
        Ok(Response::new(pb::ListAppliedPromotionsResponse {
            applied: page.items.into_iter().map(mapping::applied).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn remove_applied_promotion(
        &self,
        req: Request<pb::RemoveAppliedPromotionRequest>,
    ) -> Result<Response<pb::RemoveAppliedPromotionResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("id", &req.id)?;
        let (request, mut v) = request_id(&req, |r| &mut r.request_id);
        crate::domain::text::check_length(&mut v, "removal_context", &req.removal_context, 0, 500);
        v.finish(())?;
        let context = non_empty(req.removal_context);
        let view = self.app.remove_applied_promotion(org, id, context, request).await?;
        Ok(Response::new(pb::RemoveAppliedPromotionResponse { applied: Some(mapping::applied(view)) }))
    }
}
