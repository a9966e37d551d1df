//! Calendar windows of usage totals: the day and the month containing an instant, in the
//! customer's time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// What a window spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum WindowKind {
    Day,
    Month,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "DAY",
            Self::Month => "MONTH",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DAY" => Some(Self::Day),
            "MONTH" => Some(Self::Month),
            _ => None,
        }
    }
}

/// One calendar day or month: its first local date, and its bounds as instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub kind: WindowKind,
    /// First local date of the window (the day itself, or the 1st of the month).
    pub first_day: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The instant a local date starts in `tz`. Where midnight does not exist (a DST gap
/// at midnight) the day starts at the first instant that does.
fn start_of(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for minutes in (0..=180).step_by(15) {
        let local = midnight + chrono::Duration::minutes(minutes);
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&midnight)
}

/// The window of `kind` containing `t`, in time zone `tz`.
pub fn window_of(kind: WindowKind, tz: Tz, t: DateTime<Utc>) -> Window {
    let local = t.with_timezone(&tz).date_naive();
    let (first_day, next) = match kind {
        WindowKind::Day => (local, local + Days::new(1)),
        WindowKind::Month => {
            let first = local.with_day(1).unwrap_or(local);
            (first, first + Months::new(1))
        }
    };
    Window { kind, first_day, start: start_of(tz, first_day), end: start_of(tz, next) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn day_rolls_over_at_local_midnight() {
        let athens: Tz = "Europe/Athens".parse().unwrap();
        // 21:59 UTC on Jan 14 is 23:59 in Athens (UTC+2); 22:00 UTC is the next day there.
        let before = window_of(WindowKind::Day, athens, utc(2026, 1, 14, 21, 59));
        let after = window_of(WindowKind::Day, athens, utc(2026, 1, 14, 22, 0));
        assert_eq!(before.first_day, NaiveDate::from_ymd_opt(2026, 1, 14).unwrap());
        assert_eq!(after.first_day, NaiveDate::from_ymd_opt(2026, 1, 15).unwrap());
        assert_eq!(before.end, after.start);
        assert_eq!(after.start, utc(2026, 1, 14, 22, 0));
    }

    #[test]
    fn month_rolls_over_at_local_midnight_of_the_first() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 03:00 UTC on Feb 1 is still Jan 31 in New York (UTC-5).
        let w = window_of(WindowKind::Month, ny, utc(2026, 2, 1, 3, 0));
        assert_eq!(w.first_day, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(w.start, utc(2026, 1, 1, 5, 0));
        assert_eq!(w.end, utc(2026, 2, 1, 5, 0));
    }

    #[test]
    fn dst_days_are_23_and_25_hours_long() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let spring = window_of(WindowKind::Day, berlin, utc(2026, 3, 29, 12, 0));
        assert_eq!(spring.end - spring.start, chrono::Duration::hours(23));
        let autumn = window_of(WindowKind::Day, berlin, utc(2026, 10, 25, 12, 0));
        assert_eq!(autumn.end - autumn.start, chrono::Duration::hours(25));
    }

    #[test]
    fn day_without_a_midnight_starts_at_its_first_instant() {
        // Havana skips from 00:00 to 01:00 on its spring DST day.
        let havana: Tz = "America/Havana".parse().unwrap();
        let w = window_of(WindowKind::Day, havana, utc(2026, 3, 8, 12, 0));
        assert_eq!(w.start.with_timezone(&havana).time(), chrono::NaiveTime::from_hms_opt(1, 0, 0).unwrap());
    }

    #[test]
    fn window_kinds_are_stored_under_their_names() {
        assert_eq!((WindowKind::Day.as_str(), WindowKind::Month.as_str()), ("DAY", "MONTH"));
        for kind in [WindowKind::Day, WindowKind::Month] {
            assert_eq!(WindowKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(WindowKind::parse("day"), None);
    }
}
