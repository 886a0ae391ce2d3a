//! A deterministic synthetic health and care region, as FHIR R4 JSON.
//!
//! `careshare-demo` invents Ravensdale, a fictional Yorkshire-like region with
//! one acute hospital trust, four GP practices, a community health trust that
//! runs two district nursing teams, a council's adult social care team and an
//! integrated care board that runs the shared record. It writes every
//! organisation, site, staff member and team, then each patient's record:
//! GP conditions, allergies and medicines, hospital stays with discharge
//! summaries, alerts, social care notes, objections to sharing and — for about
//! a quarter of patients — a district nursing caseload with a care plan,
//! tasks, booked visits and months of home visits with vital signs, wound
//! measurements and visit notes.
//!
//! The hub imports it (`careshare-hub demo-region`) through its normal import
//! path; tests use small regions and benchmarks large ones.
//!
//! # Guarantees
//!
//! * **Deterministic.** The same [`RegionConfig`] gives byte-identical JSON:
//!   there is no clock, no hash-map order and no shared random state. Each
//!   patient has its own ChaCha8 random streams keyed by the seed and the
//!   patient's index, so patient *k* is the same however many patients are
//!   generated or consumed before it.
//! * **Streaming.** [`Region::patients`] yields one patient's record at a time;
//!   a 20,000-patient region never sits in memory at once.
//! * **Importable twice.** Every resource has a client-assigned id
//!   (`pat-000042`, `pat-000042-visit-017-rr`, `org-hospital`, ...) that
//!   depends only on the patient's index, so a second import of the same
//!   region changes nothing. Ids do not depend on the seed: importing a
//!   region with another seed into the same hub overwrites patients index by
//!   index.
//! * **Valid FHIR R4.** Required elements, cardinalities, status codes and
//!   date formats follow R4; references are relative (`Patient/pat-000042`)
//!   and resolve within [`Region::structure`] plus the patient's own batch.
//! * **Fictional.** Names, addresses and telephone numbers are invented;
//!   NHS numbers are valid but start with `999`, the range kept for testing.
//!
//! The conventions the rest of Careshare reads back (staff roles, team
//! membership, authorship, caseloads, sensitivity labels, objections) are
//! constants in [`conventions`].
//!
//! # Example
//!
//! ```
//! use careshare_demo::{Region, RegionConfig};
//! use chrono::NaiveDate;
//!
//! let today = NaiveDate::from_ymd_opt(2025, 3, 14).ok_or("date")?;
//! let region = Region::new(RegionConfig::new(12, 42, today))?;
//! let structure = region.structure();
//! assert!(structure.iter().any(|r| r["id"] == "team-nursing-north"));
//! for record in region.patients() {
//!     assert_eq!(record[0]["resourceType"], "Patient");
//! }
//! let nurse = &region.demo_sign_ins()[0];
//! assert_eq!(nurse.username, "nurse.amy.khan");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Builds a JSON object from `"key": value` pairs, moving each value in
/// with `Value::from` (unlike `json!`, which copies interpolated values).
macro_rules! obj {
    ($($key:literal : $value:expr),* $(,)?) => {{
        let mut map = ::serde_json::Map::new();
        $( map.insert(::std::string::String::from($key), ::serde_json::Value::from($value)); )*
        ::serde_json::Value::Object(map)
    }};
}

mod codes;
pub mod conventions;
mod fhir;
mod names;
mod nhs;
mod profile;
mod record;
mod structure;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

pub use fhir::Sensitivity;
pub use names::postcode_format_is_valid;
pub use nhs::{
    format_nhs_number, nhs_check_digit, nhs_number, nhs_number_is_valid, NHS_NUMBER_CAPACITY,
};
pub use profile::{CaseloadMembership, PatientProfile};
pub use structure::{
    StaffMember, StaffRole, NURSING_TEAMS, ORG_COMMUNITY, ORG_COUNCIL, ORG_GP_PRACTICES,
    ORG_HOSPITAL, ORG_ICB, TEAM_NURSING_NORTH, TEAM_NURSING_SOUTH, TEAM_SOCIAL_CARE,
};

/// Default depth of a caseload patient's visit history, in days.
pub const DEFAULT_VISIT_HISTORY_DAYS: u32 = 180;
/// Deepest visit history accepted, in days (about three years).
pub const MAX_VISIT_HISTORY_DAYS: u32 = 1_100;
/// Largest region that can be generated (one NHS number per patient).
pub const MAX_PATIENTS: usize = NHS_NUMBER_CAPACITY;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionConfig {
    /// Number of patients.
    pub patients: usize,
    /// Random seed; the same seed gives the same region.
    pub seed: u64,
    /// The reference date ("today"): visits, tasks and appointments are
    /// placed relative to it, and nothing is dated after it except booked
    /// visits and tasks that fall due.
    pub today: NaiveDate,
    /// How far back a caseload patient's home visits go, in days. At the
    /// default of 180 a caseload patient has 30 to 52 visits and roughly 300
    /// to 600 resources; the number of visits scales with this.
    pub visit_history_days: u32,
}

impl RegionConfig {
    /// A configuration with the default visit history.
    pub fn new(patients: usize, seed: u64, today: NaiveDate) -> RegionConfig {
        RegionConfig {
            patients,
            seed,
            today,
            visit_history_days: DEFAULT_VISIT_HISTORY_DAYS,
        }
    }

    /// The same configuration with another visit-history depth.
    pub fn with_visit_history_days(mut self, days: u32) -> RegionConfig {
        self.visit_history_days = days;
        self
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemoError {
    /// More patients than there are distinct test NHS numbers.
    #[error("a demo region holds at most {max} patients, not {requested}")]
    TooManyPatients {
        /// Patients asked for.
        requested: usize,
        /// The limit, [`MAX_PATIENTS`].
        max: usize,
    },
    /// A visit history deeper than [`MAX_VISIT_HISTORY_DAYS`].
    #[error("visit history is limited to {max} days, not {requested}")]
    VisitHistoryTooLong {
        /// Days asked for.
        requested: u32,
        /// The limit.
        max: u32,
    },
    /// A reference date too early or too late for the region's timeline
    /// (births up to 100 years before, bookings up to a month after).
    #[error("reference date {0} is outside 1950-01-01..=9000-12-31")]
    DateOutOfRange(NaiveDate),
}

/// A generated region. Cheap to create: records are generated on demand.
#[derive(Debug, Clone)]
pub struct Region {
    config: RegionConfig,
}

impl Region {
    /// Checks the configuration and prepares the region.
    pub fn new(config: RegionConfig) -> Result<Region, DemoError> {
        if config.patients > MAX_PATIENTS {
            return Err(DemoError::TooManyPatients {
                requested: config.patients,
                max: MAX_PATIENTS,
            });
        }
        if config.visit_history_days > MAX_VISIT_HISTORY_DAYS {
            return Err(DemoError::VisitHistoryTooLong {
                requested: config.visit_history_days,
                max: MAX_VISIT_HISTORY_DAYS,
            });
        }
        let earliest = NaiveDate::from_ymd_opt(1950, 1, 1);
        let latest = NaiveDate::from_ymd_opt(9000, 12, 31);
        match (earliest, latest) {
            (Some(earliest), Some(latest))
                if config.today >= earliest && config.today <= latest => {}
            _ => return Err(DemoError::DateOutOfRange(config.today)),
        }
        Ok(Region { config })
    }

    /// The configuration this region was made from.
    pub fn config(&self) -> &RegionConfig {
        &self.config
    }

    /// Organisations, locations, practitioners, practitioner roles and staff
    /// teams (`CareTeam`s), in dependency order: the region's structure,
    /// to import before any patient. The same for every seed and size.
    pub fn structure(&self) -> Vec<Value> {
        structure::structure_resources()
    }

    /// Every staff member, with the ids of their `Practitioner`,
    /// `PractitionerRole`, organisation and teams, to create sign-in accounts.
    pub fn staff(&self) -> Vec<StaffMember> {
        structure::staff_members()
    }

    /// The demo sign-ins, in this order: a district nurse of the north team
    /// (`nurse.amy.khan`), a GP of Moorside Surgery (`gp.sarah.holmes`), a
    /// hospital clinician (`dr.nadia.hussein`), a social worker
    /// (`sw.claire.dawson`), the privacy officer (`privacy.margaret.ellis`)
    /// and the region administrator (`admin.neil.booth`).
    pub fn demo_sign_ins(&self) -> Vec<StaffMember> {
        structure::demo_sign_ins()
    }

    /// Every patient's record, one batch per patient, in index order: the
    /// `Patient` first, then the resources that refer to it, each after the
    /// resources it refers to.
    ///
    /// The iterator owns a copy of the (small) configuration, so it can be
    /// moved to another thread; it knows its exact length, for progress bars.
    pub fn patients(&self) -> PatientRecords {
        PatientRecords {
            region: self.clone(),
            next: 0,
            end: self.config.patients,
        }
    }

    /// The record of the patient at `index`, or `None` past the end.
    /// Generating patient *k* alone gives the same record as reaching it
    /// through [`Region::patients`].
    pub fn patient(&self, index: usize) -> Option<Vec<Value>> {
        let person = self.person(index)?;
        Some(record::generate(&self.config, &person))
    }

    /// Only the `Patient` resource at `index` — much cheaper than the whole
    /// record — or `None` past the end.
    pub fn patient_resource(&self, index: usize) -> Option<Value> {
        let person = self.person(index)?;
        Some(record::patient_resource(&person))
    }

    /// The shape of the record at `index` (caseload, social care, objection,
    /// sensitive history), without generating it; `None` past the end.
    pub fn profile(&self, index: usize) -> Option<PatientProfile> {
        self.person(index).map(|p| p.profile)
    }

    /// Profiles of every patient, in index order.
    pub fn profiles(&self) -> impl Iterator<Item = PatientProfile> + '_ {
        (0..self.config.patients).filter_map(move |index| self.profile(index))
    }

    fn person(&self, index: usize) -> Option<profile::Person> {
        if index >= self.config.patients {
            return None;
        }
        profile::person(self.config.seed, index, self.config.today)
    }
}

/// Iterator over patient records, from [`Region::patients`].
#[derive(Debug, Clone)]
pub struct PatientRecords {
    region: Region,
    next: usize,
    end: usize,
}

impl Iterator for PatientRecords {
    type Item = Vec<Value>;

    fn next(&mut self) -> Option<Vec<Value>> {
        while self.next < self.end {
            let index = self.next;
            self.next += 1;
            if let Some(record) = self.region.patient(index) {
                return Some(record);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<Vec<Value>> {
        self.next = self.next.saturating_add(n).min(self.end);
        self.next()
    }
}

impl ExactSizeIterator for PatientRecords {}

impl std::iter::FusedIterator for PatientRecords {}

/// The random stream `stream` of patient `index`: independent of every other
/// patient and of how much has been generated.
pub(crate) fn rng_for(seed: u64, index: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let index = u64::try_from(index).unwrap_or(u64::MAX / 2);
    rng.set_stream(index.wrapping_mul(2).wrapping_add(stream));
    rng
}

/// One element of a non-empty fixed table, chosen at random.
pub(crate) fn pick<'a, T, const N: usize>(rng: &mut impl Rng, items: &'a [T; N]) -> &'a T {
    const { assert!(N > 0, "tables to pick from are never empty") };
    &items[rng.gen_range(0..N)]
}

/// One element of a slice chosen at random, or `None` when it is empty.
pub(crate) fn choose<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.gen_range(0..items.len()))
    }
}
