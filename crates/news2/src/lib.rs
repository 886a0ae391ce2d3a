//! National Early Warning Score 2 (NEWS2), exactly as charted by the Royal
//! College of Physicians (2017), for nurses assessing patients at home and in
//! the community.
//!
//! NEWS2 scores seven routine bedside observations (respiration rate, oxygen
//! saturation, air or supplemental oxygen, systolic blood pressure, pulse,
//! level of consciousness and temperature) from 0 to 3 each (0 to 2 for air
//! or oxygen). The aggregate score, together with whether any single
//! parameter scores 3, sets the urgency of the clinical response: from
//! routine monitoring, through urgent review, to an emergency response.
//!
//! The crate is in three parts:
//!
//! * **Validated observations** ([`RespirationRate`], [`OxygenSaturation`],
//!   [`SpO2Scale`], [`AirOrOxygen`], [`SystolicBp`], [`DiastolicBp`],
//!   [`Pulse`], [`Consciousness`], [`Temperature`]), parsed at the boundary
//!   so impossible values are refused with an [`ObservationError`].
//! * **Scoring**: [`score`] turns an [`Observations`] set into an
//!   [`Assessment`]. The NEWS2 total and its [`ClinicalResponse`] are given
//!   only when all seven parameters are present; a partly recorded set gives a
//!   partial sum that is marked incomplete, lists what is missing, and still
//!   flags any parameter scoring 3.
//! * **FHIR R4**: [`to_fhir_observations`] writes vital-signs Observations and
//!   a NEWS2 score Observation; [`from_fhir_observations`] and
//!   [`read_fhir_observation`] read them (or other systems' Observations using
//!   the standard codes) back for trend charts and re-scoring. See [`fhir`]
//!   for the codes used.
//!
//! # Clinical caveats
//!
//! * NEWS2 is validated for adults. It is not intended for children under 16
//!   or for pregnant women, who need paediatric or obstetric early warning
//!   scores.
//! * SpO2 scale 2 is only for patients with a clinician-prescribed target
//!   saturation of 88–92 %. When no scale is recorded, scale 1 is used, as
//!   the chart directs, and the assessment says so.
//! * The score supports, and never replaces, clinical judgement: concern
//!   about a patient is always a reason to escalate.
//!
//! # Example
//!
//! ```
//! use careshare_news2::{score, ClinicalResponse, Observations, Outcome};
//!
//! let observations = Observations {
//!     respiration_rate: Some("22".parse()?),
//!     spo2: Some("95".parse()?),
//!     air_or_oxygen: Some("air".parse()?),
//!     systolic_bp: Some("105".parse()?),
//!     pulse: Some("112".parse()?),
//!     consciousness: Some("A".parse()?),
//!     temperature: Some("38.4".parse()?),
//!     ..Observations::default()
//! };
//! let assessment = score(&observations);
//! assert_eq!(assessment.total(), Some(7));
//! assert_eq!(
//!     assessment.outcome(),
//!     Outcome::Complete { total: 7, response: ClinicalResponse::EmergencyResponse }
//! );
//!
//! // Without a temperature there is no NEWS2 total, only a marked partial sum.
//! let partial = score(&Observations { temperature: None, ..observations });
//! assert_eq!(partial.total(), None);
//! assert!(matches!(partial.outcome(), Outcome::Incomplete { partial_sum: 6, .. }));
//! # Ok::<(), careshare_news2::ObservationError>(())
//! ```

mod decimal;
pub mod fhir;
mod scoring;
mod values;

pub use fhir::{
    from_fhir_observations, read_fhir_observation, to_fhir_observations, FhirContext,
    FhirReadError, FhirWriteError, ObservationReadError, ObservationSlot, Reading,
};
pub use scoring::{
    score, Assessment, ClinicalResponse, ClinicalRisk, Observations, Outcome, Parameter, Unscored,
    UnscoredReason,
};
pub use values::{
    AirOrOxygen, Consciousness, DiastolicBp, ObservationError, OxygenSaturation, Pulse,
    RespirationRate, SpO2Scale, SystolicBp, Temperature,
};
