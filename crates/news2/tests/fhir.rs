//! Writing NEWS2 observations as FHIR R4 and reading them back.

use careshare_news2::{
    from_fhir_observations, read_fhir_observation, score, to_fhir_observations, AirOrOxygen,
    Consciousness, FhirContext, FhirReadError, FhirWriteError, ObservationReadError,
    ObservationSlot, Observations, Reading, SpO2Scale,
};
use serde_json::{json, Value};

const CONTEXT: FhirContext<'static> = FhirContext {
    patient: "Patient/p1",
    effective: "2024-03-01T09:30:00+00:00",
    performer: Some("Practitioner/n7"),
};

fn slot_ids(slot: ObservationSlot) -> String {
    format!("obs-{slot:?}").to_lowercase()
}

fn write(observations: &Observations) -> Vec<Value> {
    to_fhir_observations(observations, &CONTEXT, &mut slot_ids).expect("writes")
}

/// A complete set scoring 6: resp 22 (2), SpO2 95 (1), air (0), BP 105/70
/// (1), pulse 112 (2), alert (0), 37.0 °C (0).
fn complete() -> Observations {
    Observations {
        respiration_rate: Some("22".parse().unwrap()),
        spo2: Some("95".parse().unwrap()),
        spo2_scale: Some(SpO2Scale::Scale1),
        air_or_oxygen: Some(AirOrOxygen::Air),
        systolic_bp: Some("105".parse().unwrap()),
        diastolic_bp: Some("70".parse().unwrap()),
        pulse: Some("112".parse().unwrap()),
        consciousness: Some(Consciousness::Alert),
        temperature: Some("37.0".parse().unwrap()),
    }
}

fn find<'a>(resources: &'a [Value], id: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no observation {id}"))
}

fn has_coding(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == system && c["code"] == code)
}

#[test]
fn a_complete_set_writes_seven_vital_signs_and_a_score() {
    let resources = write(&complete());
    assert_eq!(resources.len(), 8);

    for resource in &resources {
        assert_eq!(resource["resourceType"], "Observation");
        assert_eq!(resource["status"], "final");
        assert_eq!(resource["subject"], json!({ "reference": "Patient/p1" }));
        assert_eq!(resource["effectiveDateTime"], "2024-03-01T09:30:00+00:00");
        assert_eq!(
            resource["performer"],
            json!([{ "reference": "Practitioner/n7" }])
        );
        let category = &resource["category"][0];
        assert_eq!(
            category["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/observation-category"
        );
        // Every Quantity is UCUM with a code.
        let mut quantities: Vec<&Value> = vec![&resource["valueQuantity"]];
        for component in resource["component"].as_array().into_iter().flatten() {
            quantities.push(&component["valueQuantity"]);
        }
        for quantity in quantities.into_iter().filter(|q| !q.is_null()) {
            assert_eq!(quantity["system"], "http://unitsofmeasure.org");
            assert!(quantity["code"].is_string());
            assert!(quantity["value"].is_number());
        }
        // A value, components, or (for the score) both.
        assert!(
            resource.get("valueQuantity").is_some()
                || resource.get("valueCodeableConcept").is_some()
                || resource.get("component").is_some()
        );
    }

    let resp = find(&resources, "obs-respirationrate");
    assert_eq!(resp["category"][0]["coding"][0]["code"], "vital-signs");
    assert!(has_coding(&resp["code"], "http://loinc.org", "9279-1"));
    assert_eq!(resp["valueQuantity"]["value"], json!(22));
    assert_eq!(resp["valueQuantity"]["code"], "/min");
    assert_eq!(
        resp["meta"]["profile"][0],
        "http://hl7.org/fhir/StructureDefinition/resprate"
    );

    let spo2 = find(&resources, "obs-oxygensaturation");
    assert!(has_coding(&spo2["code"], "http://loinc.org", "59408-5"));
    assert!(has_coding(&spo2["code"], "http://loinc.org", "2708-6"));
    assert_eq!(spo2["valueQuantity"]["code"], "%");
    assert!(spo2.get("referenceRange").is_none());

    let air = find(&resources, "obs-airoroxygen");
    assert!(has_coding(
        &air["valueCodeableConcept"],
        "http://snomed.info/sct",
        "722742002"
    ));

    let bp = find(&resources, "obs-bloodpressure");
    assert!(has_coding(&bp["code"], "http://loinc.org", "85354-9"));
    assert!(bp.get("valueQuantity").is_none());
    let systolic = &bp["component"][0];
    assert!(has_coding(&systolic["code"], "http://loinc.org", "8480-6"));
    assert_eq!(systolic["valueQuantity"]["value"], json!(105));
    assert_eq!(systolic["valueQuantity"]["code"], "mm[Hg]");
    assert!(has_coding(
        &bp["component"][1]["code"],
        "http://loinc.org",
        "8462-4"
    ));

    let pulse = find(&resources, "obs-pulse");
    assert!(has_coding(&pulse["code"], "http://loinc.org", "8867-4"));

    let acvpu = find(&resources, "obs-consciousness");
    assert!(has_coding(
        &acvpu["code"],
        "http://snomed.info/sct",
        "1104441000000107"
    ));
    assert!(has_coding(
        &acvpu["valueCodeableConcept"],
        "http://snomed.info/sct",
        "248234008"
    ));

    let temperature = find(&resources, "obs-temperature");
    assert!(has_coding(
        &temperature["code"],
        "http://loinc.org",
        "8310-5"
    ));
    assert_eq!(temperature["valueQuantity"]["code"], "Cel");
    // The one decimal place is kept in the JSON text.
    let text = serde_json::to_string(&temperature["valueQuantity"]).unwrap();
    assert!(text.contains("\"value\":37.0"), "{text}");

    let news2 = find(&resources, "obs-news2score");
    assert_eq!(news2["category"][0]["coding"][0]["code"], "survey");
    assert!(has_coding(
        &news2["code"],
        "http://snomed.info/sct",
        "1104051000000101"
    ));
    assert_eq!(news2["valueQuantity"]["value"], json!(6));
    assert_eq!(news2["valueQuantity"]["code"], "{score}");
    assert!(news2["interpretation"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Medium risk: urgent response"));
    let derived: Vec<&str> = news2["derivedFrom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        derived,
        [
            "Observation/obs-respirationrate",
            "Observation/obs-oxygensaturation",
            "Observation/obs-airoroxygen",
            "Observation/obs-bloodpressure",
            "Observation/obs-pulse",
            "Observation/obs-consciousness",
            "Observation/obs-temperature",
        ]
    );
    let components = news2["component"].as_array().unwrap();
    assert_eq!(components.len(), 7);
    let sub_score_sum: u64 = components
        .iter()
        .map(|c| c["valueQuantity"]["value"].as_u64().unwrap())
        .sum();
    assert_eq!(sub_score_sum, 6);
    assert!(has_coding(
        &components[1]["code"],
        "http://snomed.info/sct",
        "1104311000000102"
    ));
}

#[test]
fn the_respiration_rate_observation_is_exactly_as_specified() {
    let observations = Observations {
        respiration_rate: Some("18".parse().unwrap()),
        ..Observations::default()
    };
    let context = FhirContext {
        patient: "Patient/p1",
        effective: "2024-03-01",
        performer: None,
    };
    let resources =
        to_fhir_observations(&observations, &context, &mut |_| "r1".to_owned()).unwrap();
    let expected = json!([{
        "resourceType": "Observation",
        "id": "r1",
        "meta": { "profile": ["http://hl7.org/fhir/StructureDefinition/resprate"] },
        "status": "final",
        "category": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs"
            }],
            "text": "Vital Signs"
        }],
        "code": {
            "coding": [{ "system": "http://loinc.org", "code": "9279-1", "display": "Respiratory rate" }],
            "text": "Respiration rate"
        },
        "subject": { "reference": "Patient/p1" },
        "effectiveDateTime": "2024-03-01",
        "valueQuantity": {
            "value": 18,
            "unit": "breaths/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min"
        }
    }]);
    assert_eq!(Value::Array(resources), expected);
}

#[test]
fn an_incomplete_set_writes_no_score_observation() {
    let observations = Observations {
        temperature: None,
        ..complete()
    };
    let resources = write(&observations);
    assert_eq!(resources.len(), 6);
    assert!(resources.iter().all(|r| !has_coding(
        &r["code"],
        "http://snomed.info/sct",
        "1104051000000101"
    )));
}

#[test]
fn systolic_without_diastolic_marks_the_diastolic_absent() {
    let observations = Observations {
        systolic_bp: Some("140".parse().unwrap()),
        ..Observations::default()
    };
    let resources = write(&observations);
    assert_eq!(resources.len(), 1);
    let diastolic = &resources[0]["component"][1];
    assert!(diastolic.get("valueQuantity").is_none());
    assert_eq!(
        diastolic["dataAbsentReason"]["coding"][0]["code"],
        "not-performed"
    );
    let read = from_fhir_observations(&resources).unwrap();
    assert_eq!(read, observations);
}

#[test]
fn a_complete_set_round_trips() {
    let observations = complete();
    let read = from_fhir_observations(&write(&observations)).unwrap();
    assert_eq!(read, observations);
    assert_eq!(score(&read), score(&observations));
}

#[test]
fn scale_2_round_trips_through_the_target_range_even_when_incomplete() {
    let observations = Observations {
        spo2: Some("89".parse().unwrap()),
        spo2_scale: Some(SpO2Scale::Scale2),
        air_or_oxygen: Some(AirOrOxygen::Oxygen),
        ..Observations::default()
    };
    let resources = write(&observations);
    let spo2 = find(&resources, "obs-oxygensaturation");
    assert_eq!(spo2["referenceRange"][0]["low"]["value"], json!(88));
    assert_eq!(spo2["referenceRange"][0]["high"]["value"], json!(92));
    assert_eq!(
        spo2["referenceRange"][0]["type"]["coding"][0]["code"],
        "treatment"
    );
    assert_eq!(from_fhir_observations(&resources).unwrap(), observations);
}

#[test]
fn scale_2_on_oxygen_round_trips_with_the_score() {
    let observations = Observations {
        spo2: Some("97".parse().unwrap()),
        spo2_scale: Some(SpO2Scale::Scale2),
        air_or_oxygen: Some(AirOrOxygen::Oxygen),
        ..complete()
    };
    let resources = write(&observations);
    let news2 = find(&resources, "obs-news2score");
    // 2 resp + 3 SpO2 (scale 2, ≥97 on oxygen) + 2 oxygen + 1 BP + 2 pulse.
    assert_eq!(news2["valueQuantity"]["value"], json!(10));
    assert!(has_coding(
        &news2["component"][1]["code"],
        "http://snomed.info/sct",
        "1104321000000108"
    ));
    assert_eq!(from_fhir_observations(&resources).unwrap(), observations);
}

#[test]
fn write_refuses_bad_context_and_ids() {
    let observations = complete();
    let with = |patient, effective, performer| FhirContext {
        patient,
        effective,
        performer,
    };
    for patient in [
        "",
        "p1",
        "Patient/",
        "patient/p1",
        "Patient/has space",
        "urn:uuid:",
    ] {
        assert!(
            matches!(
                to_fhir_observations(
                    &observations,
                    &with(patient, "2024-03-01", None),
                    &mut slot_ids
                ),
                Err(FhirWriteError::InvalidReference {
                    field: "patient",
                    ..
                })
            ),
            "{patient:?}"
        );
    }
    for patient in [
        "Patient/p1",
        "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "https://hub.example.org/fhir/Patient/p1",
    ] {
        assert!(to_fhir_observations(
            &observations,
            &with(patient, "2024-03-01", None),
            &mut slot_ids
        )
        .is_ok());
    }
    assert!(matches!(
        to_fhir_observations(
            &observations,
            &with("Patient/p1", "2024-03-01", Some("nobody")),
            &mut slot_ids
        ),
        Err(FhirWriteError::InvalidReference {
            field: "performer",
            ..
        })
    ));
    for effective in [
        "",
        "2024",
        "2024-03",
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "2024-03-01T09:30:00",
        "2024-03-01T24:00:00Z",
        "2024-03-01T09:30Z",
        "2024-03-01T09:30:00+15:00",
        "2024-03-01T09:30:00.Z",
        "2024-03-01 09:30:00Z",
        "0000-01-01",
    ] {
        assert!(
            matches!(
                to_fhir_observations(
                    &observations,
                    &with("Patient/p1", effective, None),
                    &mut slot_ids
                ),
                Err(FhirWriteError::InvalidDateTime { .. })
            ),
            "{effective:?}"
        );
    }
    for effective in [
        "2024-02-29",
        "2024-03-01T09:30:00Z",
        "2024-03-01T09:30:00.123+01:00",
        "2024-03-01T23:59:60-14:00",
    ] {
        assert!(
            to_fhir_observations(
                &observations,
                &with("Patient/p1", effective, None),
                &mut slot_ids
            )
            .is_ok(),
            "{effective:?}"
        );
    }
    assert!(matches!(
        to_fhir_observations(&observations, &CONTEXT, &mut |_| "same".to_owned()),
        Err(FhirWriteError::DuplicateId { .. })
    ));
    assert!(matches!(
        to_fhir_observations(&observations, &CONTEXT, &mut |_| "not/valid".to_owned()),
        Err(FhirWriteError::InvalidId { .. })
    ));
    assert!(matches!(
        to_fhir_observations(&observations, &CONTEXT, &mut |_| String::new()),
        Err(FhirWriteError::InvalidId { .. })
    ));
}

fn observation(code: Value, value: Value) -> Value {
    let mut resource = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": code,
        "subject": { "reference": "Patient/p1" },
        "effectiveDateTime": "2024-03-01T09:30:00Z"
    });
    if let (Some(map), Some(value)) = (resource.as_object_mut(), value.as_object()) {
        map.extend(value.clone());
    }
    resource
}

fn coding(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

fn quantity(value: Value, code: &str) -> Value {
    json!({ "valueQuantity": { "value": value, "system": "http://unitsofmeasure.org", "code": code } })
}

const SCT: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";

#[test]
fn reads_observations_from_other_systems() {
    let resources: Vec<Value> = vec![
        // SNOMED-coded respiration rate and pulse.
        observation(coding(SCT, "86290005"), quantity(json!(19), "/min")),
        observation(coding(SCT, "364075005"), quantity(json!(88), "/min")),
        // SpO2 coded in SNOMED CT, as some UK systems do.
        observation(coding(SCT, "103228002"), quantity(json!(96), "%")),
        // A stand-alone systolic pressure.
        observation(coding(LOINC, "8480-6"), quantity(json!(132), "mm[Hg]")),
        // Temperature in Fahrenheit.
        observation(coding(LOINC, "8310-5"), quantity(json!(100.4), "[degF]")),
        // Inhaled oxygen concentration above room air.
        observation(coding(LOINC, "3150-0"), quantity(json!(28), "%")),
        // AVPU "verbal" from a system without ACVPU.
        observation(
            coding(LOINC, "67775-7"),
            json!({ "valueCodeableConcept": coding(SCT, "255373000") }),
        ),
        // Ignored: entered in error, another code, not an Observation,
        // and a value that is absent.
        json!({
            "resourceType": "Observation",
            "status": "entered-in-error",
            "code": coding(LOINC, "8867-4"),
            "valueQuantity": { "value": 200, "code": "/min" }
        }),
        observation(coding(LOINC, "29463-7"), quantity(json!(70), "kg")),
        json!({ "resourceType": "Patient", "id": "p1" }),
        observation(
            coding(LOINC, "9279-1"),
            json!({ "dataAbsentReason": { "text": "asleep" } }),
        ),
    ];
    let read = from_fhir_observations(&resources).unwrap();
    assert_eq!(
        read,
        Observations {
            respiration_rate: Some("19".parse().unwrap()),
            spo2: Some("96".parse().unwrap()),
            spo2_scale: None,
            air_or_oxygen: Some(AirOrOxygen::Oxygen),
            systolic_bp: Some("132".parse().unwrap()),
            diastolic_bp: None,
            pulse: Some("88".parse().unwrap()),
            consciousness: Some(Consciousness::Voice),
            temperature: Some("38.0".parse().unwrap()),
        }
    );
    // 19 (0), 96 (0), oxygen (2), 132 (0), 88 (0), voice (3), 38.0 (0).
    let assessment = score(&read);
    assert_eq!(assessment.total(), Some(5));
    assert!(assessment.spo2_scale_assumed());
}

#[test]
fn reads_air_or_oxygen_in_its_several_forms() {
    let cases = [
        (
            observation(
                json!({ "text": "Air or oxygen" }),
                json!({ "valueCodeableConcept": coding(SCT, "371825009") }),
            ),
            AirOrOxygen::Oxygen,
        ),
        (
            observation(coding(SCT, "722742002"), json!({})),
            AirOrOxygen::Air,
        ),
        (
            observation(coding(LOINC, "3150-0"), quantity(json!(21), "%")),
            AirOrOxygen::Air,
        ),
        (
            observation(coding(LOINC, "3151-8"), quantity(json!(2), "L/min")),
            AirOrOxygen::Oxygen,
        ),
        (
            observation(coding(LOINC, "3151-8"), quantity(json!(0), "L/min")),
            AirOrOxygen::Air,
        ),
        // "Patient on oxygen?" asked as the code and answered in the value: a "No" is air.
        (
            observation(
                coding(SCT, "371825009"),
                json!({ "valueCodeableConcept": coding(SCT, "373067005") }),
            ),
            AirOrOxygen::Air,
        ),
        (
            observation(
                coding(SCT, "371825009"),
                json!({ "valueCodeableConcept": coding(SCT, "373066001") }),
            ),
            AirOrOxygen::Oxygen,
        ),
    ];
    for (resource, expected) in cases {
        assert_eq!(
            read_fhir_observation(&resource).unwrap(),
            vec![Reading::AirOrOxygen(expected)],
            "{resource}"
        );
    }
}

#[test]
fn the_oxygen_question_with_an_answer_it_does_not_know_is_not_oxygen() {
    for value in [
        json!({ "valueCodeableConcept": coding(SCT, "261665006") }), // unknown
        json!({ "valueString": "not recorded" }),
    ] {
        let resource = observation(coding(SCT, "371825009"), value);
        assert_eq!(
            read_fhir_observation(&resource).unwrap(),
            vec![],
            "{resource}"
        );
    }
}

#[test]
fn the_score_observation_may_use_has_member_and_is_not_read_as_a_value() {
    let resource = observation(
        coding(SCT, "1104051000000101"),
        json!({
            "valueQuantity": { "value": 4, "system": "http://unitsofmeasure.org", "code": "{score}" },
            "hasMember": [{ "reference": "Observation/x" }],
            "component": [
                { "code": coding(SCT, "1104321000000108"), "valueQuantity": { "value": 0 } }
            ]
        }),
    );
    assert_eq!(
        read_fhir_observation(&resource).unwrap(),
        vec![Reading::SpO2Scale(SpO2Scale::Scale2)]
    );
}

#[test]
fn read_refuses_impossible_values_bad_units_unknown_codes_and_conflicts() {
    let error = |resources: Vec<Value>| from_fhir_observations(&resources).unwrap_err();

    assert!(matches!(
        error(vec![observation(
            coding(LOINC, "59408-5"),
            quantity(json!(101), "%")
        )]),
        FhirReadError::Observation {
            index: 0,
            source: ObservationReadError::InvalidValue(_)
        }
    ));
    assert!(matches!(
        error(vec![observation(
            coding(LOINC, "8867-4"),
            quantity(json!(72.5), "/min")
        )]),
        FhirReadError::Observation {
            source: ObservationReadError::InvalidValue(_),
            ..
        }
    ));
    assert!(matches!(
        error(vec![observation(
            coding(LOINC, "8867-4"),
            quantity(json!("72"), "/min")
        )]),
        FhirReadError::Observation {
            source: ObservationReadError::InvalidValue(_),
            ..
        }
    ));
    assert!(matches!(
        error(vec![observation(
            coding(LOINC, "8310-5"),
            quantity(json!(310), "K")
        )]),
        FhirReadError::Observation {
            source: ObservationReadError::UnexpectedUnit { .. },
            ..
        }
    ));
    assert!(matches!(
        error(vec![observation(
            coding(SCT, "1104441000000107"),
            json!({ "valueCodeableConcept": coding(SCT, "12345") })
        )]),
        FhirReadError::Observation {
            source: ObservationReadError::UnrecognisedCode { .. },
            ..
        }
    ));
    assert_eq!(
        error(vec![
            observation(coding(LOINC, "8867-4"), quantity(json!(72), "/min")),
            observation(coding(LOINC, "9279-1"), quantity(json!(16), "/min")),
            observation(coding(LOINC, "8867-4"), quantity(json!(120), "/min")),
        ]),
        FhirReadError::Conflict {
            what: "pulse",
            first: 0,
            second: 2
        }
    );
    let mut other_patient = observation(coding(LOINC, "9279-1"), quantity(json!(16), "/min"));
    other_patient["subject"] = json!({ "reference": "Patient/p2" });
    assert_eq!(
        error(vec![
            observation(coding(LOINC, "8867-4"), quantity(json!(72), "/min")),
            json!({ "resourceType": "Patient", "id": "p2" }),
            other_patient,
        ]),
        FhirReadError::DifferentPatients {
            first: 0,
            second: 2
        }
    );
    // The same value twice is not a conflict.
    assert!(from_fhir_observations(&[
        observation(coding(LOINC, "8867-4"), quantity(json!(72), "/min")),
        observation(coding(SCT, "364075005"), quantity(json!(72.0), "/min")),
    ])
    .is_ok());
}

#[test]
fn temperature_text_is_read_exactly() {
    // 35.05 is 35.04999… as a binary float; read from its text it is 35.1.
    let resource: Value = serde_json::from_str(
        r#"{"resourceType":"Observation","status":"final",
            "code":{"coding":[{"system":"http://loinc.org","code":"8310-5"}]},
            "valueQuantity":{"value":35.05,"unit":"C","system":"http://unitsofmeasure.org","code":"Cel"}}"#,
    )
    .unwrap();
    assert_eq!(
        read_fhir_observation(&resource).unwrap(),
        vec![Reading::Temperature("35.1".parse().unwrap())]
    );
}
