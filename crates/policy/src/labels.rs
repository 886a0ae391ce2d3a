//! Security labels: restricted and sensitive records, and explicit sharing.
//!
//! # The rule
//!
//! A record carrying a **restricted** confidentiality code or a
//! **sensitivity** code may be seen only
//!
//! 1. by a person whose role is allowed for *every* label on the record
//!    (table below), **and**
//! 2. by a person working for the organisation that wrote the record, or
//!    for an organisation the record has been explicitly shared with.
//!
//! Both conditions come on top of the ordinary rules (a care relationship
//! with the patient, and a role that may see that kind of record).
//! Break-glass does **not** lift either condition: an emergency grant opens
//! a patient's ordinary records, never another organisation's restricted or
//! sensitive ones. A labelled record whose writing organisation is unknown
//! is shown to nobody, because nobody can be shown to belong to it.
//!
//! # Which roles may see which label
//!
//! The table is in the crate documentation (section 3) and is implemented
//! by [`Sensitivity::allows`]. "Restricted" adds no role limit of its own:
//! it limits the record to its organisation (and those it is shared with).
//! A record may carry several labels; the person must be allowed for all of
//! them.
//!
//! # Where the labels are read from
//!
//! * Confidentiality and sensitivity codes are read from `meta.security`
//!   and also from `meta.tag`: a label put in the wrong place still protects
//!   the record. An unknown confidentiality code counts as restricted; an
//!   unknown v3-ActCode or Careshare sensitivity code counts as "any other
//!   sensitivity". A `meta` whose labels cannot be read at all counts as
//!   restricted with "any other sensitivity".
//! * Sharing is read only from `meta.tag`, system [`SHARED_WITH_SYSTEM`],
//!   code = the id of the Organization the record is shared with (one tag
//!   per organisation). Sharing widens the organisations that may see a
//!   labelled record; it never widens the roles, and it does not override a
//!   patient's objection to sharing.

use serde_json::Value;

use crate::codes::*;
use crate::fhir;
use crate::subject::Role;

/// A kind of sensitive information, each with its own list of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sensitivity {
    /// Sexual and reproductive health (`SEX`).
    SexualHealth,
    /// Sexually transmitted infection (`STD`).
    SexuallyTransmittedInfection,
    /// HIV (`HIV`).
    Hiv,
    /// Mental health (`PSY`, `MH`, `BH`, `PSYTHPN`).
    MentalHealth,
    /// Substance misuse (`ETH`, `SUD`).
    SubstanceMisuse,
    /// Sexual assault, abuse or domestic violence (`SDV`).
    SexualOrDomesticViolence,
    /// Safeguarding (Careshare `safeguarding`).
    Safeguarding,
    /// Any other sensitivity code.
    Other,
}

impl Sensitivity {
    /// Every sensitivity.
    pub const ALL: [Sensitivity; 8] = [
        Sensitivity::SexualHealth,
        Sensitivity::SexuallyTransmittedInfection,
        Sensitivity::Hiv,
        Sensitivity::MentalHealth,
        Sensitivity::SubstanceMisuse,
        Sensitivity::SexualOrDomesticViolence,
        Sensitivity::Safeguarding,
        Sensitivity::Other,
    ];

    /// The roles allowed to see records carrying this sensitivity (the table
    /// in the module documentation).
    pub const fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Sensitivity::SexualHealth
            | Sensitivity::SexuallyTransmittedInfection
            | Sensitivity::Hiv
            | Sensitivity::MentalHealth
            | Sensitivity::SubstanceMisuse
            | Sensitivity::Other => matches!(role, Gp | HospitalClinician),
            Sensitivity::SexualOrDomesticViolence => {
                matches!(role, Gp | HospitalClinician | SocialWorker)
            }
            Sensitivity::Safeguarding => {
                matches!(role, Gp | DistrictNurse | CommunityNurse | SocialWorker)
            }
        }
    }

    /// Reads a sensitivity from a coding's system and code. Unknown codes in
    /// a known sensitivity system give [`Sensitivity::Other`].
    pub fn from_coding(system: &str, code: &str) -> Option<Sensitivity> {
        match system {
            ACT_CODE_SYSTEM => Some(match code {
                "SEX" => Sensitivity::SexualHealth,
                "STD" => Sensitivity::SexuallyTransmittedInfection,
                "HIV" => Sensitivity::Hiv,
                "PSY" | "MH" | "BH" | "PSYTHPN" => Sensitivity::MentalHealth,
                "ETH" | "SUD" => Sensitivity::SubstanceMisuse,
                "SDV" => Sensitivity::SexualOrDomesticViolence,
                _ => Sensitivity::Other,
            }),
            SENSITIVITY_SYSTEM => Some(match code {
                SENSITIVITY_SAFEGUARDING => Sensitivity::Safeguarding,
                _ => Sensitivity::Other,
            }),
            _ => None,
        }
    }

    /// A coding (system, code) that carries this sensitivity, for writing
    /// labels.
    pub const fn coding(self) -> (&'static str, &'static str) {
        match self {
            Sensitivity::SexualHealth => (ACT_CODE_SYSTEM, "SEX"),
            Sensitivity::SexuallyTransmittedInfection => (ACT_CODE_SYSTEM, "STD"),
            Sensitivity::Hiv => (ACT_CODE_SYSTEM, "HIV"),
            Sensitivity::MentalHealth => (ACT_CODE_SYSTEM, "PSY"),
            Sensitivity::SubstanceMisuse => (ACT_CODE_SYSTEM, "ETH"),
            Sensitivity::SexualOrDomesticViolence => (ACT_CODE_SYSTEM, "SDV"),
            Sensitivity::Safeguarding => (SENSITIVITY_SYSTEM, SENSITIVITY_SAFEGUARDING),
            Sensitivity::Other => (SENSITIVITY_SYSTEM, "other"),
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Every sensitivity bit.
const ALL_BITS: u16 = (1 << Sensitivity::ALL.len()) - 1;

/// The security labels on one record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    restricted: bool,
    sensitivities: u16,
    shared_with: Vec<String>,
}

impl Labels {
    /// No labels.
    pub fn none() -> Labels {
        Labels::default()
    }

    /// Reads the labels from a resource's `meta` (see the module
    /// documentation for the rules).
    pub fn from_meta(meta: Option<&Value>) -> Labels {
        let mut labels = Labels::default();
        let Some(meta) = meta else {
            return labels;
        };
        if meta.is_null() {
            return labels;
        }
        if !meta.is_object() {
            return Labels::unreadable();
        }
        for field in ["security", "tag"] {
            let codings = match meta.get(field) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => return Labels::unreadable(),
            };
            for coding in codings {
                if !coding.is_object() {
                    return Labels::unreadable();
                }
                let (Some(system), Some(code)) = (
                    fhir::str_field(coding, "system"),
                    fhir::str_field(coding, "code"),
                ) else {
                    continue;
                };
                if system == CONFIDENTIALITY_SYSTEM {
                    if !CONFIDENTIALITY_ORDINARY.contains(&code) {
                        labels.restricted = true;
                    }
                } else if let Some(s) = Sensitivity::from_coding(system, code) {
                    labels.add(s);
                } else if system == SHARED_WITH_SYSTEM && field == "tag" {
                    let org = code.strip_prefix("Organization/").unwrap_or(code);
                    if fhir::is_id(org) {
                        labels.share_with(org);
                    }
                }
            }
        }
        labels
    }

    /// The labels given to a record whose labels cannot be read: restricted,
    /// with "any other sensitivity".
    pub fn unreadable() -> Labels {
        Labels {
            restricted: true,
            sensitivities: Sensitivity::Other.bit(),
            shared_with: Vec::new(),
        }
    }

    /// Marks the record restricted.
    pub fn restrict(&mut self) {
        self.restricted = true;
    }

    /// Adds a sensitivity.
    pub fn add(&mut self, sensitivity: Sensitivity) {
        self.sensitivities |= sensitivity.bit();
    }

    /// Records explicit sharing with an organisation.
    pub fn share_with(&mut self, organization_id: &str) {
        if !self.is_shared_with(organization_id) {
            self.shared_with.push(organization_id.to_owned());
            self.shared_with.sort();
        }
    }

    /// Whether the record is restricted (`R` or `V`).
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }

    /// Whether the record carries this sensitivity.
    pub fn has(&self, sensitivity: Sensitivity) -> bool {
        self.sensitivities & sensitivity.bit() != 0
    }

    /// The sensitivities on the record.
    pub fn sensitivities(&self) -> impl Iterator<Item = Sensitivity> + '_ {
        Sensitivity::ALL.into_iter().filter(|s| self.has(*s))
    }

    /// The organisations the record is explicitly shared with.
    pub fn shared_with(&self) -> &[String] {
        &self.shared_with
    }

    /// Whether the record is explicitly shared with this organisation.
    pub fn is_shared_with(&self, organization_id: &str) -> bool {
        self.shared_with.iter().any(|o| o == organization_id)
    }

    /// Whether the record is restricted or sensitive, so that it stays
    /// within its organisation unless shared.
    pub fn limits_organisations(&self) -> bool {
        self.restricted || self.sensitivities != 0
    }

    /// The labels as the fields of [`crate::ResourceFacts::to_stored`]: restricted, the
    /// sensitivities as bits, the organisations shared with.
    pub(crate) fn parts(&self) -> (bool, u16, &[String]) {
        (self.restricted, self.sensitivities, &self.shared_with)
    }

    /// The labels back from [`Labels::parts`]; None when the bits name no sensitivity or
    /// the organisations are not sorted, distinct ids.
    pub(crate) fn from_parts(
        restricted: bool,
        sensitivities: u16,
        shared_with: Vec<String>,
    ) -> Option<Labels> {
        let sorted = shared_with.windows(2).all(|w| w[0] < w[1]);
        (sensitivities & !ALL_BITS == 0 && sorted && shared_with.iter().all(|o| fhir::is_id(o)))
            .then_some(Labels {
                restricted,
                sensitivities,
                shared_with,
            })
    }

    /// Whether a person in this role is allowed for every sensitivity on the
    /// record. (Restricted alone limits organisations, not roles; roles
    /// that never see patient records are refused before labels matter.)
    pub fn allows_role(&self, role: Role) -> bool {
        self.sensitivities().all(|s| s.allows(role))
    }
}
