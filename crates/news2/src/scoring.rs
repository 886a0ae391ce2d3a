//! The NEWS2 chart: per-parameter scores, the aggregate score and the
//! clinical response it triggers (Royal College of Physicians, 2017).

use std::fmt;

use crate::values::{
    AirOrOxygen, Consciousness, DiastolicBp, OxygenSaturation, Pulse, RespirationRate, SpO2Scale,
    SystolicBp, Temperature,
};

/// The seven physiological parameters of the NEWS2 chart, in chart order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Parameter {
    /// Respiration rate (breaths/min).
    RespirationRate,
    /// Oxygen saturation (SpO2, %), on scale 1 or scale 2.
    OxygenSaturation,
    /// Breathing room air or receiving supplemental oxygen.
    AirOrOxygen,
    /// Systolic blood pressure (mmHg).
    SystolicBp,
    /// Pulse (beats/min).
    Pulse,
    /// Level of consciousness on the ACVPU scale.
    Consciousness,
    /// Temperature (°C).
    Temperature,
}

impl Parameter {
    /// All seven parameters in chart order.
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::OxygenSaturation,
        Parameter::AirOrOxygen,
        Parameter::SystolicBp,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];

    /// The highest score this parameter can contribute (2 for air or oxygen,
    /// 3 for every other parameter).
    pub fn max_score(self) -> u8 {
        match self {
            Parameter::AirOrOxygen => 2,
            _ => 3,
        }
    }

    fn index(self) -> usize {
        match self {
            Parameter::RespirationRate => 0,
            Parameter::OxygenSaturation => 1,
            Parameter::AirOrOxygen => 2,
            Parameter::SystolicBp => 3,
            Parameter::Pulse => 4,
            Parameter::Consciousness => 5,
            Parameter::Temperature => 6,
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Parameter::RespirationRate => "respiration rate",
            Parameter::OxygenSaturation => "SpO2",
            Parameter::AirOrOxygen => "air or oxygen",
            Parameter::SystolicBp => "systolic blood pressure",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temperature => "temperature",
        })
    }
}

impl RespirationRate {
    /// Chart score: ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3.
    pub fn score(self) -> u8 {
        match self.breaths_per_minute() {
            0..=8 => 3,
            9..=11 => 1,
            12..=20 => 0,
            21..=24 => 2,
            _ => 3,
        }
    }
}

impl OxygenSaturation {
    /// Chart score on the given scale.
    ///
    /// Scale 1: ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0, whether on air or
    /// oxygen.
    ///
    /// Scale 2 (prescribed 88–92 % target): ≤83 → 3, 84–85 → 2, 86–87 → 1,
    /// 88–92 → 0, ≥93 on air → 0; on oxygen 93–94 → 1, 95–96 → 2, ≥97 → 3,
    /// because over-oxygenating a patient at risk of hypercapnia is itself
    /// dangerous.
    ///
    /// Returns `None` only on scale 2 at 93 % or above when it is not known
    /// whether the patient is on air or oxygen: the chart gives 0 on air and
    /// 1–3 on oxygen, so no score can be given.
    pub fn score(self, scale: SpO2Scale, air_or_oxygen: Option<AirOrOxygen>) -> Option<u8> {
        let spo2 = self.percent();
        match scale {
            SpO2Scale::Scale1 => Some(match spo2 {
                0..=91 => 3,
                92..=93 => 2,
                94..=95 => 1,
                _ => 0,
            }),
            SpO2Scale::Scale2 => match spo2 {
                0..=83 => Some(3),
                84..=85 => Some(2),
                86..=87 => Some(1),
                88..=92 => Some(0),
                _ => match air_or_oxygen? {
                    AirOrOxygen::Air => Some(0),
                    AirOrOxygen::Oxygen => Some(match spo2 {
                        93..=94 => 1,
                        95..=96 => 2,
                        _ => 3,
                    }),
                },
            },
        }
    }
}

impl AirOrOxygen {
    /// Chart score: oxygen → 2, air → 0.
    pub fn score(self) -> u8 {
        match self {
            AirOrOxygen::Air => 0,
            AirOrOxygen::Oxygen => 2,
        }
    }
}

impl SystolicBp {
    /// Chart score: ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3.
    pub fn score(self) -> u8 {
        match self.mmhg() {
            0..=90 => 3,
            91..=100 => 2,
            101..=110 => 1,
            111..=219 => 0,
            _ => 3,
        }
    }
}

impl Pulse {
    /// Chart score: ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2,
    /// ≥131 → 3.
    pub fn score(self) -> u8 {
        match self.beats_per_minute() {
            0..=40 => 3,
            41..=50 => 1,
            51..=90 => 0,
            91..=110 => 1,
            111..=130 => 2,
            _ => 3,
        }
    }
}

impl Consciousness {
    /// Chart score: alert → 0; new confusion, voice, pain or unresponsive → 3.
    pub fn score(self) -> u8 {
        match self {
            Consciousness::Alert => 0,
            _ => 3,
        }
    }
}

impl Temperature {
    /// Chart score: ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1,
    /// ≥39.1 → 2 (°C, on the value rounded to one decimal place).
    pub fn score(self) -> u8 {
        match self.tenths() {
            i16::MIN..=350 => 3,
            351..=360 => 1,
            361..=380 => 0,
            381..=390 => 1,
            _ => 2,
        }
    }
}

/// One set of bedside observations, taken together, from which NEWS2 is
/// scored. Every parameter is optional: a set may be partly recorded.
///
/// The fields hold validated values, so any `Observations` can be scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Observations {
    /// Respiration rate.
    pub respiration_rate: Option<RespirationRate>,
    /// Oxygen saturation.
    pub spo2: Option<OxygenSaturation>,
    /// The SpO2 scale prescribed for this patient. `None` means no scale has
    /// been recorded; scoring then uses scale 1, the chart's default, and the
    /// assessment says the scale was assumed.
    pub spo2_scale: Option<SpO2Scale>,
    /// Air or supplemental oxygen.
    pub air_or_oxygen: Option<AirOrOxygen>,
    /// Systolic blood pressure.
    pub systolic_bp: Option<SystolicBp>,
    /// Diastolic blood pressure: recorded and shared, not scored.
    pub diastolic_bp: Option<DiastolicBp>,
    /// Pulse.
    pub pulse: Option<Pulse>,
    /// Level of consciousness (ACVPU).
    pub consciousness: Option<Consciousness>,
    /// Temperature.
    pub temperature: Option<Temperature>,
}

/// Why a parameter has no score in an [`Assessment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnscoredReason {
    /// The parameter was not recorded.
    NotRecorded,
    /// SpO2 was recorded at 93 % or above on scale 2, where the score depends
    /// on whether the patient is on air or oxygen, and that was not recorded.
    NeedsAirOrOxygen,
}

/// A parameter that could not be scored, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unscored {
    /// The parameter without a score.
    pub parameter: Parameter,
    /// Why it has no score.
    pub reason: UnscoredReason,
}

/// The clinical risk level of the NEWS2 chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClinicalRisk {
    /// Aggregate score 0–4 with no single parameter scoring 3.
    Low,
    /// A single parameter scores 3 ("red score") with an aggregate below 5.
    LowMedium,
    /// Aggregate score 5–6: the key threshold for an urgent response.
    Medium,
    /// Aggregate score 7 or more: emergency response.
    High,
}

impl fmt::Display for ClinicalRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClinicalRisk::Low => "low",
            ClinicalRisk::LowMedium => "low–medium",
            ClinicalRisk::Medium => "medium",
            ClinicalRisk::High => "high",
        })
    }
}

/// The clinical response the NEWS2 chart calls for, ordered from least to
/// most urgent, with wording for a nurse caring for the patient at home or in
/// a community setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClinicalResponse {
    /// Aggregate score 0: continue routine NEWS2 monitoring.
    RoutineMonitoring,
    /// Aggregate score 1–4: assessment by a competent registered nurse, who
    /// decides on monitoring frequency and escalation.
    NurseAssessment,
    /// A single parameter scores 3 (aggregate below 5): urgent review by the
    /// clinician responsible for the patient.
    UrgentReview,
    /// Aggregate score 5–6: urgent response, assessment by a clinician
    /// competent in acute illness.
    UrgentResponse,
    /// Aggregate score 7 or more: emergency response.
    EmergencyResponse,
}

impl ClinicalResponse {
    /// The response for an aggregate score, given whether any single
    /// parameter scores 3.
    ///
    /// Thresholds: 7 or more → emergency; 5–6 → urgent response; otherwise a
    /// single parameter scoring 3 → urgent review; 1–4 → nurse assessment;
    /// 0 → routine monitoring. A total of 5 or more is medium (or high) risk
    /// whether or not it includes a 3.
    pub fn for_total(total: u8, any_parameter_scores_three: bool) -> Self {
        match total {
            7.. => ClinicalResponse::EmergencyResponse,
            5..=6 => ClinicalResponse::UrgentResponse,
            _ if any_parameter_scores_three => ClinicalResponse::UrgentReview,
            1..=4 => ClinicalResponse::NurseAssessment,
            0 => ClinicalResponse::RoutineMonitoring,
        }
    }

    /// The chart's clinical risk level for this response.
    pub fn risk(self) -> ClinicalRisk {
        match self {
            ClinicalResponse::RoutineMonitoring | ClinicalResponse::NurseAssessment => {
                ClinicalRisk::Low
            }
            ClinicalResponse::UrgentReview => ClinicalRisk::LowMedium,
            ClinicalResponse::UrgentResponse => ClinicalRisk::Medium,
            ClinicalResponse::EmergencyResponse => ClinicalRisk::High,
        }
    }

    /// A short heading for the response, as shown beside the score.
    pub fn heading(self) -> &'static str {
        match self {
            ClinicalResponse::RoutineMonitoring => "Low risk: continue routine monitoring",
            ClinicalResponse::NurseAssessment => "Low risk: registered nurse assessment",
            ClinicalResponse::UrgentReview => {
                "Low–medium risk: urgent review (a single parameter scores 3)"
            }
            ClinicalResponse::UrgentResponse => "Medium risk: urgent response",
            ClinicalResponse::EmergencyResponse => {
                "High risk: emergency response — call 999 / seek emergency assessment"
            }
        }
    }

    /// The escalation prompt shown to the community nurse, following the
    /// intent of the RCP chart's clinical response for this threshold.
    pub fn escalation_prompt(self) -> &'static str {
        match self {
            ClinicalResponse::RoutineMonitoring => {
                "Continue routine NEWS2 monitoring as set out in the care plan."
            }
            ClinicalResponse::NurseAssessment => {
                "A registered nurse must assess the patient and decide whether \
                 observations should be repeated more often or care escalated, \
                 for example by discussing the patient with their GP."
            }
            ClinicalResponse::UrgentReview => {
                "A single parameter scores 3. Inform the clinician responsible \
                 for the patient (GP, or out-of-hours service) now for an urgent \
                 review and a decision on escalating care. Repeat observations \
                 at least hourly until reviewed."
            }
            ClinicalResponse::UrgentResponse => {
                "Urgent response: immediately inform the clinician responsible \
                 for the patient and request an urgent assessment by a clinician \
                 competent in acute illness (GP, urgent community response or \
                 out-of-hours service). If that cannot happen promptly, or the \
                 patient deteriorates, call 999. Repeat observations at least \
                 hourly."
            }
            ClinicalResponse::EmergencyResponse => {
                "Emergency response: call 999 / seek emergency assessment now. \
                 Stay with the patient, keep monitoring vital signs \
                 continuously, and hand over the NEWS2 score and observations \
                 to the attending crew."
            }
        }
    }

    /// The chart's minimum frequency of monitoring for this response.
    pub fn minimum_monitoring_frequency(self) -> &'static str {
        match self {
            ClinicalResponse::RoutineMonitoring => "at least every 12 hours",
            ClinicalResponse::NurseAssessment => "at least every 4–6 hours",
            ClinicalResponse::UrgentReview | ClinicalResponse::UrgentResponse => {
                "at least every hour"
            }
            ClinicalResponse::EmergencyResponse => "continuous monitoring of vital signs",
        }
    }
}

impl fmt::Display for ClinicalResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.heading())
    }
}

/// Whether an assessment gives a NEWS2 total, or only a partial sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// All seven parameters were scored: this is the NEWS2 total.
    Complete {
        /// The aggregate NEWS2 score, 0–20.
        total: u8,
        /// The clinical response the total calls for.
        response: ClinicalResponse,
    },
    /// Some parameters could not be scored. This is **not** a NEWS2 score
    /// and must not be shown or recorded as one.
    Incomplete {
        /// Sum of the parameters that could be scored. The true total is at
        /// least this.
        partial_sum: u8,
        /// The least response already warranted by the parameters that were
        /// scored (a single 3, or a partial sum of 5 or 7 and over, already
        /// calls for escalation). Completing the observations can only keep
        /// or raise it.
        at_least: ClinicalResponse,
    },
}

/// The NEWS2 assessment of one set of observations.
///
/// Per-parameter scores are always available for what was recorded. The
/// aggregate score and its clinical response exist only when all seven
/// parameters were scored ([`Assessment::total`], [`Assessment::response`]);
/// otherwise the assessment lists what is missing and offers a partial sum
/// that is clearly marked incomplete ([`Outcome::Incomplete`]). A parameter
/// scoring 3 is flagged either way, since that alone warrants urgent review.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assessment {
    scores: [Option<u8>; 7],
    unscored: Vec<Unscored>,
    spo2_scale: SpO2Scale,
    spo2_scale_assumed: bool,
}

impl Assessment {
    /// The score of one parameter, if it could be scored.
    pub fn score_of(&self, parameter: Parameter) -> Option<u8> {
        self.scores[parameter.index()]
    }

    /// The scored parameters with their scores, in chart order.
    pub fn scored(&self) -> impl Iterator<Item = (Parameter, u8)> + '_ {
        Parameter::ALL
            .into_iter()
            .filter_map(|p| self.score_of(p).map(|s| (p, s)))
    }

    /// The parameters that could not be scored, in chart order.
    pub fn unscored(&self) -> &[Unscored] {
        &self.unscored
    }

    /// Whether all seven parameters were scored.
    pub fn is_complete(&self) -> bool {
        self.unscored.is_empty()
    }

    /// Sum of the scores of the parameters that were scored. When the
    /// assessment is incomplete this is **not** a NEWS2 total; see
    /// [`Assessment::outcome`].
    pub fn partial_sum(&self) -> u8 {
        self.scores.iter().flatten().sum()
    }

    /// The NEWS2 total, only when all seven parameters were scored.
    pub fn total(&self) -> Option<u8> {
        self.is_complete().then(|| self.partial_sum())
    }

    /// The clinical response, only when all seven parameters were scored.
    pub fn response(&self) -> Option<ClinicalResponse> {
        self.total()
            .map(|total| ClinicalResponse::for_total(total, self.has_parameter_scoring_three()))
    }

    /// The least response warranted by what was scored. For a complete
    /// assessment this is the response; for an incomplete one it is a floor,
    /// and the full set may call for more.
    pub fn response_at_least(&self) -> ClinicalResponse {
        ClinicalResponse::for_total(self.partial_sum(), self.has_parameter_scoring_three())
    }

    /// Complete total and response, or an incomplete partial sum.
    pub fn outcome(&self) -> Outcome {
        match self.response() {
            Some(response) => Outcome::Complete {
                total: self.partial_sum(),
                response,
            },
            None => Outcome::Incomplete {
                partial_sum: self.partial_sum(),
                at_least: self.response_at_least(),
            },
        }
    }

    /// Whether any single parameter scores 3 (a "red score"), which on its
    /// own calls for urgent review, complete or not.
    pub fn has_parameter_scoring_three(&self) -> bool {
        self.scores.contains(&Some(3))
    }

    /// The parameters scoring 3, in chart order.
    pub fn parameters_scoring_three(&self) -> Vec<Parameter> {
        self.scored()
            .filter(|&(_, score)| score == 3)
            .map(|(parameter, _)| parameter)
            .collect()
    }

    /// The SpO2 scale the saturation was scored on.
    pub fn spo2_scale(&self) -> SpO2Scale {
        self.spo2_scale
    }

    /// Whether the SpO2 scale was not recorded and scale 1 was assumed.
    pub fn spo2_scale_assumed(&self) -> bool {
        self.spo2_scale_assumed
    }
}

impl fmt::Display for Assessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome() {
            Outcome::Complete { total, response } => {
                write!(f, "NEWS2 {total}: {}", response.heading())
            }
            Outcome::Incomplete {
                partial_sum,
                at_least,
            } => {
                write!(
                    f,
                    "NEWS2 incomplete ({} of 7 parameters scored; partial sum {partial_sum}, \
                     not a NEWS2 score); not scored: ",
                    7 - self.unscored.len()
                )?;
                for (i, unscored) in self.unscored.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", unscored.parameter)?;
                }
                if at_least > ClinicalResponse::NurseAssessment {
                    write!(f, "; already warrants at least: {}", at_least.heading())?;
                }
                Ok(())
            }
        }
    }
}

/// Scores a set of observations against the NEWS2 chart.
///
/// Never fails: parameters that were not recorded are reported as unscored,
/// and the total is given only when all seven are present.
pub fn score(observations: &Observations) -> Assessment {
    let scale = observations.spo2_scale.unwrap_or_default();
    let mut scores = [None; 7];
    let mut unscored = Vec::new();

    let spo2 = observations
        .spo2
        .map(|spo2| spo2.score(scale, observations.air_or_oxygen));
    let entries: [(Parameter, Option<Option<u8>>); 7] = [
        (
            Parameter::RespirationRate,
            observations.respiration_rate.map(|v| Some(v.score())),
        ),
        (Parameter::OxygenSaturation, spo2),
        (
            Parameter::AirOrOxygen,
            observations.air_or_oxygen.map(|v| Some(v.score())),
        ),
        (
            Parameter::SystolicBp,
            observations.systolic_bp.map(|v| Some(v.score())),
        ),
        (
            Parameter::Pulse,
            observations.pulse.map(|v| Some(v.score())),
        ),
        (
            Parameter::Consciousness,
            observations.consciousness.map(|v| Some(v.score())),
        ),
        (
            Parameter::Temperature,
            observations.temperature.map(|v| Some(v.score())),
        ),
    ];
    for (parameter, entry) in entries {
        match entry {
            Some(Some(score)) => scores[parameter.index()] = Some(score),
            Some(None) => unscored.push(Unscored {
                parameter,
                reason: UnscoredReason::NeedsAirOrOxygen,
            }),
            None => unscored.push(Unscored {
                parameter,
                reason: UnscoredReason::NotRecorded,
            }),
        }
    }

    Assessment {
        scores,
        unscored,
        spo2_scale: scale,
        spo2_scale_assumed: observations.spo2_scale.is_none(),
    }
}
