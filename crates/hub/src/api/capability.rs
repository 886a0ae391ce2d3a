//! The CapabilityStatement, built from the same tables the hub runs on.

use careshare_fhir::search::params_for;
use careshare_fhir::types::R4_RESOURCE_TYPES;
use serde_json::{json, Value};

pub fn capability_statement(base: &str) -> Value {
    let resources: Vec<Value> = R4_RESOURCE_TYPES
        .iter()
        .map(|ty| {
            let mut params = vec![
                json!({"name": "_id", "type": "token"}),
                json!({"name": "_lastUpdated", "type": "date"}),
            ];
            params.extend(
                params_for(ty)
                    .iter()
                    .map(|p| json!({"name": p.name, "type": p.kind.code()})),
            );
            let includes: Vec<String> = params_for(ty)
                .iter()
                .filter(|p| matches!(p.name, "patient" | "subject"))
                .map(|p| format!("{ty}:{}", p.name))
                .collect();
            let mut r = json!({
                "type": ty,
                "interaction": [
                    {"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "delete"},
                    {"code": "history-instance"}, {"code": "history-type"},
                    {"code": "create"}, {"code": "search-type"}
                ],
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchParam": params,
            });
            if !includes.is_empty() {
                r["searchInclude"] = json!(includes);
            }
            r
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "Careshare",
        "kind": "instance",
        "software": {"name": "Careshare hub", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Careshare regional shared care record", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search parameters not listed here are refused with an OperationOutcome. Result parameters: _count, _sort (_id, _lastUpdated, -_lastUpdated), _summary=count, _include (patient/subject). Paging via next links reads as of the first page's snapshot.",
            "security": {
                "cors": false,
                "description": "Every request except GET /fhir/metadata needs an access token (Authorization: Bearer), obtained by staff sign-in at POST /auth/token; desktop devices prove their registered Ed25519 key for a device-bound token. Every request is recorded as an AuditEvent."
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}]
        }]
    })
}
