//! The one boundary error of the HTTP API: a status and an OperationOutcome. Internal
//! failures are logged with a reference and answered with that reference only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use careshare_fhir::validate::Severity;
use careshare_fhir::{operation_outcome, Issue, IssueType};

use crate::engine::EngineError;

/// An HTTP error answered with an OperationOutcome.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
    /// Tells a revoked device to wipe its local record (header `Careshare-Instruction: wipe`).
    pub wipe: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: IssueType, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            issues: vec![Issue::error(code, msg)],
            wipe: false,
        }
    }

    pub fn with_issues(status: StatusCode, issues: Vec<Issue>) -> ApiError {
        ApiError {
            status,
            issues,
            wipe: false,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, msg)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Invalid(inv) => ApiError::with_issues(
                match inv.severity {
                    Severity::Structure => StatusCode::BAD_REQUEST,
                    Severity::Content => StatusCode::UNPROCESSABLE_ENTITY,
                },
                inv.issues,
            ),
            EngineError::BadRequest(issues) => {
                ApiError::with_issues(StatusCode::BAD_REQUEST, issues)
            }
            EngineError::NotFound(m) => {
                ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, m)
            }
            EngineError::Gone(m) => ApiError::new(StatusCode::GONE, IssueType::Deleted, m),
            EngineError::PreconditionFailed(m) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, IssueType::Conflict, m)
            }
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, IssueType::Conflict, m),
            EngineError::NotSupported(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, IssueType::NotSupported, m)
            }
            EngineError::Forbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, m)
            }
            EngineError::Store(e) => internal(&e),
        }
    }
}

impl From<crate::access::AccessError> for ApiError {
    fn from(e: crate::access::AccessError) -> ApiError {
        use crate::access::AccessError as A;
        match e {
            A::MissingRole(_) | A::BadRole(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                IssueType::Forbidden,
                format!("your account cannot be used for the record: {e}"),
            ),
            A::Store(e) => internal(&e),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> ApiError {
        use crate::auth::AuthError as A;
        let msg = e.to_string();
        match e {
            A::InvalidCredentials | A::MissingToken | A::InvalidToken | A::BadProof => {
                ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Login, msg)
            }
            A::Expired => ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Expired, msg),
            A::AccountRevoked => ApiError::new(StatusCode::UNAUTHORIZED, IssueType::Security, msg),
            A::Locked { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, IssueType::Throttled, msg)
            }
            A::DeviceRevoked => ApiError {
                wipe: true,
                ..ApiError::new(StatusCode::FORBIDDEN, IssueType::Security, msg)
            },
            A::UnknownDevice | A::NotAdministrator => {
                ApiError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, msg)
            }
            A::NoRecoveryKey => ApiError::new(StatusCode::CONFLICT, IssueType::NotFound, msg),
            A::BadPublicKey | A::BadRecoveryKey | A::WeakPassphrase => {
                ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, msg)
            }
            A::Store(e) => internal(&e),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        internal(&e)
    }
}

/// Logs an internal failure and answers with a reference to the log line only.
pub fn internal(e: &dyn std::fmt::Display) -> ApiError {
    let reference = uuid::Uuid::new_v4();
    tracing::error!(%reference, error = %e, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        IssueType::Exception,
        format!("the hub could not complete the request (reference {reference})"),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut oo = operation_outcome(&self.issues);
        if self.wipe {
            oo["issue"][0]["details"] = serde_json::json!({"coding": [{
                "system": "https://careshare.example.org/fhir/CodeSystem/device-instruction",
                "code": "wipe",
                "display": "Wipe the local record and lock the app"
            }]});
        }
        let body = serde_json::to_vec(&oo).unwrap_or_default();
        let mut r = (self.status, body).into_response();
        if self.wipe {
            r.headers_mut()
                .insert("careshare-instruction", HeaderValue::from_static("wipe"));
        }
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::FHIR_JSON),
        );
        r
    }
}
