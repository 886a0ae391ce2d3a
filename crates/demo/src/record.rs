//! One patient's record: the `Patient` and every resource that refers to it.

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::codes::{
    admission_for, AdmissionDef, CaseloadReason, ConditionDef, Medicine, ADMISSIONS,
    ADULT_CONDITIONS, ALLERGIES, ANXIETY, CHILD_CONDITIONS, CHLAMYDIA, CLINICS, COLON_CANCER, COPD,
    DEPRESSION, HEART_FAILURE, LEG_ULCER, NO_KNOWN_ALLERGY, PRESSURE_ULCER, TYPE_2_DIABETES,
};
use crate::conventions::{
    ACT_CODE_SYSTEM, CONSENT_CATEGORY_LOINC, CONSENT_SCOPE_PRIVACY, CONSENT_SCOPE_SYSTEM,
    DOCUMENT_CATEGORY_SYSTEM, DOCUMENT_CLINIC_LETTER, DOCUMENT_DISCHARGE_SUMMARY,
    DOCUMENT_NURSING_VISIT_NOTE, DOCUMENT_SOCIAL_CARE_NOTE, ENCOUNTER_CLASS_AMBULATORY,
    ENCOUNTER_CLASS_HOME, ENCOUNTER_CLASS_INPATIENT, LOINC, LOINC_BLOOD_GLUCOSE,
    LOINC_BLOOD_PRESSURE_PANEL, LOINC_BODY_TEMPERATURE, LOINC_DIASTOLIC, LOINC_DISCHARGE_SUMMARY,
    LOINC_HEART_RATE, LOINC_NOTE, LOINC_NURSE_NOTE, LOINC_OXYGEN_FLOW_RATE, LOINC_RESPIRATORY_RATE,
    LOINC_SPO2, LOINC_SYSTOLIC, LOINC_WOUND_LENGTH, LOINC_WOUND_SIZE_PANEL, LOINC_WOUND_WIDTH,
    NHS_NUMBER_SYSTEM, OBJECTION_POLICY_URI, OBSERVATION_CATEGORY_SYSTEM, SNOMED, SNOMED_ACVPU,
    SNOMED_ACVPU_ALERT, SNOMED_ACVPU_CONFUSION, SNOMED_ACVPU_VOICE, SNOMED_HOME_VISIT, SNOMED_NO,
    SNOMED_ON_OXYGEN, SNOMED_YES,
};
use crate::fhir::{
    coding, concept, concept_text, date, decimal_tenths, local_minutes, local_time, meta,
    meta_maybe, meta_sensitive, quantity, reference, reference_display, text_attachment,
    Sensitivity,
};
use crate::nhs::format_nhs_number;
use crate::profile::{Person, RECORD_STREAM};
use crate::structure::{
    org, site_id, staff_where, StaffDef, StaffRole, ORG_COMMUNITY, ORG_COUNCIL, ORG_HOSPITAL,
    TEAM_SOCIAL_CARE,
};
use crate::{choose, pick, rng_for, RegionConfig};

/// A condition written into the record.
struct Written {
    id: String,
    def: ConditionDef,
}

struct Gen<'a> {
    config: &'a RegionConfig,
    person: &'a Person,
    rng: ChaCha8Rng,
    pid: String,
    out: Vec<Value>,
    conditions: Vec<Written>,
    gp: &'static StaffDef,
    practice_id: &'static str,
}

/// Generates the whole record of one person.
pub(crate) fn generate(config: &RegionConfig, person: &Person) -> Vec<Value> {
    let practice_id = crate::structure::ORG_GP_PRACTICES
        .get(person.practice)
        .copied()
        .unwrap_or(crate::structure::ORG_GP_PRACTICES[0]);
    let gps = staff_where(|r| r == StaffRole::Gp, Some(practice_id), None);
    let mut rng = rng_for(config.seed, person.profile.index, RECORD_STREAM);
    let Some(gp) = choose(&mut rng, &gps).copied() else {
        return vec![patient_resource(person)];
    };
    let mut g = Gen {
        config,
        person,
        rng,
        pid: person.profile.patient_id.clone(),
        out: Vec::with_capacity(if person.team.is_some() { 512 } else { 32 }),
        conditions: Vec::new(),
        gp,
        practice_id,
    };
    g.out.push(patient_resource(person));
    g.objection();
    g.gp_record();
    g.flags();
    g.hospital();
    g.social_care();
    g.nursing();
    g.out
}

/// The `Patient` resource alone.
pub(crate) fn patient_resource(p: &Person) -> Value {
    let practice_id = p.profile.gp_practice_id.as_str();
    let practice_name = org(practice_id).map(|o| o.name).unwrap_or_default();
    let mut name = Map::new();
    name.insert("use".into(), Value::from("official"));
    name.insert("family".into(), Value::from(p.family));
    name.insert("given".into(), Value::from(p.given.clone()));
    if let Some(prefix) = p.prefix {
        name.insert("prefix".into(), Value::from(vec![prefix]));
    }
    let mut telecom =
        vec![obj! { "system": "phone", "value": p.home_phone.as_str(), "use": "home" }];
    if let Some(mobile) = &p.mobile_phone {
        telecom.push(obj! { "system": "phone", "value": mobile.as_str(), "use": "mobile" });
    }
    obj! {
        "resourceType": "Patient",
        "id": p.profile.patient_id.as_str(),
        "meta": meta(practice_id),
        "identifier": vec![obj!{ "system": NHS_NUMBER_SYSTEM, "value": p.profile.nhs_number.as_str() }] ,
        "active": true,
        "name": vec![Value::Object(name)] ,
        "telecom": telecom,
        "gender": if p.female { "female" } else { "male" },
        "birthDate": date(p.birth_date),
        "address": vec![obj!{
            "use": "home",
            "type": "physical",
            "line": vec![p.line.as_str()] ,
            "city": p.town.name,
            "postalCode": p.postcode.as_str(),
            "country": "GB"
        }] ,
        "generalPractitioner": vec![reference_display("Organization", practice_id, practice_name)] ,
        "managingOrganization": reference("Organization", practice_id)
    }
}

fn category(system: &str, code: &str, display: &str) -> Value {
    Value::from(vec![
        obj! { "coding": vec![coding(system, code, display)]  },
    ])
}

fn obs_category(code: &str, display: &str) -> Value {
    category(OBSERVATION_CATEGORY_SYSTEM, code, display)
}

fn vitals_category() -> Value {
    obs_category("vital-signs", "Vital Signs")
}

fn loinc(code: &str, display: &str) -> Value {
    concept(LOINC, code, display)
}

impl Gen<'_> {
    fn today(&self) -> NaiveDate {
        self.config.today
    }

    fn id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.pid)
    }

    fn subject(&self) -> Value {
        reference_display("Patient", &self.pid, &self.person.full_name())
    }

    fn days_ago(&mut self, min: i64, max: i64) -> NaiveDate {
        let days = self.rng.gen_range(min..=max.max(min));
        self.today() - Duration::days(days)
    }

    /// A date at least `age_years` after birth and not after today.
    fn date_at_age(&mut self, age_years: u32) -> NaiveDate {
        let at = self.person.birth_date
            + Duration::days(i64::from(age_years) * 365 + i64::from(self.rng.gen_range(0..300)));
        at.min(self.today() - Duration::days(30))
    }

    fn office_time(&mut self, d: NaiveDate) -> String {
        let minutes = self.rng.gen_range(8 * 60 + 30..=17 * 60);
        local_minutes(d, minutes - minutes % 5)
    }

    fn push(&mut self, resource: Value) {
        self.out.push(resource);
    }

    fn condition_ref(&self, def: &ConditionDef) -> Option<Value> {
        self.conditions
            .iter()
            .find(|w| w.def.code == def.code)
            .map(|w| reference_display("Condition", &w.id, w.def.display))
    }

    // ---------------------------------------------------------------- Consent

    fn objection(&mut self) {
        if !self.person.profile.objects_to_sharing {
            return;
        }
        let when = self.days_ago(30, 900);
        let id = self.id("objection");
        let stamp = self.office_time(when);
        self.push(obj! {
            "resourceType": "Consent",
            "id": id,
            "meta": meta(self.practice_id),
            "status": "active",
            "scope": concept(CONSENT_SCOPE_SYSTEM, CONSENT_SCOPE_PRIVACY, "Privacy Consent"),
            "category": vec![concept(LOINC, CONSENT_CATEGORY_LOINC, "Patient Consent")] ,
            "patient": self.subject(),
            "dateTime": stamp,
            "performer": vec![self.subject()] ,
            "organization": vec![reference("Organization", self.practice_id)] ,
            "policy": vec![obj!{ "uri": OBJECTION_POLICY_URI }] ,
            "policyRule": concept(ACT_CODE_SYSTEM, "OPTOUT", "opt-out"),
            "provision": obj!{
                "type": "deny",
                "period": obj!{ "start": date(when) }
            }
        });
    }

    // ------------------------------------------------------------- GP record

    fn pick_conditions(&mut self) -> Vec<ConditionDef> {
        let age = self.person.age;
        let mut chosen: Vec<ConditionDef> = Vec::new();
        match self.person.reason {
            Some(CaseloadReason::LegUlcer) => chosen.push(LEG_ULCER),
            Some(CaseloadReason::PressureUlcer) => chosen.push(PRESSURE_ULCER),
            Some(CaseloadReason::Diabetes) => chosen.push(TYPE_2_DIABETES),
            Some(CaseloadReason::HeartFailure) => chosen.push(HEART_FAILURE),
            Some(CaseloadReason::Palliative) => chosen.push(COLON_CANCER),
            None => {}
        }
        if age < 18 {
            if self.rng.gen_bool(0.7) {
                chosen.push(*pick(&mut self.rng, &CHILD_CONDITIONS));
            }
        } else {
            let wanted = match (self.person.reason.is_some(), age) {
                (true, _) => self.rng.gen_range(2..=5),
                (false, 0..=39) => self.rng.gen_range(0..=1),
                (false, 40..=64) => self.rng.gen_range(1..=3),
                (false, _) => self.rng.gen_range(2..=4),
            };
            let total: u32 = ADULT_CONDITIONS.iter().map(|(_, w)| w).sum();
            let mut attempts = 0;
            while chosen.len() < wanted + usize::from(self.person.reason.is_some()) && attempts < 40
            {
                attempts += 1;
                let mut roll = self.rng.gen_range(0..total);
                let mut def = ADULT_CONDITIONS[0].0;
                for (candidate, weight) in ADULT_CONDITIONS {
                    if roll < weight {
                        def = candidate;
                        break;
                    }
                    roll -= weight;
                }
                if def.min_age <= age && chosen.iter().all(|c| c.code != def.code) {
                    chosen.push(def);
                }
            }
        }
        if self.person.profile.mental_health {
            chosen.push(if self.rng.gen_bool(0.6) {
                DEPRESSION
            } else {
                ANXIETY
            });
        }
        if self.person.profile.sexual_health {
            chosen.push(CHLAMYDIA);
        }
        if chosen.is_empty() {
            chosen.push(if age < 18 {
                CHILD_CONDITIONS[0]
            } else {
                ADULT_CONDITIONS[5].0
            });
        }
        chosen
    }

    fn gp_record(&mut self) {
        let defs = self.pick_conditions();
        let gp_role = self.gp.role_id();
        for (n, def) in defs.into_iter().enumerate() {
            let onset_age = if def.min_age >= self.person.age {
                self.person.age
            } else {
                self.rng.gen_range(def.min_age..=self.person.age)
            };
            let mut onset = self.date_at_age(onset_age);
            if self.person.reason.is_some() && n == 0 {
                // The condition that brought the nurses in is recent.
                let history = i64::from(self.config.visit_history_days);
                onset = self.days_ago(history + 75, history + 400);
            }
            let id = self.id(&format!("cond-{}", n + 1));
            let clinical = if def.resolves { "resolved" } else { "active" };
            let mut condition = obj! {
                "resourceType": "Condition",
                "id": id.clone(),
                "meta": meta_maybe(self.practice_id, def.sensitivity),
                "clinicalStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    clinical,
                    if def.resolves { "Resolved" } else { "Active" },
                ),
                "verificationStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "confirmed",
                    "Confirmed",
                ),
                "category": vec![concept(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "problem-list-item",
                    "Problem List Item",
                )] ,
                "code": concept(SNOMED, def.code, def.display),
                "subject": self.subject(),
                "onsetDateTime": date(onset),
                "recordedDate": date(onset + Duration::days(self.rng.gen_range(0..30)).min(self.today() - onset)),
                "recorder": reference_display("PractitionerRole", &gp_role, &self.gp.display_name())
            };
            if def.resolves {
                if let Some(map) = condition.as_object_mut() {
                    let abated = onset + Duration::days(self.rng.gen_range(14..60));
                    map.insert(
                        "abatementDateTime".into(),
                        Value::from(date(abated.min(self.today()))),
                    );
                }
            }
            self.conditions.push(Written { id, def });
            self.push(condition);
            if !def.resolves {
                let started = onset + Duration::days(self.rng.gen_range(0..21));
                for medicine in def.medicines {
                    self.medicine(medicine, started.min(self.today()), def.sensitivity);
                }
            }
        }
        self.allergies();
        self.gp_observations();
    }

    fn medicine(
        &mut self,
        medicine: &Medicine,
        started: NaiveDate,
        sensitivity: Option<Sensitivity>,
    ) {
        let n = self.out.len();
        let gp_role = self.gp.role_id();
        let gp_name = self.gp.display_name();
        let asserted = self.days_ago(5, 200);
        let asserted = self.office_time(asserted.max(started));
        let statement_id = self.id(&format!("medstmt-{n}"));
        let med_concept = concept(SNOMED, medicine.code, medicine.display);
        self.push(obj! {
            "resourceType": "MedicationStatement",
            "id": statement_id,
            "meta": meta_maybe(self.practice_id, sensitivity),
            "status": "active",
            "medicationCodeableConcept": med_concept.clone(),
            "subject": self.subject(),
            "effectivePeriod": obj!{ "start": date(started) },
            "dateAsserted": asserted,
            "informationSource": reference_display("PractitionerRole", &gp_role, &gp_name),
            "dosage": vec![obj!{ "text": medicine.dosage }]
        });
        if self.rng.gen_bool(0.6) {
            let issued = self.days_ago(1, 50).max(started);
            let authored = self.office_time(issued);
            let request_id = self.id(&format!("medreq-{n}"));
            self.push(obj! {
                "resourceType": "MedicationRequest",
                "id": request_id,
                "meta": meta_maybe(self.practice_id, sensitivity),
                "status": "active",
                "intent": "order",
                "courseOfTherapyType": concept(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    "continuous",
                    "Continuous long term therapy",
                ),
                "medicationCodeableConcept": med_concept,
                "subject": self.subject(),
                "authoredOn": authored,
                "requester": reference_display("PractitionerRole", &gp_role, &gp_name),
                "dosageInstruction": vec![obj!{ "text": medicine.dosage }] ,
                "dispenseRequest": obj!{
                    "numberOfRepeatsAllowed": 5,
                    "expectedSupplyDuration": obj!{
                        "value": 28,
                        "unit": "days",
                        "system": crate::conventions::UCUM,
                        "code": "d"
                    }
                }
            });
        }
    }

    fn allergies(&mut self) {
        let gp_role = self.gp.role_id();
        let gp_name = self.gp.display_name();
        let count = match self.rng.gen_range(0..20) {
            0..=11 => 0,
            12..=17 => 1,
            _ => 2,
        };
        if count == 0 {
            let recorded = self.date_at_age(self.person.age.min(1));
            let id = self.id("allergy-1");
            self.push(obj! {
                "resourceType": "AllergyIntolerance",
                "id": id,
                "meta": meta(self.practice_id),
                "clinicalStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "verificationStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed",
                    "Confirmed",
                ),
                "code": concept(SNOMED, NO_KNOWN_ALLERGY.0, NO_KNOWN_ALLERGY.1),
                "patient": self.subject(),
                "recordedDate": date(recorded),
                "recorder": reference_display("PractitionerRole", &gp_role, &gp_name)
            });
            return;
        }
        let first = self.rng.gen_range(0..ALLERGIES.len());
        for k in 0..count {
            let def = ALLERGIES[(first + k * 3) % ALLERGIES.len()];
            let onset_age = self.rng.gen_range(0..=self.person.age);
            let recorded = self.date_at_age(onset_age);
            let reactions: Vec<Value> = def
                .reactions
                .iter()
                .take(self.rng.gen_range(1..=def.reactions.len().max(1)))
                .map(|(code, display)| concept(SNOMED, code, display))
                .collect();
            let severe = def.code == "91935009";
            let id = self.id(&format!("allergy-{}", k + 1));
            self.push(obj! {
                "resourceType": "AllergyIntolerance",
                "id": id,
                "meta": meta(self.practice_id),
                "clinicalStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "verificationStatus": concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed",
                    "Confirmed",
                ),
                "type": "allergy",
                "category": vec![def.category] ,
                "criticality": if severe { "high" } else { "low" },
                "code": concept(SNOMED, def.code, def.display),
                "patient": self.subject(),
                "recordedDate": date(recorded),
                "recorder": reference_display("PractitionerRole", &gp_role, &gp_name),
                "reaction": vec![obj!{
                    "manifestation": reactions,
                    "severity": if severe { "severe" } else { "mild" }
                }]
            });
        }
    }

    fn gp_observation(
        &mut self,
        suffix: &str,
        when: NaiveDate,
        category: Value,
        code: Value,
        value: (&str, Value),
    ) {
        let gp_role = self.gp.role_id();
        let id = self.id(suffix);
        let effective = self.office_time(when);
        let mut obs = obj! {
            "resourceType": "Observation",
            "id": id,
            "meta": meta(self.practice_id),
            "status": "final",
            "category": category,
            "code": code,
            "subject": self.subject(),
            "effectiveDateTime": effective,
            "performer": vec![reference_display("PractitionerRole", &gp_role, &self.gp.display_name())]
        };
        if let Some(map) = obs.as_object_mut() {
            map.insert(value.0.into(), value.1);
        }
        self.push(obs);
    }

    fn gp_observations(&mut self) {
        let adult = self.person.age >= 18;
        let weight_kg = if adult {
            self.rng.gen_range(48..=112)
        } else {
            (self.person.age * 3 + 4).max(4)
        };
        let when = self.days_ago(20, 500);
        self.gp_observation(
            "weight",
            when,
            vitals_category(),
            loinc("29463-7", "Body weight"),
            (
                "valueQuantity",
                quantity(Value::from(weight_kg), "kg", "kg"),
            ),
        );
        if adult {
            let height_cm: u32 = if self.person.female {
                self.rng.gen_range(152..=172)
            } else {
                self.rng.gen_range(163..=188)
            };
            let bmi_tenths = i64::from(weight_kg * 100_000 / (height_cm * height_cm));
            self.gp_observation(
                "bmi",
                when,
                vitals_category(),
                loinc("39156-5", "Body mass index (BMI) [Ratio]"),
                (
                    "valueQuantity",
                    quantity(decimal_tenths(bmi_tenths), "kg/m2", "kg/m2"),
                ),
            );
            let (code, display) = match self.rng.gen_range(0..10) {
                0..=4 => ("266919005", "Never smoked tobacco"),
                5..=7 => ("8517006", "Ex-smoker"),
                _ => ("77176002", "Smoker"),
            };
            let smoking_date = self.days_ago(30, 700);
            self.gp_observation(
                "smoking",
                smoking_date,
                obs_category("social-history", "Social History"),
                loinc("72166-2", "Tobacco smoking status"),
                ("valueCodeableConcept", concept(SNOMED, code, display)),
            );
            // Blood pressure checks, about one a year.
            let readings = self.rng.gen_range(1..=4);
            let systolic_base: i64 = self.rng.gen_range(118..=152);
            for k in 0..readings {
                let when = self.days_ago(k * 365 + 10, k * 365 + 300);
                let systolic = systolic_base + self.rng.gen_range(-8..=8);
                let diastolic = systolic / 2 + self.rng.gen_range(8..=20);
                let id = format!("gp-bp-{}", k + 1);
                self.gp_observation(
                    &id,
                    when,
                    vitals_category(),
                    loinc(
                        LOINC_BLOOD_PRESSURE_PANEL,
                        "Blood pressure panel with all children optional",
                    ),
                    ("component", bp_components(systolic, diastolic)),
                );
            }
        }
        if self
            .conditions
            .iter()
            .any(|c| c.def.code == TYPE_2_DIABETES.code)
        {
            let when = self.days_ago(20, 180);
            let hba1c = self.rng.gen_range(46..=78);
            self.gp_observation(
                "hba1c",
                when,
                obs_category("laboratory", "Laboratory"),
                loinc(
                    "59261-8",
                    "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
                ),
                (
                    "valueQuantity",
                    quantity(Value::from(hba1c), "mmol/mol", "mmol/mol"),
                ),
            );
        }
        // Pad small records with older weights, as a GP record would have.
        let mut k = 1;
        while self.out.len() < 10 {
            let when = self.days_ago(400 * k, 400 * k + 300);
            let drift = self.rng.gen_range(-3..=3);
            let older = (i64::from(weight_kg) + drift).max(3);
            self.gp_observation(
                &format!("weight-{}", k + 1),
                when,
                vitals_category(),
                loinc("29463-7", "Body weight"),
                ("valueQuantity", quantity(Value::from(older), "kg", "kg")),
            );
            k += 1;
        }
    }

    // ------------------------------------------------------------------ Flags

    fn flags(&mut self) {
        let caseload = self.person.team.is_some();
        let mut chosen: Vec<usize> = Vec::new();
        let count = if caseload {
            self.rng.gen_range(1..=3)
        } else if self.rng.gen_bool(0.3) {
            1
        } else {
            0
        };
        while chosen.len() < count {
            let k = self.rng.gen_range(0..FLAGS.len());
            if !chosen.contains(&k) {
                chosen.push(k);
            }
        }
        for (n, k) in chosen.into_iter().enumerate() {
            let Some(flag) = FLAGS.get(k) else { continue };
            let author = match flag.author {
                FlagAuthor::Gp => self.practice_id,
                FlagAuthor::Community if caseload => ORG_COMMUNITY,
                FlagAuthor::Council if self.person.profile.social_care => ORG_COUNCIL,
                _ => self.practice_id,
            };
            let start = self.days_ago(3, 700);
            self.push(flag_resource(
                self.id(&format!("flag-{}", n + 1)),
                author,
                flag,
                self.subject(),
                start,
                None,
            ));
        }
        if self.person.profile.safeguarding {
            let start = self.days_ago(10, 200);
            self.push(flag_resource(
                self.id("flag-safeguarding"),
                ORG_COUNCIL,
                &SAFEGUARDING_FLAG,
                self.subject(),
                start,
                Some(Sensitivity::Safeguarding),
            ));
        }
    }

    // --------------------------------------------------------------- Hospital

    fn hospital(&mut self) {
        let caseload = self.person.team.is_some();
        let count = if caseload {
            self.rng.gen_range(1..=3)
        } else {
            match self.rng.gen_range(0..20) {
                0..=6 => 0,
                7..=15 => 1,
                _ => 2,
            }
        };
        let discharged_yesterday = self
            .person
            .profile
            .caseload
            .as_ref()
            .is_some_and(|c| c.visit_today && (self.person.profile.index / 4) % 3 == 0);
        for n in 0..count {
            let inpatient = caseload || self.rng.gen_bool(0.5);
            let end = if n == 0 && discharged_yesterday {
                self.today() - Duration::days(1)
            } else {
                self.days_ago(20 + 200 * n as i64, 200 * (n as i64 + 1) + 100)
            };
            let admission = match (n, self.person.reason) {
                (0, Some(reason)) => admission_for(reason),
                _ => self.any_admission(),
            };
            self.hospital_encounter(n + 1, inpatient.then_some(admission), end);
        }
    }

    fn any_admission(&mut self) -> AdmissionDef {
        let possible: Vec<AdmissionDef> = ADMISSIONS
            .iter()
            .filter(|a| {
                a.requires
                    .is_none_or(|code| self.conditions.iter().any(|c| c.def.code == code))
            })
            .copied()
            .collect();
        choose(&mut self.rng, &possible)
            .copied()
            .unwrap_or(ADMISSIONS[0])
    }

    fn hospital_encounter(&mut self, n: usize, admission: Option<AdmissionDef>, end: NaiveDate) {
        let inpatient = admission.is_some();
        let clinicians = staff_where(|r| r == StaffRole::HospitalClinician, None, None);
        let Some(clinician) = choose(&mut self.rng, &clinicians).copied() else {
            return;
        };
        let enc_id = self.id(&format!("hosp-{n}"));
        let doc_id = self.id(&format!("hosp-{n}-summary"));
        let (
            class_code,
            class_display,
            type_code,
            type_display,
            start,
            start_time,
            end_time,
            reason_code,
            reason_display,
            treatment,
        ) = if let Some(admission) = admission {
            let stay = self.rng.gen_range(1..=10);
            let start = end - Duration::days(stay);
            let admitted = self.rng.gen_range(9 * 60..=22 * 60);
            let discharged = self.rng.gen_range(11 * 60..=17 * 60);
            (
                ENCOUNTER_CLASS_INPATIENT,
                "inpatient encounter",
                "32485007",
                "Hospital admission",
                start,
                local_minutes(start, admitted - admitted % 5),
                local_minutes(end, discharged - discharged % 5),
                admission.code,
                admission.display,
                admission.treatment,
            )
        } else {
            let (code, display) = *pick(&mut self.rng, &CLINICS);
            let at = self.rng.gen_range(9 * 60..=16 * 60);
            (
                ENCOUNTER_CLASS_AMBULATORY,
                "ambulatory",
                "11429006",
                "Consultation",
                end,
                local_minutes(end, at - at % 5),
                local_minutes(end, at - at % 5 + 30),
                code,
                display,
                "Reviewed in clinic; no change to treatment.",
            )
        };
        let role_id = clinician.role_id();
        let clinician_name = clinician.display_name();
        self.push(obj!{
            "resourceType": "Encounter",
            "id": enc_id.clone(),
            "meta": meta(ORG_HOSPITAL),
            "status": "finished",
            "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", class_code, class_display),
            "type": vec![concept(SNOMED, type_code, type_display)] ,
            "subject": self.subject(),
            "participant": vec![obj!{ "individual": reference_display("PractitionerRole", &role_id, &clinician_name) }] ,
            "period": obj!{ "start": start_time.clone(), "end": end_time.clone() },
            "reasonCode": vec![concept(SNOMED, reason_code, reason_display)] ,
            "location": vec![obj!{ "location": reference("Location", &site_id(ORG_HOSPITAL)) }] ,
            "serviceProvider": reference("Organization", ORG_HOSPITAL)
        });
        let follow_up = match self.person.reason {
            Some(CaseloadReason::LegUlcer | CaseloadReason::PressureUlcer) => "District nursing team to continue wound care; first visit within 48 hours.",
            Some(CaseloadReason::Diabetes) => "District nursing team to continue insulin support and glucose monitoring.",
            Some(CaseloadReason::HeartFailure) => "District nursing team to weigh daily for one week; GP to review diuretics.",
            Some(CaseloadReason::Palliative) => "District nursing team and GP to review symptom control; anticipatory medicines issued.",
            None => "GP to review in two weeks. No community follow-up needed.",
        };
        let medicines: Vec<&str> = self
            .out
            .iter()
            .filter(|r| r["resourceType"] == "MedicationStatement")
            .filter_map(|r| r["medicationCodeableConcept"]["text"].as_str())
            .take(4)
            .collect();
        let medicines = if medicines.is_empty() {
            "No regular medicines.".to_owned()
        } else {
            format!("{} (unchanged).", medicines.join("; "))
        };
        let kind = if inpatient {
            "DISCHARGE SUMMARY"
        } else {
            "CLINIC LETTER"
        };
        let text = format!(
            "{kind}\nRavensdale Teaching Hospitals NHS Trust\n\nPatient: {name}\nNHS number: {nhs}\nDate of birth: {dob}\n{period}\n\nDiagnosis: {reason}\n\nCourse: {treatment}\n\nMedicines on discharge: {medicines}\n\nFollow-up: {follow_up}\n\nClinician: {clinician_name}\n",
            name = self.person.full_name(),
            nhs = format_nhs_number(&self.person.profile.nhs_number),
            dob = self.person.birth_date.format("%d/%m/%Y"),
            period = if inpatient {
                format!("Admitted: {}  Discharged: {}", start.format("%d/%m/%Y"), end.format("%d/%m/%Y"))
            } else {
                format!("Seen in clinic: {}", end.format("%d/%m/%Y"))
            },
            reason = reason_display,
        );
        let (doc_code, doc_display) = if inpatient {
            (LOINC_DISCHARGE_SUMMARY, "Discharge summary")
        } else {
            ("11488-4", "Consult note")
        };
        let doc_category = if inpatient {
            DOCUMENT_DISCHARGE_SUMMARY
        } else {
            DOCUMENT_CLINIC_LETTER
        };
        let title = if inpatient {
            format!("Discharge summary: {reason_display}")
        } else {
            format!("Clinic letter: {reason_display}")
        };
        self.push(obj!{
            "resourceType": "DocumentReference",
            "id": doc_id,
            "meta": meta(ORG_HOSPITAL),
            "status": "current",
            "docStatus": "final",
            "type": loinc(doc_code, doc_display),
            "category": vec![concept(DOCUMENT_CATEGORY_SYSTEM, doc_category, if inpatient { "Discharge summary" } else { "Clinic letter" })] ,
            "subject": self.subject(),
            "date": end_time.clone(),
            "author": vec![reference_display("PractitionerRole", &role_id, &clinician_name)] ,
            "custodian": reference("Organization", ORG_HOSPITAL),
            "description": title.clone(),
            "content": vec![obj!{ "attachment": text_attachment(&title, &text, &end_time) }] ,
            "context": obj!{
                "encounter": vec![reference("Encounter", &enc_id)] ,
                "period": obj!{ "start": start_time, "end": end_time }
            }
        });
    }

    // ------------------------------------------------------------ Social care

    fn social_care(&mut self) {
        if !self.person.profile.social_care {
            return;
        }
        let workers = staff_where(|r| r == StaffRole::SocialWorker, Some(ORG_COUNCIL), None);
        let Some(worker) = workers
            .get(self.person.profile.index % workers.len().max(1))
            .copied()
        else {
            return;
        };
        let role_id = worker.role_id();
        let worker_name = worker.display_name();
        let start = self.days_ago(60, 900);
        let team_id = self.id("social-care-team");
        self.push(obj! {
            "resourceType": "CareTeam",
            "id": team_id,
            "meta": meta(ORG_COUNCIL),
            "status": "active",
            "name": format!("Adult social care for {}", self.person.full_name()),
            "subject": self.subject(),
            "period": obj!{ "start": date(start) },
            "participant": vec![obj!{
                "role": vec![obj!{ "text": "Allocated social worker" }] ,
                "member": reference_display("PractitionerRole", &role_id, &worker_name)
            }] ,
            "managingOrganization": vec![reference("Organization", ORG_COUNCIL)]
        });
        let episode_id = self.id("social-care-episode");
        self.push(obj! {
            "resourceType": "EpisodeOfCare",
            "id": episode_id,
            "meta": meta(ORG_COUNCIL),
            "status": "active",
            "type": vec![obj!{ "text": "Adult social care" }] ,
            "patient": self.subject(),
            "managingOrganization": reference("Organization", ORG_COUNCIL),
            "period": obj!{ "start": date(start) },
            "careManager": reference_display("PractitionerRole", &role_id, &worker_name),
            "team": vec![reference("CareTeam", TEAM_SOCIAL_CARE)]
        });
        let notes = self.rng.gen_range(2..=5);
        let first = self.person.first_name();
        for n in 0..notes {
            let when = self.days_ago(1 + 120 * n as i64, 120 * (n as i64 + 1));
            let (title, text) = *pick(&mut self.rng, &SOCIAL_NOTES);
            let text = text.replace("{name}", first);
            self.social_note(
                &format!("social-note-{}", n + 1),
                when,
                title,
                &text,
                &role_id,
                &worker_name,
                None,
            );
        }
        if self.person.profile.safeguarding {
            let when = self.days_ago(5, 150);
            let text = SAFEGUARDING_NOTE.replace("{name}", first);
            self.social_note(
                "social-note-safeguarding",
                when,
                "Safeguarding concern",
                &text,
                &role_id,
                &worker_name,
                Some(Sensitivity::Safeguarding),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn social_note(
        &mut self,
        suffix: &str,
        when: NaiveDate,
        title: &str,
        text: &str,
        role_id: &str,
        worker_name: &str,
        sensitivity: Option<Sensitivity>,
    ) {
        let stamp = self.office_time(when);
        let body = format!(
            "{title}\nRavensdale Adult Social Care\n\n{text}\n\n{worker_name}, Social worker\n"
        );
        let id = self.id(suffix);
        self.push(obj!{
            "resourceType": "DocumentReference",
            "id": id,
            "meta": meta_maybe(ORG_COUNCIL, sensitivity),
            "status": "current",
            "docStatus": "final",
            "type": loinc(LOINC_NOTE, "Note"),
            "category": vec![concept(DOCUMENT_CATEGORY_SYSTEM, DOCUMENT_SOCIAL_CARE_NOTE, "Social care note")] ,
            "subject": self.subject(),
            "date": stamp.clone(),
            "author": vec![reference_display("PractitionerRole", role_id, worker_name)] ,
            "custodian": reference("Organization", ORG_COUNCIL),
            "description": title,
            "content": vec![obj!{ "attachment": text_attachment(title, &body, &stamp) }] 
        });
    }

    // ---------------------------------------------------------------- Nursing

    fn nursing(&mut self) {
        let (Some(_), Some(reason), Some(membership)) = (
            self.person.team,
            self.person.reason,
            self.person.profile.caseload.clone(),
        ) else {
            return;
        };
        let team_id = membership.team_id.clone();
        let nurses = staff_where(
            |r| matches!(r, StaffRole::DistrictNurse | StaffRole::CommunityNurse),
            Some(ORG_COMMUNITY),
            Some(&team_id),
        );
        if nurses.is_empty() {
            return;
        }
        let district: Vec<&StaffDef> = nurses
            .iter()
            .copied()
            .filter(|s| s.role == StaffRole::DistrictNurse)
            .collect();
        let Some(lead) = district
            .get(self.person.profile.index / 8 % district.len().max(1))
            .or(nurses.first())
            .copied()
        else {
            return;
        };

        // Timeline: visits run up to yesterday (or to the end of a finished
        // episode), spread over the configured history.
        let history = i64::from(self.config.visit_history_days);
        let base_visits: i64 = self.rng.gen_range(30..=52);
        let visits = base_visits * history / 180;
        let end = if membership.active {
            self.today() - Duration::days(1)
        } else {
            self.days_ago(7, 60)
        };
        let first_visit = end - Duration::days(history.max(1) - 1);
        let episode_start = first_visit - Duration::days(self.rng.gen_range(0..10));

        let episode_id = self.id("dn-episode");
        let lead_role = lead.role_id();
        let lead_name = lead.display_name();
        let mut episode = obj! {
            "resourceType": "EpisodeOfCare",
            "id": episode_id.clone(),
            "meta": meta(ORG_COMMUNITY),
            "status": if membership.active { "active" } else { "finished" },
            "type": vec![obj!{ "text": "District nursing" }] ,
            "patient": self.subject(),
            "managingOrganization": reference("Organization", ORG_COMMUNITY),
            "period": obj!{ "start": date(episode_start) },
            "careManager": reference_display("PractitionerRole", &lead_role, &lead_name),
            "team": vec![reference("CareTeam", &team_id)]
        };
        if !membership.active {
            episode["period"]["end"] = Value::from(date(end));
        }
        let reason_def = match reason {
            CaseloadReason::LegUlcer => LEG_ULCER,
            CaseloadReason::PressureUlcer => PRESSURE_ULCER,
            CaseloadReason::Diabetes => TYPE_2_DIABETES,
            CaseloadReason::HeartFailure => HEART_FAILURE,
            CaseloadReason::Palliative => COLON_CANCER,
        };
        if let Some(condition) = self.condition_ref(&reason_def) {
            episode["diagnosis"] = Value::from(vec![obj! { "condition": condition, "rank": 1 }]);
        }
        self.push(episode);

        let plan_id = self.id("dn-careplan");
        self.care_plan(
            &plan_id,
            reason,
            &reason_def,
            &team_id,
            lead,
            episode_start,
            membership.active,
            end,
        );
        self.tasks(
            &plan_id,
            reason,
            &team_id,
            &nurses,
            lead,
            episode_start,
            membership.active,
            membership.visit_today,
            end,
        );

        // Visit history.
        let mut vitals = Vitals::new(
            &mut self.rng,
            reason,
            self.conditions.iter().any(|c| c.def.code == COPD.code),
        );
        let mut wound = Wound::new(&mut self.rng, reason);
        let count = visits.max(0);
        for k in 0..count {
            let offset = if count <= 1 {
                0
            } else {
                (history - 1) * k / (count - 1)
            };
            let day = first_visit + Duration::days(offset);
            let nurse = if self.rng.gen_bool(0.6) {
                lead
            } else {
                choose(&mut self.rng, &nurses).copied().unwrap_or(lead)
            };
            self.visit(
                k as usize + 1,
                day,
                nurse,
                reason,
                &episode_id,
                &mut vitals,
                &mut wound,
                &reason_def,
            );
        }

        if membership.active {
            self.upcoming(
                membership.visit_today,
                lead,
                reason,
                &episode_id,
                &reason_def,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn care_plan(
        &mut self,
        plan_id: &str,
        reason: CaseloadReason,
        reason_def: &ConditionDef,
        team_id: &str,
        lead: &StaffDef,
        start: NaiveDate,
        active: bool,
        end: NaiveDate,
    ) {
        let activity_status = if active { "in-progress" } else { "completed" };
        let activities: Vec<Value> = plan_activities(reason)
            .iter()
            .map(|(code, display, description)| {
                let code = match code {
                    Some(code) => concept(SNOMED, code, display),
                    None => obj! { "text": *display },
                };
                obj! {
                    "detail": obj!{
                        "code": code,
                        "status": activity_status,
                        "description": *description
                    }
                }
            })
            .collect();
        let mut period = obj! { "start": date(start) };
        if !active {
            period["end"] = Value::from(date(end));
        }
        let mut plan = obj! {
            "resourceType": "CarePlan",
            "id": plan_id,
            "meta": meta(ORG_COMMUNITY),
            "status": if active { "active" } else { "completed" },
            "intent": "plan",
            "category": vec![concept(SNOMED, "734163000", "Care plan")] ,
            "title": format!("District nursing care plan: {}", reason_def.display),
            "description": plan_description(reason),
            "subject": self.subject(),
            "period": period,
            "created": date(start),
            "author": reference_display("PractitionerRole", &lead.role_id(), &lead.display_name()),
            "careTeam": vec![reference("CareTeam", team_id)] ,
            "activity": activities
        };
        if let Some(condition) = self.condition_ref(reason_def) {
            plan["addresses"] = Value::from(vec![condition]);
        }
        self.push(plan);
    }

    #[allow(clippy::too_many_arguments)]
    fn tasks(
        &mut self,
        plan_id: &str,
        reason: CaseloadReason,
        team_id: &str,
        nurses: &[&'static StaffDef],
        lead: &StaffDef,
        start: NaiveDate,
        active: bool,
        visit_today: bool,
        end: NaiveDate,
    ) {
        let templates = task_templates(reason);
        let count = self.rng.gen_range(3..=templates.len().clamp(3, 6));
        let first = self.rng.gen_range(0..templates.len().max(1));
        for n in 0..count {
            let Some(&(code, text)) = templates.get((first + n) % templates.len().max(1)) else {
                continue;
            };
            let id = self.id(&format!("task-{}", n + 1));
            let authored_day = (start + Duration::days(self.rng.gen_range(0..30))).min(end);
            let authored = self.office_time(authored_day);
            // Status: the first task is due today when a visit is booked; the
            // rest are a mix of done, in hand and waiting.
            let (status, due, owner_is_team) = if !active {
                (
                    if n == count - 1 {
                        "cancelled"
                    } else {
                        "completed"
                    },
                    None,
                    n % 2 == 0,
                )
            } else if n == 0 && visit_today {
                ("requested", Some(self.today()), true)
            } else {
                match self.rng.gen_range(0..10) {
                    0..=3 => ("completed", None, false),
                    4..=5 => ("in-progress", None, false),
                    6 => (
                        "requested",
                        Some(self.today() - Duration::days(self.rng.gen_range(1..=5))),
                        true,
                    ),
                    _ => (
                        "requested",
                        Some(self.today() + Duration::days(self.rng.gen_range(1..=14))),
                        true,
                    ),
                }
            };
            let owner = if owner_is_team {
                reference("CareTeam", team_id)
            } else {
                let nurse = choose(&mut self.rng, nurses).copied().unwrap_or(lead);
                reference_display("PractitionerRole", &nurse.role_id(), &nurse.display_name())
            };
            let code_value = match code {
                Some(code) => concept_text(SNOMED, code, text, text),
                None => obj! { "text": text },
            };
            let last_modified_day = match status {
                "completed" | "cancelled" => {
                    (authored_day + Duration::days(self.rng.gen_range(1..=20))).min(end)
                }
                _ => authored_day,
            };
            let last_modified = if last_modified_day == authored_day {
                authored.clone()
            } else {
                self.office_time(last_modified_day)
            };
            let mut task = obj! {
                "resourceType": "Task",
                "id": id,
                "meta": meta(ORG_COMMUNITY),
                "basedOn": vec![reference("CarePlan", plan_id)] ,
                "status": status,
                "intent": "order",
                "priority": "routine",
                "code": code_value,
                "description": text,
                "for": self.subject(),
                "authoredOn": authored.clone(),
                "lastModified": last_modified.clone(),
                "requester": reference_display("PractitionerRole", &lead.role_id(), &lead.display_name()),
                "owner": owner
            };
            match (status, due) {
                ("completed" | "cancelled", _) => {
                    task["executionPeriod"] = obj! { "start": authored, "end": last_modified };
                }
                ("in-progress", _) => {
                    task["executionPeriod"] = obj! { "start": authored };
                }
                (_, Some(due)) => {
                    task["restriction"] = obj! { "period": obj!{ "end": local_time(due, 17, 0) } };
                }
                _ => {}
            }
            self.push(task);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        number: usize,
        day: NaiveDate,
        nurse: &StaffDef,
        reason: CaseloadReason,
        episode_id: &str,
        vitals: &mut Vitals,
        wound: &mut Wound,
        reason_def: &ConditionDef,
    ) {
        let start_minutes = self.rng.gen_range(8 * 60 + 30..=16 * 60);
        let start_minutes = start_minutes - start_minutes % 5;
        let length = self.rng.gen_range(20..=50);
        let start = local_minutes(day, start_minutes);
        let end = local_minutes(day, start_minutes + length);
        let taken = local_minutes(day, start_minutes + 5);
        let enc_id = self.id(&format!("visit-{number:03}"));
        let role_id = nurse.role_id();
        let nurse_name = nurse.display_name();
        let performer = Value::from(vec![reference_display(
            "PractitionerRole",
            &role_id,
            &nurse_name,
        )]);
        let mut encounter = obj! {
            "resourceType": "Encounter",
            "id": enc_id.clone(),
            "meta": meta(ORG_COMMUNITY),
            "status": "finished",
            "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", ENCOUNTER_CLASS_HOME, "home health"),
            "type": vec![concept(SNOMED, SNOMED_HOME_VISIT, "Home visit")] ,
            "subject": self.subject(),
            "episodeOfCare": vec![reference("EpisodeOfCare", episode_id)] ,
            "participant": vec![obj!{ "individual": reference_display("PractitionerRole", &role_id, &nurse_name) }] ,
            "period": obj!{ "start": start.clone(), "end": end.clone() },
            "serviceProvider": reference("Organization", ORG_COMMUNITY)
        };
        if let Some(condition) = self.condition_ref(reason_def) {
            encounter["reasonReference"] = Value::from(vec![condition]);
        }
        self.push(encounter);

        let v = vitals.next(&mut self.rng);
        let base = |suffix: &str| format!("{enc_id}-{suffix}");
        let common = |id: String, code: Value, subject: &Value| {
            obj! {
                "resourceType": "Observation",
                "id": id,
                "meta": meta(ORG_COMMUNITY),
                "status": "final",
                "category": vitals_category(),
                "code": code,
                "subject": subject.clone(),
                "encounter": reference("Encounter", &enc_id),
                "effectiveDateTime": taken.as_str(),
                "performer": performer.clone()
            }
        };
        let subject = self.subject();
        let push_obs = |g: &mut Self, suffix: &str, code: Value, key: &str, value: Value| {
            let mut obs = common(base(suffix), code, &subject);
            obs[key] = value;
            g.push(obs);
        };
        push_obs(
            self,
            "rr",
            loinc(LOINC_RESPIRATORY_RATE, "Respiratory rate"),
            "valueQuantity",
            quantity(Value::from(v.respiratory_rate), "breaths/minute", "/min"),
        );
        push_obs(
            self,
            "spo2",
            loinc(
                LOINC_SPO2,
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
            "valueQuantity",
            quantity(Value::from(v.spo2), "%", "%"),
        );
        push_obs(
            self,
            "hr",
            loinc(LOINC_HEART_RATE, "Heart rate"),
            "valueQuantity",
            quantity(Value::from(v.heart_rate), "beats/minute", "/min"),
        );
        push_obs(
            self,
            "bp",
            loinc(
                LOINC_BLOOD_PRESSURE_PANEL,
                "Blood pressure panel with all children optional",
            ),
            "component",
            bp_components(v.systolic, v.diastolic),
        );
        push_obs(
            self,
            "temp",
            loinc(LOINC_BODY_TEMPERATURE, "Body temperature"),
            "valueQuantity",
            quantity(decimal_tenths(v.temperature_tenths), "°C", "Cel"),
        );
        let (acvpu_code, acvpu_display) = v.consciousness;
        push_obs(
            self,
            "acvpu",
            concept(
                SNOMED,
                SNOMED_ACVPU,
                "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score",
            ),
            "valueCodeableConcept",
            concept(SNOMED, acvpu_code, acvpu_display),
        );
        let oxygen_value = if v.oxygen_litres > 0 {
            concept(SNOMED, SNOMED_YES, "Yes")
        } else {
            concept(SNOMED, SNOMED_NO, "No")
        };
        let mut oxygen = common(
            base("o2"),
            concept_text(
                SNOMED,
                SNOMED_ON_OXYGEN,
                "Patient on oxygen",
                "Air or oxygen",
            ),
            &subject,
        );
        oxygen["valueCodeableConcept"] = oxygen_value;
        if v.oxygen_litres > 0 {
            oxygen["component"] = Value::from(vec![obj! {
                "code": loinc(LOINC_OXYGEN_FLOW_RATE, "Inhaled oxygen flow rate"),
                "valueQuantity": quantity(Value::from(v.oxygen_litres), "L/min", "L/min")
            }]);
        }
        self.push(oxygen);

        let mut extra = String::new();
        if reason.has_wound() {
            let w = wound.next(&mut self.rng);
            let id = base("wound");
            self.push(obj! {
                "resourceType": "Observation",
                "id": id,
                "meta": meta(ORG_COMMUNITY),
                "status": "final",
                "category": obs_category("exam", "Exam"),
                "code": loinc(LOINC_WOUND_SIZE_PANEL, "Wound size panel"),
                "subject": subject.clone(),
                "encounter": reference("Encounter", &enc_id),
                "effectiveDateTime": taken,
                "performer": performer.clone(),
                "bodySite": obj!{ "text": wound.site },
                "note": vec![obj!{ "text": w.description.clone() }] ,
                "component": vec![
                    obj!{
                        "code": loinc(LOINC_WOUND_LENGTH, "Length of Wound"),
                        "valueQuantity": quantity(decimal_tenths(w.length_mm), "cm", "cm")
                    },
                    obj!{
                        "code": loinc(LOINC_WOUND_WIDTH, "Width of Wound"),
                        "valueQuantity": quantity(decimal_tenths(w.width_mm), "cm", "cm")
                    }
                ]
            });
            extra = format!(
                "Wound ({site}): {l}.{lr} x {w_}.{wr} cm. {desc} {care}",
                site = wound.site,
                l = w.length_mm / 10,
                lr = w.length_mm % 10,
                w_ = w.width_mm / 10,
                wr = w.width_mm % 10,
                desc = w.description,
                care = wound.care,
            );
        } else if reason == CaseloadReason::Diabetes {
            let glucose_tenths = i64::from(self.rng.gen_range(48..=168));
            let id = base("glucose");
            self.push(obj! {
                "resourceType": "Observation",
                "id": id,
                "meta": meta(ORG_COMMUNITY),
                "status": "final",
                "category": obs_category("laboratory", "Laboratory"),
                "code": loinc(LOINC_BLOOD_GLUCOSE, "Glucose [Moles/volume] in Blood"),
                "subject": subject.clone(),
                "encounter": reference("Encounter", &enc_id),
                "effectiveDateTime": taken,
                "performer": performer.clone(),
                "valueQuantity": quantity(decimal_tenths(glucose_tenths), "mmol/L", "mmol/L")
            });
            extra = format!(
                "Capillary blood glucose {}.{} mmol/L before insulin. Insulin given as prescribed; injection sites rotated and healthy.",
                glucose_tenths / 10,
                glucose_tenths % 10
            );
        }

        let comment = visit_comment(&mut self.rng, reason, v.unwell);
        let oxygen_text = if v.oxygen_litres > 0 {
            format!("on {} L/min oxygen", v.oxygen_litres)
        } else {
            "on air".to_owned()
        };
        let text = format!(
            "Home visit: {name}\nSeen by {nurse_name}, {role}.\n\nObservations: RR {rr}, SpO2 {spo2}% {oxygen_text}, HR {hr}, BP {sys}/{dia}, temperature {t}.{tr} °C, {acvpu}.\n{extra}\n{comment}\n",
            name = self.person.full_name(),
            role = nurse.role.display(),
            rr = v.respiratory_rate,
            spo2 = v.spo2,
            hr = v.heart_rate,
            sys = v.systolic,
            dia = v.diastolic,
            t = v.temperature_tenths / 10,
            tr = v.temperature_tenths % 10,
            acvpu = acvpu_display.to_lowercase(),
        );
        let doc_id = base("note");
        let title = format!("Nursing visit {}", day.format("%d/%m/%Y"));
        self.push(obj!{
            "resourceType": "DocumentReference",
            "id": doc_id,
            "meta": meta(ORG_COMMUNITY),
            "status": "current",
            "docStatus": "final",
            "type": loinc(LOINC_NURSE_NOTE, "Nurse Note"),
            "category": vec![concept(DOCUMENT_CATEGORY_SYSTEM, DOCUMENT_NURSING_VISIT_NOTE, "Nursing visit note")] ,
            "subject": subject,
            "date": end.clone(),
            "author": performer,
            "custodian": reference("Organization", ORG_COMMUNITY),
            "description": title.clone(),
            "content": vec![obj!{ "attachment": text_attachment(&title, &text, &end) }] ,
            "context": obj!{
                "encounter": vec![reference("Encounter", &enc_id)] ,
                "period": obj!{ "start": start, "end": end }
            }
        });
    }

    fn upcoming(
        &mut self,
        visit_today: bool,
        lead: &StaffDef,
        reason: CaseloadReason,
        episode_id: &str,
        reason_def: &ConditionDef,
    ) {
        let role_id = lead.role_id();
        let lead_name = lead.display_name();
        let created_day = self.today() - Duration::days(self.rng.gen_range(1..=7));
        let created = date(created_day);
        let description = match reason {
            CaseloadReason::LegUlcer => "Home visit: leg ulcer dressing and compression",
            CaseloadReason::PressureUlcer => "Home visit: pressure ulcer dressing and skin check",
            CaseloadReason::Diabetes => "Home visit: insulin and blood glucose",
            CaseloadReason::HeartFailure => "Home visit: heart failure review and weight",
            CaseloadReason::Palliative => "Home visit: symptom review",
        };
        let booking = |g: &mut Self, suffix: &str, day: NaiveDate, planned_encounter: bool| {
            let minutes = g.rng.gen_range(9 * 60..=15 * 60 + 30);
            let minutes = minutes - minutes % 15;
            let start = local_minutes(day, minutes);
            let end = local_minutes(day, minutes + 30);
            let appointment_id = g.id(suffix);
            let mut appointment = obj! {
                "resourceType": "Appointment",
                "id": appointment_id.clone(),
                "meta": meta(ORG_COMMUNITY),
                "status": "booked",
                "serviceType": vec![obj!{ "text": "District nursing" }] ,
                "appointmentType": concept("http://terminology.hl7.org/CodeSystem/v2-0276", "FOLLOWUP", "A follow up visit from a previous appointment"),
                "description": description,
                "start": start.clone(),
                "end": end.clone(),
                "created": created.as_str(),
                "participant": vec![
                    obj!{ "actor": g.subject(), "required": "required", "status": "accepted" },
                    obj!{ "actor": reference_display("PractitionerRole", &role_id, &lead_name), "required": "required", "status": "accepted" }
                ]
            };
            if let Some(condition) = g.condition_ref(reason_def) {
                appointment["reasonReference"] = Value::from(vec![condition]);
            }
            g.push(appointment);
            if planned_encounter {
                let enc_id = g.id(&format!("{suffix}-encounter"));
                let mut encounter = obj! {
                    "resourceType": "Encounter",
                    "id": enc_id,
                    "meta": meta(ORG_COMMUNITY),
                    "status": "planned",
                    "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", ENCOUNTER_CLASS_HOME, "home health"),
                    "type": vec![concept(SNOMED, SNOMED_HOME_VISIT, "Home visit")] ,
                    "subject": g.subject(),
                    "episodeOfCare": vec![reference("EpisodeOfCare", episode_id)] ,
                    "participant": vec![obj!{ "individual": reference_display("PractitionerRole", &role_id, &lead_name) }] ,
                    "appointment": vec![reference("Appointment", &appointment_id)] ,
                    "period": obj!{ "start": start, "end": end },
                    "serviceProvider": reference("Organization", ORG_COMMUNITY)
                };
                if let Some(condition) = g.condition_ref(reason_def) {
                    encounter["reasonReference"] = Value::from(vec![condition]);
                }
                g.push(encounter);
            }
        };
        let next = if visit_today {
            booking(self, "visit-today", self.config.today, true);
            self.today() + Duration::days(self.rng.gen_range(2..=4))
        } else {
            self.today() + Duration::days(self.rng.gen_range(1..=6))
        };
        booking(self, "visit-next", next, false);
    }
}

fn bp_components(systolic: i64, diastolic: i64) -> Value {
    Value::from(vec![
        obj! {
            "code": loinc(LOINC_SYSTOLIC, "Systolic blood pressure"),
            "valueQuantity": quantity(Value::from(systolic), "mmHg", "mm[Hg]")
        },
        obj! {
            "code": loinc(LOINC_DIASTOLIC, "Diastolic blood pressure"),
            "valueQuantity": quantity(Value::from(diastolic), "mmHg", "mm[Hg]")
        },
    ])
}

// ------------------------------------------------------------------ Flags

#[derive(Debug, Clone, Copy)]
enum FlagAuthor {
    Gp,
    Community,
    Council,
}

#[derive(Debug, Clone, Copy)]
struct FlagDef {
    text: &'static str,
    category: (&'static str, &'static str),
    snomed: Option<(&'static str, &'static str)>,
    author: FlagAuthor,
}

const FLAGS: [FlagDef; 7] = [
    FlagDef {
        text: "Key safe code changed — ask family for the new code",
        category: ("admin", "Administrative"),
        snomed: None,
        author: FlagAuthor::Council,
    },
    FlagDef {
        text: "Risk of violence to staff — visit in pairs",
        category: ("behavioral", "Behavioral"),
        snomed: None,
        author: FlagAuthor::Gp,
    },
    FlagDef {
        text: "Lives alone",
        category: ("admin", "Administrative"),
        snomed: Some(("105529008", "Lives alone")),
        author: FlagAuthor::Council,
    },
    FlagDef {
        text: "Dog in the property — ask for it to be shut away before entering",
        category: ("safety", "Safety"),
        snomed: None,
        author: FlagAuthor::Community,
    },
    FlagDef {
        text: "Oxygen in use in the home — no smoking or naked flames",
        category: ("safety", "Safety"),
        snomed: None,
        author: FlagAuthor::Community,
    },
    FlagDef {
        text: "Hard of hearing — face the patient and speak clearly",
        category: ("clinical", "Clinical"),
        snomed: None,
        author: FlagAuthor::Gp,
    },
    FlagDef {
        text: "DNACPR decision in place — ReSPECT form kept in the home",
        category: ("advance-directive", "Advance Directive"),
        snomed: None,
        author: FlagAuthor::Gp,
    },
];

const SAFEGUARDING_FLAG: FlagDef = FlagDef {
    text: "Safeguarding concern — see social care record before visiting",
    category: ("safety", "Safety"),
    snomed: None,
    author: FlagAuthor::Council,
};

fn flag_resource(
    id: String,
    author: &str,
    flag: &FlagDef,
    subject: Value,
    start: NaiveDate,
    sensitivity: Option<Sensitivity>,
) -> Value {
    let code = match flag.snomed {
        Some((code, display)) => concept_text(SNOMED, code, display, flag.text),
        None => obj! { "text": flag.text },
    };
    let meta = match sensitivity {
        Some(s) => meta_sensitive(author, s),
        None => meta(author),
    };
    obj! {
        "resourceType": "Flag",
        "id": id,
        "meta": meta,
        "status": "active",
        "category": vec![concept(
            "http://terminology.hl7.org/CodeSystem/flag-category",
            flag.category.0,
            flag.category.1,
        )] ,
        "code": code,
        "subject": subject,
        "period": obj!{ "start": date(start) },
        "author": reference("Organization", author)
    }
}

// ------------------------------------------------------------ Social care

const SOCIAL_NOTES: [(&str, &str); 6] = [
    (
        "Care and support review",
        "Reviewed {name}'s care and support plan at home with {name}'s daughter present. Two calls a day from the home care agency continue; {name} would like the morning call earlier. Agreed to ask the agency.",
    ),
    (
        "Key safe",
        "Key safe code changed after {name}'s neighbour reported it had been shared widely. Family hold the new code; agencies to ask family. Code not recorded here.",
    ),
    (
        "Carer's assessment",
        "Carer's assessment completed with {name}'s partner, who is finding nights hard. Referred for a sitting service one night a week and given the carers' centre details.",
    ),
    (
        "Package of care started",
        "Package of care started: two calls a day for personal care and meals. {name} is happy with the plan. Review in six weeks.",
    ),
    (
        "Telephone contact",
        "Telephone call with {name}. Managing well; equipment (perching stool, raised toilet seat) delivered and in use. No further needs at present.",
    ),
    (
        "Financial assessment",
        "Financial assessment completed for {name}. Contribution to care costs explained and agreed. Blue badge application supported.",
    ),
];

const SAFEGUARDING_NOTE: &str = "Safeguarding concern raised by the home care agency: {name} reports money going missing and a relative asking for {name}'s bank card. Section 42 enquiry opened. Do not discuss finances in front of visitors; contact the allocated social worker with any concerns.";

// ----------------------------------------------------------------- Nursing

fn plan_description(reason: CaseloadReason) -> &'static str {
    match reason {
        CaseloadReason::LegUlcer => "Heal venous leg ulcer with compression therapy; manage pain and exudate; prevent recurrence.",
        CaseloadReason::PressureUlcer => "Heal pressure ulcer; relieve pressure; protect skin; support nutrition.",
        CaseloadReason::Diabetes => "Safe insulin administration and glucose monitoring at home; foot care; spot early deterioration.",
        CaseloadReason::HeartFailure => "Monitor fluid balance, weight and symptoms after discharge; support medicines.",
        CaseloadReason::Palliative => "Comfort and symptom control at home; support patient and family; honour preferred place of care.",
    }
}

type Activity = (Option<&'static str>, &'static str, &'static str);

fn plan_activities(reason: CaseloadReason) -> &'static [Activity] {
    match reason {
        CaseloadReason::LegUlcer => &[
            (
                Some("225358003"),
                "Wound care",
                "Cleanse, dress and apply two-layer compression twice a week.",
            ),
            (
                Some("182531007"),
                "Dressing of wound",
                "Non-adherent dressing under compression; change if strike-through.",
            ),
            (
                Some("182836005"),
                "Review of medication",
                "Check analgesia is controlling pain at dressing changes.",
            ),
        ],
        CaseloadReason::PressureUlcer => &[
            (
                Some("225358003"),
                "Wound care",
                "Dress pressure ulcer every two to three days.",
            ),
            (
                None,
                "Pressure area care",
                "Check pressure areas each visit; reposition every 4 hours; mattress in use.",
            ),
            (
                Some("182836005"),
                "Review of medication",
                "Review analgesia and nutritional supplements.",
            ),
        ],
        CaseloadReason::Diabetes => &[
            (
                None,
                "Diabetes monitoring",
                "Capillary blood glucose before insulin at each visit; record in diary.",
            ),
            (
                None,
                "Insulin administration",
                "Administer basal insulin as prescribed; rotate sites.",
            ),
            (
                Some("182836005"),
                "Review of medication",
                "Review insulin dose with GP if glucose persistently above 15 mmol/L.",
            ),
        ],
        CaseloadReason::HeartFailure => &[
            (
                None,
                "Heart failure monitoring",
                "Weigh at each visit; report a gain of 2 kg in 3 days to GP.",
            ),
            (
                Some("182836005"),
                "Review of medication",
                "Check diuretics taken; watch for dizziness and falls.",
            ),
        ],
        CaseloadReason::Palliative => &[
            (
                Some("103735009"),
                "Palliative care",
                "Assess symptoms each visit; anticipatory medicines in the home.",
            ),
            (
                Some("182836005"),
                "Review of medication",
                "Check syringe driver if started; review with GP weekly.",
            ),
        ],
    }
}

type TaskTemplate = (Option<&'static str>, &'static str);

fn task_templates(reason: CaseloadReason) -> &'static [TaskTemplate] {
    match reason {
        CaseloadReason::LegUlcer => &[
            (
                Some("225358003"),
                "Redress leg ulcer and reapply compression",
            ),
            (None, "Order compression bandages"),
            (None, "Request repeat prescription for dressings from GP"),
            (None, "Refer to tissue viability nurse"),
            (None, "Measure and photograph wound"),
            (None, "Doppler assessment due"),
        ],
        CaseloadReason::PressureUlcer => &[
            (Some("225358003"), "Dress pressure ulcer"),
            (None, "Order pressure-relieving mattress"),
            (None, "Check pressure areas and repositioning chart"),
            (None, "Refer to dietitian"),
            (None, "Measure and photograph wound"),
        ],
        CaseloadReason::Diabetes => &[
            (None, "Give insulin and check blood glucose"),
            (None, "Review blood glucose diary with GP"),
            (None, "Annual diabetic foot check"),
            (None, "Collect sharps bin"),
        ],
        CaseloadReason::HeartFailure => &[
            (None, "Weigh and check ankles for oedema"),
            (Some("182836005"), "Medication review with GP"),
            (None, "Blood test for kidney function"),
            (None, "Falls risk assessment"),
        ],
        CaseloadReason::Palliative => &[
            (None, "Symptom review and check anticipatory medicines"),
            (None, "Discuss preferred place of care"),
            (None, "Order hospital bed"),
            (None, "Check syringe driver"),
        ],
    }
}

fn visit_comment(rng: &mut ChaCha8Rng, reason: CaseloadReason, unwell: bool) -> String {
    if unwell {
        return (*pick(
            rng,
            &[
                "Feeling unwell today: more breathless and tired. NEWS2 raised; discussed with GP, who will visit this afternoon. Safety-netting advice given to family.",
                "Appears more confused than usual and not drinking well. Possible infection; GP informed and urine sample obtained. Will revisit tomorrow.",
                "Shivery and hot; observations outside normal range. Escalated to GP and out-of-hours plan agreed with family.",
            ],
        ))
        .to_owned();
    }
    let general = *pick(
        rng,
        &[
            "Patient in good spirits. Eating and drinking well.",
            "Reports a good night's sleep. Mobilising with frame.",
            "Daughter present. No new concerns raised.",
            "Pain well controlled with regular paracetamol.",
            "Slightly tired today but otherwise well.",
            "Lives alone; carers visiting twice daily as planned.",
        ],
    );
    let specific = match reason {
        CaseloadReason::HeartFailure => {
            "Weight stable; mild ankle oedema unchanged. Diuretics taken."
        }
        CaseloadReason::Palliative => {
            "Symptoms controlled; anticipatory medicines in date. Family coping."
        }
        CaseloadReason::Diabetes => "No hypoglycaemic episodes reported.",
        _ => "Skin around the wound intact.",
    };
    format!("{general} {specific} Next visit as planned.")
}

/// Vital signs that drift around a personal baseline, with occasional
/// spells of being unwell.
struct Vitals {
    rr: i64,
    spo2: i64,
    hr: i64,
    sys: i64,
    dia: i64,
    temp: i64,
    oxygen_litres: i64,
    drift: [i64; 5],
    unwell_left: u32,
    severity: i64,
}

struct VitalSigns {
    respiratory_rate: i64,
    spo2: i64,
    heart_rate: i64,
    systolic: i64,
    diastolic: i64,
    temperature_tenths: i64,
    consciousness: (&'static str, &'static str),
    oxygen_litres: i64,
    unwell: bool,
}

impl Vitals {
    fn new(rng: &mut ChaCha8Rng, reason: CaseloadReason, copd: bool) -> Vitals {
        let on_oxygen =
            copd && rng.gen_bool(0.4) || reason == CaseloadReason::Palliative && rng.gen_bool(0.2);
        Vitals {
            rr: rng.gen_range(14..=18),
            spo2: if copd {
                rng.gen_range(89..=93)
            } else {
                rng.gen_range(94..=98)
            },
            hr: rng.gen_range(62..=88),
            sys: rng.gen_range(112..=152),
            dia: rng.gen_range(64..=88),
            temp: rng.gen_range(362..=371),
            oxygen_litres: if on_oxygen { rng.gen_range(1..=3) } else { 0 },
            drift: [0; 5],
            unwell_left: 0,
            severity: 0,
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> VitalSigns {
        for d in &mut self.drift {
            *d = (*d * 7) / 10 + rng.gen_range(-3..=3);
        }
        if self.unwell_left == 0 && rng.gen_bool(0.05) {
            self.unwell_left = rng.gen_range(1..=3);
            self.severity = rng.gen_range(1..=3);
        }
        let unwell = self.unwell_left > 0;
        let s = if unwell { self.severity } else { 0 };
        if unwell {
            self.unwell_left -= 1;
        }
        let rr = (self.rr + self.drift[0] / 3 + s * rng.gen_range(2..=4)).clamp(8, 32);
        let spo2 = (self.spo2 + self.drift[1] / 3 - s * rng.gen_range(1..=2)).clamp(82, 100);
        let hr = (self.hr + self.drift[2] + s * rng.gen_range(6..=12)).clamp(42, 140);
        let sys = (self.sys + self.drift[3] * 2 - s * rng.gen_range(3..=9)).clamp(82, 198);
        let dia = (self.dia + self.drift[4] - s * rng.gen_range(1..=4))
            .clamp(45, 110)
            .min(sys - 20);
        let temp = (self.temp + rng.gen_range(-2..=2) + s * rng.gen_range(3..=7)).clamp(350, 402);
        let consciousness = if s >= 3 && rng.gen_bool(0.5) {
            (SNOMED_ACVPU_CONFUSION, "New confusion")
        } else if s >= 3 && rng.gen_bool(0.1) {
            (SNOMED_ACVPU_VOICE, "Responds to voice")
        } else {
            (SNOMED_ACVPU_ALERT, "Alert")
        };
        VitalSigns {
            respiratory_rate: rr,
            spo2,
            heart_rate: hr,
            systolic: sys,
            diastolic: dia,
            temperature_tenths: temp,
            consciousness,
            oxygen_litres: self.oxygen_litres,
            unwell,
        }
    }
}

/// A wound that slowly heals, in millimetres.
struct Wound {
    site: &'static str,
    care: &'static str,
    length: i64,
    width: i64,
}

struct WoundSize {
    length_mm: i64,
    width_mm: i64,
    description: String,
}

impl Wound {
    fn new(rng: &mut ChaCha8Rng, reason: CaseloadReason) -> Wound {
        let (site, care) = match reason {
            CaseloadReason::PressureUlcer => (
                *pick(rng, &["Sacrum", "Left heel", "Right heel", "Right buttock"]),
                "Cleansed with saline; foam dressing applied. Repositioning advice reinforced.",
            ),
            _ => (
                *pick(
                    rng,
                    &[
                        "Left lower leg, gaiter area",
                        "Right lower leg, gaiter area",
                        "Left medial malleolus",
                    ],
                ),
                "Cleansed; non-adherent dressing and two-layer compression reapplied.",
            ),
        };
        // Sizes are kept in hundredths of a millimetre, so that slow healing
        // does not vanish in rounding.
        Wound {
            site,
            care,
            length: rng.gen_range(35..=90) * 100,
            width: rng.gen_range(20..=60) * 100,
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> WoundSize {
        // Heal about 2% a visit, with setbacks.
        let factor = if rng.gen_bool(0.1) {
            103
        } else {
            rng.gen_range(95..=99)
        };
        self.length = (self.length * factor / 100).max(400);
        self.width = (self.width * factor / 100).max(300);
        let description = (*pick(
            rng,
            &[
                "Granulating wound bed, moderate exudate, edges advancing.",
                "Some slough remaining, light exudate, surrounding skin healthy.",
                "Healthy granulation, low exudate, no signs of infection.",
                "Wound bed pink, small amount of slough, mild maceration at edges.",
            ],
        ))
        .to_owned();
        WoundSize {
            length_mm: (self.length + 50) / 100,
            width_mm: (self.width + 50) / 100,
            description,
        }
    }
}
