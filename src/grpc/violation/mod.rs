//! `ViolationService`: the feed as a server stream, and its history as pages.

pub mod mapping;

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::app::{App, Caller};
use crate::domain::ids::CustomerId;
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::validation::Violations;
use crate::domain::violation::{CursorError, MAX_KIND_FILTERS, StartAt, ViolationFilter, parse_cursor};
use crate::feed::Feed;
use crate::grpc::auth::caller;
use crate::grpc::convert::parsed_id;
use crate::grpc::customer_ref;
use crate::proto::v1 as pb;
use crate::proto::v1::violation_service_server::ViolationService;
use crate::proto::v1::watch_violations_request::Start;

pub struct ViolationApi {
    app: App,
    feed: Feed,
}

impl ViolationApi {
    pub fn new(app: App, feed: Feed) -> Self {
        Self { app, feed }
    }
}

fn filter(v: &mut Violations, customer_id: &str, kinds: &[i32]) -> ViolationFilter {
    let customer_id: Option<CustomerId> = parsed_id(v, "customer_id", customer_id).into_valid();
    let mut parsed = Vec::new();
    if kinds.len() > MAX_KIND_FILTERS {
        v.add("kinds", format!("at most {MAX_KIND_FILTERS} values"));
        return ViolationFilter { customer_id, kinds: parsed };
    }
    for (i, k) in kinds.iter().enumerate() {
        match mapping::kind_from_wire(*k) {
            // A repeated kind filters nothing more: the query gets each once.
            Some(kind) if parsed.contains(&kind) => {}
            Some(kind) => parsed.push(kind),
            None => v.add(format!("kinds[{i}]"), "is not a violation kind"),
        }
    }
    ViolationFilter { customer_id, kinds: parsed }
}

fn cursor(v: &mut Violations, field: &str, c: &str, tokens: &TokenKey) -> i64 {
    parse_cursor(c, tokens).unwrap_or_else(|e| {
        v.add(
            field,
            match e {
                CursorError::NotIssued => "is not a cursor of your organization's feed",
                CursorError::Unsealed => {
                    "is a cursor from before cursors were sealed; start once from_beginning \
                     (violation ids tell the ones already seen)"
                }
            },
        );
        0
    })
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchViolationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ViolationService for ViolationApi {
    type WatchViolationsStream = WatchStream;

    async fn watch_violations(
        &self,
        req: Request<pb::WatchViolationsRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = caller(&req)?;
        let req = customer_ref::resolved(&self.app, caller.org, req.into_inner()).await?;
        let mut v = Violations::default();
        let filter = filter(&mut v, req.customer_id(), &req.kinds);
        let start = match &req.start {
            None | Some(Start::FromNow(_)) => StartAt::Now,
            Some(Start::FromBeginning(_)) => StartAt::Beginning,
            Some(Start::AfterCursor(c)) => StartAt::After(cursor(&mut v, "after_cursor", c, &caller.tokens)),
        };
        v.finish(())?;
        let watch = self.feed.watch(caller, start, filter).await?;
        let tokens = caller.tokens;
        let stream = watch.into_stream().map(move |item| match item {
            Ok(violation) => Ok(pb::WatchViolationsResponse {
                violation: Some(mapping::violation(
                    Some(violation.seq),
                    Some(violation.recorded_at),
                    &violation.violation,
                    &tokens,
                )),
            }),
            Err(why) => Err(Status::from(why)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_violations(
        &self,
        req: Request<pb::ListViolationsRequest>,
    ) -> Result<Response<pb::ListViolationsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let mut v = Violations::default();
        let key = format!("after={}|customer={}|kinds={:?}", req.after_cursor, req.customer_id(), req.kinds);
        let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
        let filter = filter(&mut v, req.customer_id(), &req.kinds);
        let start = match req.after_cursor.as_str() {
            "" => StartAt::Beginning,
            c => StartAt::After(cursor(&mut v, "after_cursor", c, &tokens)),
        };
        v.finish(())?;
        let page = self.app.list_violations(org, filter, start, page, key).await?;
        Ok(Response::new(pb::ListViolationsResponse {
            violations: page
                .items
                .iter()
                .map(|x| mapping::violation(Some(x.seq), Some(x.recorded_at), &x.violation, &tokens))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
