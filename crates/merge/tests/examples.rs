//! Worked examples of the merge rules on realistic resources.

use careshare_merge::{merge, resolve, Choice, ConflictKind, MergeOutcome};
use serde_json::{json, Value};

use ConflictKind::{BothAdded, BothChanged, DeletedByOurs, DeletedByTheirs};

enum Expected {
    Merged(Value),
    Conflicted {
        merged_so_far: Value,
        conflicts: Vec<(&'static str, ConflictKind)>,
    },
}

struct Case {
    name: &'static str,
    base: Value,
    ours: Value,
    theirs: Value,
    expected: Expected,
}

fn merged(value: Value) -> Expected {
    Expected::Merged(value)
}

fn conflicted(merged_so_far: Value, conflicts: &[(&'static str, ConflictKind)]) -> Expected {
    Expected::Conflicted {
        merged_so_far,
        conflicts: conflicts.to_vec(),
    }
}

/// Merges both ways round and compares with the expectation. The swapped
/// merge must give the same conflict paths with ours and theirs exchanged,
/// and resolving every conflict either way must succeed.
fn check(name: &str, base: &Value, ours: &Value, theirs: &Value, expected: &Expected) {
    let outcome = merge(base, ours, theirs).unwrap_or_else(|e| panic!("{name}: {e}"));
    match (&outcome, expected) {
        (MergeOutcome::Merged(actual), Expected::Merged(want)) => {
            assert_eq!(actual, want, "{name}: merged value");
            // Key order follows base, then ours, then theirs: check it too.
            assert_eq!(actual.to_string(), want.to_string(), "{name}: key order");
        }
        (
            MergeOutcome::Conflicted {
                merged_so_far,
                conflicts,
            },
            Expected::Conflicted {
                merged_so_far: want,
                conflicts: want_conflicts,
            },
        ) => {
            assert_eq!(merged_so_far, want, "{name}: merged so far");
            let actual: Vec<(&str, ConflictKind)> = conflicts
                .iter()
                .map(|c| (c.path.as_str(), c.kind))
                .collect();
            assert_eq!(&actual, want_conflicts, "{name}: conflicts");
        }
        (actual, _) => panic!("{name}: unexpected outcome {actual:#?}"),
    }

    let swapped = merge(base, theirs, ours).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut forward: Vec<_> = outcome
        .conflicts()
        .iter()
        .map(|c| (c.path.clone(), c.kind, &c.base, &c.ours, &c.theirs))
        .collect();
    let mut backward: Vec<_> = swapped
        .conflicts()
        .iter()
        .map(|c| {
            (
                c.path.clone(),
                c.kind.swapped(),
                &c.base,
                &c.theirs,
                &c.ours,
            )
        })
        .collect();
    forward.sort_by(|a, b| a.0.cmp(&b.0));
    backward.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(forward, backward, "{name}: symmetry");

    for choice in [Choice::Ours, Choice::Theirs, Choice::Base] {
        let choices = outcome
            .conflicts()
            .iter()
            .map(|c| (c.path.clone(), choice.clone()));
        resolve(&outcome, choices).unwrap_or_else(|e| panic!("{name}: resolve: {e}"));
    }
}

fn observation_cases() -> Vec<Case> {
    let bp = json!({
        "resourceType": "Observation",
        "id": "bp-1",
        "meta": {"versionId": "3", "lastUpdated": "2024-03-01T09:00:00Z"},
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": "Patient/p1"},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
                "valueQuantity": {"value": 142, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
                "valueQuantity": {"value": 88, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            }
        ]
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = bp.clone();
        edit(&mut value);
        value
    };
    let systolic =
        |v: i64| move |o: &mut Value| o["component"][0]["valueQuantity"]["value"] = json!(v);
    let diastolic =
        |v: i64| move |o: &mut Value| o["component"][1]["valueQuantity"]["value"] = json!(v);
    let temp = json!({
        "resourceType": "Observation",
        "id": "temp-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "valueQuantity": {"value": 37.2, "unit": "Cel"}
    });
    let temp_with = |value: &str| {
        let mut t = temp.clone();
        t["valueQuantity"]["value"] = serde_json::from_str(value).unwrap();
        t
    };

    vec![
        Case {
            name: "status change and a new note merge",
            base: bp.clone(),
            ours: with(&|o| o["note"] = json!([{"text": "Patient anxious, repeat in 1 hour"}])),
            theirs: with(&|o| {
                o["status"] = json!("final");
                o["meta"] = json!({"versionId": "4", "lastUpdated": "2024-03-01T10:00:00Z"});
            }),
            expected: merged(with(&|o| {
                o["status"] = json!("final");
                o["meta"] = json!({"versionId": "4", "lastUpdated": "2024-03-01T10:00:00Z"});
                o["note"] = json!([{"text": "Patient anxious, repeat in 1 hour"}]);
            })),
        },
        Case {
            name: "different components merge",
            base: bp.clone(),
            ours: with(&systolic(150)),
            theirs: with(&diastolic(91)),
            expected: merged(with(&|o| {
                systolic(150)(o);
                diastolic(91)(o);
            })),
        },
        Case {
            name: "same component value changed differently conflicts",
            base: bp.clone(),
            ours: with(&systolic(150)),
            theirs: with(&|o| {
                systolic(148)(o);
                diastolic(91)(o);
            }),
            expected: conflicted(
                with(&diastolic(91)),
                &[(
                    "component[code=http://loinc.org|8480-6].valueQuantity.value",
                    BothChanged,
                )],
            ),
        },
        Case {
            name: "status changed differently conflicts",
            base: bp.clone(),
            ours: with(&|o| o["status"] = json!("final")),
            theirs: with(&|o| o["status"] = json!("entered-in-error")),
            expected: conflicted(bp.clone(), &[("status", BothChanged)]),
        },
        Case {
            name: "identical changes merge",
            base: bp.clone(),
            ours: with(&|o| o["status"] = json!("final")),
            theirs: with(&|o| o["status"] = json!("final")),
            expected: merged(with(&|o| o["status"] = json!("final"))),
        },
        Case {
            name: "a component added on each side keeps both",
            base: bp.clone(),
            ours: with(&|o| {
                o["component"].as_array_mut().unwrap().push(json!({
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8478-0"}]},
                    "valueQuantity": {"value": 106, "unit": "mmHg"}
                }))
            }),
            theirs: with(&|o| {
                o["component"].as_array_mut().unwrap().push(json!({
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271650006"}]},
                    "valueQuantity": {"value": 88, "unit": "mmHg"}
                }))
            }),
            expected: merged(with(&|o| {
                let components = o["component"].as_array_mut().unwrap();
                components.push(json!({
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8478-0"}]},
                    "valueQuantity": {"value": 106, "unit": "mmHg"}
                }));
                components.push(json!({
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271650006"}]},
                    "valueQuantity": {"value": 88, "unit": "mmHg"}
                }));
            })),
        },
        Case {
            name: "a component removed on one side and changed on the other conflicts",
            base: bp.clone(),
            ours: with(&|o| {
                o["component"].as_array_mut().unwrap().remove(1);
            }),
            theirs: with(&diastolic(91)),
            expected: conflicted(
                bp.clone(),
                &[("component[code=http://loinc.org|8462-4]", DeletedByOurs)],
            ),
        },
        Case {
            name: "a component removed on one side and unchanged on the other is removed",
            base: bp.clone(),
            ours: with(&|o| {
                o["component"].as_array_mut().unwrap().remove(1);
            }),
            theirs: with(&|o| o["status"] = json!("final")),
            expected: merged(with(&|o| {
                o["component"].as_array_mut().unwrap().remove(1);
                o["status"] = json!("final");
            })),
        },
        Case {
            name: "codings added on both sides are kept",
            base: bp.clone(),
            ours: with(&|o| {
                o["code"]["coding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": "http://snomed.info/sct", "code": "75367002"}))
            }),
            theirs: with(&|o| {
                o["code"]["coding"][0]["display"] =
                    json!("Blood pressure panel with all children optional")
            }),
            expected: merged(with(&|o| {
                o["code"]["coding"][0]["display"] =
                    json!("Blood pressure panel with all children optional");
                o["code"]["coding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": "http://snomed.info/sct", "code": "75367002"}));
            })),
        },
        Case {
            name: "decimal precision is part of the value",
            base: temp.clone(),
            ours: temp_with("37.5"),
            theirs: temp_with("37.50"),
            expected: conflicted(temp.clone(), &[("valueQuantity.value", BothChanged)]),
        },
        Case {
            name: "a precision-only change on one side is taken",
            base: temp.clone(),
            ours: temp.clone(),
            theirs: temp_with("37.20"),
            expected: merged(temp_with("37.20")),
        },
        Case {
            name: "both adding the effective time differently conflicts",
            base: temp.clone(),
            ours: {
                let mut t = temp.clone();
                t["effectiveDateTime"] = json!("2024-03-01T09:15:00Z");
                t
            },
            theirs: {
                let mut t = temp.clone();
                t["effectiveDateTime"] = json!("2024-03-01T09:20:00Z");
                t
            },
            expected: conflicted(temp.clone(), &[("effectiveDateTime", BothAdded)]),
        },
    ]
}

fn task_cases() -> Vec<Case> {
    let task = json!({
        "resourceType": "Task",
        "id": "task-7",
        "status": "requested",
        "intent": "order",
        "description": "Dressing change, left leg ulcer",
        "for": {"reference": "Patient/p1"},
        "note": [{"authorString": "District nurse", "time": "2024-02-28T16:00:00Z", "text": "Wound clean, no signs of infection"}]
    });
    let first_note = json!({"authorString": "District nurse", "time": "2024-02-28T16:00:00Z", "text": "Wound clean, no signs of infection"});
    let nurse_note = json!({"authorString": "District nurse", "time": "2024-03-01T11:00:00Z", "text": "Dressing changed, exudate reduced"});
    let gp_note = json!({"authorString": "Dr Patel", "time": "2024-03-01T12:00:00Z", "text": "Refer to tissue viability if no improvement"});
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = task.clone();
        edit(&mut value);
        value
    };
    let with_ids = |edit: &dyn Fn(&mut Value)| {
        let mut value = task.clone();
        value["note"][0]["id"] = json!("n1");
        edit(&mut value);
        value
    };

    vec![
        Case {
            name: "nurse adds a note while GP changes the status",
            base: task.clone(),
            ours: with(&|t| t["note"] = json!([first_note, nurse_note])),
            theirs: with(&|t| t["status"] = json!("cancelled")),
            expected: merged(with(&|t| {
                t["status"] = json!("cancelled");
                t["note"] = json!([first_note, nurse_note]);
            })),
        },
        Case {
            name: "notes appended on both sides are all kept",
            base: task.clone(),
            ours: with(&|t| t["note"] = json!([first_note, nurse_note])),
            theirs: with(&|t| t["note"] = json!([first_note, gp_note])),
            expected: merged(with(&|t| {
                t["note"] = json!([first_note, nurse_note, gp_note])
            })),
        },
        Case {
            name: "status changed differently conflicts",
            base: task.clone(),
            ours: with(&|t| t["status"] = json!("completed")),
            theirs: with(&|t| t["status"] = json!("cancelled")),
            expected: conflicted(task.clone(), &[("status", BothChanged)]),
        },
        Case {
            name: "the same note text edited differently conflicts on the whole note list",
            base: task.clone(),
            ours: with(&|t| t["note"][0]["text"] = json!("Wound clean, slight redness at margin")),
            theirs: with(&|t| t["note"][0]["text"] = json!("Wound clean")),
            expected: conflicted(task.clone(), &[("note", BothChanged)]),
        },
        Case {
            name: "notes with element ids conflict on the text only",
            base: with_ids(&|_| {}),
            ours: with_ids(&|t| {
                t["note"][0]["text"] = json!("Wound clean, slight redness at margin")
            }),
            theirs: with_ids(&|t| {
                t["note"][0]["text"] = json!("Wound clean");
                t["status"] = json!("in-progress");
            }),
            expected: conflicted(
                with_ids(&|t| t["status"] = json!("in-progress")),
                &[("note[id=n1].text", BothChanged)],
            ),
        },
        Case {
            name: "notes deleted on one side and appended to on the other conflict",
            base: task.clone(),
            ours: with(&|t| {
                t.as_object_mut().unwrap().shift_remove("note");
            }),
            theirs: with(&|t| t["note"] = json!([first_note, gp_note])),
            expected: conflicted(task.clone(), &[("note", DeletedByOurs)]),
        },
    ]
}

fn allergy_and_medication_cases() -> Vec<Case> {
    let allergy = json!({
        "resourceType": "AllergyIntolerance",
        "id": "alg-2",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}]},
        "patient": {"reference": "Patient/p1"},
        "criticality": "low",
        "reaction": [{
            "manifestation": [{"coding": [{"system": "http://snomed.info/sct", "code": "271807003", "display": "Skin rash"}]}],
            "severity": "mild"
        }]
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = allergy.clone();
        edit(&mut value);
        value
    };
    let statement = json!({
        "resourceType": "MedicationStatement",
        "id": "ms-9",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "322236009", "display": "Paracetamol 500mg tablets"}]},
        "subject": {"reference": "Patient/p1"},
        "dosage": [{"text": "1 tablet four times a day", "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}}]
    });
    let ms_with = |edit: &dyn Fn(&mut Value)| {
        let mut value = statement.clone();
        edit(&mut value);
        value
    };

    vec![
        Case {
            name: "reaction edited on both sides conflicts",
            base: allergy.clone(),
            ours: with(&|a| a["reaction"][0]["severity"] = json!("moderate")),
            theirs: with(&|a| {
                a["reaction"][0]["manifestation"][0]["coding"][0] = json!({"system": "http://snomed.info/sct", "code": "39579001", "display": "Anaphylaxis"});
            }),
            expected: conflicted(allergy.clone(), &[("reaction", BothChanged)]),
        },
        Case {
            name: "reaction and criticality edited on different sides merge",
            base: allergy.clone(),
            ours: with(&|a| a["reaction"][0]["severity"] = json!("severe")),
            theirs: with(&|a| a["criticality"] = json!("high")),
            expected: merged(with(&|a| {
                a["reaction"][0]["severity"] = json!("severe");
                a["criticality"] = json!("high");
            })),
        },
        Case {
            name: "dosage changed differently conflicts",
            base: statement.clone(),
            ours: ms_with(&|m| m["dosage"][0]["text"] = json!("2 tablets four times a day")),
            theirs: ms_with(&|m| {
                m["dosage"] = json!([{"text": "1 tablet when required, max 4 a day"}])
            }),
            expected: conflicted(statement.clone(), &[("dosage", BothChanged)]),
        },
        Case {
            name: "dosage added differently on both sides conflicts",
            base: ms_with(&|m| {
                m.as_object_mut().unwrap().shift_remove("dosage");
            }),
            ours: ms_with(&|m| m["dosage"] = json!([{"text": "1 tablet daily"}])),
            theirs: ms_with(&|m| m["dosage"] = json!([{"text": "2 tablets daily"}])),
            expected: conflicted(
                ms_with(&|m| {
                    m.as_object_mut().unwrap().shift_remove("dosage");
                }),
                &[("dosage", BothAdded)],
            ),
        },
        Case {
            name: "status and dosage changed on different sides merge",
            base: statement.clone(),
            ours: ms_with(&|m| m["dosage"][0]["text"] = json!("2 tablets four times a day")),
            theirs: ms_with(&|m| m["status"] = json!("stopped")),
            expected: merged(ms_with(&|m| {
                m["dosage"][0]["text"] = json!("2 tablets four times a day");
                m["status"] = json!("stopped");
            })),
        },
        Case {
            name: "medication deleted on one side and changed on the other conflicts",
            base: statement.clone(),
            ours: ms_with(&|m| {
                m.as_object_mut()
                    .unwrap()
                    .shift_remove("medicationCodeableConcept");
            }),
            theirs: ms_with(&|m| m["medicationCodeableConcept"]["text"] = json!("Paracetamol")),
            expected: conflicted(
                statement.clone(),
                &[("medicationCodeableConcept", DeletedByOurs)],
            ),
        },
    ]
}

fn care_plan_cases() -> Vec<Case> {
    let plan = json!({
        "resourceType": "CarePlan",
        "id": "cp-3",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-02-01"},
        "activity": [{
            "detail": {
                "kind": "Task",
                "code": {"text": "Compression bandaging"},
                "status": "in-progress"
            }
        }]
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = plan.clone();
        edit(&mut value);
        value
    };
    let new_activity = json!({"detail": {"kind": "Task", "code": {"text": "Weekly Doppler"}, "status": "scheduled"}});

    vec![
        Case {
            name: "activity changed on both sides conflicts",
            base: plan.clone(),
            ours: with(&|p| {
                p["activity"][0]["progress"] = json!([{"text": "Tolerating bandage well"}])
            }),
            theirs: with(&|p| p["activity"][0]["detail"]["status"] = json!("cancelled")),
            expected: conflicted(plan.clone(), &[("activity", BothChanged)]),
        },
        Case {
            name: "activity added while the period changes merges",
            base: plan.clone(),
            ours: with(&|p| {
                p["activity"]
                    .as_array_mut()
                    .unwrap()
                    .push(new_activity.clone())
            }),
            theirs: with(&|p| p["period"]["end"] = json!("2024-05-01")),
            expected: merged(with(&|p| {
                p["period"]["end"] = json!("2024-05-01");
                p["activity"]
                    .as_array_mut()
                    .unwrap()
                    .push(new_activity.clone());
            })),
        },
    ]
}

fn patient_cases() -> Vec<Case> {
    let patient = json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "versionId": "12",
            "lastUpdated": "2024-02-20T08:00:00Z",
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]
        },
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
        "name": [{"use": "official", "family": "Smith", "given": ["Ann"]}],
        "telecom": [
            {"system": "phone", "value": "01632 960 123", "use": "home"},
            {"system": "email", "value": "ann.smith@example.org"}
        ],
        "address": [{"line": ["1 Mill Lane"], "city": "Leeds", "postalCode": "LS1 4AB"}]
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = patient.clone();
        edit(&mut value);
        value
    };
    let mobile = json!({"system": "phone", "value": "07700 900 123", "use": "mobile"});
    let restricted =
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"});
    let tag = json!({"system": "https://careshare.example/tags", "code": "community-caseload"});

    vec![
        Case {
            name: "telecom added on one side and changed on the other merge",
            base: patient.clone(),
            ours: with(&|p| p["telecom"].as_array_mut().unwrap().push(mobile.clone())),
            theirs: with(&|p| p["telecom"][0]["use"] = json!("work")),
            expected: merged(with(&|p| {
                p["telecom"][0]["use"] = json!("work");
                p["telecom"].as_array_mut().unwrap().push(mobile.clone());
            })),
        },
        Case {
            name: "changing a telecom value is a removal and an addition",
            base: patient.clone(),
            ours: with(&|p| p["telecom"].as_array_mut().unwrap().push(mobile.clone())),
            theirs: with(&|p| p["telecom"][1]["value"] = json!("ann@example.net")),
            expected: merged(with(&|p| {
                let telecom = p["telecom"].as_array_mut().unwrap();
                telecom.remove(1);
                telecom.push(mobile.clone());
                telecom.push(json!({"system": "email", "value": "ann@example.net"}));
            })),
        },
        Case {
            name: "telecom removed on one side and changed on the other conflicts",
            base: patient.clone(),
            ours: with(&|p| p["telecom"][0]["use"] = json!("temp")),
            theirs: with(&|p| {
                p["telecom"].as_array_mut().unwrap().remove(0);
            }),
            expected: conflicted(
                patient.clone(),
                &[("telecom[phone|01632 960 123]", DeletedByTheirs)],
            ),
        },
        Case {
            name: "address changed differently conflicts as a whole",
            base: patient.clone(),
            ours: with(&|p| p["address"][0]["line"] = json!(["1 Mill Lane", "Flat 2"])),
            theirs: with(&|p| p["address"][0]["postalCode"] = json!("LS1 4AD")),
            expected: conflicted(patient.clone(), &[("address", BothChanged)]),
        },
        Case {
            name: "name changed on one side and address on the other merge",
            base: patient.clone(),
            ours: with(&|p| p["name"][0]["given"] = json!(["Ann", "Marie"])),
            theirs: with(&|p| p["address"][0]["postalCode"] = json!("LS1 4AD")),
            expected: merged(with(&|p| {
                p["name"][0]["given"] = json!(["Ann", "Marie"]);
                p["address"][0]["postalCode"] = json!("LS1 4AD");
            })),
        },
        Case {
            name: "identifiers added on both sides are kept",
            base: patient.clone(),
            ours: with(&|p| {
                p["identifier"].as_array_mut().unwrap().push(
                    json!({"system": "https://careshare.example/Id/caseload", "value": "CL-88"}),
                )
            }),
            theirs: with(&|p| {
                p["identifier"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": "https://leeds.example/Id/mrn", "value": "M123456"}))
            }),
            expected: merged(with(&|p| {
                let identifiers = p["identifier"].as_array_mut().unwrap();
                identifiers.push(
                    json!({"system": "https://careshare.example/Id/caseload", "value": "CL-88"}),
                );
                identifiers
                    .push(json!({"system": "https://leeds.example/Id/mrn", "value": "M123456"}));
            })),
        },
        Case {
            name: "bookkeeping takes the hub's version and labels are never dropped",
            base: patient.clone(),
            ours: with(&|p| {
                p["meta"]["versionId"] = json!("12-local");
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone());
            }),
            theirs: with(&|p| {
                p["meta"]["versionId"] = json!("13");
                p["meta"]["lastUpdated"] = json!("2024-03-01T10:00:00Z");
                p["meta"]["tag"] = json!([tag.clone()]);
            }),
            expected: merged(with(&|p| {
                p["meta"]["versionId"] = json!("13");
                p["meta"]["lastUpdated"] = json!("2024-03-01T10:00:00Z");
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone());
                p["meta"]["tag"] = json!([tag.clone()]);
            })),
        },
        Case {
            name: "a security label added on the hub survives a local edit of the same list",
            base: patient.clone(),
            ours: with(&|p| {
                p["meta"]["security"][0]["display"] = json!("normal");
            }),
            theirs: with(&|p| {
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone());
            }),
            expected: merged(with(&|p| {
                p["meta"]["security"][0]["display"] = json!("normal");
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone());
            })),
        },
        Case {
            name: "a label removed on one side and untouched on the other is removed",
            base: with(&|p| {
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone())
            }),
            ours: patient.clone(),
            theirs: with(&|p| {
                p["meta"]["security"]
                    .as_array_mut()
                    .unwrap()
                    .push(restricted.clone());
                p["meta"]["versionId"] = json!("13");
            }),
            expected: merged(with(&|p| p["meta"]["versionId"] = json!("13"))),
        },
    ]
}

fn questionnaire_and_extension_cases() -> Vec<Case> {
    let response = json!({
        "resourceType": "QuestionnaireResponse",
        "id": "qr-1",
        "status": "in-progress",
        "item": [
            {"linkId": "1", "text": "Pain score", "answer": [{"valueInteger": 3}]},
            {"linkId": "2", "text": "Mobility", "item": [
                {"linkId": "2.1", "text": "Walks unaided", "answer": [{"valueBoolean": true}]}
            ]}
        ]
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = response.clone();
        edit(&mut value);
        value
    };
    let patient = json!({
        "resourceType": "Patient",
        "id": "p2",
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired", "valueBoolean": false},
            {"url": "https://careshare.example/StructureDefinition/key-safe", "valueString": "1234"}
        ]
    });
    let patient_with = |edit: &dyn Fn(&mut Value)| {
        let mut value = patient.clone();
        edit(&mut value);
        value
    };

    vec![
        Case {
            name: "answers to different questions merge",
            base: response.clone(),
            ours: with(&|r| r["item"][0]["answer"] = json!([{"valueInteger": 5}])),
            theirs: with(&|r| r["item"][1]["item"][0]["answer"] = json!([{"valueBoolean": false}])),
            expected: merged(with(&|r| {
                r["item"][0]["answer"] = json!([{"valueInteger": 5}]);
                r["item"][1]["item"][0]["answer"] = json!([{"valueBoolean": false}]);
            })),
        },
        Case {
            name: "the same nested answer changed differently conflicts",
            base: response.clone(),
            ours: with(&|r| r["item"][1]["item"][0]["answer"] = json!([{"valueBoolean": false}])),
            theirs: with(&|r| {
                r["item"][1]["item"][0]["answer"] =
                    json!([{"valueCoding": {"system": "http://snomed.info/sct", "code": "371153006"}}])
            }),
            expected: conflicted(
                response.clone(),
                &[("item[linkId=2].item[linkId=2.1].answer", BothChanged)],
            ),
        },
        Case {
            name: "extensions merge by url",
            base: patient.clone(),
            ours: patient_with(&|p| p["extension"][1]["valueString"] = json!("4321")),
            theirs: patient_with(&|p| p["extension"][0]["valueBoolean"] = json!(true)),
            expected: merged(patient_with(&|p| {
                p["extension"][1]["valueString"] = json!("4321");
                p["extension"][0]["valueBoolean"] = json!(true);
            })),
        },
        Case {
            name: "extensions with a repeated url merge as a whole",
            base: patient.clone(),
            ours: patient_with(&|p| {
                p["extension"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"url": "https://careshare.example/StructureDefinition/key-safe", "valueString": "9999"}))
            }),
            theirs: patient_with(&|p| p["extension"][0]["valueBoolean"] = json!(true)),
            expected: conflicted(patient.clone(), &[("extension", BothChanged)]),
        },
        Case {
            name: "conflicting extension value has a url selector",
            base: patient.clone(),
            ours: patient_with(&|p| p["extension"][1]["valueString"] = json!("4321")),
            theirs: patient_with(&|p| p["extension"][1]["valueString"] = json!("0000")),
            expected: conflicted(
                patient.clone(),
                &[(
                    "extension[url=https://careshare.example/StructureDefinition/key-safe].valueString",
                    BothChanged,
                )],
            ),
        },
    ]
}

#[test]
fn examples() {
    let cases = [
        observation_cases(),
        task_cases(),
        allergy_and_medication_cases(),
        care_plan_cases(),
        patient_cases(),
        questionnaire_and_extension_cases(),
    ];
    for case in cases.iter().flatten() {
        check(
            case.name,
            &case.base,
            &case.ours,
            &case.theirs,
            &case.expected,
        );
    }
}
