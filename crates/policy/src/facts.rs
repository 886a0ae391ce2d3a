//! What the policy needs to know about one record, read from its FHIR JSON.
//!
//! # Kinds of record
//!
//! Every record falls into one kind, which decides who may see it:
//!
//! | kind | resource types | about a patient? |
//! |---|---|---|
//! | demographics | Patient, RelatedPerson | yes |
//! | care coordination | CarePlan, Task, Flag, Appointment, AppointmentResponse, the patient's own CareTeam, EpisodeOfCare, Consent | yes |
//! | clinical | every other type that names a patient (Observation, Condition, AllergyIntolerance, MedicationStatement, MedicationRequest, Encounter, DocumentReference, Provenance about a patient, …) | yes |
//! | directory and reference data | Organization, Practitioner, PractitionerRole, Location, HealthcareService, Endpoint, OrganizationAffiliation, Schedule, Slot, team CareTeams (and CareTeams naming no patient), Medication, Substance, Questionnaire, ValueSet, CodeSystem and other definitions | no |
//! | device registry | Device that names no patient | no |
//! | audit | AuditEvent, Provenance that names no patient | no |
//! | other | any other type that names no patient (Bundle, Binary, Group, Person, Basic without a patient, …) | no |
//!
//! A record of a clinical type that names no patient is not shown to
//! anyone: there is no care relationship that could justify it.
//!
//! # The patient a record is about
//!
//! The patient is read from the field FHIR uses for that type (`subject`,
//! `patient`, `for`, `beneficiary`, Appointment participants, …). A record
//! naming more than one patient (a joint appointment, say) can only be seen
//! by someone allowed to see each of those patients.
//!
//! # The organisation that wrote a record
//!
//! `meta.source` = `Organization/<id>` (an absolute URL ending in
//! `/Organization/<id>`, or a `#fragment` after it, is accepted). Anything
//! else means "unknown".
//!
//! # Social care records
//!
//! Whether a record is a social care record depends on who wrote it: a
//! record written by an organisation whose `Organization.type` carries
//! [`ORG_KIND_SYSTEM`] `social-care` is a social care record. The hub keeps
//! these organisations in an [`OrgIndex`].

use std::collections::BTreeMap;

use serde_json::Value;

use crate::codes::*;
use crate::fhir;
use crate::labels::Labels;

/// The kind of a record (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Patient and RelatedPerson.
    Demographics,
    /// Care plans, tasks, alerts, appointments, care teams, episodes,
    /// consents.
    CareCoordination,
    /// Everything else about a patient.
    Clinical,
    /// Organisations, staff, teams, places and shared reference data.
    Directory,
    /// Devices that are not attached to a patient (for example the
    /// region's laptops).
    DeviceRegistry,
    /// The audit trail.
    Audit,
    /// Anything else that names no patient; no rule opens it.
    Other,
}

impl Kind {
    /// Whether records of this kind belong to a patient's record.
    pub const fn is_patient_record(self) -> bool {
        matches!(
            self,
            Kind::Demographics | Kind::CareCoordination | Kind::Clinical
        )
    }
}

/// Why a resource could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    /// The value is not a JSON object.
    #[error("a resource must be a JSON object")]
    NotAnObject,
    /// No `resourceType`, or one that is not a FHIR type name.
    #[error("the resource has no valid resourceType")]
    MissingResourceType,
}

/// The facts about one record that decisions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFacts {
    /// The FHIR resource type.
    pub resource_type: String,
    /// The resource id, if it has one.
    pub id: Option<String>,
    /// The kind of record.
    pub kind: Kind,
    /// The patients the record is about (sorted, no repeats); empty for
    /// records that are not about a patient.
    pub patients: Vec<String>,
    /// The organisation that wrote the record (`meta.source`).
    pub author_org: Option<String>,
    /// Its security labels.
    pub labels: Labels,
}

impl ResourceFacts {
    /// Reads the facts from a FHIR R4 resource.
    pub fn from_json(resource: &Value) -> Result<ResourceFacts, FactsError> {
        if !resource.is_object() {
            return Err(FactsError::NotAnObject);
        }
        let resource_type = fhir::str_field(resource, "resourceType")
            .filter(|t| fhir::is_type_name(t))
            .ok_or(FactsError::MissingResourceType)?;
        let id = fhir::str_field(resource, "id")
            .filter(|id| fhir::is_id(id))
            .map(str::to_owned);
        let meta = resource.get("meta");
        let author_org = meta
            .and_then(|m| m.get("source"))
            .and_then(Value::as_str)
            .and_then(author_from_source)
            .map(str::to_owned);
        let labels = Labels::from_meta(meta);

        let mut patients: Vec<String> = Vec::new();
        let kind = if resource_type == "Patient" {
            patients.extend(id.clone());
            Kind::Demographics
        } else {
            patient_refs(resource_type, resource, &mut patients);
            match (class_of(resource_type), patients.is_empty()) {
                (Class::Demographics, _) => Kind::Demographics,
                (Class::Coordination, _) => Kind::CareCoordination,
                (Class::Clinical, _) => Kind::Clinical,
                (Class::Audit, _) => {
                    patients.clear();
                    Kind::Audit
                }
                (Class::CareTeam | Class::Device | Class::Provenance | Class::Directory, false) => {
                    if resource_type == "CareTeam" {
                        Kind::CareCoordination
                    } else {
                        Kind::Clinical
                    }
                }
                (Class::CareTeam | Class::Directory, true) => Kind::Directory,
                (Class::Device, true) => Kind::DeviceRegistry,
                (Class::Provenance, true) => Kind::Audit,
                (Class::Unknown, false) => Kind::Clinical,
                (Class::Unknown, true) => Kind::Other,
            }
        };
        patients.sort();
        patients.dedup();

        Ok(ResourceFacts {
            resource_type: resource_type.to_owned(),
            id,
            kind,
            patients,
            author_org,
            labels,
        })
    }

    /// Places a record in one patient's record when the hub knows better
    /// than the record itself: for example a Provenance whose target is an
    /// Observation of that patient. The record then counts as clinical
    /// (unless it already is about a patient, in which case its kind is
    /// kept).
    pub fn about_patient(mut self, patient_id: &str) -> ResourceFacts {
        if !self.kind.is_patient_record() {
            self.kind = Kind::Clinical;
        }
        if !self.patients.iter().any(|p| p == patient_id) {
            self.patients.push(patient_id.to_owned());
            self.patients.sort();
        }
        self
    }

    /// Whether the record is about exactly this patient.
    pub fn is_only_about(&self, patient_id: &str) -> bool {
        self.kind.is_patient_record() && self.patients.len() == 1 && self.patients[0] == patient_id
    }
}

/// Reads the authoring organisation from `meta.source`.
pub fn author_from_source(source: &str) -> Option<&str> {
    fhir::parse_reference(source)
        .filter(|r| r.kind == "Organization")
        .map(|r| r.id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Demographics,
    Coordination,
    Clinical,
    CareTeam,
    Device,
    Provenance,
    Directory,
    Audit,
    Unknown,
}

fn class_of(resource_type: &str) -> Class {
    match resource_type {
        "Patient" | "RelatedPerson" => Class::Demographics,
        "CarePlan"
        | "Task"
        | "Flag"
        | "Appointment"
        | "AppointmentResponse"
        | "EpisodeOfCare"
        | "Consent" => Class::Coordination,
        "CareTeam" => Class::CareTeam,
        "Device" => Class::Device,
        "Provenance" => Class::Provenance,
        "AuditEvent" => Class::Audit,
        "Organization"
        | "Practitioner"
        | "PractitionerRole"
        | "Location"
        | "HealthcareService"
        | "Endpoint"
        | "OrganizationAffiliation"
        | "Schedule"
        | "Slot"
        | "Medication"
        | "Substance"
        | "Questionnaire"
        | "ValueSet"
        | "CodeSystem"
        | "ConceptMap"
        | "NamingSystem"
        | "StructureDefinition"
        | "SearchParameter"
        | "OperationDefinition"
        | "CapabilityStatement"
        | "ActivityDefinition"
        | "PlanDefinition"
        | "Library"
        | "ObservationDefinition"
        | "SpecimenDefinition"
        | "MedicationKnowledge" => Class::Directory,
        "Observation"
        | "Condition"
        | "AllergyIntolerance"
        | "MedicationStatement"
        | "MedicationRequest"
        | "MedicationAdministration"
        | "MedicationDispense"
        | "Encounter"
        | "DocumentReference"
        | "DiagnosticReport"
        | "Procedure"
        | "Immunization"
        | "ImmunizationRecommendation"
        | "Goal"
        | "ClinicalImpression"
        | "Communication"
        | "CommunicationRequest"
        | "Composition"
        | "QuestionnaireResponse"
        | "RiskAssessment"
        | "ServiceRequest"
        | "DeviceRequest"
        | "DeviceUseStatement"
        | "Specimen"
        | "List"
        | "Media"
        | "NutritionOrder"
        | "ImagingStudy"
        | "FamilyMemberHistory"
        | "DetectedIssue"
        | "BodyStructure"
        | "AdverseEvent"
        | "Coverage"
        | "Account"
        | "Claim"
        | "ExplanationOfBenefit"
        | "Invoice"
        | "VisionPrescription"
        | "MolecularSequence" => Class::Clinical,
        _ => Class::Unknown,
    }
}

/// Collects the Patient ids a resource names in the fields that place it in
/// a patient's record.
fn patient_refs(resource_type: &str, resource: &Value, out: &mut Vec<String>) {
    let mut from = |value: Option<&Value>| {
        for r in fhir::one_or_many(value) {
            if let Some(id) = fhir::reference_to(r, "Patient") {
                out.push(id.to_owned());
            }
        }
    };
    match resource_type {
        "Appointment" | "Schedule" => {
            for p in fhir::array(resource.get("participant")) {
                from(p.get("actor"));
            }
            from(resource.get("actor"));
        }
        "AppointmentResponse" => from(resource.get("actor")),
        "Provenance" => {
            from(resource.get("target"));
            from(resource.get("patient"));
        }
        "Task" => {
            from(resource.get("for"));
        }
        "Coverage" => {
            from(resource.get("beneficiary"));
            from(resource.get("subscriber"));
        }
        "CareTeam" => from(resource.get("subject")),
        "AuditEvent" => {}
        _ => {
            for field in ["subject", "patient", "for", "beneficiary"] {
                from(resource.get(field));
            }
        }
    }
}

/// Kinds of organisation, from `Organization.type` ([`ORG_KIND_SYSTEM`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    /// A hospital provider.
    Hospital,
    /// A GP practice.
    GpPractice,
    /// A community health provider.
    CommunityHealth,
    /// A council's social care service.
    SocialCare,
    /// The region's own organisation.
    Region,
    /// Not marked with a Careshare kind.
    Unknown,
}

impl OrgKind {
    /// Reads the kind from an Organization resource.
    pub fn of_organization(organization: &Value) -> OrgKind {
        let mut kind = OrgKind::Unknown;
        for code in fhir::codes_in(organization.get("type"), ORG_KIND_SYSTEM) {
            let k = match code {
                ORG_KIND_HOSPITAL => OrgKind::Hospital,
                ORG_KIND_GP_PRACTICE => OrgKind::GpPractice,
                ORG_KIND_COMMUNITY_HEALTH => OrgKind::CommunityHealth,
                ORG_KIND_SOCIAL_CARE => OrgKind::SocialCare,
                ORG_KIND_REGION => OrgKind::Region,
                _ => continue,
            };
            if kind == OrgKind::Unknown {
                kind = k;
            } else if kind != k {
                // Two different kinds: not trusted as social care.
                return OrgKind::Unknown;
            }
        }
        kind
    }
}

/// The region's organisations by kind. The policy uses it only to tell
/// social care records from health records; an organisation that is not in
/// the index counts as a health organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgIndex {
    kinds: BTreeMap<String, OrgKind>,
}

impl OrgIndex {
    /// An empty index.
    pub fn new() -> OrgIndex {
        OrgIndex::default()
    }

    /// Builds the index from Organization resources (others are skipped).
    /// An inactive organisation (`active: false`) is still indexed: its
    /// records keep their nature after it closes.
    pub fn from_organizations<'a>(organizations: impl IntoIterator<Item = &'a Value>) -> OrgIndex {
        let mut index = OrgIndex::new();
        for org in organizations {
            if fhir::str_field(org, "resourceType") != Some("Organization") {
                continue;
            }
            if let Some(id) = fhir::str_field(org, "id").filter(|id| fhir::is_id(id)) {
                index.insert(id, OrgKind::of_organization(org));
            }
        }
        index
    }

    /// Records the kind of one organisation.
    pub fn insert(&mut self, organization_id: &str, kind: OrgKind) {
        self.kinds.insert(organization_id.to_owned(), kind);
    }

    /// The kind of an organisation.
    pub fn kind(&self, organization_id: &str) -> OrgKind {
        self.kinds
            .get(organization_id)
            .copied()
            .unwrap_or(OrgKind::Unknown)
    }

    /// Whether the organisation provides social care.
    pub fn is_social_care(&self, organization_id: &str) -> bool {
        self.kind(organization_id) == OrgKind::SocialCare
    }
}
