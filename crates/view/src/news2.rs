//! The visit form's NEWS2 panel: each value checked as typed, each parameter
//! scored, and the total with its clinical response only when all seven are
//! recorded (a partial sum is never shown as a total).

use careshare_news2::{
    score, AirOrOxygen, ClinicalResponse, Consciousness, ObservationError, Observations, Outcome,
    Parameter, SpO2Scale,
};
use serde::{Deserialize, Serialize};

use crate::api::ObservationsForm;

/// One row of the NEWS2 panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterRow {
    /// The form field: `respiration_rate`, `spo2`, `air_or_oxygen`,
    /// `systolic_bp`, `pulse`, `consciousness`, `temperature`.
    pub field: String,
    /// "Respiration rate"…
    pub label: String,
    /// Its score, when recorded and valid.
    pub score: Option<u8>,
    /// Why the value is refused, when it is.
    pub error: Option<String>,
}

/// The NEWS2 panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct News2View {
    /// One row per parameter, in chart order.
    pub rows: Vec<ParameterRow>,
    /// The NEWS2 total: only when all seven parameters are scored.
    pub total: Option<u8>,
    /// The sum of what is scored so far (never to be shown as a total).
    pub partial_sum: u8,
    /// Parameters still to record.
    pub missing: Vec<String>,
    /// `low`, `low-medium`, `medium` or `high`: the band of the total, or
    /// the least band already warranted by an incomplete set.
    pub band: String,
    /// The response heading, e.g. "Medium risk: urgent response".
    pub heading: String,
    /// What to do now.
    pub prompt: String,
    /// Whether the response calls for escalation (anything above routine
    /// nurse assessment).
    pub escalate: bool,
    /// Whether any value is refused (the form cannot be saved).
    pub has_errors: bool,
    /// Diastolic blood pressure refused, if it is.
    pub diastolic_error: Option<String>,
}

fn label(p: Parameter) -> &'static str {
    match p {
        Parameter::RespirationRate => "Respiration rate",
        Parameter::OxygenSaturation => "SpO2",
        Parameter::AirOrOxygen => "Air or oxygen",
        Parameter::SystolicBp => "Systolic blood pressure",
        Parameter::Pulse => "Pulse",
        Parameter::Consciousness => "Consciousness",
        Parameter::Temperature => "Temperature",
    }
}

fn field(p: Parameter) -> &'static str {
    match p {
        Parameter::RespirationRate => "respiration_rate",
        Parameter::OxygenSaturation => "spo2",
        Parameter::AirOrOxygen => "air_or_oxygen",
        Parameter::SystolicBp => "systolic_bp",
        Parameter::Pulse => "pulse",
        Parameter::Consciousness => "consciousness",
        Parameter::Temperature => "temperature",
    }
}

fn parse<T: std::str::FromStr<Err = ObservationError>>(
    text: &str,
    errors: &mut Vec<(Parameter, String)>,
    p: Parameter,
) -> Option<T> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push((p, e.to_string()));
            None
        }
    }
}

/// The validated observations of a form, or the refusals (per parameter;
/// `None` for the diastolic pressure).
pub fn observations(
    form: &ObservationsForm,
) -> Result<Observations, Vec<(Option<Parameter>, String)>> {
    let (obs, errors, diastolic) = read(form);
    let mut all: Vec<(Option<Parameter>, String)> =
        errors.into_iter().map(|(p, e)| (Some(p), e)).collect();
    if let Some(e) = diastolic {
        all.push((None, e));
    }
    if all.is_empty() {
        Ok(obs)
    } else {
        Err(all)
    }
}

fn read(form: &ObservationsForm) -> (Observations, Vec<(Parameter, String)>, Option<String>) {
    let mut errors = Vec::new();
    let air_or_oxygen: Option<AirOrOxygen> =
        parse(&form.air_or_oxygen, &mut errors, Parameter::AirOrOxygen);
    let consciousness: Option<Consciousness> =
        parse(&form.consciousness, &mut errors, Parameter::Consciousness);
    let obs = Observations {
        respiration_rate: parse(
            &form.respiration_rate,
            &mut errors,
            Parameter::RespirationRate,
        ),
        spo2: parse(&form.spo2, &mut errors, Parameter::OxygenSaturation),
        spo2_scale: Some(if form.spo2_scale2 {
            SpO2Scale::Scale2
        } else {
            SpO2Scale::Scale1
        }),
        air_or_oxygen,
        systolic_bp: parse(&form.systolic_bp, &mut errors, Parameter::SystolicBp),
        diastolic_bp: None,
        pulse: parse(&form.pulse, &mut errors, Parameter::Pulse),
        consciousness,
        temperature: parse(&form.temperature, &mut errors, Parameter::Temperature),
    };
    let text = form.diastolic_bp.trim();
    let (diastolic_bp, diastolic_error) = if text.is_empty() {
        (None, None)
    } else {
        match text.parse() {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(ObservationError::to_string(&e))),
        }
    };
    (
        Observations {
            diastolic_bp,
            ..obs
        },
        errors,
        diastolic_error,
    )
}

fn band(r: ClinicalResponse) -> &'static str {
    match r {
        ClinicalResponse::RoutineMonitoring | ClinicalResponse::NurseAssessment => "low",
        ClinicalResponse::UrgentReview => "low-medium",
        ClinicalResponse::UrgentResponse => "medium",
        ClinicalResponse::EmergencyResponse => "high",
    }
}

/// The NEWS2 panel for the form as it stands.
pub fn assess(form: &ObservationsForm) -> News2View {
    let (obs, errors, diastolic_error) = read(form);
    let assessment = score(&obs);
    let rows = Parameter::ALL
        .iter()
        .map(|&p| ParameterRow {
            field: field(p).into(),
            label: label(p).into(),
            score: assessment.score_of(p),
            error: errors.iter().find(|(e, _)| *e == p).map(|(_, m)| m.clone()),
        })
        .collect();
    let missing = assessment
        .unscored()
        .iter()
        .map(|u| label(u.parameter).to_owned())
        .collect();
    let (total, response) = match assessment.outcome() {
        Outcome::Complete { total, response } => (Some(total), response),
        Outcome::Incomplete { at_least, .. } => (None, at_least),
    };
    let heading = if total.is_some() {
        response.heading().to_owned()
    } else {
        format!(
            "Incomplete: no NEWS2 total until every parameter is recorded (at least: {})",
            response.heading()
        )
    };
    News2View {
        rows,
        total,
        partial_sum: assessment.partial_sum(),
        missing,
        band: band(response).into(),
        heading,
        prompt: response.escalation_prompt().into(),
        escalate: response > ClinicalResponse::NurseAssessment,
        has_errors: !errors.is_empty() || diastolic_error.is_some(),
        diastolic_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ObservationsForm {
        ObservationsForm {
            respiration_rate: "22".into(),
            spo2: "95".into(),
            spo2_scale2: false,
            air_or_oxygen: "air".into(),
            systolic_bp: "105".into(),
            diastolic_bp: "70".into(),
            pulse: "112".into(),
            consciousness: "A".into(),
            temperature: "38.4".into(),
        }
    }

    #[test]
    fn a_complete_set_has_a_total_and_its_response() {
        let v = assess(&full());
        assert_eq!(v.total, Some(7));
        assert_eq!(v.band, "high");
        assert!(v.escalate);
        assert!(v.heading.starts_with("High risk"));
        assert!(v.missing.is_empty());
        assert!(!v.has_errors);
        let scores: Vec<_> = v.rows.iter().map(|r| r.score).collect();
        assert_eq!(
            scores,
            [
                Some(2),
                Some(1),
                Some(0),
                Some(1),
                Some(2),
                Some(0),
                Some(1)
            ]
        );
    }

    #[test]
    fn an_incomplete_set_never_shows_a_total() {
        let v = assess(&ObservationsForm {
            temperature: String::new(),
            ..full()
        });
        assert_eq!(v.total, None);
        assert_eq!(v.partial_sum, 6);
        assert_eq!(v.missing, ["Temperature"]);
        assert!(v.heading.starts_with("Incomplete"));
        // A partial sum of 6 already calls for an urgent response.
        assert_eq!(v.band, "medium");
    }

    #[test]
    fn a_single_three_is_an_urgent_review() {
        let v = assess(&ObservationsForm {
            respiration_rate: "16".into(),
            spo2: "97".into(),
            systolic_bp: "88".into(),
            pulse: "70".into(),
            temperature: "37.0".into(),
            ..full()
        });
        assert_eq!(v.total, Some(3));
        assert_eq!(v.band, "low-medium");
        assert!(v.escalate);
    }

    #[test]
    fn refused_values_are_named_and_block_saving() {
        let v = assess(&ObservationsForm {
            pulse: "fast".into(),
            consciousness: "X".into(),
            diastolic_bp: "-3".into(),
            ..full()
        });
        assert!(v.has_errors);
        let pulse = v.rows.iter().find(|r| r.field == "pulse").unwrap();
        assert!(pulse.error.as_deref().unwrap().contains("not a number"));
        assert_eq!(pulse.score, None);
        assert!(v.diastolic_error.is_some());
        assert_eq!(v.total, None);
        assert!(observations(&full()).is_ok());
        assert!(observations(&ObservationsForm {
            pulse: "fast".into(),
            ..full()
        })
        .is_err());
    }
}
