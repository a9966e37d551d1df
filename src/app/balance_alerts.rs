//! Balance alerts in transactions. Every use case that changes what a customer can draw
//! (usage, reservations, drawdowns, grants, adjustments, voids, promotions, expiries)
//! calls [`settle_alerts`] before it commits, so an alert's state always matches the
//! balance it watches and each crossing is written once: the alert rows are locked while
//! they are judged, so two transactions cannot both announce the same crossing.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::drawdowns::Balances;
use super::request_ids::{Operation, RequestId, remember, replay_made};
use super::{App, AppError, clock};
use crate::db::{self, Conn, DbError, acting_key};
use crate::domain::balance_alert::{
    AlertState, BalanceAlert, BalanceAlertDraft, Standing, transition, validate_alert,
};
use crate::domain::commit::timeline::LateUsageGrace;
use crate::domain::ids::{BalanceAlertId, CustomerId, OrgId};
use crate::domain::limits::AlertKey;
use crate::domain::limits::UsageLine;
use crate::domain::validation::Violations;
use crate::domain::violation::NewViolation;
use crate::domain::windows::WindowKind;

/// Most balance alerts one customer may have.
pub const MAX_ALERTS_PER_CUSTOMER: usize = 100;

/// What each customer can draw now, per credit type.
fn standings(
    conn: &mut Conn,
    org: OrgId,
    customers: impl IntoIterator<Item = CustomerId>,
    (now, grace): (DateTime<Utc>, LateUsageGrace),
) -> Result<HashMap<CustomerId, HashMap<String, Standing>>, AppError> {
    let mut out = HashMap::new();
    for customer in customers {
        let (balances, _) = Balances::load_holding(conn, org, customer, now, (now, grace), false)?;
        out.insert(customer, balances.standings(now));
    }
    Ok(out)
}

/// Judges `alerts` against what their customers can draw now; moves those whose state
/// changes (stored and in `alerts`) and returns the violations announcing it.
fn judge(
    conn: &mut Conn,
    org: OrgId,
    alerts: &mut [BalanceAlert],
    (now, grace): (DateTime<Utc>, LateUsageGrace),
) -> Result<Vec<NewViolation>, AppError> {
    let customers: BTreeSet<CustomerId> = alerts.iter().map(|a| a.customer).collect();
    let standings = standings(conn, org, customers, (now, grace))?;
    let mut out = Vec::new();
    for a in alerts.iter_mut() {
        let standing =
            standings.get(&a.customer).and_then(|s| s.get(&a.credit_type)).copied().unwrap_or_default();
        if let Some((state, violation)) = transition(a, standing, now, uuid::Uuid::now_v7()) {
            db::balance_alerts::set_state(conn, org, a.id, (state, now, standing.available))?;
            (a.state, a.changed_at, a.available) = (state, now, standing.available);
            out.push(violation);
        }
    }
    Ok(out)
}

/// Re-judges the balance alerts of `customers` after their balances changed in this
/// transaction, moving those that crossed; the violations to write. It locks the alert
/// rows: call it before the transaction's own violations are appended (the feed's
/// sequence lock comes last in every transaction, or two could wait on each other).
pub(super) fn crossed_alerts(
    conn: &mut Conn,
    org: OrgId,
    customers: &[CustomerId],
    now: (DateTime<Utc>, LateUsageGrace),
) -> Result<Vec<NewViolation>, AppError> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut alerts = db::balance_alerts::for_customers(conn, org, customers, true)?;
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    judge(conn, org, &mut alerts, now)
}

/// [`crossed_alerts`], written to the feed: for transactions that write no other
/// violation after it.
pub(super) fn settle_alerts(
    conn: &mut Conn,
    org: OrgId,
    customers: &[CustomerId],
    now: (DateTime<Utc>, LateUsageGrace),
) -> Result<(), AppError> {
    let violations = crossed_alerts(conn, org, customers, now)?;
    db::violations::append(conn, org, &violations, now.0)?;
    Ok(())
}

/// A customer's alert states now: its balance alerts, and its limits' warnings in the
/// windows containing now (with the highest threshold crossed and when).
#[derive(Clone, Debug)]
pub struct AlertStates {
    pub balance: Vec<BalanceAlert>,
    pub limits: Vec<LimitAlert>,
}

/// One daily or monthly maximum with warning thresholds, and its state now.
#[derive(Clone, Debug)]
pub struct LimitAlert {
    pub line: UsageLine,
    /// The highest threshold crossed in the window, and when (if known).
    pub raised: Option<(rust_decimal::Decimal, Option<DateTime<Utc>>)>,
}

/// One balance alert.
fn alert(conn: &mut Conn, org: OrgId, id: BalanceAlertId) -> Result<Option<BalanceAlert>, DbError> {
    let Some(customer) = db::balance_alerts::customer_of(conn, org, id)? else { return Ok(None) };
    Ok(db::balance_alerts::for_customers(conn, org, &[customer], false)?.into_iter().find(|a| a.id == id))
}

impl App {
    /// Adds a balance alert, judged at once; `v` holds what the wire could not parse
    /// (reported with the rules' problems, each field once).
    /// With a request id, a retry gets the alert the first call made.
    pub async fn create_balance_alert(
        &self,
        org: OrgId,
        draft: BalanceAlertDraft,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<BalanceAlert, AppError> {
        const CREATE: Operation = Operation { name: "CreateBalanceAlert", resource: "balance alert" };
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) = replay_made(conn, org, CREATE, request.as_ref(), BalanceAlertId, alert)? {
                    return Ok(made);
                }
                let mut v = v.clone();
                let mut rules = Violations::default();
                let valid = validate_alert(&draft, &mut rules);
                v.extend_unreported(rules);
                let named = [("credit_type", draft.credit_type.as_str())];
                super::credit_types::check_declared(conn, org, &named, &mut v)?;
                let (customer, threshold) = match valid {
                    Some(ok) if v.is_empty() => ok,
                    _ => return Err(AppError::Invalid(v)),
                };
                if !db::customers::lock(conn, org, customer)? {
                    return Err(AppError::not_found("customer", customer));
                }
                let existing = db::balance_alerts::for_customers(conn, org, &[customer], false)?;
                if existing.len() >= MAX_ALERTS_PER_CUSTOMER {
                    return Err(AppError::ResourceExhausted(format!(
                        "customer {customer} already has {MAX_ALERTS_PER_CUSTOMER} balance alerts"
                    )));
                }
                let now = clock::now();
                let mut alert = BalanceAlert {
                    id: BalanceAlertId::generate(),
                    customer,
                    credit_type: draft.credit_type.clone(),
                    threshold,
                    state: AlertState::Ok,
                    changed_at: now,
                    available: rust_decimal::Decimal::ZERO,
                    created_at: now,
                    created_by: acting,
                };
                db::balance_alerts::insert(conn, org, &alert)?;
                db::customers::count_alerts(conn, org, customer, 1)?;
                // Judged at once: an alert made below its threshold starts in alarm.
                let violations = judge(conn, org, std::slice::from_mut(&mut alert), (now, grace))?;
                db::violations::append(conn, org, &violations, now)?;
                remember(conn, org, CREATE, request.as_ref(), alert.id)?;
                Ok(alert)
            })
            .await
    }

    pub async fn delete_balance_alert(&self, org: OrgId, id: BalanceAlertId) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let missing = || AppError::not_found("balance alert", id);
                let customer = db::balance_alerts::customer_of(conn, org, id)?.ok_or_else(missing)?;
                // Under the customer's lock, as the usage path reads the count.
                db::customers::lock(conn, org, customer)?;
                if !db::balance_alerts::delete(conn, org, id)? {
                    return Err(missing());
                }
                db::customers::count_alerts(conn, org, customer, -1)?;
                Ok(())
            })
            .await
    }

    pub async fn alert_states(&self, org: OrgId, customer: CustomerId) -> Result<AlertStates, AppError> {
        let now = clock::now();
        // NOT_FOUND for a missing customer comes from here too.
        let limits = match self.allowance_usage(org, customer, now).await {
            Ok((limits, lines)) if !limits.settings.warning_thresholds.is_empty() => Some(lines),
            Ok(_) => None,
            // No limits: no limit warnings.
            Err(AppError::NotFound { resource: "allowance limits", .. }) => None,
            Err(e) => return Err(e),
        };
        self.db()
            .transaction(org, move |conn| {
                let balance = db::balance_alerts::for_customers(conn, org, &[customer], false)?;
                let mut out = Vec::new();
                if let Some(lines) = &limits {
                    let keys: BTreeSet<(WindowKind, chrono::NaiveDate)> =
                        lines.iter().map(|l| (l.window.kind, l.window.first_day)).collect();
                    let keys: Vec<_> = keys.into_iter().collect();
                    let raised = db::usage::raised_alerts(conn, org, customer, &keys)?;
                    for line in lines {
                        let key = AlertKey {
                            scope: line.scope.clone(),
                            measure: line.measure,
                            kind: line.window.kind,
                            first_day: line.window.first_day,
                        };
                        let found = raised.iter().find(|r| r.alert.key == key);
                        let raised = found.map(|r| (r.alert.percent, r.raised_at));
                        out.push(LimitAlert { line: line.clone(), raised });
                    }
                }
                Ok(AlertStates { balance, limits: out })
            })
            .await
    }
}
