//! The drawdown engine in a transaction: load a customer's open balances (locked when
//! recording), let the pure allocator decide, write the new balances and ledger entries.
//! `ApplyDrawdown` / `PreviewDrawdown` use it directly; usage recording reuses it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{App, AppError, clock};
use crate::db::credit::PromotionDrawdown;
use crate::db::{self, Conn};
use crate::domain::balance_alert::Standing;
use crate::domain::commit::Applicability;
use crate::domain::commit::applicability::UsageFacts;
use crate::domain::commit::balance::{LedgerEntry, LedgerKind};
use crate::domain::commit::timeline::LateUsageGrace;
use crate::domain::commit::timeline::drawable_at;
use crate::domain::credit::sources_of;
use crate::domain::drawdown::{Allocation, RatedUsage, Source, SourceRef, Usage, allocate, sort_sources};
use crate::domain::ids::{AppliedPromotionId, CommitId, CustomerId, OrgId};
use crate::domain::product::Product;
use crate::domain::reservation::Reservation;
use crate::domain::usage::exhaustion_violations;
use crate::domain::validation::Violations;

/// A customer's drawable balances inside one transaction: commit segments and credit
/// promotion cycles.
#[derive(Default)]
pub struct Balances {
    sources: Vec<Source>,
    /// Shared balances (credit promotion totals) the sources' `pool` indexes point into.
    pools: Vec<Decimal>,
    /// What each source has given in this transaction, to write only what changed.
    drawn: HashMap<SourceRef, Decimal>,
    /// What open reservations hold of each source: taken from `available` so decisions
    /// see it as used, never written.
    held: HashMap<SourceRef, Decimal>,
}

impl Balances {
    /// Loads the open balances of `customers` that can take usage dated in
    /// `[from, until]` at `now`, one set per customer (customers without any get none):
    /// a segment that ended takes late usage only until its grace has passed. With
    /// `lock`, commit segment rows stay locked until the transaction ends. The caller
    /// must already hold the customers' locks (see `db::customers::lock`): every writer
    /// of these balances takes them first, which is what keeps them consistent.
    pub fn load_many(
        conn: &mut Conn,
        org: OrgId,
        customers: &[CustomerId],
        times: (DateTime<Utc>, DateTime<Utc>),
        now: (DateTime<Utc>, LateUsageGrace),
        lock: bool,
    ) -> Result<HashMap<CustomerId, Self>, AppError> {
        Self::load_many_promoted(conn, org, (customers, customers), times, now, lock)
    }

    /// [`Balances::load_many`], reading applied promotions only for `promoted`, the
    /// customers among `customers` whose locked rows say some were applied to them
    /// (`db::customers::Extras`): the rest cost no statement for them.
    pub fn load_many_promoted(
        conn: &mut Conn,
        org: OrgId,
        (customers, promoted): (&[CustomerId], &[CustomerId]),
        (from, until): (DateTime<Utc>, DateTime<Utc>),
        (now, grace): (DateTime<Utc>, LateUsageGrace),
        lock: bool,
    ) -> Result<HashMap<CustomerId, Self>, AppError> {
        let mut out: HashMap<CustomerId, Self> = HashMap::new();
        let ends_after = from.max(grace.closed_through(now));
        let segments = db::commits::open_segments(conn, org, customers, (from, ends_after, until), lock)?;
        // One applicability per commit, shared by its segments' sources.
        let mut shared: HashMap<CommitId, Arc<Applicability>> = HashMap::new();
        for db::commits::OpenSegment { customer, segment: s, terms, later } in segments {
            let applicability =
                Arc::clone(shared.entry(s.commit_id).or_insert_with(|| Arc::new(terms.applicability)));
            out.entry(customer).or_default().sources.push(Source {
                source: SourceRef::CommitSegment { commit_id: s.commit_id, idx: s.idx },
                priority: terms.priority,
                starting_at: s.starting_at,
                ending_before: s.ending_before,
                created_order: s.commit_id.uuid(),
                credit_type: terms.credit_type,
                applicability,
                available: s.remaining,
                granted: s.amount,
                later,
                pool: None,
            });
        }

        let applied = if promoted.is_empty() {
            Vec::new()
        } else {
            db::credit::applied_for_customers(conn, org, promoted, from, until)?
        };
        if !applied.is_empty() {
            let promotion_ids: Vec<_> = applied.iter().map(|a| a.promotion).collect();
            let promotions = db::credit::promotions(conn, org, &promotion_ids)?;
            let applied_ids: Vec<_> = applied.iter().map(|a| a.id).collect();
            let used = db::credit::cycle_use(conn, org, &applied_ids)?;
            let none = HashMap::new();
            for a in &applied {
                let Some(p) = promotions.get(&a.promotion) else { continue };
                let b = out.entry(a.customer).or_default();
                let sources = sources_of(a, p, used.get(&a.id).unwrap_or(&none), from, until, &mut b.pools);
                b.sources.extend(sources);
            }
        }
        for b in out.values_mut() {
            sort_sources(&mut b.sources);
        }
        Ok(out)
    }

    /// The balances of one customer (see [`Balances::load_many`]).
    pub fn load(
        conn: &mut Conn,
        org: OrgId,
        customer: CustomerId,
        at: DateTime<Utc>,
        now: (DateTime<Utc>, LateUsageGrace),
        lock: bool,
    ) -> Result<Self, AppError> {
        Ok(Self::load_many(conn, org, &[customer], (at, at), now, lock)?
            .remove(&customer)
            .unwrap_or_default())
    }

    /// The balances of `customer` for usage dated `at`, with every reservation open at
    /// `now` holding its share (see [`Balances::load_many`]); each hold with what it
    /// took, in the order taken.
    pub fn load_holding(
        conn: &mut Conn,
        org: OrgId,
        customer: CustomerId,
        at: DateTime<Utc>,
        now: (DateTime<Utc>, LateUsageGrace),
        lock: bool,
    ) -> Result<(Self, Vec<(Reservation, Allocation)>), AppError> {
        let holds = db::reservations::open_holds(conn, org, &[customer], now.0)?;
        let times = holds.iter().map(|r| r.created_at).chain([at]);
        let (from, until) = (times.clone().min().unwrap_or(at), times.max().unwrap_or(at));
        let mut balances = Self::load_many(conn, org, &[customer], (from, until), now, lock)?
            .remove(&customer)
            .unwrap_or_default();
        let ids: Vec<_> = holds.iter().map(|r| r.product).collect();
        let products: HashMap<_, _> =
            db::products::get_many(conn, org, &ids)?.into_iter().map(|p| (p.id, p)).collect();
        let mut taken = Vec::with_capacity(holds.len());
        for r in holds {
            let Some(product) = products.get(&r.product) else { continue };
            let held = r.usage(String::new(), r.granted, None).rated(r.product);
            let allocation = balances.hold(&held, product);
            taken.push((r, allocation));
        }
        Ok((balances, taken))
    }

    /// Allocates one usage of `product`, updating the balances in memory.
    pub fn allocate(&mut self, usage: &RatedUsage, product: &Product) -> Allocation {
        self.take(usage, product, false)
    }

    /// Takes an open reservation's hold out of the balances, in drawing order, for the
    /// decisions of this transaction only (a hold is never written).
    pub fn hold(&mut self, usage: &RatedUsage, product: &Product) -> Allocation {
        self.take(usage, product, true)
    }

    /// How much of `usage` the balances could give now, changing nothing.
    pub fn coverable(&self, usage: &RatedUsage, product: &Product) -> Decimal {
        let mut scratch =
            Self { sources: self.sources.clone(), pools: self.pools.clone(), ..Self::default() };
        scratch.take(usage, product, false).draws.iter().map(|d| d.amount).sum()
    }

    /// Every source as it stands at `at` (what it can give then, and what open holds
    /// took of it), in drawing order.
    pub fn lines(&self, at: DateTime<Utc>) -> Vec<BalanceLine> {
        self.sources
            .iter()
            .filter(|s| s.starting_at <= at && at < s.ending_before)
            .map(|s| {
                let held = self.held.get(&s.source).copied().unwrap_or_default();
                let pooled = s.pool.and_then(|i| self.pools.get(i).copied());
                let after_holds = drawable_at(s.available, &s.later, at);
                let balance = after_holds.min(pooled.unwrap_or(after_holds)) + held;
                BalanceLine {
                    source: s.source,
                    credit_type: s.credit_type.clone(),
                    ending_before: s.ending_before,
                    balance,
                    held,
                    granted: s.granted,
                }
            })
            .collect()
    }

    /// What can be drawn at `at` per credit type, holds taken out, against what was
    /// granted: what balance alerts judge.
    pub fn standings(&self, at: DateTime<Utc>) -> HashMap<String, Standing> {
        let mut out: HashMap<String, Standing> = HashMap::new();
        for line in self.lines(at) {
            let s = out.entry(line.credit_type).or_default();
            s.available += line.balance - line.held;
            s.granted += line.granted;
        }
        out
    }

    /// Allocates `usage`, noting what each source gave as drawn (to be written) or as
    /// `held` (never written).
    fn take(&mut self, usage: &RatedUsage, product: &Product, held: bool) -> Allocation {
        let allocation = allocate(
            &mut self.sources,
            &mut self.pools,
            &Usage {
                facts: facts(usage, product),
                amount: usage.amount,
                credit_type: &usage.credit_type,
                timestamp: usage.timestamp,
            },
        );
        let book = if held { &mut self.held } else { &mut self.drawn };
        for d in &allocation.draws {
            *book.entry(d.source).or_default() += d.amount;
        }
        allocation
    }

    /// What drawing since loading changed: the drawn segments' remaining balances (what
    /// is available plus what open holds keep), and what each applied promotion gave in
    /// its cycle.
    pub fn drawn<'a>(all: impl IntoIterator<Item = &'a Balances>) -> Drawn {
        let mut segments = Vec::new();
        let mut uses = Vec::new();
        for b in all {
            for s in &b.sources {
                let Some(drawn) = b.drawn.get(&s.source) else { continue };
                match s.source {
                    SourceRef::CommitSegment { commit_id, idx } => {
                        let held = b.held.get(&s.source).copied().unwrap_or_default();
                        segments.push((commit_id, idx, s.available + held))
                    }
                    SourceRef::CreditPromotion { applied, cycle_start } => {
                        uses.push((applied, cycle_start, *drawn))
                    }
                }
            }
        }
        Drawn { segments, uses }
    }
}

/// What drawing changed, as [`Balances::drawn`] collects it for writing.
pub struct Drawn {
    /// (commit, index, remaining balance)
    pub segments: Vec<(CommitId, i32, Decimal)>,
    /// (applied promotion, cycle start, amount given)
    pub uses: Vec<(AppliedPromotionId, DateTime<Utc>, Decimal)>,
}

fn facts<'a>(usage: &'a RatedUsage, product: &'a Product) -> UsageFacts<'a> {
    UsageFacts {
        product_id: usage.product_id,
        product_tags: &product.tags,
        group_values: &usage.group_values,
        contract_id: usage.contract_id.as_deref(),
    }
}

/// One drawable balance at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceLine {
    pub source: SourceRef,
    pub credit_type: String,
    pub ending_before: DateTime<Utc>,
    /// What it can give, holds included.
    pub balance: Decimal,
    /// What open reservations hold of it.
    pub held: Decimal,
    /// What it was granted.
    pub granted: Decimal,
}

/// The ledger entries recording `allocation` of `usage`, caused by `source_id`: commit
/// ledger entries, and credit promotion drawdowns.
pub fn drawdown_entries(
    allocation: &Allocation,
    usage: &RatedUsage,
    source_id: Uuid,
    now: DateTime<Utc>,
) -> (Vec<LedgerEntry>, Vec<PromotionDrawdown>) {
    let mut entries = Vec::new();
    let mut promotions = Vec::new();
    for d in &allocation.draws {
        match d.source {
            SourceRef::CommitSegment { commit_id, idx } => entries.push(LedgerEntry {
                id: Uuid::now_v7(),
                commit_id,
                segment_idx: idx,
                kind: LedgerKind::Drawdown,
                amount: -d.amount,
                effective_at: usage.timestamp,
                source_id: Some(source_id),
                product_id: Some(usage.product_id),
                reason: None,
                created_at: now,
            }),
            SourceRef::CreditPromotion { applied, cycle_start } => promotions.push(PromotionDrawdown {
                id: Uuid::now_v7(),
                applied,
                cycle_start,
                amount: d.amount,
                effective_at: usage.timestamp,
                source_id,
                product: usage.product_id,
                created_at: now,
                reverses: None,
            }),
        }
    }
    (entries, promotions)
}

/// Writes one drawdown: the balances `balances` drew with the ledger entries
/// [`drawdown_entries`] produced, in one statement (as usage writes them, so the ledger's
/// trigger finds each segment's `ledger_last_at` already moved), then the promotions'
/// uses with their drawdowns in another.
pub fn write_drawdown(
    conn: &mut Conn,
    org: OrgId,
    balances: &Balances,
    (entries, promotions): (&[LedgerEntry], &[PromotionDrawdown]),
) -> Result<(), AppError> {
    let drawn = Balances::drawn([balances]);
    db::writes::write(
        conn,
        org,
        &db::writes::Rows { remaining: &drawn.segments, ledger: entries, ..Default::default() },
    )?;
    db::credit::draw(conn, org, &drawn.uses, promotions)?;
    Ok(())
}

/// One part of a recorded drawdown, as stored for replays: from a commit segment, or
/// from an applied credit promotion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    #[serde(default)]
    pub commit_id: Option<Uuid>,
    #[serde(default)]
    pub segment_idx: i32,
    #[serde(default)]
    pub applied_promotion_id: Option<Uuid>,
    pub amount: Decimal,
    pub remaining_after: Decimal,
}

/// What a drawdown did; stored so a replay returns the first answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownOutcome {
    pub id: Uuid,
    pub draws: Vec<DrawRecord>,
    pub overage: Decimal,
    #[serde(skip)]
    pub replayed: bool,
}

impl DrawdownOutcome {
    pub fn of(id: Uuid, allocation: &Allocation) -> Self {
        Self {
            id,
            draws: allocation
                .draws
                .iter()
                .map(|d| match d.source {
                    SourceRef::CommitSegment { commit_id, idx } => DrawRecord {
                        commit_id: Some(commit_id.uuid()),
                        segment_idx: idx,
                        applied_promotion_id: None,
                        amount: d.amount,
                        remaining_after: d.remaining_after,
                    },
                    SourceRef::CreditPromotion { applied, .. } => DrawRecord {
                        commit_id: None,
                        segment_idx: 0,
                        applied_promotion_id: Some(applied.uuid()),
                        amount: d.amount,
                        remaining_after: d.remaining_after,
                    },
                })
                .collect(),
            overage: allocation.overage,
            replayed: false,
        }
    }
}

/// Refuses usage dated before the backdating horizon, as a violation of `field` under
/// `prefix`.
pub fn check_horizon(
    policy: super::Policy,
    tz: chrono_tz::Tz,
    t: DateTime<Utc>,
    now: DateTime<Utc>,
    (prefix, field): (&str, &str),
) -> Result<(), AppError> {
    if policy.backdating.accepts(tz, t, now) {
        return Ok(());
    }
    let earliest = policy.backdating.earliest(tz, now);
    let mut v = Violations::at(prefix);
    v.add(
        field,
        format!("is older than the backdating horizon: the earliest accepted is {}", earliest.to_rfc3339()),
    );
    Err(AppError::Invalid(v))
}

/// Checks a usage of customer `c` the way preview and apply both must (backdating
/// horizon, credit type, product) and loads the balances it can draw from, locked when
/// `lock`: so the two accept and refuse exactly the same usage.
fn admit(
    conn: &mut Conn,
    org: OrgId,
    c: &crate::domain::customer::Customer,
    usage: &RatedUsage,
    (now, policy): (DateTime<Utc>, super::Policy),
    lock: bool,
) -> Result<(Product, Balances), AppError> {
    check_horizon(policy, c.time_zone, usage.timestamp, now, ("usage", "timestamp"))?;
    require_declared_type(conn, org, usage)?;
    let product = usage_product(conn, org, usage, "usage.product_id")?;
    // Open reservations hold their share: a drawdown, like usage, cannot take it.
    let (balances, _) =
        Balances::load_holding(conn, org, c.id, usage.timestamp, (now, policy.late_usage_grace), lock)?;
    Ok((product, balances))
}

/// Refuses a usage whose credit type is custom and undeclared.
fn require_declared_type(conn: &mut Conn, org: OrgId, usage: &RatedUsage) -> Result<(), AppError> {
    let mut v = Violations::default();
    super::credit_types::check_declared(conn, org, &[("usage.credit_type", &usage.credit_type)], &mut v)?;
    Ok(v.finish(())?)
}

/// The product of a usage, or a violation on `field` when the org has none such.
pub fn usage_product(
    conn: &mut Conn,
    org: OrgId,
    usage: &RatedUsage,
    field: &str,
) -> Result<Product, AppError> {
    db::products::get(conn, org, usage.product_id)?
        .ok_or_else(|| AppError::Invalid(Violations::single(field, "no such product")))
}

impl App {
    /// What `usage` would draw from the customer's commits now, recording nothing.
    pub async fn preview_drawdown(
        &self,
        org: OrgId,
        customer: CustomerId,
        usage: RatedUsage,
    ) -> Result<Allocation, AppError> {
        let policy = self.policy();
        self.db()
            .transaction(org, move |conn| {
                let c = db::customers::get(conn, org, customer)?
                    .ok_or_else(|| AppError::not_found("customer", customer))?;
                let now = clock::now();
                let (product, mut balances) = admit(conn, org, &c, &usage, (now, policy), false)?;
                Ok(balances.allocate(&usage, &product))
            })
            .await
    }

    /// Draws `usage` down the customer's commits once per idempotency `key`.
    pub async fn apply_drawdown(
        &self,
        org: OrgId,
        key: String,
        customer: CustomerId,
        usage: RatedUsage,
    ) -> Result<DrawdownOutcome, AppError> {
        let fingerprint = usage.fingerprint(customer);
        let policy = self.policy();
        self.db()
            .transaction(org, move |conn| {
                // The customer lock comes first so a concurrent call with the same key
                // waits here and then finds the first one's record.
                let Some(c) = db::customers::get_locked(conn, org, customer)? else {
                    return Err(AppError::not_found("customer", customer));
                };
                if let Some(previous) = db::drawdowns::find(conn, org, &key)? {
                    return replay(previous, &fingerprint);
                }
                let now = clock::now();
                let (product, mut balances) = admit(conn, org, &c, &usage, (now, policy), true)?;
                let allocation = balances.allocate(&usage, &product);
                let id = Uuid::now_v7();
                let (entries, promotions) = drawdown_entries(&allocation, &usage, id, now);
                write_drawdown(conn, org, &balances, (&entries, &promotions))?;
                super::balance_alerts::settle_alerts(conn, org, &[customer], (now, policy.late_usage_grace))?;
                let exhausted = exhaustion_violations(
                    &allocation,
                    customer,
                    usage.timestamp,
                    None,
                    &mut uuid::Uuid::now_v7,
                );
                let outcome = DrawdownOutcome::of(id, &allocation);
                let applied = db::drawdowns::AppliedDrawdown {
                    key: &key,
                    id,
                    customer,
                    fingerprint: &fingerprint,
                    answer: &outcome,
                    at: now,
                };
                db::drawdowns::insert(conn, org, &applied)?;
                db::violations::append(conn, org, &exhausted, now)?;
                Ok(outcome)
            })
            .await
            .map_err(|e| e.unique("drawdown_requests_pkey", "drawdown", "idempotency_key"))
    }
}

fn replay(previous: db::drawdowns::DrawdownRequest, fingerprint: &[u8]) -> Result<DrawdownOutcome, AppError> {
    if previous.request_hash != fingerprint {
        return Err(AppError::already_exists("drawdown", "idempotency_key", previous.id));
    }
    let mut outcome: DrawdownOutcome = serde_json::from_value(previous.result)
        .map_err(|e| db::DbError::Other(format!("stored drawdown: {e}")))?;
    outcome.replayed = true;
    Ok(outcome)
}
