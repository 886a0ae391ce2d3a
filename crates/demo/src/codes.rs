//! Clinical terminology used by the generator: conditions, medicines
//! (dm+d, which lives in SNOMED CT), allergies and reactions.

use crate::fhir::Sensitivity;

/// A medicine: dm+d virtual medicinal product code, name and usual dosage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Medicine {
    pub code: &'static str,
    pub display: &'static str,
    pub dosage: &'static str,
}

const fn med(code: &'static str, display: &'static str, dosage: &'static str) -> Medicine {
    Medicine {
        code,
        display,
        dosage,
    }
}

pub(crate) const PARACETAMOL: Medicine = med(
    "322236009",
    "Paracetamol 500mg tablets",
    "Two tablets up to four times a day when required for pain. Maximum 8 tablets in 24 hours.",
);
pub(crate) const AMLODIPINE: Medicine = med(
    "319283006",
    "Amlodipine 5mg tablets",
    "One tablet once a day.",
);
pub(crate) const FUROSEMIDE_40: Medicine = med(
    "317972000",
    "Furosemide 40mg tablets",
    "One tablet each morning.",
);
pub(crate) const FUROSEMIDE_20: Medicine = med(
    "317971007",
    "Furosemide 20mg tablets",
    "One tablet each morning.",
);
pub(crate) const RAMIPRIL_2_5: Medicine = med(
    "318901006",
    "Ramipril 2.5mg capsules",
    "One capsule once a day.",
);
pub(crate) const RAMIPRIL_5: Medicine = med(
    "318902004",
    "Ramipril 5mg capsules",
    "One capsule once a day.",
);
pub(crate) const BISOPROLOL: Medicine = med(
    "318590006",
    "Bisoprolol 5mg tablets",
    "One tablet once a day.",
);
pub(crate) const SPIRONOLACTONE: Medicine = med(
    "318056008",
    "Spironolactone 25mg tablets",
    "One tablet once a day.",
);
pub(crate) const LISINOPRIL: Medicine = med(
    "318859000",
    "Lisinopril 10mg tablets",
    "One tablet once a day.",
);
pub(crate) const LOSARTAN: Medicine = med(
    "318956006",
    "Losartan 50mg tablets",
    "One tablet once a day.",
);
pub(crate) const SALBUTAMOL: Medicine = med(
    "320176004",
    "Salbutamol 100micrograms/dose inhaler CFC free",
    "Two puffs when required for breathlessness or wheeze.",
);
pub(crate) const METFORMIN: Medicine = med(
    "325278007",
    "Metformin 500mg tablets",
    "One tablet twice a day with breakfast and evening meal.",
);
pub(crate) const ATORVASTATIN: Medicine = med(
    "320000009",
    "Atorvastatin 20mg tablets",
    "One tablet at night.",
);
pub(crate) const CITALOPRAM: Medicine = med(
    "321987003",
    "Citalopram 20mg tablets",
    "One tablet once a day.",
);

/// Why a patient is on a nursing caseload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaseloadReason {
    LegUlcer,
    PressureUlcer,
    Diabetes,
    HeartFailure,
    Palliative,
}

impl CaseloadReason {
    pub(crate) fn has_wound(self) -> bool {
        matches!(
            self,
            CaseloadReason::LegUlcer | CaseloadReason::PressureUlcer
        )
    }
}

/// A condition in a GP record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConditionDef {
    pub code: &'static str,
    pub display: &'static str,
    /// Youngest age at onset, in years.
    pub min_age: u32,
    /// Whether the condition is usually over (recorded as resolved).
    pub resolves: bool,
    pub sensitivity: Option<Sensitivity>,
    pub medicines: &'static [Medicine],
}

const fn cond(
    code: &'static str,
    display: &'static str,
    min_age: u32,
    medicines: &'static [Medicine],
) -> ConditionDef {
    ConditionDef {
        code,
        display,
        min_age,
        resolves: false,
        sensitivity: None,
        medicines,
    }
}

pub(crate) const TYPE_2_DIABETES: ConditionDef = cond(
    "44054006",
    "Type 2 diabetes mellitus",
    35,
    &[METFORMIN, ATORVASTATIN],
);
pub(crate) const HYPERTENSION: ConditionDef = cond("38341003", "Hypertension", 30, &[AMLODIPINE]);
pub(crate) const HYPERTENSION_ACE: ConditionDef =
    cond("38341003", "Hypertension", 30, &[RAMIPRIL_2_5]);
pub(crate) const HYPERTENSION_LISINOPRIL: ConditionDef =
    cond("38341003", "Hypertension", 30, &[LISINOPRIL]);
pub(crate) const HYPERTENSION_ARB: ConditionDef = cond("38341003", "Hypertension", 30, &[LOSARTAN]);
pub(crate) const COPD: ConditionDef = cond(
    "13645005",
    "Chronic obstructive pulmonary disease",
    45,
    &[SALBUTAMOL],
);
pub(crate) const ASTHMA: ConditionDef = cond("195967001", "Asthma", 3, &[SALBUTAMOL]);
pub(crate) const HEART_FAILURE: ConditionDef = cond(
    "84114007",
    "Heart failure",
    50,
    &[FUROSEMIDE_40, BISOPROLOL, RAMIPRIL_5, SPIRONOLACTONE],
);
pub(crate) const ATRIAL_FIBRILLATION: ConditionDef =
    cond("49436004", "Atrial fibrillation", 50, &[BISOPROLOL]);
pub(crate) const OSTEOARTHRITIS: ConditionDef =
    cond("396275006", "Osteoarthritis", 45, &[PARACETAMOL]);
pub(crate) const CKD: ConditionDef = cond("709044004", "Chronic kidney disease", 50, &[]);
pub(crate) const DEMENTIA: ConditionDef = cond("52448006", "Dementia", 65, &[]);
pub(crate) const STROKE: ConditionDef = cond("230690007", "Stroke", 50, &[ATORVASTATIN]);
pub(crate) const HYPERLIPIDAEMIA: ConditionDef =
    cond("55822004", "Hyperlipidaemia", 35, &[ATORVASTATIN]);
pub(crate) const ECZEMA: ConditionDef = cond("43116000", "Eczema", 0, &[]);
pub(crate) const INCONTINENCE: ConditionDef = cond("165232002", "Urinary incontinence", 60, &[]);
pub(crate) const PARKINSONS: ConditionDef = cond("49049000", "Parkinson's disease", 55, &[]);
pub(crate) const LEG_ULCER: ConditionDef = cond(
    "402863000",
    "Venous ulcer of lower limb",
    50,
    &[PARACETAMOL],
);
pub(crate) const PRESSURE_ULCER: ConditionDef =
    cond("399912005", "Pressure ulcer", 60, &[PARACETAMOL]);
pub(crate) const COLON_CANCER: ConditionDef =
    cond("363406005", "Malignant tumour of colon", 50, &[PARACETAMOL]);
pub(crate) const HEART_FAILURE_MILD: ConditionDef = cond(
    "84114007",
    "Heart failure",
    50,
    &[FUROSEMIDE_20, BISOPROLOL],
);

pub(crate) const DEPRESSION: ConditionDef = ConditionDef {
    code: "35489007",
    display: "Depressive disorder",
    min_age: 16,
    resolves: false,
    sensitivity: Some(Sensitivity::MentalHealth),
    medicines: &[CITALOPRAM],
};
pub(crate) const ANXIETY: ConditionDef = ConditionDef {
    code: "197480006",
    display: "Anxiety disorder",
    min_age: 16,
    resolves: false,
    sensitivity: Some(Sensitivity::MentalHealth),
    medicines: &[],
};
pub(crate) const CHLAMYDIA: ConditionDef = ConditionDef {
    code: "105629000",
    display: "Chlamydial infection",
    min_age: 16,
    resolves: true,
    sensitivity: Some(Sensitivity::SexualHealth),
    medicines: &[],
};

/// Long-term conditions an adult may have, with a weight (relative
/// likelihood) that grows with age.
pub(crate) const ADULT_CONDITIONS: [(ConditionDef, u32); 16] = [
    (HYPERTENSION, 10),
    (HYPERTENSION_ACE, 6),
    (HYPERTENSION_LISINOPRIL, 3),
    (HYPERTENSION_ARB, 3),
    (TYPE_2_DIABETES, 9),
    (OSTEOARTHRITIS, 8),
    (HYPERLIPIDAEMIA, 6),
    (COPD, 5),
    (ASTHMA, 5),
    (ATRIAL_FIBRILLATION, 4),
    (CKD, 4),
    (HEART_FAILURE_MILD, 3),
    (STROKE, 2),
    (DEMENTIA, 2),
    (INCONTINENCE, 2),
    (PARKINSONS, 1),
];

/// Conditions a child may have.
pub(crate) const CHILD_CONDITIONS: [ConditionDef; 2] = [ASTHMA, ECZEMA];

/// An allergy: SNOMED code, display, category and a likely reaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllergyDef {
    pub code: &'static str,
    pub display: &'static str,
    pub category: &'static str,
    pub reactions: &'static [(&'static str, &'static str)],
}

pub(crate) const NO_KNOWN_ALLERGY: (&str, &str) = ("716186003", "No known allergy");

pub(crate) const ALLERGIES: [AllergyDef; 6] = [
    AllergyDef {
        code: "91936005",
        display: "Allergy to penicillin",
        category: "medication",
        reactions: &[
            ("271807003", "Eruption of skin"),
            ("126485001", "Urticaria"),
        ],
    },
    AllergyDef {
        code: "294505008",
        display: "Allergy to amoxicillin",
        category: "medication",
        reactions: &[
            ("271807003", "Eruption of skin"),
            ("418363000", "Itching of skin"),
        ],
    },
    AllergyDef {
        code: "293586001",
        display: "Allergy to aspirin",
        category: "medication",
        reactions: &[("267036007", "Dyspnoea"), ("126485001", "Urticaria")],
    },
    AllergyDef {
        code: "91935009",
        display: "Allergy to peanuts",
        category: "food",
        reactions: &[("39579001", "Anaphylaxis"), ("126485001", "Urticaria")],
    },
    AllergyDef {
        code: "300916003",
        display: "Allergy to latex",
        category: "environment",
        reactions: &[
            ("418363000", "Itching of skin"),
            ("271807003", "Eruption of skin"),
        ],
    },
    AllergyDef {
        code: "300913006",
        display: "Allergy to shellfish",
        category: "food",
        reactions: &[("422587007", "Nausea"), ("126485001", "Urticaria")],
    },
];

/// Why someone was admitted to hospital: SNOMED code and display, plus a
/// line for the discharge summary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionDef {
    pub code: &'static str,
    pub display: &'static str,
    pub treatment: &'static str,
    /// A condition the patient must already have (SNOMED code), if any.
    pub requires: Option<&'static str>,
}

pub(crate) const ADMISSIONS: [AdmissionDef; 8] = [
    AdmissionDef {
        code: "233604007",
        display: "Pneumonia",
        treatment: "Treated with intravenous then oral antibiotics; oxygen weaned to room air.",
        requires: None,
    },
    AdmissionDef {
        code: "68566005",
        display: "Urinary tract infection",
        treatment: "Treated with oral antibiotics; fluids encouraged; confusion settled.",
        requires: None,
    },
    AdmissionDef {
        code: "128045006",
        display: "Cellulitis",
        treatment: "Intravenous antibiotics for 48 hours then oral; leg elevated.",
        requires: None,
    },
    AdmissionDef {
        code: "217082002",
        display: "Fall",
        treatment: "No fracture on X-ray; reviewed by physiotherapy; walking frame supplied.",
        requires: None,
    },
    AdmissionDef {
        code: "5913000",
        display: "Fracture of neck of femur",
        treatment: "Hemiarthroplasty; mobilising with frame; district nurse to review wound.",
        requires: None,
    },
    AdmissionDef {
        code: "195951007",
        display: "Acute exacerbation of chronic obstructive pulmonary disease",
        treatment: "Nebulisers, oral steroids and antibiotics; back to baseline breathlessness.",
        requires: Some("13645005"),
    },
    AdmissionDef {
        code: "84114007",
        display: "Heart failure",
        treatment: "Intravenous diuretics; weight down 4 kg; oral furosemide dose increased.",
        requires: Some("84114007"),
    },
    AdmissionDef {
        code: "29857009",
        display: "Chest pain",
        treatment: "Troponin negative; ECG unchanged; discharged for outpatient follow-up.",
        requires: None,
    },
];

/// The admission that brought a caseload patient to the nurses.
pub(crate) fn admission_for(reason: CaseloadReason) -> AdmissionDef {
    match reason {
        CaseloadReason::LegUlcer => ADMISSIONS[2],
        CaseloadReason::PressureUlcer => ADMISSIONS[4],
        CaseloadReason::Diabetes => ADMISSIONS[1],
        CaseloadReason::HeartFailure => ADMISSIONS[6],
        CaseloadReason::Palliative => AdmissionDef {
            code: "363406005",
            display: "Malignant tumour of colon",
            treatment: "Admitted with pain and vomiting; symptoms controlled; referred to community palliative care.",
            requires: None,
        },
    }
}

/// Outpatient attendances (class AMB).
pub(crate) const CLINICS: [(&str, &str); 4] = [
    ("193570009", "Cataract"),
    ("396275006", "Osteoarthritis"),
    ("49436004", "Atrial fibrillation"),
    ("38341003", "Hypertension"),
];
