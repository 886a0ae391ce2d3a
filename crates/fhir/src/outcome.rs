//! OperationOutcome: how every error reaches a FHIR client.

use serde_json::{json, Value};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (the subset the hub uses, from the R4 IssueType value set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    Conflict,
    Exception,
    Informational,
    Throttled,
    Expired,
}

impl IssueType {
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::Conflict => "conflict",
            IssueType::Exception => "exception",
            IssueType::Informational => "informational",
            IssueType::Throttled => "throttled",
            IssueType::Expired => "expired",
        }
    }
}

/// One problem found with a request, with the element it concerns when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath-like location, e.g. `Observation.status` or `Bundle.entry[2].resource`.
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn information(diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Issue {
        self.expression = Some(expression.into());
        self
    }

    /// Prefixes the location, e.g. to place a resource's issue inside a Bundle entry.
    pub fn within(mut self, prefix: &str) -> Issue {
        self.expression = Some(match self.expression.take() {
            Some(e) => format!("{prefix}.{e}"),
            None => prefix.to_string(),
        });
        self
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.expression {
            Some(e) => write!(f, "{} (at {e})", self.diagnostics),
            None => f.write_str(&self.diagnostics),
        }
    }
}

/// Renders issues as an OperationOutcome resource.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({
                "severity": i.severity.code(),
                "code": i.code.code(),
                "diagnostics": i.diagnostics,
            });
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_carries_severity_code_diagnostics_and_location() {
        let oo = operation_outcome(&[Issue::error(IssueType::Required, "status is required")
            .at("status")
            .within("Observation")]);
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["severity"], "error");
        assert_eq!(oo["issue"][0]["code"], "required");
        assert_eq!(oo["issue"][0]["diagnostics"], "status is required");
        assert_eq!(oo["issue"][0]["expression"][0], "Observation.status");
    }
}
