//! `CreditTypeService`: thin handlers over the credit type use cases.

use tonic::{Request, Response, Status};

use crate::app::{App, Caller};
use crate::domain::money::parse_credit_type;
use crate::domain::page::PageRequest;
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::timestamp;
use crate::grpc::request_id::request_id;
use crate::proto::v1 as pb;
use crate::proto::v1::credit_type_service_server::CreditTypeService;

pub struct CreditTypeApi {
    app: App,
}

impl CreditTypeApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

fn credit_type(t: crate::domain::credit_type::CreditType) -> pb::CreditType {
    pb::CreditType {
        code: t.code,
        name: t.name,
        create_time: Some(timestamp(t.created_at)),
        created_by: t.created_by.map(|k| k.to_string()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl CreditTypeService for CreditTypeApi {
    async fn create_credit_type(
        &self,
        req: Request<pb::CreateCreditTypeRequest>,
    ) -> Result<Response<pb::CreateCreditTypeResponse>, Status> {
        let caller = caller(&req)?;
        let (request, mut v) = request_id(req.get_ref(), |r| &mut r.request_id);
        let t = req.into_inner().credit_type.unwrap_or_default();
        if t.code.is_empty() {
            v.add("credit_type.code", "is required");
        }
        let code = parse_credit_type(&mut v, "credit_type.code", &t.code);
        let created = self.app.create_credit_type(caller, code, t.name, v, request).await?;
        Ok(Response::new(pb::CreateCreditTypeResponse { credit_type: Some(credit_type(created)) }))
    }

    async fn list_credit_types(
        &self,
        req: Request<pb::ListCreditTypesRequest>,
    ) -> Result<Response<pb::ListCreditTypesResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let mut v = Violations::default();
        let page = PageRequest::parse(req.page_size, &req.page_token, "", tokens, &mut v);
        v.finish(()).map_err(crate::app::AppError::Invalid)?;
        let page = self.app.list_credit_types(org, page, String::new()).await?;
        Ok(Response::new(pb::ListCreditTypesResponse {
            credit_types: page.items.into_iter().map(credit_type).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
