//! `Reference.reference` values: what they point at and whether they are well formed.

use crate::types::{is_resource_type, is_valid_id};

/// A parsed `Reference.reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `Type/id` or `Type/id/_history/v`, or the same at the end of an absolute URL.
    Literal {
        resource_type: &'a str,
        id: &'a str,
        version: Option<&'a str>,
        /// The base URL for an absolute reference (`http://x/fhir`), if any.
        base: Option<&'a str>,
    },
    /// `#id`: a contained resource.
    Contained(&'a str),
    /// `urn:uuid:...` or `urn:oid:...`: a placeholder resolved inside a Bundle.
    Urn(&'a str),
    /// `Type?search`: resolved by search inside a transaction or batch.
    Conditional {
        resource_type: &'a str,
        query: &'a str,
    },
    /// An absolute URL that does not end in `Type/id` (e.g. a logical reference elsewhere).
    OtherUrl(&'a str),
}

/// Why a reference string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference '{0}' is empty")]
    Empty(String),
    #[error("reference '{0}' names an unknown resource type")]
    UnknownType(String),
    #[error("reference '{0}' has an illegal id (ids are 1-64 of A-Z a-z 0-9 - .)")]
    BadId(String),
    #[error(
        "reference '{0}' is not of the form Type/id, an absolute URL, a urn:uuid or #contained"
    )]
    Malformed(String),
}

/// Whether `s` starts with a URI scheme (RFC 3986: a letter, then letters, digits, `+`,
/// `-` or `.`, then `:`), as absolute references and Bundle fullUrls such as `resource:0` do.
fn has_uri_scheme(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

impl<'a> Reference<'a> {
    /// Parses a reference string.
    pub fn parse(s: &'a str) -> Result<Reference<'a>, ReferenceError> {
        if s.trim().is_empty() {
            return Err(ReferenceError::Empty(s.into()));
        }
        if let Some(frag) = s.strip_prefix('#') {
            return Ok(Reference::Contained(frag));
        }
        if s.starts_with("urn:uuid:") || s.starts_with("urn:oid:") {
            return Ok(Reference::Urn(s));
        }
        if let Some((ty, query)) = s.split_once('?') {
            if !ty.contains('/') && !ty.contains(':') {
                if !is_resource_type(ty) {
                    return Err(ReferenceError::UnknownType(s.into()));
                }
                return Ok(Reference::Conditional {
                    resource_type: ty,
                    query,
                });
            }
        }
        let absolute = s.starts_with("http://") || s.starts_with("https://");
        let parts: Vec<&str> = s.split('/').collect();
        // Look for `Type/id` or `Type/id/_history/v` at the end.
        let (ty_idx, version) = if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
            (parts.len() - 4, Some(parts[parts.len() - 1]))
        } else if parts.len() >= 2 {
            (parts.len() - 2, None)
        } else {
            (usize::MAX, None)
        };
        if ty_idx != usize::MAX {
            let ty = parts[ty_idx];
            let id = parts[ty_idx + 1];
            if is_resource_type(ty) {
                if !is_valid_id(id) || version.is_some_and(|v| !is_valid_id(v)) {
                    return Err(ReferenceError::BadId(s.into()));
                }
                let base = if ty_idx > 0 {
                    if !absolute {
                        return Err(ReferenceError::Malformed(s.into()));
                    }
                    Some(&s[..parts[..ty_idx].iter().map(|p| p.len() + 1).sum::<usize>() - 1])
                } else {
                    None
                };
                return Ok(Reference::Literal {
                    resource_type: ty,
                    id,
                    version,
                    base,
                });
            }
            if !absolute && ty_idx == 0 {
                return Err(ReferenceError::UnknownType(s.into()));
            }
        }
        if absolute || has_uri_scheme(s) {
            return Ok(Reference::OtherUrl(s));
        }
        Err(ReferenceError::Malformed(s.into()))
    }

    /// `Type/id` for a literal reference (local or absolute), which is how the hub indexes it.
    pub fn local_key(&self) -> Option<String> {
        match self {
            Reference::Literal {
                resource_type, id, ..
            } => Some(format!("{resource_type}/{id}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_references_parse() {
        assert_eq!(
            Reference::parse("Patient/123")
                .unwrap()
                .local_key()
                .unwrap(),
            "Patient/123"
        );
        let r = Reference::parse("http://hub.example/fhir/Patient/1/_history/2").unwrap();
        assert_eq!(
            r,
            Reference::Literal {
                resource_type: "Patient",
                id: "1",
                version: Some("2"),
                base: Some("http://hub.example/fhir"),
            }
        );
    }

    #[test]
    fn other_forms_parse() {
        assert!(matches!(
            Reference::parse("#med1"),
            Ok(Reference::Contained("med1"))
        ));
        assert!(matches!(
            Reference::parse("urn:uuid:0b9b3a4e-3a8f-4f4a-9ad1-8b6b7a1d2c3e"),
            Ok(Reference::Urn(_))
        ));
        assert!(matches!(
            Reference::parse("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"),
            Ok(Reference::Conditional {
                resource_type: "Patient",
                ..
            })
        ));
        assert!(matches!(
            Reference::parse("http://example.org/some/thing"),
            Ok(Reference::OtherUrl(_))
        ));
        assert!(matches!(
            Reference::parse("resource:0"),
            Ok(Reference::OtherUrl(_))
        ));
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(matches!(
            Reference::parse(""),
            Err(ReferenceError::Empty(_))
        ));
        assert!(matches!(
            Reference::parse("Patinet/1"),
            Err(ReferenceError::UnknownType(_))
        ));
        assert!(matches!(
            Reference::parse("Patient/a b"),
            Err(ReferenceError::BadId(_))
        ));
        assert!(matches!(
            Reference::parse("just-text"),
            Err(ReferenceError::Malformed(_))
        ));
        assert!(matches!(
            Reference::parse("x/Patient/1"),
            Err(ReferenceError::Malformed(_))
        ));
    }
}
