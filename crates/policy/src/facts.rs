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

    /// The facts as one line of text, to keep beside a stored version so that a decision
    /// about it needs no parsing of its JSON: [`ResourceFacts::from_stored`] gives back
    /// exactly these facts.
    ///
    /// The line is `f1|type|id|kind|patients|author|restricted|sensitivities|shared`, lists
    /// separated by spaces. Every field is a type name, an id, a kind code or a number,
    /// none of which can hold `|` or a space.
    pub fn to_stored(&self) -> String {
        let (restricted, sensitivities, shared) = self.labels.parts();
        format!(
            "{STORED_FACTS_TAG}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.resource_type,
            self.id.as_deref().unwrap_or_default(),
            self.kind.code(),
            self.patients.join(" "),
            self.author_org.as_deref().unwrap_or_default(),
            u8::from(restricted),
            sensitivities,
            shared.join(" "),
        )
    }

    /// Facts written by [`ResourceFacts::to_stored`]; None for any other text (the facts
    /// must then be read from the JSON).
    pub fn from_stored(text: &str) -> Option<ResourceFacts> {
        let mut fields = text.split('|');
        if fields.next()? != STORED_FACTS_TAG {
            return None;
        }
        let resource_type = fields.next().filter(|t| fhir::is_type_name(t))?;
        let id = optional_id(fields.next()?)?;
        let kind = Kind::from_code(fields.next()?)?;
        let patients = id_list(fields.next()?)?;
        let author_org = optional_id(fields.next()?)?;
        let restricted = match fields.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let sensitivities = fields.next()?.parse().ok()?;
        let shared = id_list(fields.next()?)?;
        if fields.next().is_some() {
            return None;
        }
        Some(ResourceFacts {
            resource_type: resource_type.to_owned(),
            id,
            kind,
            patients,
            author_org,
            labels: Labels::from_parts(restricted, sensitivities, shared)?,
        })
    }
}

/// The version of the stored facts' text: a line with another tag is not read.
const STORED_FACTS_TAG: &str = "f1";

/// An id field of stored facts: empty for none; None when it is not an id.
fn optional_id(field: &str) -> Option<Option<String>> {
    match field {
        "" => Some(None),
        id if fhir::is_id(id) => Some(Some(id.to_owned())),
        _ => None,
    }
}

/// A list of ids of stored facts, sorted and distinct as the facts keep them; None when
/// it is not one.
fn id_list(field: &str) -> Option<Vec<String>> {
    if field.is_empty() {
        return Some(Vec::new());
    }
    let ids: Vec<String> = field.split(' ').map(str::to_owned).collect();
    (ids.iter().all(|i| fhir::is_id(i)) && ids.windows(2).all(|w| w[0] < w[1])).then_some(ids)
}

impl Kind {
    /// Each kind's code in stored facts, in declaration order.
    const CODES: [(Kind, &'static str); 7] = [
        (Kind::Demographics, "demographics"),
        (Kind::CareCoordination, "coordination"),
        (Kind::Clinical, "clinical"),
        (Kind::Directory, "directory"),
        (Kind::DeviceRegistry, "device"),
        (Kind::Audit, "audit"),
        (Kind::Other, "other"),
    ];

    fn code(self) -> &'static str {
        Kind::CODES[self as usize].1
    }

    fn from_code(code: &str) -> Option<Kind> {
        Kind::CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(k, _)| *k)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_facts_read_back_exactly() {
        let resources = [
            json!({"resourceType": "Patient", "id": "p1"}),
            json!({"resourceType": "Observation", "id": "o.1-x",
                "meta": {"source": "Organization/gp-1",
                    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
                                 {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}],
                    "tag": [{"system": SHARED_WITH_SYSTEM, "code": "trust-b"},
                            {"system": SHARED_WITH_SYSTEM, "code": "Organization/trust-a"}]},
                "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Appointment", "participant": [
                {"actor": {"reference": "Patient/p2"}}, {"actor": {"reference": "Patient/p1"}},
                {"actor": {"reference": "Patient/p2"}}]}),
            json!({"resourceType": "Condition", "meta": {"security": "not a list"}}),
            json!({"resourceType": "Organization", "id": "org"}),
            json!({"resourceType": "Device", "id": "laptop-7"}),
            json!({"resourceType": "AuditEvent", "id": "a"}),
            json!({"resourceType": "Basic", "id": "b"}),
            json!({"resourceType": "Provenance", "target": [{"reference": "Patient/p9"}]}),
        ];
        for r in &resources {
            let facts = ResourceFacts::from_json(r).unwrap();
            let text = facts.to_stored();
            assert_eq!(ResourceFacts::from_stored(&text), Some(facts), "{text}");
        }
        let moved = ResourceFacts::from_json(&resources[4])
            .unwrap()
            .about_patient("p3");
        assert_eq!(ResourceFacts::from_stored(&moved.to_stored()), Some(moved));
    }

    #[test]
    fn other_text_is_not_taken_for_stored_facts() {
        let good = ResourceFacts::from_json(&json!({"resourceType": "Patient", "id": "p1"}))
            .unwrap()
            .to_stored();
        assert!(ResourceFacts::from_stored(&good).is_some());
        for bad in [
            "",
            "f2|Patient|p1|demographics|p1||0|0|",
            "f1|patient|p1|demographics|p1||0|0|",
            "f1|Patient|p 1|demographics|p1||0|0|",
            "f1|Patient|p1|clinicalish|p1||0|0|",
            "f1|Patient|p1|demographics|p2 p1||0|0|",
            "f1|Patient|p1|demographics|p1||2|0|",
            "f1|Patient|p1|demographics|p1||0|256|",
            "f1|Patient|p1|demographics|p1||0|0|b a",
            "f1|Patient|p1|demographics|p1||0|0||",
            "f1|Patient|p1|demographics|p1||0|0",
        ] {
            assert_eq!(ResourceFacts::from_stored(bad), None, "{bad}");
        }
    }
}
