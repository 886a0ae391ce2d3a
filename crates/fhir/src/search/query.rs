//! Parsing a search request (`GET /fhir/Type?...`) into typed clauses.
//!
//! Anything the hub does not support is an error, never ignored: a silently broader result
//! is worse than a refusal for a clinician looking for one patient's allergies.

use super::extract::normalize_string;
use super::params::{param, ParamKind, SearchParam};
use crate::datetime::{parse_search_date, Range};
use crate::types::is_valid_id;

/// Largest page a client may ask for.
pub const MAX_COUNT: usize = 1000;
/// Page size when the client does not say.
pub const DEFAULT_COUNT: usize = 50;

/// A date search prefix (FHIR R4 search, "prefixes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

impl Prefix {
    /// Whether a stored range `t` satisfies `self` against the searched range `s`.
    pub fn matches(self, t: Range, s: Range) -> bool {
        match self {
            Prefix::Eq => t.lo >= s.lo && t.hi <= s.hi,
            Prefix::Ne => !(t.lo >= s.lo && t.hi <= s.hi),
            Prefix::Gt => t.hi > s.hi,
            Prefix::Lt => t.lo < s.lo,
            Prefix::Ge => t.hi > s.lo,
            Prefix::Le => t.lo < s.hi,
            Prefix::Sa => t.lo >= s.hi,
            Prefix::Eb => t.hi <= s.lo,
        }
    }
}

/// A token value: `code`, `system|code`, `|code` (no system) or `system|` (any code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `None`: any system. `Some("")`: no system.
    pub system: Option<String>,
    /// `None`: any code in the system.
    pub code: Option<String>,
}

/// How a string value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

/// One value of a clause; values of one clause are OR-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClauseValue {
    Token(Token),
    String(String, StringMode),
    Date(Prefix, Range),
    Reference(String),
}

/// One search condition; the clauses of a request are AND-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    Id(Vec<String>),
    LastUpdated(Vec<(Prefix, Range)>),
    Param {
        param: &'static SearchParam,
        values: Vec<ClauseValue>,
    },
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By logical id: the default, and the most stable order for paging.
    Id,
    LastUpdatedAsc,
    LastUpdatedDesc,
}

/// Where a page continues: the change sequence the search reads as of, and the last key seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub snapshot: i64,
    pub after: String,
}

impl PageToken {
    pub fn parse(s: &str) -> Option<PageToken> {
        let (snap, after) = s.split_once(':')?;
        Some(PageToken {
            snapshot: snap.parse().ok().filter(|s: &i64| *s >= 0)?,
            after: after.to_string(),
        })
    }

    pub fn render(&self) -> String {
        format!("{}:{}", self.snapshot, self.after)
    }
}

/// A parsed search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub resource_type: String,
    pub clauses: Vec<Clause>,
    pub count: usize,
    pub sort: Sort,
    pub summary_count: bool,
    /// `_include` of the patient via these reference parameters.
    pub includes: Vec<&'static SearchParam>,
    pub page: Option<PageToken>,
    /// The clause parameters in their original form, used to build `self` and `next` links.
    pub canonical_params: Vec<(String, String)>,
}

/// A search request the hub cannot honour exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("unknown search parameter '{name}' for {resource_type}")]
    UnknownParameter { resource_type: String, name: String },
    #[error("search parameter '{0}' is not supported (supported: see CapabilityStatement)")]
    Unsupported(String),
    #[error("modifier ':{modifier}' is not supported on parameter '{name}'")]
    UnsupportedModifier { name: String, modifier: String },
    #[error("invalid value '{value}' for parameter '{name}': {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> SearchError {
    SearchError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Splits a parameter value on unescaped commas (`\,` is a literal comma).
fn split_or(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some(',' | '|' | '$' | '\\')) => {
                out.last_mut()
                    .expect("non-empty")
                    .push(chars.next().expect("peeked"));
            }
            ',' => out.push(String::new()),
            c => out.last_mut().expect("non-empty").push(c),
        }
    }
    out
}

fn parse_prefixed_date(name: &str, v: &str) -> Result<(Prefix, Range), SearchError> {
    let (prefix, rest) = match v.get(..2) {
        Some("eq") => (Prefix::Eq, &v[2..]),
        Some("ne") => (Prefix::Ne, &v[2..]),
        Some("gt") => (Prefix::Gt, &v[2..]),
        Some("lt") => (Prefix::Lt, &v[2..]),
        Some("ge") => (Prefix::Ge, &v[2..]),
        Some("le") => (Prefix::Le, &v[2..]),
        Some("sa") => (Prefix::Sa, &v[2..]),
        Some("eb") => (Prefix::Eb, &v[2..]),
        Some("ap") => {
            return Err(invalid(name, v, "the 'ap' prefix is not supported"));
        }
        _ => (Prefix::Eq, v),
    };
    let range = parse_search_date(rest).map_err(|e| invalid(name, v, e.to_string()))?;
    Ok((prefix, range))
}

fn parse_value(
    p: &'static SearchParam,
    modifier: Option<&str>,
    v: &str,
) -> Result<ClauseValue, SearchError> {
    if v.is_empty() {
        return Err(invalid(p.name, v, "empty value"));
    }
    match p.kind {
        ParamKind::Token => {
            let token = match v.split_once('|') {
                Some((sys, code)) => Token {
                    system: Some(sys.to_string()),
                    code: (!code.is_empty()).then(|| code.to_string()),
                },
                None => Token {
                    system: None,
                    code: Some(v.to_string()),
                },
            };
            if token.code.is_none() && token.system.as_deref() == Some("") {
                return Err(invalid(p.name, v, "give a system, a code or both"));
            }
            Ok(ClauseValue::Token(token))
        }
        ParamKind::String => {
            let mode = match modifier {
                None => StringMode::StartsWith,
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                Some(_) => unreachable!("checked by caller"),
            };
            let value = if mode == StringMode::Exact {
                v.to_string()
            } else {
                normalize_string(v)
            };
            Ok(ClauseValue::String(value, mode))
        }
        ParamKind::Date => {
            let (prefix, range) = parse_prefixed_date(p.name, v)?;
            Ok(ClauseValue::Date(prefix, range))
        }
        ParamKind::Reference => {
            let target = match (v.split_once('/'), modifier, p.target) {
                (Some((ty, id)), None, _) => {
                    if !crate::types::is_resource_type(ty) || !is_valid_id(id) {
                        return Err(invalid(p.name, v, "expected Type/id"));
                    }
                    if p.target.is_some_and(|t| t != ty) {
                        return Err(invalid(
                            p.name,
                            v,
                            format!("this parameter only refers to {}", p.target.unwrap_or("")),
                        ));
                    }
                    format!("{ty}/{id}")
                }
                (None, Some(ty), _) | (None, None, Some(ty)) => {
                    if !is_valid_id(v) {
                        return Err(invalid(p.name, v, "not a legal id"));
                    }
                    format!("{ty}/{v}")
                }
                (None, None, None) => {
                    return Err(invalid(
                        p.name,
                        v,
                        "give the target as Type/id (or use the :Type modifier)",
                    ))
                }
                (Some(_), Some(_), _) => {
                    return Err(invalid(p.name, v, "give either :Type or Type/id, not both"))
                }
            };
            Ok(ClauseValue::Reference(target))
        }
    }
}

fn check_modifier(p: &'static SearchParam, modifier: Option<&str>) -> Result<(), SearchError> {
    let ok = match (p.kind, modifier) {
        (_, None) => true,
        (ParamKind::String, Some("exact" | "contains")) => true,
        (ParamKind::Reference, Some(ty)) => {
            crate::types::is_resource_type(ty) && p.target.is_none_or(|t| t == ty)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SearchError::UnsupportedModifier {
            name: p.name.to_string(),
            modifier: modifier.unwrap_or_default().to_string(),
        })
    }
}

/// Parses the decoded query pairs of a search on `resource_type`.
pub fn parse_search(
    resource_type: &str,
    pairs: &[(String, String)],
) -> Result<SearchRequest, SearchError> {
    let mut req = SearchRequest {
        resource_type: resource_type.to_string(),
        clauses: Vec::new(),
        count: DEFAULT_COUNT,
        sort: Sort::Id,
        summary_count: false,
        includes: Vec::new(),
        page: None,
        canonical_params: Vec::new(),
    };
    for (key, value) in pairs {
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let keep = match name {
            "_count" => {
                if modifier.is_some() {
                    return Err(SearchError::Unsupported(key.clone()));
                }
                let n: usize = value
                    .parse()
                    .map_err(|_| invalid("_count", value, "expected a whole number"))?;
                req.count = n.min(MAX_COUNT);
                true
            }
            "_sort" => {
                req.sort = match value.as_str() {
                    "_lastUpdated" => Sort::LastUpdatedAsc,
                    "-_lastUpdated" => Sort::LastUpdatedDesc,
                    "_id" => Sort::Id,
                    other => {
                        return Err(invalid(
                            "_sort",
                            other,
                            "only _id, _lastUpdated and -_lastUpdated are supported",
                        ))
                    }
                };
                true
            }
            "_summary" => {
                match value.as_str() {
                    "count" => req.summary_count = true,
                    "false" => {}
                    other => {
                        return Err(invalid(
                            "_summary",
                            other,
                            "only _summary=count and _summary=false are supported",
                        ))
                    }
                }
                true
            }
            "_include" => {
                let parts: Vec<&str> = value.split(':').collect();
                let p = match parts.as_slice() {
                    [ty, name] | [ty, name, "Patient"] if *ty == resource_type => {
                        param(resource_type, name)
                            .filter(|p| p.kind == ParamKind::Reference)
                            .filter(|p| matches!(p.name, "patient" | "subject"))
                    }
                    _ => None,
                };
                match p {
                    Some(p) => req.includes.push(p),
                    None => {
                        return Err(invalid(
                            "_include",
                            value,
                            format!(
                                "only {resource_type}:patient (and :subject where defined) can be included"
                            ),
                        ))
                    }
                }
                true
            }
            "_page" => {
                req.page =
                    Some(PageToken::parse(value).ok_or_else(|| {
                        invalid("_page", value, "not a page token from a next link")
                    })?);
                false
            }
            "_format" => {
                if !matches!(
                    value.as_str(),
                    "json" | "application/fhir+json" | "application/json"
                ) {
                    return Err(invalid("_format", value, "only JSON is supported"));
                }
                false
            }
            "_pretty" => false,
            "_id" => {
                if modifier.is_some() {
                    return Err(SearchError::UnsupportedModifier {
                        name: "_id".into(),
                        modifier: modifier.unwrap_or_default().into(),
                    });
                }
                let ids = split_or(value);
                if let Some(bad) = ids.iter().find(|i| !is_valid_id(i)) {
                    return Err(invalid("_id", bad, "not a legal id"));
                }
                req.clauses.push(Clause::Id(ids));
                true
            }
            "_lastUpdated" => {
                if modifier.is_some() {
                    return Err(SearchError::UnsupportedModifier {
                        name: "_lastUpdated".into(),
                        modifier: modifier.unwrap_or_default().into(),
                    });
                }
                let vals = split_or(value)
                    .iter()
                    .map(|v| parse_prefixed_date("_lastUpdated", v))
                    .collect::<Result<Vec<_>, _>>()?;
                req.clauses.push(Clause::LastUpdated(vals));
                true
            }
            n if n.starts_with('_') => return Err(SearchError::Unsupported(key.clone())),
            n if n.contains('.') => {
                return Err(SearchError::Unsupported(format!("{key} (chained search)")))
            }
            n => {
                let p = param(resource_type, n).ok_or_else(|| SearchError::UnknownParameter {
                    resource_type: resource_type.to_string(),
                    name: n.to_string(),
                })?;
                check_modifier(p, modifier)?;
                let values = split_or(value)
                    .iter()
                    .map(|v| parse_value(p, modifier, v))
                    .collect::<Result<Vec<_>, _>>()?;
                req.clauses.push(Clause::Param { param: p, values });
                true
            }
        };
        if keep {
            req.canonical_params.push((key.clone(), value.clone()));
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tokens_strings_dates_and_references_parse() {
        let r = parse_search(
            "Observation",
            &pairs(&[
                ("code", "http://loinc.org|8867-4,|x,sys|"),
                ("date", "ge2024-01"),
                ("patient", "p1"),
                ("_count", "5000"),
                ("_sort", "-_lastUpdated"),
            ]),
        )
        .unwrap();
        assert_eq!(r.count, MAX_COUNT);
        assert_eq!(r.sort, Sort::LastUpdatedDesc);
        let Clause::Param { values, .. } = &r.clauses[0] else {
            panic!()
        };
        assert_eq!(
            values[0],
            ClauseValue::Token(Token {
                system: Some("http://loinc.org".into()),
                code: Some("8867-4".into())
            })
        );
        assert_eq!(
            values[1],
            ClauseValue::Token(Token {
                system: Some("".into()),
                code: Some("x".into())
            })
        );
        assert_eq!(
            values[2],
            ClauseValue::Token(Token {
                system: Some("sys".into()),
                code: None
            })
        );
        let Clause::Param { values, .. } = &r.clauses[2] else {
            panic!()
        };
        assert_eq!(values[0], ClauseValue::Reference("Patient/p1".into()));
    }

    #[test]
    fn unsupported_requests_are_refused_not_broadened() {
        for (ty, q) in [
            ("Patient", ("nickname", "x")),
            ("Patient", ("_elements", "name")),
            ("Patient", ("name:phonetic", "x")),
            ("Patient", ("general-practitioner.name", "x")),
            ("Observation", ("subject", "p1")),
            ("Observation", ("patient", "Group/1")),
            ("Observation", ("date", "ap2024")),
            ("Observation", ("date", "yesterday")),
            ("Patient", ("_sort", "family")),
            ("Patient", ("_include", "Observation:patient")),
            ("Patient", ("_summary", "text")),
            ("Patient", ("_format", "xml")),
        ] {
            assert!(
                parse_search(ty, &pairs(&[q])).is_err(),
                "{ty}?{}={} should be refused",
                q.0,
                q.1
            );
        }
    }

    #[test]
    fn escaped_commas_stay_in_the_value() {
        assert_eq!(split_or(r"a\,b,c"), vec!["a,b".to_string(), "c".into()]);
    }

    #[test]
    fn date_prefixes_follow_the_spec() {
        let s = Range { lo: 10, hi: 20 };
        assert!(Prefix::Eq.matches(Range { lo: 12, hi: 13 }, s));
        assert!(!Prefix::Eq.matches(Range { lo: 5, hi: 13 }, s));
        assert!(Prefix::Ge.matches(Range { lo: 12, hi: 13 }, s));
        assert!(Prefix::Gt.matches(Range { lo: 25, hi: 26 }, s));
        assert!(!Prefix::Gt.matches(Range { lo: 12, hi: 13 }, s));
        assert!(Prefix::Lt.matches(Range { lo: 1, hi: 2 }, s));
        assert!(Prefix::Sa.matches(Range { lo: 20, hi: 21 }, s));
        assert!(Prefix::Eb.matches(Range { lo: 1, hi: 10 }, s));
    }
}

/// Whether a resource not yet stored (its id and index entries) matches the request's
/// clauses. Used to resolve conditional references against the resources a transaction is
/// creating. `_lastUpdated` never matches: an unstored resource has no update time yet.
pub fn matches(req: &SearchRequest, id: &str, entries: &super::IndexEntries) -> bool {
    req.clauses.iter().all(|clause| match clause {
        Clause::Id(ids) => ids.iter().any(|i| i == id),
        Clause::LastUpdated(_) => false,
        Clause::Param { param, values } => values.iter().any(|v| match v {
            ClauseValue::Token(t) => entries.tokens.iter().any(|(p, s, c)| {
                *p == param.name
                    && t.system.as_ref().is_none_or(|ts| ts == s)
                    && t.code.as_ref().is_none_or(|tc| tc == c)
            }),
            ClauseValue::String(value, mode) => entries.strings.iter().any(|(p, n, e)| {
                *p == param.name
                    && match mode {
                        StringMode::StartsWith => n.starts_with(value.as_str()),
                        StringMode::Contains => n.contains(value.as_str()),
                        StringMode::Exact => e == value,
                    }
            }),
            ClauseValue::Date(prefix, range) => entries.dates.iter().any(|(p, lo, hi)| {
                *p == param.name && prefix.matches(Range { lo: *lo, hi: *hi }, *range)
            }),
            ClauseValue::Reference(target) => entries
                .references
                .iter()
                .any(|(p, t)| *p == param.name && t == target),
        }),
    })
}

#[cfg(test)]
mod match_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_memory_matching_agrees_with_the_parameter_table() {
        let org = json!({"resourceType": "Organization", "id": "o1", "name": "Leeds General",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RR8"}]});
        let e = crate::search::extract(&org).unwrap();
        let req = |q: &str| {
            let pairs: Vec<(String, String)> = q
                .split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            parse_search("Organization", &pairs).unwrap()
        };
        assert!(matches(
            &req("identifier=https://fhir.nhs.uk/Id/ods-organization-code|RR8"),
            "o1",
            &e
        ));
        assert!(matches(&req("identifier=RR8&name=leeds"), "o1", &e));
        assert!(!matches(&req("identifier=other|RR8"), "o1", &e));
        assert!(!matches(&req("name=general"), "o1", &e));
        assert!(matches(&req("name:contains=general"), "o1", &e));
        assert!(!matches(&req("_id=o2"), "o1", &e));
    }
}
