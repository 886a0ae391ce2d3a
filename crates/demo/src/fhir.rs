//! Small builders for FHIR JSON fragments, dates and attachments.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde_json::Value;

use crate::conventions::{
    meta_source, ACT_CODE_SYSTEM, CARESHARE_SENSITIVITY_SYSTEM, CONFIDENTIALITY_RESTRICTED,
    CONFIDENTIALITY_SYSTEM, SENSITIVITY_MENTAL_HEALTH, SENSITIVITY_SAFEGUARDING,
    SENSITIVITY_SEXUAL_HEALTH,
};

/// A sensitivity label carried in `meta.security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sensitivity {
    /// Mental health (`PSY`).
    MentalHealth,
    /// Sexual health (`STD`).
    SexualHealth,
    /// Safeguarding (Careshare's own code).
    Safeguarding,
}

impl Sensitivity {
    /// The `(system, code, display)` of the sensitivity coding.
    pub fn coding(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Sensitivity::MentalHealth => (
                ACT_CODE_SYSTEM,
                SENSITIVITY_MENTAL_HEALTH,
                "psychiatry information sensitivity",
            ),
            Sensitivity::SexualHealth => (
                ACT_CODE_SYSTEM,
                SENSITIVITY_SEXUAL_HEALTH,
                "sexually transmitted disease information sensitivity",
            ),
            Sensitivity::Safeguarding => (
                CARESHARE_SENSITIVITY_SYSTEM,
                SENSITIVITY_SAFEGUARDING,
                "safeguarding information sensitivity",
            ),
        }
    }
}

/// `{"reference": "Type/id"}`.
pub(crate) fn reference(resource_type: &str, id: &str) -> Value {
    obj! { "reference": format!("{resource_type}/{id}") }
}

/// `{"reference": "Type/id", "display": ...}`.
pub(crate) fn reference_display(resource_type: &str, id: &str, display: &str) -> Value {
    obj! { "reference": format!("{resource_type}/{id}"), "display": display }
}

/// One `Coding`.
pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    obj! { "system": system, "code": code, "display": display }
}

/// A `CodeableConcept` with one coding and the display as text.
pub(crate) fn concept(system: &str, code: &str, display: &str) -> Value {
    obj! { "coding": vec![coding(system, code, display)] , "text": display }
}

/// A `CodeableConcept` with one coding and its own text.
pub(crate) fn concept_text(system: &str, code: &str, display: &str, text: &str) -> Value {
    obj! { "coding": vec![coding(system, code, display)] , "text": text }
}

/// `meta` naming the authoring organisation.
pub(crate) fn meta(organization_id: &str) -> Value {
    obj! { "source": meta_source(organization_id) }
}

/// `meta` naming the authoring organisation, labelled restricted and sensitive.
pub(crate) fn meta_sensitive(organization_id: &str, sensitivity: Sensitivity) -> Value {
    let (system, code, display) = sensitivity.coding();
    obj! {
        "source": meta_source(organization_id),
        "security": vec![
            coding(CONFIDENTIALITY_SYSTEM, CONFIDENTIALITY_RESTRICTED, "restricted"),
            coding(system, code, display),]
    }
}

/// `meta` with an optional sensitivity label.
pub(crate) fn meta_maybe(organization_id: &str, sensitivity: Option<Sensitivity>) -> Value {
    match sensitivity {
        Some(s) => meta_sensitive(organization_id, s),
        None => meta(organization_id),
    }
}

/// A UCUM `Quantity`.
pub(crate) fn quantity(value: Value, unit: &str, code: &str) -> Value {
    obj! {
        "value": value,
        "unit": unit,
        "system": crate::conventions::UCUM,
        "code": code
    }
}

/// A JSON number with one decimal place from a value in tenths (`368` →
/// `36.8`). Written as text, so the digits are exact.
pub(crate) fn decimal_tenths(tenths: i64) -> Value {
    let sign = if tenths < 0 { "-" } else { "" };
    let abs = tenths.unsigned_abs();
    let text = format!("{sign}{}.{}", abs / 10, abs % 10);
    serde_json::from_str(&text).unwrap_or_else(|_| Value::from(tenths))
}

/// A FHIR `date`: `2024-05-01`.
pub(crate) fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A FHIR `dateTime`/`instant` at a local (UK) wall-clock time on `d`:
/// `2024-05-01T09:30:00+01:00`. British Summer Time runs from the last
/// Sunday of March to the last Sunday of October; the times used here are
/// all in the daytime, after the 01:00 UTC change.
pub(crate) fn local_time(d: NaiveDate, hour: u32, minute: u32) -> String {
    let offset = if is_british_summer_time(d) {
        "+01:00"
    } else {
        "+00:00"
    };
    format!(
        "{}T{:02}:{:02}:00{offset}",
        d.format("%Y-%m-%d"),
        hour.min(23),
        minute.min(59)
    )
}

/// A local time given as minutes after midnight.
pub(crate) fn local_minutes(d: NaiveDate, minutes: u32) -> String {
    local_time(d, minutes / 60, minutes % 60)
}

fn is_british_summer_time(d: NaiveDate) -> bool {
    match (last_sunday(d.year(), 3), last_sunday(d.year(), 10)) {
        (Some(start), Some(end)) => d >= start && d < end,
        _ => false,
    }
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let mut d = first_of_next - Duration::days(1);
    while d.weekday() != Weekday::Sun {
        d -= Duration::days(1);
    }
    Some(d)
}

/// Standard base64 (RFC 4648, with padding), as FHIR `base64Binary` wants.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// An inline plain-text `Attachment`.
pub(crate) fn text_attachment(title: &str, text: &str, created: &str) -> Value {
    obj! {
        "contentType": "text/plain; charset=utf-8",
        "language": "en-GB",
        "data": base64(text.as_bytes()),
        "title": title,
        "creation": created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn decimals_keep_their_digits() {
        assert_eq!(decimal_tenths(368).to_string(), "36.8");
        assert_eq!(decimal_tenths(370).to_string(), "37.0");
        assert_eq!(decimal_tenths(-5).to_string(), "-0.5");
    }

    #[test]
    fn uk_offsets() {
        let winter = NaiveDate::from_ymd_opt(2025, 1, 15).unwrap_or_default();
        let summer = NaiveDate::from_ymd_opt(2025, 7, 15).unwrap_or_default();
        // 2025: BST from Sunday 30 March to Sunday 26 October.
        let first_bst = NaiveDate::from_ymd_opt(2025, 3, 30).unwrap_or_default();
        let first_gmt = NaiveDate::from_ymd_opt(2025, 10, 26).unwrap_or_default();
        assert_eq!(local_time(winter, 9, 5), "2025-01-15T09:05:00+00:00");
        assert_eq!(local_time(summer, 14, 30), "2025-07-15T14:30:00+01:00");
        assert!(local_time(first_bst, 10, 0).ends_with("+01:00"));
        assert!(local_time(first_gmt, 10, 0).ends_with("+00:00"));
        assert!(local_time(first_bst - Duration::days(1), 10, 0).ends_with("+00:00"));
    }
}
