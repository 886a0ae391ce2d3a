//! "Now" and the local UTC offset, read from the browser engine.
//!
//! `chrono::Utc::now` panics on `wasm32-unknown-unknown`: never call it.

use chrono::{DateTime, FixedOffset, Utc};

/// The current instant.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// The local UTC offset in force now.
pub fn offset() -> FixedOffset {
    // `getTimezoneOffset` is UTC minus local time, in minutes.
    let minutes = js_sys::Date::new_0().get_timezone_offset();
    FixedOffset::west_opt((minutes * 60.0) as i32)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

/// What a screen needs to show times: now and the local offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Now (refreshed about once a minute).
    pub now: DateTime<Utc>,
    /// The local UTC offset.
    pub offset: FixedOffset,
}

impl Clock {
    /// The clock as it reads now.
    pub fn read() -> Clock {
        Clock {
            now: now(),
            offset: offset(),
        }
    }

    /// `07:42` in local time.
    pub fn clock(&self, at: DateTime<Utc>) -> String {
        careshare_view::format::clock(at, self.offset)
    }

    /// `07:42` today, `Tue 24 Nov 07:42` another day.
    pub fn when(&self, at: DateTime<Utc>) -> String {
        careshare_view::format::when(at, self.now, self.offset)
    }

    /// The freshness line of a patient.
    pub fn freshness(&self, data_as_of: Option<DateTime<Utc>>) -> String {
        careshare_view::format::freshness(data_as_of, self.now, self.offset)
    }
}

impl Clock {
    /// A FHIR date or instant as written on screen: an instant in local
    /// time, a date (or partial date) as recorded.
    pub fn fhir(&self, text: &str) -> String {
        match DateTime::parse_from_rfc3339(text) {
            Ok(at) => self.when(at.with_timezone(&Utc)),
            Err(_) => text.to_owned(),
        }
    }
}
