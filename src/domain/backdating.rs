//! How far back usage may be dated. Limits count usage in the window its timestamp falls
//! in; without a horizon a caller could dodge today's maximum by dating usage into a
//! month long closed. Commits and credit promotions follow the same horizon, so a
//! preview, a check and a recording accept and refuse the same events.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::windows::{WindowKind, window_of};

/// The oldest timestamp accepted for usage recorded now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackdatingHorizon {
    /// The start of the previous calendar month in the customer's time zone.
    #[default]
    PreviousMonth,
    /// A fixed age.
    Fixed(Duration),
}

impl BackdatingHorizon {
    /// The earliest timestamp accepted at `now` for a customer in `tz`.
    pub fn earliest(self, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::PreviousMonth => {
                let this_month = window_of(WindowKind::Month, tz, now);
                window_of(WindowKind::Month, tz, this_month.start - Duration::seconds(1)).start
            }
            Self::Fixed(age) => now - age,
        }
    }

    /// Whether usage dated `t` may still be recorded at `now` for a customer in `tz`.
    pub fn accepts(self, tz: Tz, t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        t >= self.earliest(tz, now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_default_horizon_is_the_start_of_the_previous_local_month() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 2026-03-10 in Tokyo: the previous month starts 2026-02-01 00:00 JST.
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap();
        let earliest = BackdatingHorizon::PreviousMonth.earliest(tokyo, now);
        assert_eq!(earliest, Utc.with_ymd_and_hms(2026, 1, 31, 15, 0, 0).unwrap());
        assert!(BackdatingHorizon::PreviousMonth.accepts(tokyo, earliest, now));
        assert!(!BackdatingHorizon::PreviousMonth.accepts(tokyo, earliest - Duration::microseconds(1), now));
    }

    #[test]
    fn a_fixed_horizon_is_an_age() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap();
        let h = BackdatingHorizon::Fixed(Duration::days(3));
        assert!(h.accepts(Tz::UTC, now - Duration::days(3), now));
        assert!(!h.accepts(Tz::UTC, now - Duration::days(4), now));
    }
}
