//! `AlertService`: balance alerts and what is in alarm now.

use tonic::{Request, Response, Status};

use crate::app::App;
use crate::app::balance_alerts::{AlertStates, LimitAlert};
use crate::domain::allowance::Period;
use crate::domain::balance_alert::{AlertState, BalanceAlert, BalanceAlertDraft, Threshold};
use crate::domain::money::parse_credit_type;
use crate::domain::validation::Parsed;
use crate::grpc::auth::caller;
use crate::grpc::convert::{
    decimal, key_id, opt_timestamp, parsed_decimal, parsed_id, require_id, timestamp,
};
use crate::grpc::customer_ref;
use crate::grpc::limit_ref::limit_ref;
use crate::grpc::request_id::request_id;
use crate::proto::v1 as pb;
use crate::proto::v1::alert_service_server::AlertService;

pub struct AlertApi {
    app: App,
}

impl AlertApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

fn status(s: AlertState) -> pb::AlertStatus {
    match s {
        AlertState::Ok => pb::AlertStatus::Ok,
        AlertState::Alarm => pb::AlertStatus::Alarm,
    }
}

fn alert(a: BalanceAlert) -> pb::BalanceAlert {
    let threshold = match a.threshold {
        Threshold::Absolute(x) => pb::balance_alert::Threshold::ThresholdAmount(decimal(x)),
        Threshold::Percent(x) => pb::balance_alert::Threshold::ThresholdPercent(decimal(x)),
    };
    pb::BalanceAlert {
        id: a.id.to_string(),
        customer_id: a.customer.to_string(),
        credit_type: a.credit_type,
        threshold: Some(threshold),
        status: status(a.state).into(),
        state_change_time: Some(timestamp(a.changed_at)),
        available: decimal(a.available),
        create_time: Some(timestamp(a.created_at)),
        created_by: key_id(a.created_by),
    }
}

#[allow(deprecated)] // the string forms are still sent to clients written before the enums
fn limit_alert(l: LimitAlert) -> pb::LimitAlertState {
    let line = l.line;
    let period = match line.window.kind {
        crate::domain::windows::WindowKind::Day => Period::Day,
        crate::domain::windows::WindowKind::Month => Period::Month,
    };
    let (percent, since) = l.raised.unwrap_or_default();
    pb::LimitAlertState {
        limit_ref: Some(limit_ref(&line.scope, line.measure, period)),
        scope: line.scope,
        measure: line.measure.as_str().to_owned(),
        period: period.as_str().to_owned(),
        window_start: Some(timestamp(line.window.start)),
        window_end: Some(timestamp(line.window.end)),
        used: decimal(line.used),
        maximum: decimal(line.maximum),
        threshold_percent: decimal(percent),
        status: status(if l.raised.is_some() { AlertState::Alarm } else { AlertState::Ok }).into(),
        state_change_time: opt_timestamp(since),
    }
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn create_balance_alert(
        &self,
        req: Request<pb::CreateBalanceAlertRequest>,
    ) -> Result<Response<pb::CreateBalanceAlertResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let (request, mut v) = request_id(&req, |r| &mut r.request_id);
        let customer = match req.customer_id() {
            "" => Parsed::Absent,
            id => parsed_id(&mut v, "customer_id", id),
        };
        let credit_type = parse_credit_type(&mut v, "credit_type", &req.credit_type);
        let (absolute, percent) = match &req.threshold {
            Some(pb::create_balance_alert_request::Threshold::ThresholdAmount(x)) => {
                (parsed_decimal(&mut v, "threshold_amount", x), Parsed::Absent)
            }
            Some(pb::create_balance_alert_request::Threshold::ThresholdPercent(x)) => {
                (Parsed::Absent, parsed_decimal(&mut v, "threshold_percent", x))
            }
            None => (Parsed::Absent, Parsed::Absent),
        };
        let draft = BalanceAlertDraft { customer, credit_type, absolute, percent };
        let created = self.app.create_balance_alert(org, draft, v, request).await?;
        Ok(Response::new(pb::CreateBalanceAlertResponse { alert: Some(alert(created)) }))
    }

    async fn delete_balance_alert(
        &self,
        req: Request<pb::DeleteBalanceAlertRequest>,
    ) -> Result<Response<pb::DeleteBalanceAlertResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("alert_id", &req.get_ref().alert_id)?;
        self.app.delete_balance_alert(org, id).await?;
        Ok(Response::new(pb::DeleteBalanceAlertResponse {}))
    }

    async fn list_alert_states(
        &self,
        req: Request<pb::ListAlertStatesRequest>,
    ) -> Result<Response<pb::ListAlertStatesResponse>, Status> {
        let org = caller(&req)?.org;
        let req = customer_ref::resolved(&self.app, org, req.into_inner()).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let AlertStates { balance, limits } = self.app.alert_states(org, customer).await?;
        Ok(Response::new(pb::ListAlertStatesResponse {
            balance_alerts: balance.into_iter().map(alert).collect(),
            limit_alerts: limits.into_iter().map(limit_alert).collect(),
        }))
    }
}
