//! Commit use cases: create, read, list, update, void, balance, ledger, adjustments.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::balance_alerts::settle_alerts;
use super::credit_types::check_declared;
use super::customers::require_customer;
use super::request_ids::{Operation, RequestId, made_id, remember, replay};
use super::segments::{close_due_for_customer, write_off};
use super::{App, AppError, clock};
use crate::db::commit_ledger::RequestKey;
use crate::db::{self, Conn, acting_key};
use crate::domain::commit::adjustment::Adjustment;
use crate::domain::commit::balance::{CloseKind, LedgerEntry, LedgerKind, SegmentBalance, balances_at};
use crate::domain::commit::timeline::{AdjustmentRefusal, decide_adjustment, effective_instant};
use crate::domain::commit::validate::{CommitDraft, CommitRefs, validate_new};
use crate::domain::commit::{Commit, CommitChanges, CommitFilter, apply_changes};
use crate::domain::etag::etag_matches;
use crate::domain::ids::{CommitId, OrgId, ProductId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::Violations;

const RESOURCE: &str = "commit";
const CREATE: Operation = Operation { name: "CreateCommit", resource: RESOURCE };
const VOID: Operation = Operation { name: "VoidCommit", resource: RESOURCE };

/// The commit a remembered call made or changed.
fn load_made(conn: &mut Conn, org: OrgId, made: &str) -> Result<Commit, AppError> {
    load(conn, org, CommitId(made_id(made)?))
}

/// A commit's balance at an instant.
#[derive(Clone, Debug)]
pub struct CommitBalance {
    pub commit: Commit,
    pub at: DateTime<Utc>,
    pub segments: Vec<SegmentBalance>,
}

fn load(conn: &mut Conn, org: OrgId, id: CommitId) -> Result<Commit, AppError> {
    db::commits::get(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
}

/// Locks the commit's customer, then the commit, and checks the caller's etag.
fn lock_commit(conn: &mut Conn, org: OrgId, id: CommitId, etag: &str) -> Result<Commit, AppError> {
    let commit = load(conn, org, id)?;
    db::customers::lock(conn, org, commit.customer_id)?;
    let commit =
        db::commits::get_for_update(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))?;
    if !etag_matches(etag, commit.version) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    Ok(commit)
}

fn refuse_if_voided(c: &Commit) -> Result<(), AppError> {
    match c.voided_at {
        Some(_) => Err(AppError::FailedPrecondition {
            reason: "COMMIT_VOIDED",
            message: format!("commit {} is voided", c.id),
        }),
        None => Ok(()),
    }
}

fn grants(c: &Commit, now: DateTime<Utc>) -> Vec<LedgerEntry> {
    c.access
        .iter()
        .enumerate()
        .map(|(i, a)| LedgerEntry {
            id: Uuid::now_v7(),
            commit_id: c.id,
            segment_idx: i as i32,
            kind: LedgerKind::Grant,
            amount: a.amount,
            effective_at: a.starting_at,
            source_id: None,
            product_id: None,
            reason: None,
            created_at: now,
        })
        .collect()
}

impl App {
    /// Creates a commit after checking every rule (the draft's parse problems are in `v`);
    /// with a request id, a retry gets the commit the first call made.
    pub async fn create_commit(
        &self,
        org: OrgId,
        draft: CommitDraft,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<Commit, AppError> {
        let key = draft.uniqueness_key.clone();
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        let created = self
            .db()
            .transaction(org, move |conn| {
                if let Some(made) = replay(conn, org, CREATE, request.as_ref(), |c, m| load_made(c, org, m))?
                {
                    return Ok(made);
                }
                let mut v = v.clone();
                let mut named = vec![("access_schedule.credit_type", draft.access_credit_type.as_str())];
                if let Some(s) = &draft.invoice_schedule {
                    named.push(("invoice_schedule.credit_type", s.credit_type.as_str()));
                }
                check_declared(conn, org, &named, &mut v)?;
                let refs = commit_refs(conn, org, &draft)?;
                let Some(new) = validate_new(draft.clone(), &refs, &mut v) else {
                    return Err(AppError::Invalid(v));
                };
                if !v.is_empty() {
                    return Err(AppError::Invalid(v));
                }
                let now = clock::now();
                let commit = Commit::create(CommitId::generate(), new, now, acting);
                db::commits::insert(conn, org, &commit)?;
                db::commit_ledger::insert(conn, org, &grants(&commit, now))?;
                settle_alerts(conn, org, &[commit.customer_id], (now, grace))?;
                remember(conn, org, CREATE, request.as_ref(), commit.id)?;
                Ok(commit)
            })
            .await
            .map_err(|e| e.unique("commits_uniqueness_key", RESOURCE, "uniqueness_key"));
        self.naming_existing(org, created, db::commits::id_by_uniqueness_key, key).await
    }

    pub async fn get_commit(&self, org: OrgId, id: CommitId) -> Result<Commit, AppError> {
        self.db().transaction(org, move |conn| load(conn, org, id)).await
    }

    pub async fn list_commits(
        &self,
        org: OrgId,
        filter: CommitFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Commit>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |c: &Commit| c.id.to_string(),
            move |conn, after, limit| {
                if let Some(customer) = filter.customer_id {
                    require_customer(conn, org, customer)?;
                }
                Ok(db::commits::list(conn, org, &filter, after, limit)?)
            },
        )
        .await
    }

    /// Changes what may change after creation; `v` holds the request's parse problems.
    pub async fn update_commit(
        &self,
        org: OrgId,
        id: CommitId,
        etag: String,
        changes: CommitChanges,
        v: Violations,
    ) -> Result<Commit, AppError> {
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                let current = lock_commit(conn, org, id, &etag)?;
                refuse_if_voided(&current)?;
                let segments = db::commits::segments(conn, org, id, true)?;
                let last_drawdown = match segments.iter().max_by_key(|s| (s.ending_before, s.idx)) {
                    Some(last) if changes.access_end.is_some() => {
                        db::commit_ledger::latest_drawdown(conn, org, id, last.idx)?
                    }
                    _ => None,
                };
                let mut v = v.clone();
                let (next, new_end) = v.nested("commit", |v| {
                    apply_changes(&current, &segments, changes.clone(), (clock::now(), last_drawdown), v)
                });
                if !v.is_empty() {
                    return Err(AppError::Invalid(v));
                }
                let next = Commit { by: current.by.changed(acting), ..next };
                if let Some((idx, end)) = new_end {
                    db::commits::set_segment_end(conn, org, id, idx, end)?;
                }
                db::commits::update(conn, org, &next, None)?;
                // A moved end changes what is drawable now.
                settle_alerts(conn, org, &[next.customer_id], (clock::now(), grace))?;
                Ok(next)
            })
            .await
    }

    /// Voids a commit: every open segment's balance is written off and it takes no more
    /// usage. With a request id, a retry gets the voided commit.
    pub async fn void_commit(
        &self,
        org: OrgId,
        id: CommitId,
        etag: String,
        reason: Option<String>,
        request: Option<RequestId>,
    ) -> Result<Commit, AppError> {
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) = replay(conn, org, VOID, request.as_ref(), |c, m| load_made(c, org, m))? {
                    return Ok(made);
                }
                let current = lock_commit(conn, org, id, &etag)?;
                refuse_if_voided(&current)?;
                let now = clock::now();
                let segments = db::commits::segments(conn, org, id, true)?;
                let mut entries = Vec::new();
                for s in segments.iter().filter(|s| s.closed.is_none()) {
                    // An upcoming segment is voided at its start, after its grant.
                    let at = effective_instant(s.starting_at, now);
                    entries.push(write_off(s, CloseKind::Voided, at, reason.clone(), now));
                    db::commits::close_segment(conn, org, id, s.idx, at, CloseKind::Voided)?;
                }
                db::commit_ledger::insert(conn, org, &entries)?;
                let next = current.voided(now, acting);
                db::commits::update(conn, org, &next, reason.as_deref())?;
                settle_alerts(conn, org, &[next.customer_id], (now, grace))?;
                remember(conn, org, VOID, request.as_ref(), next.id)?;
                Ok(next)
            })
            .await
    }

    /// The commit's balance at `at`, per segment. Segments whose grace has passed are
    /// closed first, so the answer never depends on when the closing job last ran.
    pub async fn commit_balance(
        &self,
        org: OrgId,
        id: CommitId,
        at: DateTime<Utc>,
    ) -> Result<CommitBalance, AppError> {
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                let commit = load(conn, org, id)?;
                db::customers::lock(conn, org, commit.customer_id)?;
                close_due_for_customer(conn, org, commit.customer_id, (clock::now(), grace))?;
                let segments = db::commits::segments(conn, org, id, false)?;
                let totals = db::commit_ledger::totals_up_to(conn, org, id, at)?;
                let balances = balances_at(commit.commit_type, &segments, &totals, at);
                Ok(CommitBalance { commit, at, segments: balances })
            })
            .await
    }

    /// One page of the commit's ledger, with running balances. Segments whose grace has
    /// passed are closed first, so the page shows their expiry or true-up.
    pub async fn commit_ledger(
        &self,
        org: OrgId,
        id: CommitId,
        kind: Option<LedgerKind>,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<(LedgerEntry, Decimal)>, AppError> {
        let after = parse_ledger_position(page.after.as_deref())?;
        let limit = page.fetch_limit();
        let grace = self.policy().late_usage_grace;
        let rows = self
            .db()
            .transaction(org, move |conn| {
                let commit = load(conn, org, id)?;
                db::customers::lock(conn, org, commit.customer_id)?;
                close_due_for_customer(conn, org, commit.customer_id, (clock::now(), grace))?;
                Ok::<_, AppError>(db::commit_ledger::page(conn, org, id, kind, after, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |(e, _)| {
            format!("{}|{}", e.effective_at.timestamp_micros(), e.id)
        }))
    }

    /// Adds a manual adjustment; with a request id, a retry returns the first entry.
    /// Answers the entry with the commit's running balance right after it.
    pub async fn adjust_commit(
        &self,
        org: OrgId,
        adj: Adjustment,
    ) -> Result<(LedgerEntry, Decimal), AppError> {
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                let commit = load(conn, org, adj.commit_id)?;
                db::customers::lock(conn, org, commit.customer_id)?;
                let fingerprint = adj.fingerprint();
                if let Some(request_id) = &adj.request_id
                    && let Some((entry, hash)) = db::commit_ledger::find_by_request(conn, org, request_id)?
                {
                    return if hash == fingerprint {
                        let running = db::commit_ledger::running_balance(conn, org, &entry)?;
                        Ok((entry, running))
                    } else {
                        Err(AppError::already_exists("adjustment", "request_id", entry.id))
                    };
                }
                refuse_if_voided(&commit)?;
                let now = clock::now();
                let segments = db::commits::segments(conn, org, adj.commit_id, true)?;
                let Some(segment) = segments.iter().find(|s| s.idx == adj.segment_idx) else {
                    return Err(Violations::single("segment_index", "no such access segment").into());
                };
                let key = [(adj.commit_id, adj.segment_idx)];
                let from = effective_instant(segment.starting_at, now);
                let later = db::commit_ledger::effective_after(conn, org, &key, from)?
                    .remove(&key[0])
                    .unwrap_or_default();
                let bounds = (segment.starting_at, segment.ending_before);
                let decided = decide_adjustment(
                    bounds,
                    segment.closed.is_some(),
                    segment.remaining,
                    &later,
                    adj.amount,
                    now,
                );
                let effective_at = match decided {
                    Ok(at) => at,
                    Err(AdjustmentRefusal::SegmentEnded) => {
                        return Err(AppError::FailedPrecondition {
                            reason: "SEGMENT_ENDED",
                            message: format!("access segment {} has ended", adj.segment_idx),
                        });
                    }
                    Err(AdjustmentRefusal::InsufficientBalance { drawable }) => {
                        return Err(AppError::FailedPrecondition {
                            reason: "INSUFFICIENT_BALANCE",
                            message: format!(
                                "the segment holds {} from {} on; no balance may go below zero",
                                drawable.normalize(),
                                from.to_rfc3339()
                            ),
                        });
                    }
                };
                let entry = LedgerEntry {
                    id: Uuid::now_v7(),
                    commit_id: adj.commit_id,
                    segment_idx: adj.segment_idx,
                    kind: LedgerKind::Adjustment,
                    amount: adj.amount,
                    effective_at,
                    source_id: None,
                    product_id: None,
                    reason: Some(adj.reason.clone()),
                    created_at: now,
                };
                let remaining = segment.remaining + adj.amount;
                db::commits::set_remaining(conn, org, adj.commit_id, adj.segment_idx, remaining)?;
                let key = adj.request_id.as_deref().map(|id| RequestKey { id, hash: &fingerprint });
                db::commit_ledger::insert_with_key(conn, org, std::slice::from_ref(&entry), key)?;
                let running = db::commit_ledger::running_balance(conn, org, &entry)?;
                settle_alerts(conn, org, &[commit.customer_id], (now, grace))?;
                Ok((entry, running))
            })
            .await
            .map_err(|e| e.unique("commit_ledger_requests_pkey", "adjustment", "request_id"))
    }
}

/// What exists among the resources a commit draft names.
fn commit_refs(conn: &mut Conn, org: OrgId, d: &CommitDraft) -> Result<CommitRefs, AppError> {
    let customer_exists = match d.customer_id.valid() {
        Some(id) => db::customers::exists(conn, org, *id)?,
        None => false,
    };
    let mut wanted: Vec<ProductId> = d.product_id.valid().copied().into_iter().collect();
    wanted.extend(d.applicable_product_ids.iter().filter_map(|p| p.valid().copied()));
    wanted.extend(d.specifiers.iter().filter_map(|s| s.product_id.valid().copied()));
    let products = db::products::get_many(conn, org, &wanted)?.into_iter().map(|p| p.id).collect();
    Ok(CommitRefs { customer_exists, products })
}

fn parse_ledger_position(after: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>, AppError> {
    let Some(after) = after else { return Ok(None) };
    let bad = || AppError::Invalid(Violations::single("page_token", "was issued for another list"));
    let (micros, id) = after.split_once('|').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok(Some((at, Uuid::try_parse(id).map_err(|_| bad())?)))
}
