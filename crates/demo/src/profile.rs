//! Who each patient is: the cheap, per-patient facts that decide the shape of
//! a record (caseload, social care, objection, sensitive history) and the
//! demographics of the `Patient` resource.
//!
//! A profile depends only on the seed and the patient's index, through its
//! own random stream, so it can be computed without generating the record.

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::codes::CaseloadReason;
use crate::names::{Town, FAMILY, FEMALE_GIVEN, INWARD_LETTERS, MALE_GIVEN, STREETS, TOWNS};
use crate::nhs::nhs_number;
use crate::structure::{NURSING_TEAMS, ORG_GP_PRACTICES};
use crate::{pick, rng_for};

/// Random stream of a patient's profile (the record uses the next one).
pub(crate) const PROFILE_STREAM: u64 = 0;
/// Random stream of a patient's record.
pub(crate) const RECORD_STREAM: u64 = 1;

/// A patient's place on a nursing team's caseload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseloadMembership {
    /// Id of the nursing team's `CareTeam`.
    pub team_id: String,
    /// `true` while the episode of care is active; `false` once it has
    /// finished (the team's access has ended).
    pub active: bool,
    /// Whether a home visit is booked for the reference date.
    pub visit_today: bool,
}

/// The facts that decide the shape of one patient's record.
///
/// The layout is fixed by the index, so tests can rely on it: every fourth
/// patient (index 0, 4, 8, ...) is on a nursing caseload, alternating between
/// the north and south teams; the caseload patients at index 8 and 20 (and
/// every 64th index after each) have a finished episode; caseload patients at
/// index 0, 4, 12 and 16 have a visit booked today (others by chance);
/// patients at index 7 and 32 of every hundred object to sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientProfile {
    /// Position of the patient in the region (0-based).
    pub index: usize,
    /// Id of the `Patient` resource.
    pub patient_id: String,
    /// The patient's NHS number (ten digits, no spaces).
    pub nhs_number: String,
    /// Id of the GP practice the patient is registered with.
    pub gp_practice_id: String,
    /// The nursing caseload the patient is (or was) on, if any.
    pub caseload: Option<CaseloadMembership>,
    /// Whether the council's adult social care team supports the patient.
    pub social_care: bool,
    /// Whether the social care record holds a safeguarding concern.
    pub safeguarding: bool,
    /// Whether the patient objects to sharing (has an active `Consent` that
    /// denies sharing beyond the organisation holding each record).
    pub objects_to_sharing: bool,
    /// Whether the GP record holds a mental health condition (labelled `PSY`).
    pub mental_health: bool,
    /// Whether the GP record holds a sexual health condition (labelled `STD`).
    pub sexual_health: bool,
}

/// The profile plus the demographics and the choices the record generator
/// needs.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub profile: PatientProfile,
    pub practice: usize,
    pub team: Option<usize>,
    pub reason: Option<CaseloadReason>,
    pub female: bool,
    pub given: Vec<&'static str>,
    pub family: &'static str,
    pub prefix: Option<&'static str>,
    pub birth_date: NaiveDate,
    pub age: u32,
    pub line: String,
    pub town: Town,
    pub postcode: String,
    pub home_phone: String,
    pub mobile_phone: Option<String>,
}

impl Person {
    /// "Mrs Joan Smith", "Ava Khan".
    pub(crate) fn full_name(&self) -> String {
        let given = self.given.first().copied().unwrap_or_default();
        match self.prefix {
            Some(prefix) => format!("{prefix} {given} {}", self.family),
            None => format!("{given} {}", self.family),
        }
    }

    /// "Joan", the name used in notes.
    pub(crate) fn first_name(&self) -> &'static str {
        self.given.first().copied().unwrap_or_default()
    }
}

/// Builds the person for `index`; `None` when the index has no NHS number.
pub(crate) fn person(seed: u64, index: usize, today: NaiveDate) -> Option<Person> {
    let nhs = nhs_number(seed, index)?;
    let mut rng = rng_for(seed, index, PROFILE_STREAM);
    let block = index / 4;
    let on_caseload = index % 4 == 0;
    let team = on_caseload.then_some(block % 2);
    let finished = on_caseload && matches!(block % 16, 2 | 5);
    let reason = if on_caseload {
        Some(caseload_reason(&mut rng))
    } else {
        None
    };

    let practice = match team {
        Some(team) => team * 2 + rng.gen_range(0..2),
        None => rng.gen_range(0..ORG_GP_PRACTICES.len()),
    };
    let age = match reason {
        Some(CaseloadReason::Palliative) => rng.gen_range(52..=92),
        Some(_) => rng.gen_range(68..=98),
        None => match rng.gen_range(0..10) {
            0 | 1 => rng.gen_range(0..=17),
            2..=7 => rng.gen_range(18..=69),
            _ => rng.gen_range(70..=95),
        },
    };
    let birth_date = today
        - Duration::days(i64::from(age) * 365 + i64::from(age / 4))
        - Duration::days(rng.gen_range(0..365));
    let female = rng.gen_bool(if age >= 80 { 0.62 } else { 0.51 });
    let first = if female {
        *pick(&mut rng, &FEMALE_GIVEN)
    } else {
        *pick(&mut rng, &MALE_GIVEN)
    };
    let mut given = vec![first];
    if rng.gen_bool(0.4) {
        let middle = if female {
            *pick(&mut rng, &FEMALE_GIVEN)
        } else {
            *pick(&mut rng, &MALE_GIVEN)
        };
        if middle != first {
            given.push(middle);
        }
    }
    let family = *pick(&mut rng, &FAMILY);
    let prefix = match (age >= 18, female) {
        (false, _) => None,
        (true, false) => Some("Mr"),
        (true, true) => Some(*pick(&mut rng, &["Mrs", "Mrs", "Ms", "Miss"])),
    };
    let town = TOWNS.get(practice).copied().unwrap_or(TOWNS[0]);
    let line = format!("{} {}", rng.gen_range(1..=180), pick(&mut rng, &STREETS));
    let postcode = format!(
        "{} {}{}{}",
        town.outward,
        rng.gen_range(1..=9),
        pick(&mut rng, &INWARD_LETTERS),
        pick(&mut rng, &INWARD_LETTERS)
    );
    let home_phone = format!("01632 960{:03}", rng.gen_range(200..1000));
    let mobile_phone =
        (age >= 14 && rng.gen_bool(0.7)).then(|| format!("07700 900{:03}", rng.gen_range(0..1000)));

    let visit_today = on_caseload && !finished && (block < 5 || rng.gen_bool(0.2));
    let social_care = index % 8 == 1 || index % 16 == 4;
    let safeguarding = social_care && index % 32 == 1;
    let objects_to_sharing = matches!(index % 100, 7 | 32);
    let mental_health = index % 10 == 3 && age >= 16;
    let sexual_health = index % 20 == 9 && age >= 16;

    let profile = PatientProfile {
        index,
        patient_id: patient_id(index),
        nhs_number: nhs,
        gp_practice_id: ORG_GP_PRACTICES
            .get(practice)
            .copied()
            .unwrap_or_default()
            .to_owned(),
        caseload: team.map(|t| CaseloadMembership {
            team_id: NURSING_TEAMS.get(t).copied().unwrap_or_default().to_owned(),
            active: !finished,
            visit_today,
        }),
        social_care,
        safeguarding,
        objects_to_sharing,
        mental_health,
        sexual_health,
    };
    Some(Person {
        profile,
        practice,
        team,
        reason,
        female,
        given,
        family,
        prefix,
        birth_date,
        age,
        line,
        town,
        postcode,
        home_phone,
        mobile_phone,
    })
}

/// Id of the `Patient` at `index`: `pat-000042`.
pub(crate) fn patient_id(index: usize) -> String {
    format!("pat-{index:06}")
}

fn caseload_reason(rng: &mut ChaCha8Rng) -> CaseloadReason {
    match rng.gen_range(0..20) {
        0..=5 => CaseloadReason::LegUlcer,
        6..=9 => CaseloadReason::PressureUlcer,
        10..=14 => CaseloadReason::Diabetes,
        15..=17 => CaseloadReason::HeartFailure,
        _ => CaseloadReason::Palliative,
    }
}
