//! Deciding a batch's events in order against the state the earlier ones left, and what
//! a replay of a stored event answers.

use super::*;

fn replay(stored_fingerprint: &[u8], outcome: &UsageOutcome, fingerprint: &[u8]) -> EventResult {
    if stored_fingerprint != fingerprint {
        // The client-chosen event id is the event's name: it identifies what exists.
        return Err(AppError::already_exists("usage event", "event_id", &outcome.event_id));
    }
    Ok(UsageOutcome { replayed: true, ..outcome.clone() })
}

/// Only decided events are remembered as seen, so a seen event always has an outcome.
fn unreachable_replay() -> EventResult {
    Err(DbError::Other("replay of an event that has no outcome".into()).into())
}

/// What the limits judge of `e`, once its product is known.
pub(super) fn facts_of<'a>(e: &'a UsageEvent, product: &'a Product) -> EventFacts<'a> {
    EventFacts {
        product,
        quantity: e.quantity,
        amount: e.amount,
        credit_type: &e.credit_type,
        at: e.timestamp,
    }
}

/// The product of `e` when the limits can judge it: its customer exists, it is within
/// the backdating horizon, its product exists and its credit type can be judged.
fn judgeable(
    state: &BatchState,
    prefix: &str,
    e: &UsageEvent,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<ProductId, AppError> {
    let Some(usage) = state.usage.get(&e.customer_id) else {
        return Err(AppError::not_found("customer", e.customer_id));
    };
    check_horizon(policy, usage.time_zone, e.timestamp, now, (prefix, "timestamp"))?;
    let product = match &e.product {
        ProductRef::Id(id) => state.products.get(id),
        ProductRef::Code(code) => state.product_codes.get(code).and_then(|id| state.products.get(id)),
    };
    let Some(product) = product else {
        let field = match e.product {
            ProductRef::Id(_) => "product_id",
            ProductRef::Code(_) => "product_code",
        };
        let mut v = Violations::at(prefix);
        v.add(field, "no such product");
        return Err(AppError::Invalid(v));
    };
    let facts = facts_of(e, product);
    let mut v = Violations::at(prefix);
    if is_custom(&e.credit_type) && !state.declared.contains(&e.credit_type) {
        v.add("credit_type", undeclared(&e.credit_type));
    }
    if let Some(currency) = usage.foreign_currency(&facts) {
        v.add(
            "credit_type",
            format!("the customer's limits on rated amount are in {currency}; usage in {} cannot be judged against them", e.credit_type),
        );
    }
    v.finish(product.id).map_err(AppError::Invalid)
}

/// How limits and balances judge `e`, which would be recorded on top of everything
/// `state` holds (recorded usage and open holds), changing nothing.
pub(in crate::app) struct Judgement {
    pub product: ProductId,
    pub evaluation: crate::domain::limits::Evaluation,
    /// How much of the event's amount the balances could give.
    pub coverable: Decimal,
}

pub(in crate::app) fn judge(
    state: &BatchState,
    e: &UsageEvent,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<Judgement, AppError> {
    let product_id = judgeable(state, "", e, (now, policy))?;
    let product = &state.products[&product_id];
    let usage =
        state.usage.get(&e.customer_id).ok_or_else(|| AppError::not_found("customer", e.customer_id))?;
    let facts = facts_of(e, product);
    let coverable = state
        .balances
        .get(&e.customer_id)
        .map_or(Decimal::ZERO, |b| b.coverable(&e.rated(product_id), product));
    Ok(Judgement { product: product_id, evaluation: usage.evaluate(&facts), coverable })
}

/// Decides every event of a batch in order; with `writes`, records what was decided.
pub(in crate::app) fn decide(
    state: &mut BatchState,
    inputs: &[EventInput],
    mut writes: Option<&mut Writes>,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<Vec<EventResult>, AppError> {
    let mut results: Vec<EventResult> = Vec::with_capacity(inputs.len());
    // Events of this batch by id: their fingerprint and index in `results`.
    let mut seen: HashMap<String, ([u8; 32], usize)> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        let e = match &input.event {
            Ok(e) => e,
            Err(e) => {
                results.push(Err(e.clone().into()));
                continue;
            }
        };
        let fingerprint = e.fingerprint();
        if let Some((earlier, index)) = seen.get(&e.event_id) {
            let result = match &results[*index] {
                Ok(outcome) => replay(earlier, outcome, &fingerprint),
                Err(_) => unreachable_replay(),
            };
            results.push(result);
            continue;
        }
        if let Some(stored) = state.stored.get(&e.event_id) {
            results.push(
                stored_outcome(&stored.answer).and_then(|o| replay(&stored.fingerprint, &o, &fingerprint)),
            );
            continue;
        }
        let product = match judgeable(state, &input.prefix, e, (now, policy)) {
            Ok(id) => &state.products[&id],
            Err(refused) => {
                results.push(Err(refused));
                continue;
            }
        };
        let Some(usage) = state.usage.get_mut(&e.customer_id) else {
            results.push(Err(AppError::not_found("customer", e.customer_id)));
            continue;
        };
        let facts = facts_of(e, product);
        let evaluation = usage.evaluate(&facts);
        let mut violations = limit_violations(e, product.id, &evaluation, &mut uuid::Uuid::now_v7);
        let event_uuid = Uuid::now_v7();
        let (draws, overage) = if evaluation.decision == Decision::Blocked {
            (Vec::new(), Decimal::ZERO)
        } else {
            usage.record(&facts, &evaluation);
            let rated = e.rated(product.id);
            let allocation = state.balances.entry(e.customer_id).or_default().allocate(&rated, product);
            violations.extend(exhaustion_violations(
                &allocation,
                e.customer_id,
                e.timestamp,
                Some(&e.event_id),
                &mut uuid::Uuid::now_v7,
            ));
            if let Some(w) = writes.as_deref_mut() {
                for kind in [WindowKind::Day, WindowKind::Month] {
                    let day = window_of(kind, usage.time_zone, e.timestamp).first_day;
                    let window = TotalsKey { product: product.id, kind, first_day: day };
                    let key = (e.customer_id, window, e.credit_type.clone());
                    let t = w.totals.entry(key).or_default();
                    t.amount += e.amount;
                    t.quantity += e.quantity;
                }
                for c in &evaluation.crossings {
                    let level = w.alerts.entry((e.customer_id, c.alert_key())).or_default();
                    *level = (*level).max(c.percent);
                }
                let (entries, promotions) = drawdown_entries(&allocation, &rated, event_uuid, now);
                w.ledger.extend(entries);
                w.promotion_draws.extend(promotions);
            }
            (DrawdownOutcome::of(event_uuid, &allocation).draws, allocation.overage)
        };
        let outcome = UsageOutcome {
            event_id: e.event_id.clone(),
            decision: evaluation.decision,
            checks: evaluation.checks,
            service_not_included: evaluation.service_not_included,
            draws,
            overage,
            violations: violations
                .iter()
                .map(|v| ReportedViolation { seq: None, recorded_at: None, violation: v.clone() })
                .collect(),
            replayed: false,
        };
        if let Some(w) = writes.as_deref_mut() {
            let start = w.violations.len();
            w.violations.extend(violations);
            w.events.push(NewEvent {
                input: index,
                id: event_uuid,
                product: product.id,
                decision: outcome.decision,
                fingerprint,
                violations: start..w.violations.len(),
            });
            seen.insert(e.event_id.clone(), (fingerprint, results.len()));
        }
        results.push(Ok(outcome));
    }
    Ok(results)
}
