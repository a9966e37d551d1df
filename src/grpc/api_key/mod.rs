//! `ApiKeyService`: thin handlers over the key use cases; the auth layer has already
//! checked the caller holds the admin scope.

use tonic::{Request, Response, Status};

use crate::app::api_keys::filters_key;
use crate::app::{App, AppError, Caller};
use crate::domain::api_key::ApiKey;
use crate::domain::ids::ApiKeyId;
use crate::domain::page::PageRequest;
use crate::domain::scope::{KeyRequest, Scope, Scopes};
use crate::domain::validation::Violations;
use crate::grpc::auth::caller;
use crate::grpc::convert::{opt_timestamp, optional_timestamp, require_id, timestamp};
use crate::proto::v1 as pb;
use crate::proto::v1::api_key_service_server::ApiKeyService;

pub struct ApiKeyApi {
    app: App,
}

impl ApiKeyApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

fn scope_to_wire(s: Scope) -> pb::ApiKeyScope {
    match s {
        Scope::Admin => pb::ApiKeyScope::Admin,
        Scope::Write => pb::ApiKeyScope::Write,
        Scope::Usage => pb::ApiKeyScope::Usage,
        Scope::Read => pb::ApiKeyScope::Read,
        Scope::Feed => pb::ApiKeyScope::Feed,
    }
}

fn scope_from_wire(value: i32) -> Option<Scope> {
    Scope::ALL.into_iter().find(|s| scope_to_wire(*s) as i32 == value)
}

/// The requested scopes; an unspecified or unknown one is recorded in `v`.
fn scopes(v: &mut Violations, values: &[i32]) -> Scopes {
    let mut parsed = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match scope_from_wire(*value) {
            Some(scope) => parsed.push(scope),
            None => v.add(format!("api_key.scopes[{i}]"), format!("{value} is not a scope")),
        }
    }
    parsed.into_iter().collect()
}

fn api_key(k: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        name: k.name,
        scopes: k.scopes.iter().map(|s| scope_to_wire(s) as i32).collect(),
        create_time: Some(timestamp(k.created_at)),
        expire_time: opt_timestamp(k.expires_at),
        last_use_time: opt_timestamp(k.last_used_at),
        revoke_time: opt_timestamp(k.revoked_at),
        created_by: k.created_by.map(|id| id.to_string()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl ApiKeyService for ApiKeyApi {
    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = caller(&req)?;
        let k = req.into_inner().api_key.unwrap_or_default();
        let mut v = Violations::default();
        let scopes = scopes(&mut v, &k.scopes);
        let expires_at = optional_timestamp(&mut v, "api_key.expire_time", &k.expire_time);
        let request = KeyRequest { name: k.name, scopes, expires_at };
        let created = self.app.create_api_key_as(caller, request, v).await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(api_key(created.key)),
            key: created.secret,
        }))
    }

    async fn get_api_key(
        &self,
        req: Request<pb::GetApiKeyRequest>,
    ) -> Result<Response<pb::GetApiKeyResponse>, Status> {
        let Caller { org, .. } = caller(&req)?;
        let id: ApiKeyId = require_id("id", &req.get_ref().id)?;
        let key = self.app.get_api_key(org, id).await?;
        Ok(Response::new(pb::GetApiKeyResponse { api_key: Some(api_key(key)) }))
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = req.into_inner();
        let mut v = Violations::default();
        let filters = filters_key(req.show_revoked);
        let page = PageRequest::parse(req.page_size, &req.page_token, filters, tokens, &mut v);
        v.finish(()).map_err(AppError::Invalid)?;
        let page = self.app.list_api_keys(org, page, req.show_revoked).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: page.items.into_iter().map(api_key).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let Caller { org, .. } = caller(&req)?;
        let id: ApiKeyId = require_id("id", &req.get_ref().id)?;
        let key = self.app.revoke_api_key_of(org, id).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse { api_key: Some(api_key(key)) }))
    }
}
