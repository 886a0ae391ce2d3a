//! FHIR date, dateTime and instant values as half-open ranges of microseconds since the epoch.
//!
//! A FHIR date is imprecise: `2024` means the whole year, `2024-03-05` the whole day. Search
//! compares ranges (`ge2024-03` matches anything that reaches into March 2024 or later), so
//! every value is turned into `[lo, hi)` at its stated precision. Values without a time zone
//! are read as UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// A half-open instant range `[lo, hi)` in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i64,
    pub hi: i64,
}

impl Range {
    /// The whole timeline: a Period with neither start nor end.
    pub const ALL: Range = Range {
        lo: i64::MIN,
        hi: i64::MAX,
    };
}

/// Why a date or time value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid FHIR {kind} (expected e.g. {example})")]
pub struct DateError {
    pub value: String,
    pub kind: &'static str,
    pub example: &'static str,
}

fn err(value: &str, kind: &'static str, example: &'static str) -> DateError {
    DateError {
        value: value.to_string(),
        kind,
        example,
    }
}

fn micros(dt: DateTime<Utc>) -> i64 {
    dt.timestamp_micros()
}

fn day_start(d: NaiveDate) -> i64 {
    micros(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists")))
}

/// Parses a FHIR `date` or `dateTime` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a full date-time
/// with a time zone) into the range it denotes.
pub fn parse_date_time(s: &str) -> Result<Range, DateError> {
    const EX: &str = "2024, 2024-03, 2024-03-05 or 2024-03-05T14:30:00Z";
    let bad = || err(s, "date/dateTime", EX);
    if s.len() < 4 || !s.is_char_boundary(4) {
        return Err(bad());
    }
    match s.len() {
        4 => {
            let y: i32 = s.parse().map_err(|_| bad())?;
            let lo = NaiveDate::from_ymd_opt(y, 1, 1).ok_or_else(bad)?;
            let hi = NaiveDate::from_ymd_opt(y + 1, 1, 1).ok_or_else(bad)?;
            Ok(Range {
                lo: day_start(lo),
                hi: day_start(hi),
            })
        }
        7 => {
            if s.as_bytes()[4] != b'-' {
                return Err(bad());
            }
            let y: i32 = s[..4].parse().map_err(|_| bad())?;
            let m: u32 = s[5..].parse().map_err(|_| bad())?;
            let lo = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
            let hi = if m == 12 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(y, m + 1, 1)
            }
            .ok_or_else(bad)?;
            Ok(Range {
                lo: day_start(lo),
                hi: day_start(hi),
            })
        }
        10 => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
            if d.year() < 1 {
                return Err(bad());
            }
            let lo = day_start(d);
            Ok(Range {
                lo,
                hi: lo + Duration::days(1).num_microseconds().unwrap_or(i64::MAX),
            })
        }
        _ => {
            // A full date-time: FHIR requires a time zone once hours are given.
            let dt = DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
            let lo = micros(dt.with_timezone(&Utc));
            // Precision: to the second unless fractional digits are given.
            let frac = s
                .split_once('.')
                .map(|(_, f)| f.bytes().take_while(u8::is_ascii_digit).count())
                .unwrap_or(0);
            let step = match frac {
                0 => 1_000_000,
                1 => 100_000,
                2 => 10_000,
                3 => 1_000,
                4 => 100,
                5 => 10,
                _ => 1,
            };
            Ok(Range { lo, hi: lo + step })
        }
    }
}

/// Parses a search value that may omit the time zone (`2024-03-05T10:00`), reading it as UTC.
pub fn parse_search_date(s: &str) -> Result<Range, DateError> {
    parse_date_time(s).or_else(|e| {
        for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                let lo = micros(Utc.from_utc_datetime(&dt));
                let step = if fmt.ends_with("%S") {
                    1_000_000
                } else {
                    60_000_000
                };
                return Ok(Range { lo, hi: lo + step });
            }
        }
        Err(e)
    })
}

/// Formats an instant (microseconds since the epoch) as a FHIR `instant` in UTC.
pub fn format_instant(micros: i64) -> String {
    match Utc.timestamp_micros(micros).single() {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => "1970-01-01T00:00:00.000000Z".to_string(),
    }
}

/// Parses a FHIR `instant` (always a full date-time with time zone).
pub fn parse_instant(s: &str) -> Result<i64, DateError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| micros(d.with_timezone(&Utc)))
        .map_err(|_| err(s, "instant", "2024-03-05T14:30:00.000Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        parse_instant(s).unwrap()
    }

    #[test]
    fn dates_cover_their_whole_precision() {
        assert_eq!(
            parse_date_time("2024").unwrap(),
            Range {
                lo: at("2024-01-01T00:00:00Z"),
                hi: at("2025-01-01T00:00:00Z")
            }
        );
        assert_eq!(
            parse_date_time("2024-12").unwrap(),
            Range {
                lo: at("2024-12-01T00:00:00Z"),
                hi: at("2025-01-01T00:00:00Z")
            }
        );
        assert_eq!(
            parse_date_time("2024-02-29").unwrap(),
            Range {
                lo: at("2024-02-29T00:00:00Z"),
                hi: at("2024-03-01T00:00:00Z")
            }
        );
        let r = parse_date_time("2024-03-05T10:00:00+01:00").unwrap();
        assert_eq!(r.lo, at("2024-03-05T09:00:00Z"));
        assert_eq!(r.hi - r.lo, 1_000_000);
        let r = parse_date_time("2024-03-05T10:00:00.25Z").unwrap();
        assert_eq!(r.hi - r.lo, 10_000);
    }

    #[test]
    fn invalid_dates_are_refused() {
        for bad in [
            "",
            "20",
            "2024-13",
            "2023-02-29",
            "2024-03-05T10:00",
            "24-03-05",
            "2024/03/05",
            "é024",
        ] {
            assert!(parse_date_time(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_search_date("2024-03-05T10:00").is_ok());
    }

    #[test]
    fn instants_round_trip_through_text() {
        let m = at("2026-11-26T06:52:02.123456Z");
        assert_eq!(format_instant(m), "2026-11-26T06:52:02.123456Z");
    }
}
