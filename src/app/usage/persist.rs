//! Writing what a batch decided: alerts, promotion uses, violations, then in one
//! statement totals, balances, ledger entries and the events with their packed answers.

use super::*;

/// Writes what a batch decided, and the balance alerts it moved; fills the violations'
/// feed positions into the answers.
pub(in crate::app) fn persist(
    conn: &mut Conn,
    org: OrgId,
    inputs: &[EventInput],
    state: &BatchState,
    mut writes: Writes,
    results: &mut [EventResult],
    (now, grace): (DateTime<Utc>, crate::domain::commit::timeline::LateUsageGrace),
) -> Result<(), AppError> {
    // The batch's maps are moved into the rows, not copied: nothing reads them after.
    let totals: Vec<TotalRow> = std::mem::take(&mut writes.totals)
        .into_iter()
        .map(|((customer, window, credit_type), t)| TotalRow {
            customer,
            product: window.product,
            kind: window.kind,
            first_day: window.first_day,
            credit_type,
            amount: t.amount,
            quantity: t.quantity,
        })
        .collect();
    let alerts: Vec<AlertRow> = std::mem::take(&mut writes.alerts)
        .into_iter()
        .map(|((customer, key), percent)| AlertRow { customer, key, percent })
        .collect();
    db::usage::raise_alerts(conn, org, &alerts, now)?;
    let drawn = Balances::drawn(state.balances.values());
    db::credit::draw(conn, org, &drawn.uses, &writes.promotion_draws)?;
    // Totals, balances and ledger go with the events in one statement at the end, unless
    // balance alerts must first be judged on the balances this batch leaves.
    let mut at_end = db::writes::Rows {
        totals: &totals,
        remaining: &drawn.segments,
        ledger: &writes.ledger,
        ..Default::default()
    };
    if !state.alerting.is_empty() {
        db::writes::write(conn, org, &at_end)?;
        at_end = db::writes::Rows::default();
    }
    // After the events' own violations, so their positions in `written` stay put.
    writes.violations.extend(crate::app::balance_alerts::crossed_alerts(
        conn,
        org,
        &state.alerting,
        (now, grace),
    )?);
    // The feed's sequence lock is held until commit: taken after every lock but those
    // of the rows the final write adds (it changes only rows this batch already holds).
    let written = db::violations::append(conn, org, &writes.violations, now)?;

    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if let Ok(o) = r
            && !o.replayed
        {
            by_id.insert(o.event_id.clone(), i);
        }
    }
    let mut rows = Vec::with_capacity(writes.events.len());
    for new in writes.events.drain(..) {
        let Ok(event) = &inputs[new.input].event else { continue };
        let Some(Ok(outcome)) = by_id.get(&event.event_id).map(|i| &mut results[*i]) else { continue };
        for (reported, stored) in outcome.violations.iter_mut().zip(&written[new.violations]) {
            reported.seq = Some(stored.seq);
            reported.recorded_at = Some(stored.recorded_at);
        }
        rows.push(EventToStore {
            event,
            id: new.id,
            product: new.product,
            decision: new.decision,
            fingerprint: new.fingerprint,
            outcome: pack_outcome(outcome)?,
        });
    }
    // A repeat of an event of this same batch answers as its original now does.
    for i in 0..results.len() {
        let original = match &results[i] {
            Ok(o) if o.replayed => by_id.get(&o.event_id).copied(),
            _ => None,
        };
        if let Some(j) = original
            && let Ok(first) = &results[j]
        {
            results[i] = Ok(UsageOutcome { replayed: true, ..first.clone() });
        }
    }
    // Another transaction recorded the same event id (for another customer) first: run
    // the batch again, it will find that event and answer accordingly.
    at_end.events = Some(db::writes::NewEvents { rows: &rows, recorded_at: now });
    db::writes::write(conn, org, &at_end).map_err(|e| e.retry_if_taken("usage_event_keys_pkey"))?;
    Ok(())
}
