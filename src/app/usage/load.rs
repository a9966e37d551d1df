//! Loading once what a batch's decisions need: its customers (locked when recording),
//! stored events, products, limits, window totals and alerts, balances and open holds.

use super::*;

/// Loads what deciding `inputs` at `now` needs; with `record`, locks the customers and
/// their balances. Every reservation open at `now` holds its amounts, except `settling`
/// (the one whose usage is being recorded: its hold ends in the same transaction).
/// Products and limits come from the instance's `caches` where they hold them.
pub(in crate::app) fn load_state(
    conn: &mut Conn,
    org: OrgId,
    inputs: &[EventInput],
    (record, settling): (bool, Option<ReservationId>),
    (now, policy): (DateTime<Utc>, Policy),
    caches: &UsageCaches,
) -> Result<BatchState, AppError> {
    let mut customer_ids: Vec<CustomerId> = valid_events(inputs).map(|e| e.customer_id).collect();
    customer_ids.sort();
    customer_ids.dedup();
    // A check of an event already recorded answers its replay, so stored events are
    // looked up either way (a check may carry no id: nothing to find then).
    let ids: Vec<String> =
        valid_events(inputs).map(|e| e.event_id.clone()).filter(|id| !id.is_empty()).collect();
    // Locks first, in id order: the order every balance-changing transaction uses; the
    // stored events come in the same round trip. The locked rows say which customers may
    // have open holds, have balance alerts or have had promotions applied: only those
    // cost the statements that read them.
    let (customers, stored) = db::usage_start::customers_and_events(conn, org, &customer_ids, &ids, record)?;
    let stored = stored.into_iter().map(|s| (s.event_id.clone(), s)).collect();
    let holding: Vec<CustomerId> =
        customers.iter().filter(|c| c.extras.holds_until.is_some_and(|t| t > now)).map(|c| c.id).collect();
    let alerting: Vec<CustomerId> =
        customers.iter().filter(|c| c.extras.balance_alerts > 0).map(|c| c.id).collect();
    let promoted: Vec<CustomerId> =
        customers.iter().filter(|c| c.extras.promotions_applied > 0).map(|c| c.id).collect();

    let holds: Vec<Reservation> = if holding.is_empty() {
        Vec::new()
    } else {
        db::reservations::open_holds(conn, org, &holding, now)?
            .into_iter()
            .filter(|r| Some(r.id) != settling)
            .collect()
    };
    let versions: Vec<(CustomerId, i64)> =
        customers.iter().map(|c| (c.id, c.extras.limits_version)).collect();
    let limits: HashMap<CustomerId, LimitSettings> = caches.limits.find(conn, org, &versions, record)?;
    let tz: HashMap<CustomerId, chrono_tz::Tz> = customers.iter().map(|c| (c.id, c.time_zone)).collect();
    let mut keys: HashSet<WindowKey> = HashSet::new();
    for e in valid_events(inputs).filter(|e| limits.contains_key(&e.customer_id)) {
        if let Some(tz) = tz.get(&e.customer_id) {
            for kind in [WindowKind::Day, WindowKind::Month] {
                keys.insert(WindowKey {
                    customer: e.customer_id,
                    kind,
                    first_day: window_of(kind, *tz, e.timestamp).first_day,
                });
            }
        }
    }
    let keys: Vec<WindowKey> = keys.into_iter().collect();
    let db::usage::WindowRows { totals, alerts } = db::usage::load_windows(conn, org, &keys)?;

    // Every product the decisions name, from the instance's catalog or else in one round
    // trip: the events' (by id or code), and those of the totals and holds the limits count.
    let mut ids: HashSet<ProductId> = HashSet::new();
    let mut codes: HashSet<String> = HashSet::new();
    for e in valid_events(inputs) {
        match &e.product {
            ProductRef::Id(id) => ids.insert(*id),
            ProductRef::Code(code) => codes.insert(code.clone()),
        };
    }
    ids.extend(totals.iter().map(|t| t.product).chain(holds.iter().map(|r| r.product)));
    let ids: Vec<ProductId> = ids.into_iter().collect();
    let codes: Vec<String> = codes.into_iter().collect();
    let products: HashMap<ProductId, Product> =
        caches.products.find(conn, org, &ids, &codes)?.into_iter().map(|p| (p.id, p)).collect();
    let product_codes = products.values().map(|p| (p.code.clone(), p.id)).collect();

    let mut usage: HashMap<CustomerId, CustomerUsage> = customers
        .iter()
        .map(|c| {
            let state = CustomerUsage {
                time_zone: c.time_zone,
                limits: limits.get(&c.id).cloned(),
                totals: HashMap::new(),
                products: HashMap::new(),
                alerted: HashMap::new(),
            };
            (c.id, state)
        })
        .collect();
    for t in totals {
        if let Some(u) = usage.get_mut(&t.customer) {
            count_total(u, &t);
            if let Some(p) = products.get(&t.product) {
                u.products.insert(p.id, p.clone());
            }
        }
    }
    for a in alerts {
        if let Some(u) = usage.get_mut(&a.customer) {
            u.alerted.insert(a.key, a.percent);
        }
    }

    let times: Vec<DateTime<Utc>> =
        valid_events(inputs).map(|e| e.timestamp).chain(holds.iter().map(|r| r.created_at)).collect();
    let mut balances = match (times.iter().min(), times.iter().max()) {
        (Some(from), Some(until)) => {
            let present: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
            let whose = (present.as_slice(), promoted.as_slice());
            Balances::load_many_promoted(
                conn,
                org,
                whose,
                (*from, *until),
                (now, policy.late_usage_grace),
                record,
            )?
        }
        _ => HashMap::new(),
    };
    for r in &holds {
        let (Some(u), Some(product)) = (usage.get_mut(&r.customer), products.get(&r.product)) else {
            continue;
        };
        let held = r.usage(String::new(), r.granted, None);
        u.hold(&facts_of(&held, product));
        balances.entry(r.customer).or_default().hold(&held.rated(r.product), product);
    }
    let mut custom: Vec<&str> =
        valid_events(inputs).map(|e| e.credit_type.as_str()).filter(|c| is_custom(c)).collect();
    custom.sort_unstable();
    custom.dedup();
    let declared = db::credit_types::declared(conn, org, &custom)?.into_iter().collect();
    Ok(BatchState { usage, balances, products, product_codes, stored, declared, alerting })
}

/// Adds a stored total to what the customer's limits judge: every quantity, and only
/// amounts in the limits' currency (amounts of other credit types are never summed in).
pub(super) fn count_total(u: &mut CustomerUsage, t: &TotalRow) {
    let in_currency = u.limits.as_ref().is_some_and(|l| l.currency == t.credit_type);
    let total =
        u.totals.entry(TotalsKey { product: t.product, kind: t.kind, first_day: t.first_day }).or_default();
    total.quantity += t.quantity;
    if in_currency {
        total.amount += t.amount;
    }
}
