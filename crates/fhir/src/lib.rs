//! FHIR R4 JSON for Careshare, without I/O.
//!
//! Resources are `serde_json::Value`s kept exactly as written (key order and decimal
//! precision included); this crate gives typed views of the parts the product needs:
//! validation at the boundary ([`validate`]), references ([`reference`]), search parameters
//! and index extraction ([`search`]), patient compartments, Bundles ([`bundle`]) and
//! OperationOutcome ([`outcome`]). The hub, the desktop shell and the UI share it.

pub mod bundle;
pub mod canonical;
pub mod datetime;
pub mod outcome;
pub mod reference;
pub mod search;
pub mod types;
pub mod validate;

pub use outcome::{operation_outcome, Issue, IssueType};
pub use types::{is_resource_type, is_valid_id, VersionId};
pub use validate::{validate, Invalid, ReferenceRules};

/// Parses request or file bytes as JSON, skipping a UTF-8 byte order mark (RFC 8259 §8.1
/// lets a parser ignore one; some exporters write it).
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes)
}
