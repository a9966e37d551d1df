//! The rules an operator tunes for every use case: how late usage may arrive.

use crate::domain::backdating::BackdatingHorizon;
use crate::domain::commit::timeline::LateUsageGrace;
use crate::domain::reservation::HoldDurations;

/// Operator-tuned rules, shared by every use case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// How long after a segment ends usage dated inside it may still draw from it.
    pub late_usage_grace: LateUsageGrace,
    /// The oldest timestamp a usage event or drawdown may carry.
    pub backdating: BackdatingHorizon,
    /// How long reservations hold by default, and at most.
    pub holds: HoldDurations,
}
