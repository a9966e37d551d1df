//! Ending a commitment before its term: an early termination, with its penalty.

use super::*;

impl App {
    /// Terminates before the end: an early termination (before the minimum term) is a
    /// violation, and records the penalty when one is configured.
    /// With a request id, a retry gets the terminated commitment and its penalty.
    pub async fn terminate_commitment(
        &self,
        org: OrgId,
        id: CommitmentId,
        placement: Placement,
        etag: String,
        reason: Option<String>,
        request: Option<RequestId>,
    ) -> Result<(Commitment, Option<Compensation>), AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let read = |conn: &mut Conn, made: &str| {
                    let commitment = load_made(conn, org, made)?;
                    let compensations =
                        db::commitments::list_compensations(conn, org, commitment.id, None, i64::MAX)?;
                    let penalty = compensations.into_iter().find(|c| c.kind == "EARLY_TERMINATION");
                    Ok((commitment, penalty))
                };
                if let Some(made) = replay(conn, org, TERMINATE, request.as_ref(), read)? {
                    return Ok(made);
                }
                let c = lock_open(conn, org, id, placement, &etag)?;
                let now = clock::now();
                if now >= c.terms.time_range.end_time {
                    return Err(AppError::FailedPrecondition {
                        reason: "COMMITMENT_ENDED",
                        message: format!("commitment {id} has reached its end"),
                    });
                }
                let next = Commitment {
                    status: CommitmentStatus::Terminated,
                    ended_at: Some(now),
                    updated_at: now,
                    version: c.version + 1,
                    by: c.by.changed(acting),
                    ..c.clone()
                };
                let mut penalty = None;
                let mut violations = Vec::new();
                if now < c.terms.minimum_term_end() {
                    if let Some(p) = &c.terms.early_termination_penalty {
                        let comp = Compensation {
                            id: Uuid::now_v7(),
                            commitment: id,
                            kind: "EARLY_TERMINATION",
                            period: None,
                            amount: p.amount,
                            credit_type: p.credit_type.clone(),
                            created_at: now,
                        };
                        db::commitments::insert_compensation(conn, org, &comp)?;
                        penalty = Some(comp);
                    }
                    let detail = ViolationDetail {
                        message: format!(
                            "commitment {id} terminated before {}{}",
                            c.terms.minimum_term_end().to_rfc3339(),
                            reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                        ),
                        commitment_id: Some(id.uuid()),
                        amount: penalty.as_ref().map(|p| p.amount),
                        ..Default::default()
                    };
                    violations.push(NewViolation::new(
                        uuid::Uuid::now_v7(),
                        ViolationKind::EarlyTermination,
                        Some(c.customer),
                        now,
                        detail,
                    ));
                }
                let closed = db::commitments::closed_keys(conn, org, id)?;
                db::commitments::update(conn, org, &next, next_check(&next.terms, &closed, Some(now)))?;
                let context = format!("commitment {id} terminated");
                db::credit::remove_applied_with_commitment(conn, org, id, now, &context)?;
                db::violations::append(conn, org, &violations, now)?;
                remember(conn, org, TERMINATE, request.as_ref(), id)?;
                Ok((next, penalty))
            })
            .await
    }
}
