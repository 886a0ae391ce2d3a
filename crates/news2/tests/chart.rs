//! The NEWS2 chart, boundary by boundary, and the clinical response bands.

use careshare_news2::{
    score, AirOrOxygen, ClinicalResponse, ClinicalRisk, Consciousness, Observations, Outcome,
    Parameter, SpO2Scale, Unscored, UnscoredReason,
};

/// A complete set in which every parameter scores 0, on an explicit scale 1.
fn all_normal() -> Observations {
    Observations {
        respiration_rate: Some("16".parse().unwrap()),
        spo2: Some("97".parse().unwrap()),
        spo2_scale: Some(SpO2Scale::Scale1),
        air_or_oxygen: Some(AirOrOxygen::Air),
        systolic_bp: Some("120".parse().unwrap()),
        diastolic_bp: Some("80".parse().unwrap()),
        pulse: Some("70".parse().unwrap()),
        consciousness: Some(Consciousness::Alert),
        temperature: Some("37.0".parse().unwrap()),
    }
}

/// The one helper every chart table goes through: starting from an all-normal
/// set, `set` records the case's value (given as the text a nurse would
/// type), and the parameter must score `expected` in a complete assessment.
#[track_caller]
fn check_table(parameter: Parameter, cases: &[(&str, u8)], set: fn(&mut Observations, &str)) {
    for &(value, expected) in cases {
        let mut observations = all_normal();
        set(&mut observations, value);
        let assessment = score(&observations);
        assert_eq!(
            assessment.score_of(parameter),
            Some(expected),
            "{parameter} {value:?} should score {expected}"
        );
        assert!(assessment.is_complete(), "{parameter} {value:?}");
    }
}

#[test]
fn respiration_rate_boundaries() {
    check_table(
        Parameter::RespirationRate,
        &[
            ("0", 3),
            ("8", 3),
            ("9", 1),
            ("11", 1),
            ("12", 0),
            ("20", 0),
            ("21", 2),
            ("24", 2),
            ("25", 3),
            ("80", 3),
        ],
        |o, v| o.respiration_rate = Some(v.parse().unwrap()),
    );
}

#[test]
fn spo2_scale_1_boundaries() {
    check_table(
        Parameter::OxygenSaturation,
        &[
            ("0", 3),
            ("91", 3),
            ("92", 2),
            ("93", 2),
            ("94", 1),
            ("95", 1),
            ("96", 0),
            ("100", 0),
        ],
        |o, v| o.spo2 = Some(v.parse().unwrap()),
    );
}

#[test]
fn spo2_scale_1_ignores_oxygen_for_the_saturation_score() {
    // On scale 1 the saturation band is the same on air or oxygen; oxygen is
    // scored separately.
    for (spo2, expected) in [("91", 3), ("93", 2), ("95", 1), ("96", 0), ("100", 0)] {
        let observations = Observations {
            spo2: Some(spo2.parse().unwrap()),
            air_or_oxygen: Some(AirOrOxygen::Oxygen),
            ..all_normal()
        };
        let assessment = score(&observations);
        assert_eq!(
            assessment.score_of(Parameter::OxygenSaturation),
            Some(expected)
        );
        assert_eq!(assessment.score_of(Parameter::AirOrOxygen), Some(2));
    }
}

#[test]
fn spo2_scale_2_boundaries() {
    // "<spo2> <air|oxygen>"
    check_table(
        Parameter::OxygenSaturation,
        &[
            ("0 air", 3),
            ("83 air", 3),
            ("83 oxygen", 3),
            ("84 air", 2),
            ("85 oxygen", 2),
            ("86 air", 1),
            ("87 oxygen", 1),
            ("88 air", 0),
            ("88 oxygen", 0),
            ("92 air", 0),
            ("92 oxygen", 0),
            ("93 air", 0),
            ("93 oxygen", 1),
            ("94 air", 0),
            ("94 oxygen", 1),
            ("95 air", 0),
            ("95 oxygen", 2),
            ("96 air", 0),
            ("96 oxygen", 2),
            ("97 air", 0),
            ("97 oxygen", 3),
            ("100 air", 0),
            ("100 oxygen", 3),
        ],
        |o, v| {
            let (spo2, air_or_oxygen) = v.split_once(' ').unwrap();
            o.spo2_scale = Some(SpO2Scale::Scale2);
            o.spo2 = Some(spo2.parse().unwrap());
            o.air_or_oxygen = Some(air_or_oxygen.parse().unwrap());
        },
    );
}

#[test]
fn spo2_scale_2_93_on_air_versus_oxygen_in_the_total() {
    let on = |air_or_oxygen| Observations {
        spo2: Some("93".parse().unwrap()),
        spo2_scale: Some(SpO2Scale::Scale2),
        air_or_oxygen: Some(air_or_oxygen),
        ..all_normal()
    };
    assert_eq!(score(&on(AirOrOxygen::Air)).total(), Some(0));
    // 1 for the saturation plus 2 for the oxygen.
    assert_eq!(score(&on(AirOrOxygen::Oxygen)).total(), Some(3));
}

#[test]
fn air_or_oxygen_scores() {
    check_table(
        Parameter::AirOrOxygen,
        &[("air", 0), ("oxygen", 2)],
        |o, v| o.air_or_oxygen = Some(v.parse().unwrap()),
    );
}

#[test]
fn systolic_bp_boundaries() {
    check_table(
        Parameter::SystolicBp,
        &[
            ("20", 3),
            ("90", 3),
            ("91", 2),
            ("100", 2),
            ("101", 1),
            ("110", 1),
            ("111", 0),
            ("219", 0),
            ("220", 3),
            ("300", 3),
        ],
        |o, v| o.systolic_bp = Some(v.parse().unwrap()),
    );
}

#[test]
fn pulse_boundaries() {
    check_table(
        Parameter::Pulse,
        &[
            ("10", 3),
            ("40", 3),
            ("41", 1),
            ("50", 1),
            ("51", 0),
            ("90", 0),
            ("91", 1),
            ("110", 1),
            ("111", 2),
            ("130", 2),
            ("131", 3),
            ("300", 3),
        ],
        |o, v| o.pulse = Some(v.parse().unwrap()),
    );
}

#[test]
fn consciousness_levels() {
    check_table(
        Parameter::Consciousness,
        &[("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)],
        |o, v| o.consciousness = Some(v.parse().unwrap()),
    );
}

#[test]
fn temperature_boundaries() {
    check_table(
        Parameter::Temperature,
        &[
            ("25.0", 3),
            ("35.0", 3),
            ("35.04", 3),
            ("35.05", 1),
            ("35.1", 1),
            ("36.0", 1),
            ("36.04", 1),
            ("36.05", 0),
            ("36.1", 0),
            ("38.0", 0),
            ("38.04", 0),
            ("38.05", 1),
            ("38.1", 1),
            ("39.0", 1),
            ("39.1", 2),
            ("45.0", 2),
            ("35", 3),
            ("36", 1),
            ("38", 0),
            ("39", 1),
        ],
        |o, v| o.temperature = Some(v.parse().unwrap()),
    );
}

#[test]
fn temperature_from_floating_point_follows_the_same_rule() {
    for (celsius, expected) in [(35.0, 3), (35.05, 1), (36.0, 1), (36.1, 0), (39.05, 2)] {
        let observations = Observations {
            temperature: Some(careshare_news2::Temperature::from_celsius(celsius).unwrap()),
            ..all_normal()
        };
        assert_eq!(
            score(&observations).score_of(Parameter::Temperature),
            Some(expected),
            "{celsius}"
        );
    }
}

#[test]
fn response_bands_from_the_total() {
    let cases = [
        (
            0,
            false,
            ClinicalResponse::RoutineMonitoring,
            ClinicalRisk::Low,
        ),
        (
            1,
            false,
            ClinicalResponse::NurseAssessment,
            ClinicalRisk::Low,
        ),
        (
            4,
            false,
            ClinicalResponse::NurseAssessment,
            ClinicalRisk::Low,
        ),
        (
            3,
            true,
            ClinicalResponse::UrgentReview,
            ClinicalRisk::LowMedium,
        ),
        (
            4,
            true,
            ClinicalResponse::UrgentReview,
            ClinicalRisk::LowMedium,
        ),
        (
            5,
            false,
            ClinicalResponse::UrgentResponse,
            ClinicalRisk::Medium,
        ),
        (
            5,
            true,
            ClinicalResponse::UrgentResponse,
            ClinicalRisk::Medium,
        ),
        (
            6,
            true,
            ClinicalResponse::UrgentResponse,
            ClinicalRisk::Medium,
        ),
        (
            7,
            false,
            ClinicalResponse::EmergencyResponse,
            ClinicalRisk::High,
        ),
        (
            7,
            true,
            ClinicalResponse::EmergencyResponse,
            ClinicalRisk::High,
        ),
        (
            20,
            true,
            ClinicalResponse::EmergencyResponse,
            ClinicalRisk::High,
        ),
    ];
    for (total, red, response, risk) in cases {
        assert_eq!(
            ClinicalResponse::for_total(total, red),
            response,
            "{total} {red}"
        );
        assert_eq!(response.risk(), risk);
    }
}

#[test]
fn response_bands_from_observations() {
    let case = |set: fn(&mut Observations)| {
        let mut observations = all_normal();
        set(&mut observations);
        score(&observations)
    };

    let zero = case(|_| {});
    assert_eq!(zero.response(), Some(ClinicalResponse::RoutineMonitoring));

    // 4 without a 3: two 2s.
    let four = case(|o| {
        o.respiration_rate = Some("22".parse().unwrap());
        o.pulse = Some("115".parse().unwrap());
    });
    assert_eq!(four.total(), Some(4));
    assert!(!four.has_parameter_scoring_three());
    assert_eq!(four.response(), Some(ClinicalResponse::NurseAssessment));

    // A single 3 alone: low–medium, urgent review.
    let red = case(|o| o.consciousness = Some(Consciousness::NewConfusion));
    assert_eq!(red.total(), Some(3));
    assert_eq!(
        red.parameters_scoring_three(),
        vec![Parameter::Consciousness]
    );
    assert_eq!(red.response(), Some(ClinicalResponse::UrgentReview));
    assert_eq!(
        red.response().map(ClinicalResponse::risk),
        Some(ClinicalRisk::LowMedium)
    );

    // 5 including a 3 is medium, not low–medium.
    let five = case(|o| {
        o.respiration_rate = Some("25".parse().unwrap());
        o.pulse = Some("111".parse().unwrap());
    });
    assert_eq!(five.total(), Some(5));
    assert!(five.has_parameter_scoring_three());
    assert_eq!(five.response(), Some(ClinicalResponse::UrgentResponse));
    assert_eq!(
        five.response().map(ClinicalResponse::risk),
        Some(ClinicalRisk::Medium)
    );

    // 7: emergency.
    let seven = case(|o| {
        o.respiration_rate = Some("25".parse().unwrap());
        o.pulse = Some("111".parse().unwrap());
        o.air_or_oxygen = Some(AirOrOxygen::Oxygen);
    });
    assert_eq!(
        seven.outcome(),
        Outcome::Complete {
            total: 7,
            response: ClinicalResponse::EmergencyResponse
        }
    );
    assert!(seven
        .response()
        .unwrap()
        .escalation_prompt()
        .contains("call 999"));
}

#[test]
fn the_worst_case_scores_twenty() {
    let observations = Observations {
        respiration_rate: Some("30".parse().unwrap()),
        spo2: Some("85".parse().unwrap()),
        spo2_scale: None,
        air_or_oxygen: Some(AirOrOxygen::Oxygen),
        systolic_bp: Some("80".parse().unwrap()),
        diastolic_bp: None,
        pulse: Some("140".parse().unwrap()),
        consciousness: Some(Consciousness::Unresponsive),
        temperature: Some("34.0".parse().unwrap()),
    };
    assert_eq!(score(&observations).total(), Some(20));
}

#[test]
fn missing_parameters_never_give_a_complete_total() {
    for parameter in Parameter::ALL {
        let mut observations = all_normal();
        // Make the known parameters add up to an emergency, to be sure the
        // partial sum is still not presented as a total.
        observations.respiration_rate = Some("30".parse().unwrap());
        observations.pulse = Some("140".parse().unwrap());
        observations.systolic_bp = Some("80".parse().unwrap());
        match parameter {
            Parameter::RespirationRate => observations.respiration_rate = None,
            Parameter::OxygenSaturation => observations.spo2 = None,
            Parameter::AirOrOxygen => observations.air_or_oxygen = None,
            Parameter::SystolicBp => observations.systolic_bp = None,
            Parameter::Pulse => observations.pulse = None,
            Parameter::Consciousness => observations.consciousness = None,
            Parameter::Temperature => observations.temperature = None,
        }
        let assessment = score(&observations);
        assert!(!assessment.is_complete(), "{parameter}");
        assert_eq!(assessment.total(), None, "{parameter}");
        assert_eq!(assessment.response(), None, "{parameter}");
        assert_eq!(
            assessment.unscored(),
            &[Unscored {
                parameter,
                reason: UnscoredReason::NotRecorded
            }]
        );
        assert_eq!(assessment.score_of(parameter), None);
        assert!(matches!(assessment.outcome(), Outcome::Incomplete { .. }));
        assert!(assessment.to_string().contains("not a NEWS2 score"));
        // The red scores are still flagged.
        assert!(assessment.has_parameter_scoring_three(), "{parameter}");
        assert!(assessment.response_at_least() >= ClinicalResponse::UrgentReview);
    }
}

#[test]
fn nothing_recorded_is_incomplete_with_everything_missing() {
    let assessment = score(&Observations::default());
    assert_eq!(assessment.total(), None);
    assert_eq!(assessment.unscored().len(), 7);
    assert_eq!(assessment.partial_sum(), 0);
    assert!(!assessment.has_parameter_scoring_three());
    assert!(assessment.spo2_scale_assumed());
    assert_eq!(
        assessment.outcome(),
        Outcome::Incomplete {
            partial_sum: 0,
            at_least: ClinicalResponse::RoutineMonitoring
        }
    );
}

#[test]
fn a_single_three_is_flagged_even_when_incomplete() {
    let observations = Observations {
        respiration_rate: Some("7".parse().unwrap()),
        ..Observations::default()
    };
    let assessment = score(&observations);
    assert_eq!(assessment.total(), None);
    assert!(assessment.has_parameter_scoring_three());
    assert_eq!(
        assessment.outcome(),
        Outcome::Incomplete {
            partial_sum: 3,
            at_least: ClinicalResponse::UrgentReview
        }
    );
    assert!(assessment.to_string().contains("urgent review"));
}

#[test]
fn an_incomplete_set_already_over_seven_warrants_an_emergency_response() {
    let observations = Observations {
        temperature: None,
        respiration_rate: Some("30".parse().unwrap()),
        pulse: Some("140".parse().unwrap()),
        systolic_bp: Some("85".parse().unwrap()),
        ..all_normal()
    };
    let assessment = score(&observations);
    assert_eq!(assessment.total(), None);
    assert_eq!(
        assessment.outcome(),
        Outcome::Incomplete {
            partial_sum: 9,
            at_least: ClinicalResponse::EmergencyResponse
        }
    );
}

#[test]
fn scale_2_saturation_needs_air_or_oxygen_from_93() {
    let base = Observations {
        spo2_scale: Some(SpO2Scale::Scale2),
        air_or_oxygen: None,
        ..all_normal()
    };
    let at = |spo2: &str| {
        score(&Observations {
            spo2: Some(spo2.parse().unwrap()),
            ..base
        })
    };

    // At 92 % or below the score does not depend on oxygen.
    let ninety_two = at("92");
    assert_eq!(ninety_two.score_of(Parameter::OxygenSaturation), Some(0));
    assert_eq!(
        ninety_two.unscored(),
        &[Unscored {
            parameter: Parameter::AirOrOxygen,
            reason: UnscoredReason::NotRecorded
        }]
    );
    assert_eq!(at("83").score_of(Parameter::OxygenSaturation), Some(3));

    // From 93 % it does, so the saturation cannot be scored either.
    let ninety_three = at("93");
    assert_eq!(ninety_three.score_of(Parameter::OxygenSaturation), None);
    assert_eq!(
        ninety_three.unscored(),
        &[
            Unscored {
                parameter: Parameter::OxygenSaturation,
                reason: UnscoredReason::NeedsAirOrOxygen
            },
            Unscored {
                parameter: Parameter::AirOrOxygen,
                reason: UnscoredReason::NotRecorded
            },
        ]
    );
    assert_eq!(ninety_three.total(), None);
}

#[test]
fn an_unrecorded_scale_is_scored_as_scale_1_and_says_so() {
    let observations = Observations {
        spo2_scale: None,
        spo2: Some("90".parse().unwrap()),
        ..all_normal()
    };
    let assessment = score(&observations);
    assert!(assessment.spo2_scale_assumed());
    assert_eq!(assessment.spo2_scale(), SpO2Scale::Scale1);
    assert_eq!(assessment.score_of(Parameter::OxygenSaturation), Some(3));

    let explicit = score(&Observations {
        spo2_scale: Some(SpO2Scale::Scale2),
        ..observations
    });
    assert!(!explicit.spo2_scale_assumed());
    assert_eq!(explicit.score_of(Parameter::OxygenSaturation), Some(0));
}

#[test]
fn diastolic_pressure_is_recorded_but_not_scored() {
    let low = Observations {
        diastolic_bp: Some("30".parse().unwrap()),
        ..all_normal()
    };
    let missing = Observations {
        diastolic_bp: None,
        ..all_normal()
    };
    assert_eq!(score(&low).total(), Some(0));
    assert_eq!(score(&missing).total(), Some(0));
}

#[test]
fn every_response_has_community_wording() {
    let responses = [
        ClinicalResponse::RoutineMonitoring,
        ClinicalResponse::NurseAssessment,
        ClinicalResponse::UrgentReview,
        ClinicalResponse::UrgentResponse,
        ClinicalResponse::EmergencyResponse,
    ];
    for pair in responses.windows(2) {
        assert!(pair[0] < pair[1]);
    }
    for response in responses {
        assert!(!response.heading().is_empty());
        assert!(!response.escalation_prompt().is_empty());
        assert!(!response.minimum_monitoring_frequency().is_empty());
    }
    assert!(ClinicalResponse::EmergencyResponse
        .heading()
        .contains("call 999 / seek emergency assessment"));
}
