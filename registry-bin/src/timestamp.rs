//! Times in UTC for people and for peers: RFC 3339 as Go's
//! `time.RFC3339Nano` writes it (Distribution's notification `timestamp`:
//! nanoseconds with trailing zeros dropped, no fraction when it is zero), and
//! the calendar fields the web page shows. Twenty lines do not need a date
//! crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A time's calendar fields in UTC, to the second (times before the epoch read as it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Seconds since the epoch.
    pub unix: u64,
    /// Year, month (1-12), day (1-31).
    pub date: (u64, u64, u64),
    /// Hour, minute, second.
    pub time: (u64, u64, u64),
}

impl Utc {
    /// The fields of `at`.
    pub fn of(at: SystemTime) -> Utc {
        let unix = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rest) = (unix / 86_400, unix % 86_400);
        Utc {
            unix,
            date: civil_from_days(days),
            time: (rest / 3600, rest % 3600 / 60, rest % 60),
        }
    }

    /// `2006-01-02T15:04:05` (no zone, no fraction).
    pub fn iso(&self) -> String {
        let ((y, m, d), (hh, mm, ss)) = (self.date, self.time);
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")
    }
}

/// `2006-01-02T15:04:05.999999999Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = Utc::of(at).iso();
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_fields() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(Utc::of(at(0)).iso(), "1970-01-01T00:00:00");
        assert_eq!(Utc::of(at(1_709_251_199)).iso(), "2024-02-29T23:59:59");
        assert_eq!(Utc::of(at(1_800_000_000)).iso(), "2027-01-15T08:00:00");
    }

    #[test]
    fn formats_as_go_does() {
        let at = |secs, nanos| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        // 2026-12-03T09:46:54.288363856Z, as Distribution 2.8.2 wrote it.
        assert_eq!(
            rfc3339(at(1_796_291_214, 288_363_856)),
            "2026-12-03T09:46:54.288363856Z"
        );
        assert_eq!(
            rfc3339(at(951_782_400, 500_000_000)),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(
            rfc3339(at(4_107_542_399, 10)),
            "2100-02-28T23:59:59.00000001Z"
        );
    }
}
