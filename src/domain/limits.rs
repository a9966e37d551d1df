//! Enforcing allowance limits on one usage event: every maximum that applies (the
//! customer's and every matching service allowance; per transaction, day and month; for
//! rated amount and usage) is checked, the tolerance decides between a warning and a
//! block, and warning thresholds are notified once per window.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::allowance::{LimitSettings, MAXIMA, Maxima, Measure, Period, Selector};
use super::ids::ProductId;
use super::product::Product;
use super::windows::{Window, WindowKind, window_of};

/// The scope name of the customer's own maxima (services' are `Selector::scope`).
pub const CUSTOMER: &str = "customer";

/// Totals of one product in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub amount: Decimal,
    pub quantity: Decimal,
}

impl Totals {
    pub fn of(&self, measure: Measure) -> Decimal {
        match measure {
            Measure::RatedAmount => self.amount,
            Measure::Usage => self.quantity,
        }
    }
}

/// Where a product's total is kept: its window, named by kind and first local date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TotalsKey {
    pub product: ProductId,
    pub kind: WindowKind,
    pub first_day: NaiveDate,
}

/// Where the highest threshold notified is kept: the limit (scope and measure) and the
/// window, named by kind and first local date.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertKey {
    /// `customer` or a selector's scope (`service:<code>`, ...), as violations name it.
    pub scope: String,
    pub measure: Measure,
    pub kind: WindowKind,
    pub first_day: NaiveDate,
}

/// What limits need to know about one customer: its time zone and limits, its usage
/// totals per product in the windows at hand, the products those totals are of, and the
/// highest threshold already notified per scope and window.
#[derive(Clone, Debug)]
pub struct CustomerUsage {
    pub time_zone: Tz,
    pub limits: Option<LimitSettings>,
    pub totals: HashMap<TotalsKey, Totals>,
    pub products: HashMap<ProductId, Product>,
    pub alerted: HashMap<AlertKey, Decimal>,
}

/// How one maximum judged an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Within,
    OverLimit,
    Exceeded,
}

/// One maximum checked against an event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitCheck {
    pub scope: String,
    pub measure: Measure,
    pub period: Period,
    pub window: Option<Window>,
    pub used: Decimal,
    pub maximum: Decimal,
    pub tolerance_maximum: Decimal,
    pub outcome: Outcome,
}

/// The decision on an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decision {
    Allowed,
    AllowedOverLimit,
    Blocked,
}

/// A daily or monthly total crossing a warning threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub scope: String,
    pub measure: Measure,
    pub window: Window,
    pub percent: Decimal,
    pub used: Decimal,
    pub maximum: Decimal,
}

impl Crossing {
    /// Where the level this crossing reached is kept.
    pub fn alert_key(&self) -> AlertKey {
        AlertKey {
            scope: self.scope.clone(),
            measure: self.measure,
            kind: self.window.kind,
            first_day: self.window.first_day,
        }
    }
}

/// Everything decided about one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub checks: Vec<LimitCheck>,
    /// No service allowance matches the product (only meaningful with limits).
    pub service_not_included: bool,
    /// Not included and the limits block such services (a block unless soft).
    pub not_included_blocks: bool,
    pub soft: bool,
    pub crossings: Vec<Crossing>,
}

/// The facts of one event that limits judge.
#[derive(Clone, Copy, Debug)]
pub struct EventFacts<'a> {
    pub product: &'a Product,
    pub quantity: Decimal,
    pub amount: Decimal,
    /// Credit type of `amount` (upper-case).
    pub credit_type: &'a str,
    pub at: DateTime<Utc>,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "ALLOWED",
            Self::AllowedOverLimit => "ALLOWED_OVER_LIMIT",
            Self::Blocked => "BLOCKED",
        }
    }
}

impl CustomerUsage {
    /// Total of `scope` (`None`: the whole customer) in `window`, before the event.
    pub fn scope_total(&self, selector: Option<&Selector>, window: &Window, measure: Measure) -> Decimal {
        self.totals
            .iter()
            .filter(|(k, _)| k.kind == window.kind && k.first_day == window.first_day)
            .filter(|(k, _)| match selector {
                None => true,
                Some(s) => self.products.get(&k.product).is_some_and(|p| s.matches(p)),
            })
            .map(|(_, t)| t.of(measure))
            .sum()
    }

    /// The limits' currency when the event's amount is in another credit type while a
    /// maximum on rated amount applies to it: such an event cannot be judged (its amount
    /// is never summed with amounts of the limits' currency) and is refused.
    pub fn foreign_currency(&self, e: &EventFacts<'_>) -> Option<&str> {
        let limits = self.limits.as_ref()?;
        if e.credit_type == limits.currency {
            return None;
        }
        let mut scopes =
            std::iter::once(&limits.maxima).chain(limits.allowances_for(e.product).map(|a| &a.maxima));
        let judges_amount = scopes.any(|m| {
            MAXIMA.iter().any(|(measure, period)| {
                *measure == Measure::RatedAmount && m.get(*measure, *period).is_some()
            })
        });
        judges_amount.then_some(limits.currency.as_str())
    }

    /// Judges an event against every applicable maximum, changing nothing.
    pub fn evaluate(&self, e: &EventFacts<'_>) -> Evaluation {
        let Some(limits) = &self.limits else {
            return Evaluation {
                decision: Decision::Allowed,
                checks: Vec::new(),
                service_not_included: false,
                not_included_blocks: false,
                soft: false,
                crossings: Vec::new(),
            };
        };
        let day = window_of(WindowKind::Day, self.time_zone, e.at);
        let month = window_of(WindowKind::Month, self.time_zone, e.at);
        let matching: Vec<&Selector> = limits.allowances_for(e.product).map(|a| &a.selector).collect();
        let mut scopes: Vec<(Option<&Selector>, &Maxima)> = vec![(None, &limits.maxima)];
        scopes.extend(limits.allowances_for(e.product).map(|a| (Some(&a.selector), &a.maxima)));

        let mut checks = Vec::new();
        let mut crossings = Vec::new();
        for (selector, maxima) in &scopes {
            let scope = scope_name(*selector);
            for (measure, period) in MAXIMA {
                let Some(maximum) = maxima.get(measure, period) else { continue };
                // Amounts of another currency are never judged against these maxima
                // (callers refuse such events first: see `foreign_currency`).
                if measure == Measure::RatedAmount && e.credit_type != limits.currency {
                    continue;
                }
                let value = match measure {
                    Measure::RatedAmount => e.amount,
                    Measure::Usage => e.quantity,
                };
                let window = match period {
                    Period::Transaction => None,
                    Period::Day => Some(day),
                    Period::Month => Some(month),
                };
                let before = window.map_or(Decimal::ZERO, |w| self.scope_total(*selector, &w, measure));
                let used = before + value;
                let tolerance_maximum = limits.with_tolerance(maximum);
                let outcome = if used <= maximum {
                    Outcome::Within
                } else if used <= tolerance_maximum {
                    Outcome::OverLimit
                } else {
                    Outcome::Exceeded
                };
                if let Some(w) = window {
                    crossings.extend(self.crossings(limits, &scope, measure, &w, before, used, maximum));
                }
                checks.push(LimitCheck {
                    scope: scope.clone(),
                    measure,
                    period,
                    window,
                    used,
                    maximum,
                    tolerance_maximum,
                    outcome,
                });
            }
        }
        let service_not_included = matching.is_empty();
        let not_included_blocks = service_not_included && limits.block_not_included;
        let exceeded = checks.iter().any(|c| c.outcome == Outcome::Exceeded);
        let over = checks.iter().any(|c| c.outcome == Outcome::OverLimit);
        let decision = if !limits.soft && (exceeded || not_included_blocks) {
            Decision::Blocked
        } else if exceeded || over || not_included_blocks {
            Decision::AllowedOverLimit
        } else {
            Decision::Allowed
        };
        if decision == Decision::Blocked {
            crossings.clear();
        }
        Evaluation {
            decision,
            checks,
            service_not_included,
            not_included_blocks,
            soft: limits.soft,
            crossings,
        }
    }

    /// The thresholds a total moving from `before` to `used` crosses for the first time
    /// in its window.
    #[allow(clippy::too_many_arguments)]
    fn crossings(
        &self,
        limits: &LimitSettings,
        scope: &str,
        measure: Measure,
        window: &Window,
        before: Decimal,
        used: Decimal,
        maximum: Decimal,
    ) -> Vec<Crossing> {
        if maximum <= Decimal::ZERO || used <= before {
            return Vec::new();
        }
        let alerted = self
            .alerted
            .get(&AlertKey {
                scope: scope.to_owned(),
                measure,
                kind: window.kind,
                first_day: window.first_day,
            })
            .copied()
            .unwrap_or_default();
        let percent = used * Decimal::ONE_HUNDRED / maximum;
        limits
            .warning_thresholds
            .iter()
            .filter(|t| **t > alerted && percent >= **t)
            .map(|t| Crossing {
                scope: scope.to_owned(),
                measure,
                window: *window,
                percent: *t,
                used,
                maximum,
            })
            .collect()
    }

    /// Counts an allowed event into the totals and remembers the thresholds it crossed.
    pub fn record(&mut self, e: &EventFacts<'_>, evaluation: &Evaluation) {
        if evaluation.decision == Decision::Blocked {
            return;
        }
        self.hold(e);
        for c in &evaluation.crossings {
            let level = self.alerted.entry(c.alert_key()).or_default();
            *level = (*level).max(c.percent);
        }
    }

    /// Counts `e` into the totals as used, without judging it: an open reservation's
    /// hold, which every later decision must see as taken.
    pub fn hold(&mut self, e: &EventFacts<'_>) {
        for kind in [WindowKind::Day, WindowKind::Month] {
            let w = window_of(kind, self.time_zone, e.at);
            let t = self
                .totals
                .entry(TotalsKey { product: e.product.id, kind, first_day: w.first_day })
                .or_default();
            // Totals in memory hold amounts of the limits' currency only.
            if self.limits.as_ref().is_none_or(|l| l.currency == e.credit_type) {
                t.amount += e.amount;
            }
            t.quantity += e.quantity;
        }
        self.products.entry(e.product.id).or_insert_with(|| e.product.clone());
    }
}

/// One daily or monthly maximum with what is used of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageLine {
    pub scope: String,
    pub measure: Measure,
    pub window: Window,
    pub used: Decimal,
    pub maximum: Decimal,
    pub tolerance_maximum: Decimal,
    pub percent: Decimal,
}

impl CustomerUsage {
    /// Every daily and monthly maximum (the customer's and every service allowance's)
    /// with its total in the windows containing `at`.
    pub fn report(&self, at: DateTime<Utc>) -> Vec<UsageLine> {
        let Some(limits) = &self.limits else { return Vec::new() };
        let mut scopes: Vec<(Option<&Selector>, &Maxima)> = vec![(None, &limits.maxima)];
        scopes.extend(limits.services.iter().map(|a| (Some(&a.selector), &a.maxima)));
        let mut lines = Vec::new();
        for (selector, maxima) in scopes {
            for (measure, period) in MAXIMA {
                let kind = match period {
                    Period::Transaction => continue,
                    Period::Day => WindowKind::Day,
                    Period::Month => WindowKind::Month,
                };
                let Some(maximum) = maxima.get(measure, period) else { continue };
                let window = window_of(kind, self.time_zone, at);
                let used = self.scope_total(selector, &window, measure);
                let percent = if maximum.is_zero() {
                    Decimal::ZERO
                } else {
                    (used * Decimal::ONE_HUNDRED / maximum).round_dp(2)
                };
                lines.push(UsageLine {
                    scope: scope_name(selector),
                    measure,
                    window,
                    used,
                    maximum,
                    tolerance_maximum: limits.with_tolerance(maximum),
                    percent,
                });
            }
        }
        lines
    }
}

/// The scope name of a selector, or of the customer as a whole.
pub fn scope_name(selector: Option<&Selector>) -> String {
    selector.map_or_else(|| CUSTOMER.to_owned(), Selector::scope)
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
