//! Small, forgiving readers for the parts of FHIR R4 JSON the policy looks at:
//! references, codings and periods.
//!
//! Every reader here returns "nothing" for input it does not understand; the
//! callers decide what "nothing" means, always in the direction of showing
//! less (see the notes on [`Window`]).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// A span of time during which a link (an episode, a care team membership,
/// an encounter, an objection, a break-glass grant) is in force.
///
/// `start` is inclusive and `end` is exclusive; a missing bound is open.
/// A date without a time of day is read as whole days in UTC: an episode
/// that ends on `2024-05-01` is in force until the end of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// First instant in force, if bounded.
    pub start: Option<DateTime<Utc>>,
    /// First instant no longer in force, if bounded.
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    /// A window with no bounds: always in force.
    pub const ALWAYS: Window = Window {
        start: None,
        end: None,
    };

    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| s <= now) && self.end.is_none_or(|e| now < e)
    }
}

/// Reads a FHIR `Period` (an object with optional `start` and `end`).
///
/// Returns `None` when the period is present but cannot be read (not an
/// object, or a bound that is not a valid FHIR date or dateTime). A missing
/// period is [`Window::ALWAYS`].
pub(crate) fn period(value: Option<&Value>) -> Option<Window> {
    let Some(value) = value else {
        return Some(Window::ALWAYS);
    };
    if value.is_null() {
        return Some(Window::ALWAYS);
    }
    let obj = value.as_object()?;
    let start = match obj.get("start") {
        None | Some(Value::Null) => None,
        Some(v) => Some(date_time_floor(v.as_str()?)?),
    };
    let end = match obj.get("end") {
        None | Some(Value::Null) => None,
        Some(v) => Some(date_time_ceiling(v.as_str()?)?),
    };
    Some(Window { start, end })
}

/// The partial forms a FHIR `date` / `dateTime` may take.
enum Partial {
    Year(i32),
    Month(i32, u32),
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

fn parse_partial(s: &str) -> Option<Partial> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match s.len() {
        4 if digits(s) => Some(Partial::Year(s.parse().ok()?)),
        7 if digits(&s[..4]) && &s[4..5] == "-" && digits(&s[5..]) => {
            let year = s[..4].parse().ok()?;
            let month = s[5..].parse().ok()?;
            NaiveDate::from_ymd_opt(year, month, 1)?;
            Some(Partial::Month(year, month))
        }
        10 => Some(Partial::Day(NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?)),
        n if n > 10 => Some(Partial::Instant(
            DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc),
        )),
        _ => None,
    }
}

fn day_start(date: NaiveDate) -> Option<DateTime<Utc>> {
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

/// The first instant a FHIR date or dateTime can mean.
pub(crate) fn date_time_floor(s: &str) -> Option<DateTime<Utc>> {
    match parse_partial(s)? {
        Partial::Year(y) => day_start(NaiveDate::from_ymd_opt(y, 1, 1)?),
        Partial::Month(y, m) => day_start(NaiveDate::from_ymd_opt(y, m, 1)?),
        Partial::Day(d) => day_start(d),
        Partial::Instant(t) => Some(t),
    }
}

/// The first instant after everything a FHIR date or dateTime can mean
/// (an exclusive upper bound).
pub(crate) fn date_time_ceiling(s: &str) -> Option<DateTime<Utc>> {
    match parse_partial(s)? {
        Partial::Year(y) => day_start(NaiveDate::from_ymd_opt(y.checked_add(1)?, 1, 1)?),
        Partial::Month(y, m) => {
            let (y, m) = if m == 12 {
                (y.checked_add(1)?, 1)
            } else {
                (y, m + 1)
            };
            day_start(NaiveDate::from_ymd_opt(y, m, 1)?)
        }
        Partial::Day(d) => day_start(d.succ_opt()?),
        Partial::Instant(t) => t.checked_add_signed(Duration::nanoseconds(1)),
    }
}

/// A parsed literal reference: the resource type and the logical id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ref<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

/// Reads a literal reference string such as `Organization/abc`,
/// `Organization/abc/_history/3` or
/// `https://hub.example.org/fhir/Organization/abc`.
///
/// Contained (`#x`), `urn:` and malformed references give `None`.
pub(crate) fn parse_reference(s: &str) -> Option<Ref<'_>> {
    let s = s.trim();
    if s.starts_with('#') || s.starts_with("urn:") {
        return None;
    }
    // Drop a query or fragment.
    let s = s.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = s.split('/').collect();
    let n = parts.len();
    // `.../Type/id/_history/vid`
    let (kind, id) = if n >= 4 && parts[n - 2] == "_history" {
        (parts[n - 4], parts[n - 3])
    } else if n >= 2 {
        (parts[n - 2], parts[n - 1])
    } else {
        return None;
    };
    if !is_type_name(kind) || !is_id(id) {
        return None;
    }
    Some(Ref { kind, id })
}

pub(crate) fn is_type_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphanumeric())
}

/// FHIR ids: 1–64 characters from `A-Z a-z 0-9 - .`.
pub(crate) fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Reads the `reference` of a FHIR `Reference` object.
pub(crate) fn reference(value: &Value) -> Option<Ref<'_>> {
    parse_reference(value.get("reference")?.as_str()?)
}

/// The id of a reference to a resource of type `kind`, if it is one.
pub(crate) fn reference_to<'a>(value: &'a Value, kind: &str) -> Option<&'a str> {
    reference(value).filter(|r| r.kind == kind).map(|r| r.id)
}

/// Iterates over a field that may hold one value or an array of values.
pub(crate) fn one_or_many(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let slice: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(v) => std::slice::from_ref(v),
        None => &[],
    };
    slice.iter()
}

/// Iterates over the items of an array field; anything else gives nothing.
pub(crate) fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

/// A string field of an object.
pub(crate) fn str_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name)?.as_str()
}

/// Whether a `CodeableConcept` (or a list of them) has a coding with this
/// system and code.
pub(crate) fn has_coding(concepts: Option<&Value>, system: &str, code: &str) -> bool {
    one_or_many(concepts).any(|concept| {
        array(concept.get("coding"))
            .any(|c| str_field(c, "system") == Some(system) && str_field(c, "code") == Some(code))
    })
}

/// The codes of every coding with this system in a `CodeableConcept` (or a
/// list of them).
pub(crate) fn codes_in<'a>(
    concepts: Option<&'a Value>,
    system: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    one_or_many(concepts).flat_map(move |concept| {
        array(concept.get("coding")).filter_map(move |c| {
            if str_field(c, "system") == Some(system) {
                str_field(c, "code")
            } else {
                None
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = |s| parse_reference(s).map(|r| (r.kind, r.id));
        assert_eq!(r("Organization/abc"), Some(("Organization", "abc")));
        assert_eq!(
            r("Organization/abc/_history/2"),
            Some(("Organization", "abc"))
        );
        assert_eq!(
            r("https://hub.example.org/fhir/Patient/p-1"),
            Some(("Patient", "p-1"))
        );
        assert_eq!(r("Organization/abc#req-1"), Some(("Organization", "abc")));
        assert_eq!(r("#contained"), None);
        assert_eq!(r("urn:uuid:1234"), None);
        assert_eq!(r("Organization/"), None);
        assert_eq!(r("abc"), None);
        assert_eq!(r("organization/abc"), None);
        assert_eq!(r("Organization/a b"), None);
        assert_eq!(r(""), None);
    }

    #[test]
    fn dates() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(date_time_floor("2024"), Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(date_time_ceiling("2024"), Some(t("2025-01-01T00:00:00Z")));
        assert_eq!(
            date_time_ceiling("2024-12"),
            Some(t("2025-01-01T00:00:00Z"))
        );
        assert_eq!(
            date_time_ceiling("2024-02"),
            Some(t("2024-03-01T00:00:00Z"))
        );
        assert_eq!(
            date_time_ceiling("2024-02-29"),
            Some(t("2024-03-01T00:00:00Z"))
        );
        assert_eq!(
            date_time_floor("2024-02-29T10:00:00+01:00"),
            Some(t("2024-02-29T09:00:00Z"))
        );
        assert_eq!(date_time_floor("2024-13"), None);
        assert_eq!(date_time_floor("2023-02-29"), None);
        assert_eq!(date_time_floor("yesterday"), None);
        assert_eq!(date_time_floor("2024-01-01T10:00:00"), None);
        assert_eq!(date_time_floor("２０２４"), None);
    }

    #[test]
    fn periods() {
        assert_eq!(period(None), Some(Window::ALWAYS));
        assert_eq!(period(Some(&serde_json::json!({}))), Some(Window::ALWAYS));
        assert_eq!(period(Some(&serde_json::json!({"end": 3}))), None);
        assert_eq!(period(Some(&serde_json::json!("2024"))), None);
    }
}
