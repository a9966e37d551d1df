//! Authentication: a tower layer that resolves `authorization: Bearer <key>` to the
//! caller's organization before any service runs, refuses a call the key's scopes do
//! not allow (`grpc::scopes`), and puts the [`Caller`] in the request extensions.
//! Health and reflection are public, so load balancers and grpcurl can use them
//! without a key.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::scopes::required_scope;
use super::status::unauthenticated;
use crate::app::{App, AppError, Caller};
use crate::domain::scope::Scope;

/// Path prefixes callable without a key.
const PUBLIC_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

fn is_public(path: &str) -> bool {
    PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The key from `authorization: Bearer <key>`; `None` when absent or malformed.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// The authenticated caller of a request that passed [`AuthLayer`].
pub fn caller<T>(req: &tonic::Request<T>) -> Result<Caller, Status> {
    req.extensions().get::<Caller>().copied().ok_or_else(unauthenticated)
}

/// Layer that authenticates every non-public request.
#[derive(Clone)]
pub struct AuthLayer {
    app: App,
}

impl AuthLayer {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, app: self.app.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    app: App,
}

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready service for this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.clone();
        Box::pin(async move {
            if is_public(req.uri().path()) {
                return inner.call(req).await;
            }
            let Some(key) = bearer_key(req.headers()).map(str::to_owned) else {
                return Ok(unauthenticated().into_http());
            };
            let caller = match app.authenticate(&key).await {
                Ok(caller) => caller,
                Err(e) => return Ok(Status::from(e).into_http()),
            };
            tracing::Span::current().record("org", tracing::field::display(caller.org));
            // A method missing from the table is closed to all but admin keys.
            let needed = required_scope(req.uri().path()).unwrap_or(Scope::Admin);
            if !caller.scopes.contains(needed) {
                let message = format!("this call needs the {needed} scope, which the API key does not hold");
                return Ok(Status::from(AppError::missing_scope(needed, message)).into_http());
            }
            req.extensions_mut().insert(caller);
            // What the call writes records the key it was made with.
            crate::db::acting_key::acting_as(caller.key, inner.call(req)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_key(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_key(&headers("bearer abc")), Some("abc"));
    }

    #[test]
    fn other_schemes_and_bare_keys_are_refused() {
        assert_eq!(bearer_key(&headers("Basic abc")), None);
        assert_eq!(bearer_key(&headers("abc")), None);
        assert_eq!(bearer_key(&HeaderMap::new()), None);
    }

    #[test]
    fn only_health_and_reflection_are_public() {
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        assert!(!is_public("/billing.commitments.v1.CustomerService/GetCustomer"));
    }
}
