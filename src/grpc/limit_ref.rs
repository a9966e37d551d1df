//! Which allowance maximum a message is about, as enums on the wire (`LimitRef`), from
//! the scope, measure and period names the domain stores.

use crate::domain::allowance::{Measure, Period, Selector};
use crate::domain::limits::CUSTOMER;
use crate::proto::v1 as pb;

/// The maximum of scope name `scope` ("customer", "service:CREED", ...), `measure` and
/// `period`.
pub fn limit_ref(scope: &str, measure: Measure, period: Period) -> pb::LimitRef {
    let selector = Selector::from_scope(scope);
    let kind = match &selector {
        None if scope == CUSTOMER => pb::LimitScope::Customer,
        None => pb::LimitScope::Unspecified,
        Some(Selector::Service(_)) => pb::LimitScope::Service,
        Some(Selector::ServiceType(_)) => pb::LimitScope::ServiceType,
        Some(Selector::ServiceFamily(_)) => pb::LimitScope::ServiceFamily,
    };
    pb::LimitRef {
        scope: kind.into(),
        scope_name: selector.as_ref().map(Selector::value).unwrap_or_default().to_owned(),
        measure: match measure {
            Measure::RatedAmount => pb::LimitMeasure::RatedAmount,
            Measure::Usage => pb::LimitMeasure::Usage,
        }
        .into(),
        period: match period {
            Period::Transaction => pb::LimitPeriod::Transaction,
            Period::Day => pb::LimitPeriod::Day,
            Period::Month => pb::LimitPeriod::Month,
        }
        .into(),
    }
}

/// The same from stored names; `None` when they name no maximum (a violation that is
/// not about a limit).
pub fn stored_limit_ref(
    scope: Option<&str>,
    measure: Option<&str>,
    period: Option<&str>,
) -> Option<pb::LimitRef> {
    Some(limit_ref(scope?, Measure::parse(measure?)?, Period::parse(period?)?))
}
