//! How values are written on screen, and the caseload search.
//!
//! Times are shown in the user's local time: the caller passes the UTC
//! offset in force (the UI reads it from the browser engine; tests fix it).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

use crate::api::CaseloadRow;

/// An NHS number as people write it: 3-3-4 digits separated by spaces
/// (`9434765919` → `943 476 5919`). Anything that is not ten digits is
/// returned trimmed, unchanged.
pub fn nhs_number(raw: &str) -> String {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        raw.trim().to_owned()
    }
}

/// Age in whole years on `today` of someone born on `birth_date`
/// (`YYYY-MM-DD`; a year or year-month alone gives `None`).
pub fn age(birth_date: &str, today: NaiveDate) -> Option<u32> {
    let born = NaiveDate::parse_from_str(birth_date, "%Y-%m-%d").ok()?;
    if born > today {
        return None;
    }
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// `07:42` in local time.
pub fn clock(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset).format("%H:%M").to_string()
}

/// `07:42` for today, `Tue 24 Nov 07:42` for another day.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>, offset: FixedOffset) -> String {
    let local = at.with_timezone(&offset);
    if local.date_naive() == now.with_timezone(&offset).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%a %-d %b %H:%M").to_string()
    }
}

/// How long ago, in words: `just now`, `12 min ago`, `3 h ago`, `2 days ago`.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes();
    match minutes {
        i64::MIN..=0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        60..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// The freshness line of a patient: `data as of 07:42, 3 h ago`, or that no
/// complete sync has brought them yet.
pub fn freshness(
    data_as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> String {
    match data_as_of {
        Some(at) => format!("data as of {}, {}", when(at, now, offset), ago(at, now)),
        None => "still arriving: not yet complete on this device".into(),
    }
}

/// Whether a caseload row matches what was typed in the search box: every
/// word must match the name, the NHS number (spaces ignored) or the postcode
/// (spaces and case ignored). An empty query matches everyone.
pub fn matches(row: &CaseloadRow, query: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let name = row.name.to_lowercase();
    let nhs = squash(&row.nhs_number);
    let postcode = squash(&row.postcode);
    let whole = squash(query);
    if !whole.is_empty() && (nhs.starts_with(&whole) || postcode.starts_with(&whole)) {
        return true;
    }
    query.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        name.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
            .any(|part| part.starts_with(&word))
            || nhs.starts_with(&word)
            || postcode.starts_with(&word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row() -> CaseloadRow {
        CaseloadRow {
            patient_id: "p1".into(),
            name: "KHAN, Amira".into(),
            nhs_number: nhs_number("9434765919"),
            birth_date: Some("1941-03-09".into()),
            age: None,
            address: "12 Mill Lane, Hexham NE46 3AB".into(),
            postcode: "NE46 3AB".into(),
            alerts: 0,
            visit_today: None,
            open_tasks: 0,
            data_as_of: None,
            break_glass_until: None,
        }
    }

    #[test]
    fn nhs_numbers_are_written_three_three_four() {
        assert_eq!(nhs_number("9434765919"), "943 476 5919");
        assert_eq!(nhs_number("943 476 5919"), "943 476 5919");
        assert_eq!(nhs_number(" 12345 "), "12345");
        assert_eq!(nhs_number("94347659x9"), "94347659x9");
    }

    #[test]
    fn age_counts_whole_years_up_to_the_birthday() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(age("1941-03-09", d("2026-03-08")), Some(84));
        assert_eq!(age("1941-03-09", d("2026-03-09")), Some(85));
        assert_eq!(age("2000-02-29", d("2026-02-28")), Some(25));
        assert_eq!(age("2000-02-29", d("2026-03-01")), Some(26));
        assert_eq!(age("1941", d("2026-03-09")), None);
        assert_eq!(age("2030-01-01", d("2026-03-09")), None);
    }

    #[test]
    fn freshness_says_when_and_how_long_ago_in_local_time() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 45, 0).unwrap();
        let bst = FixedOffset::east_opt(3600).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 7, 42, 0).unwrap();
        assert_eq!(
            freshness(Some(at), now, FixedOffset::east_opt(0).unwrap()),
            "data as of 07:42, 3 h ago"
        );
        assert_eq!(freshness(Some(at), now, bst), "data as of 08:42, 3 h ago");
        let before = Utc.with_ymd_and_hms(2026, 11, 24, 7, 42, 0).unwrap();
        assert_eq!(
            freshness(Some(before), now, FixedOffset::east_opt(0).unwrap()),
            "data as of Tue 24 Nov 07:42, 2 days ago"
        );
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - chrono::Duration::minutes(12), now), "12 min ago");
        assert!(freshness(None, now, bst).contains("not yet complete"));
    }

    #[test]
    fn search_finds_by_name_nhs_number_or_postcode() {
        let r = row();
        assert!(matches(&r, ""));
        assert!(matches(&r, "khan"));
        assert!(matches(&r, "Ami"));
        assert!(matches(&r, "amira khan"));
        assert!(matches(&r, "943 476"));
        assert!(matches(&r, "9434765919"));
        assert!(matches(&r, "ne46 3a"));
        assert!(matches(&r, "NE463AB"));
        assert!(!matches(&r, "smith"));
        assert!(!matches(&r, "476 5919"));
        assert!(!matches(&r, "khan smith"));
    }
}
