//! Judging commitments: each obligation period measured against what is recorded, on
//! request and by the background job that closes periods and ends terms.

use super::*;

/// A commitment's evaluation as of an instant.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub commitment: Commitment,
    pub as_of: DateTime<Utc>,
    pub periods: Vec<PeriodResult>,
}

/// Recorded spend or usage for one obligation period, up to `until`.
fn measured(
    conn: &mut Conn,
    org: OrgId,
    c: &Commitment,
    o: &Obligation,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Decimal, AppError> {
    let contract = match o.scope {
        Scope::Customer => None,
        Scope::Account => c.terms.subscription_id.map(|s| s.to_string()),
    };
    if o.scope == Scope::Account && contract.is_none() {
        return Ok(Decimal::ZERO);
    }
    let q = MeasureQuery {
        customer: c.customer,
        measure: o.measure,
        contract: contract.as_deref(),
        product: o.product,
        from,
        until,
    };
    Ok(db::commitments::measure(conn, org, &q)?)
}

/// Where a terminated commitment stops being evaluated.
fn stop_of(c: &Commitment) -> Option<DateTime<Utc>> {
    (c.status == CommitmentStatus::Terminated).then_some(c.ended_at).flatten()
}

impl App {
    /// Every period started by `as_of`, measured: closed periods as they were closed,
    /// the others from what is recorded now.
    pub async fn evaluate_commitment(
        &self,
        org: OrgId,
        id: CommitmentId,
        as_of: DateTime<Utc>,
    ) -> Result<Evaluation, AppError> {
        self.db()
            .transaction(org, move |conn| {
                let c = load(conn, org, id, false)?;
                let closed: HashMap<PeriodKey, ClosedPeriod> =
                    db::commitments::closed_periods(conn, org, id)?
                        .into_iter()
                        .map(|p| (p.key(), p))
                        .collect();
                let mut periods = Vec::new();
                for (o, p) in periods_to_judge(&c.terms, as_of, stop_of(&c)) {
                    let result = match closed.get(&key(&o, &p)) {
                        Some(done) if done.end <= as_of => as_closed(o, p, done.required, done.measured),
                        _ => {
                            let value = measured(conn, org, &c, &o, p.start, p.end.min(as_of))?;
                            judge(o, p, value, as_of)
                        }
                    };
                    periods.push(result);
                }
                Ok(Evaluation { commitment: c, as_of, periods })
            })
            .await
    }

    /// Closes every commitment period (of every org) that has ended, finishes terms that
    /// have ended, and applies their ending config. Safe on several instances: each
    /// commitment is locked and re-checked, and a period is closed once.
    pub async fn evaluate_due_commitments(&self) -> Result<usize, AppError> {
        let now = clock::now();
        let work = self.db().run(move |conn| db::commitments::due(conn, now, 200)).await?;
        let mut closed = 0;
        for (org, id) in work {
            closed += self.db().transaction(org, move |conn| close_due(conn, org, id, now)).await?;
        }
        Ok(closed)
    }
}

/// Moves the access end of the customer's prepaid commits still open at the end of `c`
/// to `to` (see `ending::prepaid_extension`); returns the commits extended. Runs in the
/// transaction that ends `c`, which happens once, so each extension does too.
fn extend_prepaid_access(
    conn: &mut Conn,
    org: OrgId,
    c: &Commitment,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<CommitId>, AppError> {
    let mut extended = Vec::new();
    for commit_id in db::commits::prepaid_of_customer(conn, org, c.customer)? {
        let Some(commit) = db::commits::get_for_update(conn, org, commit_id)? else { continue };
        let segments = db::commits::segments(conn, org, commit_id, true)?;
        let Some(idx) = ending::prepaid_extension(&segments, c.terms.time_range.end_time, to) else {
            continue;
        };
        let e = ending::extend(&commit, idx, to, c, Uuid::now_v7(), now);
        db::commits::set_segment_end(conn, org, commit_id, e.segment_idx, to)?;
        db::commits::update(conn, org, &e.commit, None)?;
        db::commit_ledger::insert(conn, org, std::slice::from_ref(&e.note))?;
        extended.push(commit_id);
    }
    Ok(extended)
}

/// Closes what is due of one commitment at `now`; returns how many periods it closed.
fn close_due(conn: &mut Conn, org: OrgId, id: CommitmentId, now: DateTime<Utc>) -> Result<usize, AppError> {
    let mut c = load(conn, org, id, true)?;
    // Another instance may have done it since the commitment was found.
    if db::commitments::next_check(conn, org, id)?.is_none_or(|t| t > now) {
        return Ok(0);
    }
    let stop = stop_of(&c);
    let mut done = db::commitments::closed_keys(conn, org, id)?;
    let mut violations = Vec::new();
    let mut count = 0;
    for (o, p) in periods_to_judge(&c.terms, now, stop) {
        if p.end > now || done.contains(&key(&o, &p)) {
            continue;
        }
        let value = measured(conn, org, &c, &o, p.start, p.end)?;
        let r = judge(o, p, value, now);
        let shortfall = r.shortfall();
        db::commitments::insert_period(
            conn,
            org,
            id,
            &ClosedPeriod {
                scope: o.scope,
                measure: o.measure,
                index: o.index as i32,
                start: p.start,
                end: p.end,
                required: r.required,
                measured: r.measured,
                shortfall,
            },
            now,
        )?;
        done.insert(key(&o, &p));
        count += 1;
        if shortfall.is_zero() {
            continue;
        }
        if c.status == CommitmentStatus::Active {
            c.status = CommitmentStatus::Violated;
        }
        let policy = c.terms.violation_policy;
        let credit_type = c
            .terms
            .early_termination_penalty
            .as_ref()
            .map_or_else(|| "USD".to_owned(), |p| p.credit_type.clone());
        if policy.notifies(o.scope) {
            violations.push(NewViolation::new(
                uuid::Uuid::now_v7(),
                ViolationKind::CommitmentShortfall,
                Some(c.customer),
                p.end,
                ViolationDetail {
                    message: format!(
                        "commitment {id}: {} {} from {} to {} was {} of {} required",
                        o.scope.as_str(),
                        o.measure.as_str(),
                        p.start.to_rfc3339(),
                        p.end.to_rfc3339(),
                        r.measured.normalize(),
                        r.required.normalize()
                    ),
                    commitment_id: Some(id.uuid()),
                    scope: Some(o.scope.as_str().to_owned()),
                    measure: Some(o.measure.as_str().to_owned()),
                    window_start: Some(p.start),
                    used: Some(r.measured),
                    limit: Some(r.required),
                    amount: Some(shortfall),
                    ..Default::default()
                },
            ));
        }
        if policy.compensates(o.scope) {
            db::commitments::insert_compensation(
                conn,
                org,
                &Compensation {
                    id: Uuid::now_v7(),
                    commitment: id,
                    kind: "SHORTFALL",
                    period: Some((o.scope, o.measure, p.start, p.end)),
                    amount: shortfall,
                    credit_type,
                    created_at: now,
                },
            )?;
        }
    }
    let ended = stop.is_none() && now >= c.terms.time_range.end_time;
    if ended && c.status.is_open() {
        c.ended_at = Some(c.terms.time_range.end_time);
        if c.status == CommitmentStatus::Active {
            c.status = CommitmentStatus::Fulfilled;
        }
        if c.terms.ending_config.restart_commitment {
            let successor = c.restarted(now);
            db::commitments::insert(
                conn,
                org,
                &successor,
                next_check(&successor.terms, &Default::default(), None),
            )?;
            c.successor = Some(successor.id);
            if c.status == CommitmentStatus::Fulfilled {
                c.status = CommitmentStatus::Ended;
            }
            // The benefit given in exchange goes on with the restarted commitment.
            db::credit::move_applied_to_commitment(conn, org, id, successor.id)?;
        } else {
            // What was given in exchange for the commitment ends with it.
            let context = format!("commitment {id} ended");
            db::credit::remove_applied_with_commitment(conn, org, id, c.terms.time_range.end_time, &context)?;
        }
        let extended = match c.terms.ending_config.extend_prepaid_card_end_time {
            Some(to) => extend_prepaid_access(conn, org, &c, to, now)?,
            None => Vec::new(),
        };
        violations.push(ending::ended_notice(&c, &extended, Uuid::now_v7()));
    }
    let check = if ended { None } else { next_check(&c.terms, &done, stop) };
    c.updated_at = now;
    c.version += 1;
    db::commitments::update(conn, org, &c, check)?;
    db::violations::append(conn, org, &violations, now)?;
    Ok(count)
}
