//! `ReservationService`: thin handlers over the reservation use cases.

pub mod mapping;

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller, clock};
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{instant_or_now, require_id};
use crate::grpc::customer_ref;
use crate::proto::v1 as pb;
use crate::proto::v1::reservation_service_server::ReservationService;

pub struct ReservationApi {
    app: App,
}

impl ReservationApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl ReservationService for ReservationApi {
    async fn reserve_usage(
        &self,
        req: Request<pb::ReserveUsageRequest>,
    ) -> Result<Response<pb::ReserveUsageResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let holds = self.app.policy().holds;
        let request = mapping::reserve(req, &holds, clock::now(), &HashMap::new())?;
        let reply = self.app.reserve(org, request).await?;
        Ok(Response::new(mapping::reserved(reply)))
    }

    async fn extend_reservation(
        &self,
        req: Request<pb::ExtendReservationRequest>,
    ) -> Result<Response<pb::ExtendReservationResponse>, Status> {
        let org = caller(&req)?.org;
        let request = mapping::extend(req.into_inner(), &self.app.policy().holds)?;
        let reply = self.app.extend_reservation(org, request).await?;
        Ok(Response::new(mapping::extended(reply)))
    }

    async fn commit_reservation(
        &self,
        req: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::CommitReservationResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let settlement = mapping::settlement(req.into_inner())?;
        let (reservation, outcome) = self.app.commit_reservation(org, settlement).await?;
        Ok(Response::new(pb::CommitReservationResponse {
            reservation: Some(mapping::reservation(reservation)),
            outcome: Some(crate::grpc::usage::mapping::outcome(outcome, &tokens)),
        }))
    }

    async fn release_reservation(
        &self,
        req: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::ReleaseReservationResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("reservation_id", &req.get_ref().reservation_id)?;
        let (reservation, already_settled) = self.app.release_reservation(org, id).await?;
        Ok(Response::new(pb::ReleaseReservationResponse {
            reservation: Some(mapping::reservation(reservation)),
            already_settled,
        }))
    }

    async fn get_reservation(
        &self,
        req: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("reservation_id", &req.get_ref().reservation_id)?;
        let reservation = self.app.get_reservation(org, id).await?;
        Ok(Response::new(pb::GetReservationResponse { reservation: Some(mapping::reservation(reservation)) }))
    }

    async fn list_reservations(
        &self,
        req: Request<pb::ListReservationsRequest>,
    ) -> Result<Response<pb::ListReservationsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let mut v = Violations::default();
        let customer = crate::grpc::convert::parse_id(&mut v, "customer_id", req.customer_id());
        let key = format!("customer={}|open={}", req.customer_id(), req.open_only);
        let page =
            crate::domain::page::PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
        let customer = v.finish(customer)?;
        let Some(customer) = customer else {
            return Err(Violations::single("customer_id", "is required").into());
        };
        let page = self.app.list_reservations(org, customer, req.open_only, (page, key)).await?;
        Ok(Response::new(pb::ListReservationsResponse {
            reservations: page.items.into_iter().map(mapping::reservation).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_customer_balance(
        &self,
        req: Request<pb::GetCustomerBalanceRequest>,
    ) -> Result<Response<pb::GetCustomerBalanceResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let balance = self.app.customer_balance(org, customer, instant_or_now("at", &req.at)?).await?;
        Ok(Response::new(mapping::balance(balance)))
    }
}
