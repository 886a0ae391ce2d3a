//! Properties that hold for every possible set of observations.

use careshare_news2::{
    from_fhir_observations, read_fhir_observation, score, to_fhir_observations, AirOrOxygen,
    ClinicalResponse, Consciousness, DiastolicBp, FhirContext, Observations, OxygenSaturation,
    Parameter, Pulse, RespirationRate, SpO2Scale, SystolicBp, Temperature,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn consciousness() -> impl Strategy<Value = Consciousness> {
    prop_oneof![
        Just(Consciousness::Alert),
        Just(Consciousness::NewConfusion),
        Just(Consciousness::Voice),
        Just(Consciousness::Pain),
        Just(Consciousness::Unresponsive),
    ]
}

fn scale() -> impl Strategy<Value = SpO2Scale> {
    prop_oneof![Just(SpO2Scale::Scale1), Just(SpO2Scale::Scale2)]
}

fn air_or_oxygen() -> impl Strategy<Value = AirOrOxygen> {
    prop_oneof![Just(AirOrOxygen::Air), Just(AirOrOxygen::Oxygen)]
}

/// Any valid set: each parameter present or not, anywhere in its range.
fn observations() -> impl Strategy<Value = Observations> {
    (
        (
            proptest::option::of(0i64..=80),
            proptest::option::of(0i64..=100),
            proptest::option::of(scale()),
            proptest::option::of(air_or_oxygen()),
            proptest::option::of(20i64..=300),
        ),
        (
            proptest::option::of(10i64..=250),
            proptest::option::of(10i64..=300),
            proptest::option::of(consciousness()),
            proptest::option::of(250i64..=450),
        ),
    )
        .prop_map(
            |((rr, spo2, spo2_scale, air_or_oxygen, sbp), (dbp, pulse, consciousness, temp))| {
                Observations {
                    respiration_rate: rr.map(|v| RespirationRate::new(v).unwrap()),
                    spo2: spo2.map(|v| OxygenSaturation::new(v).unwrap()),
                    spo2_scale,
                    air_or_oxygen,
                    systolic_bp: sbp.map(|v| SystolicBp::new(v).unwrap()),
                    diastolic_bp: dbp.map(|v| DiastolicBp::new(v).unwrap()),
                    pulse: pulse.map(|v| Pulse::new(v).unwrap()),
                    consciousness,
                    temperature: temp.map(|v| Temperature::from_tenths(v).unwrap()),
                }
            },
        )
}

/// Mostly complete sets, so the complete-total properties get exercised.
fn complete_observations() -> impl Strategy<Value = Observations> {
    (
        observations(),
        0i64..=80,
        0i64..=100,
        air_or_oxygen(),
        20i64..=300,
        10i64..=300,
        consciousness(),
        250i64..=450,
    )
        .prop_map(
            |(base, rr, spo2, air, sbp, pulse, acvpu, temp)| Observations {
                respiration_rate: Some(RespirationRate::new(rr).unwrap()),
                spo2: Some(OxygenSaturation::new(spo2).unwrap()),
                air_or_oxygen: Some(air),
                systolic_bp: Some(SystolicBp::new(sbp).unwrap()),
                pulse: Some(Pulse::new(pulse).unwrap()),
                consciousness: Some(acvpu),
                temperature: Some(Temperature::from_tenths(temp).unwrap()),
                ..base
            },
        )
}

const CONTEXT: FhirContext<'static> = FhirContext {
    patient: "Patient/p1",
    effective: "2024-03-01T09:30:00Z",
    performer: None,
};

/// Random JSON built from FHIR-looking keys and values, to feed the reader.
fn fhir_like_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("Observation"),
            Just("final"),
            Just("http://loinc.org"),
            Just("http://snomed.info/sct"),
            Just("8310-5"),
            Just("8867-4"),
            Just("59408-5"),
            Just("8480-6"),
            Just("3150-0"),
            Just("3151-8"),
            Just("1104441000000107"),
            Just("1104051000000101"),
            Just("1104321000000108"),
            Just("722742002"),
            Just("248234008"),
            Just("[degF]"),
            Just("Cel"),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("resourceType"),
                        Just("status"),
                        Just("code"),
                        Just("coding"),
                        Just("system"),
                        Just("component"),
                        Just("valueQuantity"),
                        Just("valueCodeableConcept"),
                        Just("value"),
                        Just("unit"),
                        Just("referenceRange"),
                        Just("low"),
                        Just("high"),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn total_is_the_sum_of_parameter_scores(observations in observations()) {
        let assessment = score(&observations);
        let sum: u8 = assessment.scored().map(|(_, s)| s).sum();
        prop_assert_eq!(assessment.partial_sum(), sum);
        for parameter in Parameter::ALL {
            if let Some(s) = assessment.score_of(parameter) {
                prop_assert!(s <= parameter.max_score());
            }
        }
        // Scored and unscored parameters partition the chart.
        prop_assert_eq!(assessment.scored().count() + assessment.unscored().len(), 7);
        if assessment.unscored().is_empty() {
            prop_assert_eq!(assessment.total(), Some(sum));
            prop_assert!(sum <= 20);
            prop_assert_eq!(
                assessment.response(),
                Some(ClinicalResponse::for_total(sum, assessment.has_parameter_scoring_three()))
            );
        } else {
            prop_assert_eq!(assessment.total(), None);
            prop_assert_eq!(assessment.response(), None);
        }
        prop_assert_eq!(
            assessment.has_parameter_scoring_three(),
            assessment.scored().any(|(_, s)| s == 3)
        );
    }

    #[test]
    fn complete_sets_always_have_a_total(observations in complete_observations()) {
        let assessment = score(&observations);
        // Only scale 2 at 93 % or more needs air or oxygen, which is present.
        prop_assert!(assessment.is_complete());
        prop_assert!(assessment.total().is_some());
    }

    #[test]
    fn the_response_is_monotone_in_the_total(a in 0u8..=20, b in 0u8..=20, red in any::<bool>()) {
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(ClinicalResponse::for_total(low, red) <= ClinicalResponse::for_total(high, red));
        prop_assert!(
            ClinicalResponse::for_total(low, red).risk()
                <= ClinicalResponse::for_total(high, red).risk()
        );
        // A parameter scoring 3 never lowers the response.
        prop_assert!(ClinicalResponse::for_total(a, true) >= ClinicalResponse::for_total(a, false));
        if red {
            prop_assert!(ClinicalResponse::for_total(a, red) >= ClinicalResponse::UrgentReview);
        }
    }

    #[test]
    fn recording_more_never_lowers_the_floor(
        observations in complete_observations(),
        mask in proptest::collection::vec(any::<bool>(), 7),
    ) {
        // Dropping parameters can only lower the partial sum and the
        // response already warranted.
        let mut partial = observations;
        let drops = [
            |o: &mut Observations| o.respiration_rate = None,
            |o: &mut Observations| o.spo2 = None,
            |o: &mut Observations| o.air_or_oxygen = None,
            |o: &mut Observations| o.systolic_bp = None,
            |o: &mut Observations| o.pulse = None,
            |o: &mut Observations| o.consciousness = None,
            |o: &mut Observations| o.temperature = None,
        ];
        for (drop, &apply) in drops.iter().zip(&mask) {
            if apply {
                drop(&mut partial);
            }
        }
        let full = score(&observations);
        let part = score(&partial);
        prop_assert!(part.partial_sum() <= full.partial_sum());
        prop_assert!(part.response_at_least() <= full.response_at_least());
        if mask.iter().any(|&m| m) {
            prop_assert_eq!(part.total(), None);
        }
    }

    #[test]
    fn fhir_round_trip_preserves_the_observations_and_the_score(observations in observations()) {
        let mut next = 0;
        let resources = to_fhir_observations(&observations, &CONTEXT, &mut |_| {
            next += 1;
            format!("o{next}")
        })
        .unwrap();
        let read = from_fhir_observations(&resources).unwrap();

        let original = score(&observations);
        // The scale survives when it can be written: in the score's
        // sub-score code for a complete set, or as the 88–92 % target on an
        // SpO2 observation for scale 2.
        let expected_scale = if original.is_complete() {
            Some(original.spo2_scale())
        } else if observations.spo2.is_some() && observations.spo2_scale == Some(SpO2Scale::Scale2) {
            Some(SpO2Scale::Scale2)
        } else {
            None
        };
        prop_assert_eq!(read, Observations { spo2_scale: expected_scale, ..observations });

        let rescored = score(&read);
        prop_assert_eq!(rescored.outcome(), original.outcome());
        for parameter in Parameter::ALL {
            prop_assert_eq!(rescored.score_of(parameter), original.score_of(parameter));
        }
        prop_assert_eq!(rescored.unscored(), original.unscored());
    }

    #[test]
    fn reading_arbitrary_json_never_panics(value in fhir_like_json()) {
        let _ = read_fhir_observation(&value);
        let _ = from_fhir_observations(std::slice::from_ref(&value));
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>(), number in any::<f64>()) {
        let _ = text.parse::<RespirationRate>();
        let _ = text.parse::<OxygenSaturation>();
        let _ = text.parse::<SystolicBp>();
        let _ = text.parse::<DiastolicBp>();
        let _ = text.parse::<Pulse>();
        let _ = text.parse::<Temperature>();
        let _ = text.parse::<Consciousness>();
        let _ = text.parse::<SpO2Scale>();
        let _ = text.parse::<AirOrOxygen>();
        let _ = Temperature::from_fahrenheit_text(&text);
        let _ = Temperature::from_celsius(number);
    }

    #[test]
    fn temperature_text_rounds_to_the_nearest_tenth(tenths in 250i64..=449, hundredth in 0u8..=9) {
        let text = format!("{}.{}{}", tenths / 10, tenths % 10, hundredth);
        let expected = if hundredth >= 5 { tenths + 1 } else { tenths };
        let parsed = text.parse::<Temperature>().unwrap();
        prop_assert_eq!(i64::from(parsed.tenths()), expected);
        let from_float = Temperature::from_celsius(text.parse::<f64>().unwrap()).unwrap();
        prop_assert_eq!(from_float, parsed);
    }
}
