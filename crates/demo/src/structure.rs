//! The region's structure: organisations, sites, staff and staff teams.
//!
//! The structure is the same for every seed and every size, so the demo
//! sign-ins and the ids of organisations and teams are stable and can be
//! written into documentation and tests.

use serde_json::Value;

use crate::conventions::{
    ODS_CODE_SYSTEM, ORG_KIND_SYSTEM, SNOMED, STAFF_NUMBER_SYSTEM, STAFF_ROLE_SYSTEM,
    TEAM_KIND_SYSTEM, TEAM_KIND_TEAM, USERNAME_SYSTEM,
};
use crate::fhir::{coding, concept, reference, reference_display};

/// The regional integrated care board, which runs the shared record and
/// employs the privacy officer and the region administrator.
pub const ORG_ICB: &str = "org-icb";
/// The acute hospital trust.
pub const ORG_HOSPITAL: &str = "org-hospital";
/// The community health trust that runs the district nursing teams.
pub const ORG_COMMUNITY: &str = "org-community";
/// The council (adult social care).
pub const ORG_COUNCIL: &str = "org-council";
/// The four GP practices: Moorside (Hollinbeck), Beckfield (Ravensby),
/// Ridgeway (Ackerby) and Millbank (Thwaite Bridge).
pub const ORG_GP_PRACTICES: [&str; 4] = [
    "org-gp-moorside",
    "org-gp-beckfield",
    "org-gp-ridgeway",
    "org-gp-millbank",
];
/// District nursing team covering the first two practices.
pub const TEAM_NURSING_NORTH: &str = "team-nursing-north";
/// District nursing team covering the last two practices.
pub const TEAM_NURSING_SOUTH: &str = "team-nursing-south";
/// The nursing teams, in order.
pub const NURSING_TEAMS: [&str; 2] = [TEAM_NURSING_NORTH, TEAM_NURSING_SOUTH];
/// The council's adult social care team.
pub const TEAM_SOCIAL_CARE: &str = "team-social-care";

/// What a staff member does; each maps to a code in
/// [`STAFF_ROLE_SYSTEM`](crate::conventions::STAFF_ROLE_SYSTEM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StaffRole {
    /// District nurse in a nursing team.
    DistrictNurse,
    /// Community nurse in a nursing team.
    CommunityNurse,
    /// General practitioner.
    Gp,
    /// Hospital clinician.
    HospitalClinician,
    /// Social worker.
    SocialWorker,
    /// Privacy officer (Caldicott guardian).
    PrivacyOfficer,
    /// Region administrator.
    RegionAdmin,
}

impl StaffRole {
    /// Every role, in a fixed order.
    pub const ALL: [StaffRole; 7] = [
        StaffRole::DistrictNurse,
        StaffRole::CommunityNurse,
        StaffRole::Gp,
        StaffRole::HospitalClinician,
        StaffRole::SocialWorker,
        StaffRole::PrivacyOfficer,
        StaffRole::RegionAdmin,
    ];

    /// The role's code in the staff-role code system.
    pub fn code(self) -> &'static str {
        use crate::conventions as c;
        match self {
            StaffRole::DistrictNurse => c::ROLE_DISTRICT_NURSE,
            StaffRole::CommunityNurse => c::ROLE_COMMUNITY_NURSE,
            StaffRole::Gp => c::ROLE_GP,
            StaffRole::HospitalClinician => c::ROLE_HOSPITAL_CLINICIAN,
            StaffRole::SocialWorker => c::ROLE_SOCIAL_WORKER,
            StaffRole::PrivacyOfficer => c::ROLE_PRIVACY_OFFICER,
            StaffRole::RegionAdmin => c::ROLE_REGION_ADMIN,
        }
    }

    /// The role for a code, or `None` for an unknown code.
    pub fn from_code(code: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|role| role.code() == code)
    }

    /// A human-readable name of the role.
    pub fn display(self) -> &'static str {
        match self {
            StaffRole::DistrictNurse => "District nurse",
            StaffRole::CommunityNurse => "Community nurse",
            StaffRole::Gp => "General practitioner",
            StaffRole::HospitalClinician => "Hospital clinician",
            StaffRole::SocialWorker => "Social worker",
            StaffRole::PrivacyOfficer => "Privacy officer (Caldicott guardian)",
            StaffRole::RegionAdmin => "Region administrator",
        }
    }

    fn username_prefix(self) -> &'static str {
        match self {
            StaffRole::DistrictNurse | StaffRole::CommunityNurse => "nurse",
            StaffRole::Gp => "gp",
            StaffRole::HospitalClinician => "dr",
            StaffRole::SocialWorker => "sw",
            StaffRole::PrivacyOfficer => "privacy",
            StaffRole::RegionAdmin => "admin",
        }
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A staff member to create a sign-in account for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Sign-in name: lowercase, `<role>.<given>.<family>`, e.g. `nurse.amy.khan`.
    pub username: String,
    /// Name to show, e.g. `Amy Khan`.
    pub display_name: String,
    /// What the person does.
    pub role: StaffRole,
    /// Id of the `Practitioner`.
    pub practitioner_id: String,
    /// Id of the `PractitionerRole`.
    pub practitioner_role_id: String,
    /// Id of the employing `Organization`.
    pub organization_id: String,
    /// Ids of the staff-team `CareTeam`s the person belongs to.
    pub team_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OrgDef {
    pub id: &'static str,
    pub name: &'static str,
    pub ods: &'static str,
    /// organization-type code and display.
    pub kind: (&'static str, &'static str),
    pub line: &'static str,
    pub town: &'static str,
    pub postcode: &'static str,
    pub phone: &'static str,
    pub site: &'static str,
}

pub(crate) const ORGANISATIONS: [OrgDef; 8] = [
    OrgDef {
        id: ORG_ICB,
        name: "Ravensdale Integrated Care Board",
        ods: "Y9Z01",
        kind: ("govt", "Government"),
        line: "Calder House, 1 Wharf Street",
        town: "Ravensby",
        postcode: "HX3 1AB",
        phone: "01632 960001",
        site: "Calder House",
    },
    OrgDef {
        id: ORG_HOSPITAL,
        name: "Ravensdale Teaching Hospitals NHS Trust",
        ods: "RZ9",
        kind: ("prov", "Healthcare Provider"),
        line: "Infirmary Road",
        town: "Ravensby",
        postcode: "HX3 4QT",
        phone: "01632 960010",
        site: "Ravensby Royal Infirmary",
    },
    OrgDef {
        id: ORG_COMMUNITY,
        name: "Ravensdale Community Health NHS Trust",
        ods: "RZ8",
        kind: ("prov", "Healthcare Provider"),
        line: "Beckside Health Centre, Mill Lane",
        town: "Hollinbeck",
        postcode: "HX7 2DN",
        phone: "01632 960020",
        site: "Beckside Health Centre",
    },
    OrgDef {
        id: ORG_COUNCIL,
        name: "Ravensdale Metropolitan Borough Council",
        ods: "Y9Z02",
        kind: ("govt", "Government"),
        line: "Town Hall, Crossley Street",
        town: "Ravensby",
        postcode: "HX3 1UJ",
        phone: "01632 960030",
        site: "Ravensby Town Hall",
    },
    OrgDef {
        id: ORG_GP_PRACTICES[0],
        name: "Moorside Surgery",
        ods: "Y90001",
        kind: ("prov", "Healthcare Provider"),
        line: "12 Moor View",
        town: "Hollinbeck",
        postcode: "HX7 5QT",
        phone: "01632 960101",
        site: "Moorside Surgery",
    },
    OrgDef {
        id: ORG_GP_PRACTICES[1],
        name: "Beckfield Medical Practice",
        ods: "Y90002",
        kind: ("prov", "Healthcare Provider"),
        line: "3 Station Road",
        town: "Ravensby",
        postcode: "HX3 6EL",
        phone: "01632 960102",
        site: "Beckfield Medical Practice",
    },
    OrgDef {
        id: ORG_GP_PRACTICES[2],
        name: "Ridgeway Health Centre",
        ods: "Y90003",
        kind: ("prov", "Healthcare Provider"),
        line: "Ridgeway, Quarry Hill",
        town: "Ackerby",
        postcode: "HD9 3RS",
        phone: "01632 960103",
        site: "Ridgeway Health Centre",
    },
    OrgDef {
        id: ORG_GP_PRACTICES[3],
        name: "Millbank Family Practice",
        ods: "Y90004",
        kind: ("prov", "Healthcare Provider"),
        line: "40 Canal Side",
        town: "Thwaite Bridge",
        postcode: "BD22 8NX",
        phone: "01632 960104",
        site: "Millbank Family Practice",
    },
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct TeamDef {
    pub id: &'static str,
    pub name: &'static str,
    pub organization: &'static str,
    pub location: &'static str,
}

pub(crate) const TEAMS: [TeamDef; 3] = [
    TeamDef {
        id: TEAM_NURSING_NORTH,
        name: "Hollinbeck and Ravensby District Nursing Team",
        organization: ORG_COMMUNITY,
        location: "loc-team-nursing-north",
    },
    TeamDef {
        id: TEAM_NURSING_SOUTH,
        name: "Ackerby and Thwaite Bridge District Nursing Team",
        organization: ORG_COMMUNITY,
        location: "loc-team-nursing-south",
    },
    TeamDef {
        id: TEAM_SOCIAL_CARE,
        name: "Ravensdale Adult Social Care Team",
        organization: ORG_COUNCIL,
        location: "loc-org-council",
    },
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct StaffDef {
    pub given: &'static str,
    pub family: &'static str,
    pub prefix: Option<&'static str>,
    pub gender: &'static str,
    pub role: StaffRole,
    pub organization: &'static str,
    pub team: Option<&'static str>,
}

const fn staff(
    given: &'static str,
    family: &'static str,
    prefix: Option<&'static str>,
    gender: &'static str,
    role: StaffRole,
    organization: &'static str,
    team: Option<&'static str>,
) -> StaffDef {
    StaffDef {
        given,
        family,
        prefix,
        gender,
        role,
        organization,
        team,
    }
}

use StaffRole as R;

/// Everyone on the staff. The first of each kind is the demo sign-in.
pub(crate) const STAFF: [StaffDef; 31] = [
    // North nursing team.
    staff(
        "Amy",
        "Khan",
        None,
        "female",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    staff(
        "Rachel",
        "Greenwood",
        None,
        "female",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    staff(
        "Tom",
        "Sutcliffe",
        None,
        "male",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    staff(
        "Priya",
        "Patel",
        None,
        "female",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    staff(
        "Joanne",
        "Haigh",
        None,
        "female",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    staff(
        "Daniel",
        "Kowalski",
        None,
        "male",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_NORTH),
    ),
    // South nursing team.
    staff(
        "Helen",
        "Firth",
        None,
        "female",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    staff(
        "Samina",
        "Akhtar",
        None,
        "female",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    staff(
        "Mark",
        "Lister",
        None,
        "male",
        R::DistrictNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    staff(
        "Lucy",
        "Barker",
        None,
        "female",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    staff(
        "Chloe",
        "Ackroyd",
        None,
        "female",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    staff(
        "Imran",
        "Hussain",
        None,
        "male",
        R::CommunityNurse,
        ORG_COMMUNITY,
        Some(TEAM_NURSING_SOUTH),
    ),
    // GP practices: 3, 2, 3, 2 GPs.
    staff(
        "Sarah",
        "Holmes",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[0],
        None,
    ),
    staff(
        "Rajesh",
        "Mistry",
        Some("Dr"),
        "male",
        R::Gp,
        ORG_GP_PRACTICES[0],
        None,
    ),
    staff(
        "Emma",
        "Wright",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[0],
        None,
    ),
    staff(
        "James",
        "Okafor",
        Some("Dr"),
        "male",
        R::Gp,
        ORG_GP_PRACTICES[1],
        None,
    ),
    staff(
        "Fiona",
        "Campbell",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[1],
        None,
    ),
    staff(
        "Aisha",
        "Rahman",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[2],
        None,
    ),
    staff(
        "Peter",
        "Nolan",
        Some("Dr"),
        "male",
        R::Gp,
        ORG_GP_PRACTICES[2],
        None,
    ),
    staff(
        "Kate",
        "Brennan",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[2],
        None,
    ),
    staff(
        "Oliver",
        "Shaw",
        Some("Dr"),
        "male",
        R::Gp,
        ORG_GP_PRACTICES[3],
        None,
    ),
    staff(
        "Mei",
        "Chen",
        Some("Dr"),
        "female",
        R::Gp,
        ORG_GP_PRACTICES[3],
        None,
    ),
    // Hospital.
    staff(
        "Nadia",
        "Hussein",
        Some("Dr"),
        "female",
        R::HospitalClinician,
        ORG_HOSPITAL,
        None,
    ),
    staff(
        "Gareth",
        "Evans",
        Some("Dr"),
        "male",
        R::HospitalClinician,
        ORG_HOSPITAL,
        None,
    ),
    staff(
        "Ruth",
        "Bamford",
        Some("Dr"),
        "female",
        R::HospitalClinician,
        ORG_HOSPITAL,
        None,
    ),
    staff(
        "Sam",
        "Oyelaran",
        Some("Dr"),
        "male",
        R::HospitalClinician,
        ORG_HOSPITAL,
        None,
    ),
    // Council.
    staff(
        "Claire",
        "Dawson",
        None,
        "female",
        R::SocialWorker,
        ORG_COUNCIL,
        Some(TEAM_SOCIAL_CARE),
    ),
    staff(
        "Bilal",
        "Qureshi",
        None,
        "male",
        R::SocialWorker,
        ORG_COUNCIL,
        Some(TEAM_SOCIAL_CARE),
    ),
    staff(
        "Megan",
        "Tattersall",
        None,
        "female",
        R::SocialWorker,
        ORG_COUNCIL,
        Some(TEAM_SOCIAL_CARE),
    ),
    // Region.
    staff(
        "Margaret",
        "Ellis",
        Some("Dr"),
        "female",
        R::PrivacyOfficer,
        ORG_ICB,
        None,
    ),
    staff("Neil", "Booth", None, "male", R::RegionAdmin, ORG_ICB, None),
];

impl StaffDef {
    fn slug(&self) -> String {
        format!("{}-{}", self.given, self.family).to_ascii_lowercase()
    }
    pub(crate) fn practitioner_id(&self) -> String {
        format!("prac-{}", self.slug())
    }
    pub(crate) fn role_id(&self) -> String {
        format!("role-{}", self.slug())
    }
    pub(crate) fn username(&self) -> String {
        format!(
            "{}.{}.{}",
            self.role.username_prefix(),
            self.given,
            self.family
        )
        .to_ascii_lowercase()
    }
    pub(crate) fn display_name(&self) -> String {
        match self.prefix {
            Some(prefix) => format!("{prefix} {} {}", self.given, self.family),
            None => format!("{} {}", self.given, self.family),
        }
    }
    pub(crate) fn member(&self) -> StaffMember {
        StaffMember {
            username: self.username(),
            display_name: self.display_name(),
            role: self.role,
            practitioner_id: self.practitioner_id(),
            practitioner_role_id: self.role_id(),
            organization_id: self.organization.to_owned(),
            team_ids: self.team.map(str::to_owned).into_iter().collect(),
        }
    }
}

/// Staff of a role in an organisation or team, in table order.
pub(crate) fn staff_where(
    role: impl Fn(StaffRole) -> bool,
    organization: Option<&str>,
    team: Option<&str>,
) -> Vec<&'static StaffDef> {
    STAFF
        .iter()
        .filter(|s| role(s.role))
        .filter(|s| organization.is_none_or(|o| s.organization == o))
        .filter(|s| team.is_none_or(|t| s.team == Some(t)))
        .collect()
}

pub(crate) fn org(id: &str) -> Option<&'static OrgDef> {
    ORGANISATIONS.iter().find(|o| o.id == id)
}

/// The organisation's kind in Careshare's own terms (the access policy treats records
/// written by a social care organisation differently).
fn careshare_kind(id: &str) -> (&'static str, &'static str) {
    match id {
        ORG_HOSPITAL => ("hospital", "Acute hospital trust"),
        ORG_COMMUNITY => ("community-health", "Community health trust"),
        ORG_COUNCIL => ("social-care", "Adult social care"),
        ORG_ICB => ("region", "Regional body"),
        _ => ("gp-practice", "GP practice"),
    }
}

fn organization_resource(o: &OrgDef) -> Value {
    obj! {
        "resourceType": "Organization",
        "id": o.id,
        "identifier": vec![obj!{ "system": ODS_CODE_SYSTEM, "value": o.ods }] ,
        "active": true,
        "type": vec![
            concept(
                "http://terminology.hl7.org/CodeSystem/organization-type",
                o.kind.0,
                o.kind.1,
            ),
            concept(ORG_KIND_SYSTEM, careshare_kind(o.id).0, careshare_kind(o.id).1),
        ] ,
        "name": o.name,
        "telecom": vec![obj!{ "system": "phone", "value": o.phone, "use": "work" }] ,
        "address": vec![obj!{
            "use": "work",
            "line": vec![o.line] ,
            "city": o.town,
            "postalCode": o.postcode,
            "country": "GB"
        }]
    }
}

fn location_resource(id: &str, name: &str, o: &OrgDef) -> Value {
    obj! {
        "resourceType": "Location",
        "id": id,
        "status": "active",
        "name": name,
        "mode": "instance",
        "address": obj!{
            "use": "work",
            "line": vec![o.line] ,
            "city": o.town,
            "postalCode": o.postcode,
            "country": "GB"
        },
        "managingOrganization": reference("Organization", o.id)
    }
}

/// Id of an organisation's main site.
pub(crate) fn site_id(organization_id: &str) -> String {
    format!("loc-{organization_id}")
}

fn practitioner_resource(s: &StaffDef, number: usize) -> Value {
    let mut name = obj! { "use": "official", "family": s.family, "given": vec![s.given]  };
    if let (Some(prefix), Some(map)) = (s.prefix, name.as_object_mut()) {
        map.insert("prefix".into(), Value::from(vec![prefix]));
    }
    obj! {
        "resourceType": "Practitioner",
        "id": s.practitioner_id(),
        "identifier": vec![
            obj!{ "system": STAFF_NUMBER_SYSTEM, "value": format!("RD{:05}", 1001 + number) },
            obj!{ "system": USERNAME_SYSTEM, "value": s.username() }
        ] ,
        "active": true,
        "name": vec![name] ,
        "telecom": vec![obj!{
            "system": "email",
            "value": format!("{}@ravensdale.example.org", s.username()),
            "use": "work"
        }] ,
        "gender": s.gender
    }
}

fn specialty(role: StaffRole) -> Option<(&'static str, &'static str)> {
    match role {
        StaffRole::Gp => Some(("394814009", "General practice")),
        StaffRole::HospitalClinician => Some(("394802001", "General medicine")),
        _ => None,
    }
}

fn practitioner_role_resource(s: &StaffDef) -> Value {
    let location = match s.team.and_then(|t| TEAMS.iter().find(|d| d.id == t)) {
        Some(team) => team.location.to_owned(),
        None => site_id(s.organization),
    };
    let mut role = obj! {
        "resourceType": "PractitionerRole",
        "id": s.role_id(),
        "active": true,
        "practitioner": reference_display("Practitioner", &s.practitioner_id(), &s.display_name()),
        "organization": reference("Organization", s.organization),
        "code": vec![obj!{
            "coding": vec![coding(STAFF_ROLE_SYSTEM, s.role.code(), s.role.display())] ,
            "text": s.role.display()
        }] ,
        "location": vec![reference("Location", &location)]
    };
    if let (Some((code, display)), Some(map)) = (specialty(s.role), role.as_object_mut()) {
        map.insert(
            "specialty".into(),
            Value::from(vec![concept(SNOMED, code, display)]),
        );
    }
    role
}

fn team_resource(t: &TeamDef) -> Value {
    let participants: Vec<Value> = STAFF
        .iter()
        .filter(|s| s.team == Some(t.id))
        .map(|s| {
            obj! {
                "role": vec![obj!{
                    "coding": vec![coding(STAFF_ROLE_SYSTEM, s.role.code(), s.role.display())] ,
                    "text": s.role.display()
                }] ,
                "member": reference_display("PractitionerRole", &s.role_id(), &s.display_name())
            }
        })
        .collect();
    obj! {
        "resourceType": "CareTeam",
        "id": t.id,
        "status": "active",
        "category": vec![obj!{
            "coding": vec![coding(TEAM_KIND_SYSTEM, TEAM_KIND_TEAM, "Staff team")] ,
            "text": "Staff team"
        }] ,
        "name": t.name,
        "participant": participants,
        "managingOrganization": vec![reference("Organization", t.organization)]
    }
}

/// All structure resources, in dependency order: organisations, locations,
/// practitioners, practitioner roles, then staff teams.
pub(crate) fn structure_resources() -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(ORGANISATIONS.iter().map(organization_resource));
    out.extend(
        ORGANISATIONS
            .iter()
            .map(|o| location_resource(&site_id(o.id), o.site, o)),
    );
    if let Some(community) = org(ORG_COMMUNITY) {
        for team in TEAMS.iter().filter(|t| t.organization == ORG_COMMUNITY) {
            out.push(location_resource(
                team.location,
                &format!("{} base", team.name),
                community,
            ));
        }
    }
    out.extend(
        STAFF
            .iter()
            .enumerate()
            .map(|(i, s)| practitioner_resource(s, i)),
    );
    out.extend(STAFF.iter().map(practitioner_role_resource));
    out.extend(TEAMS.iter().map(team_resource));
    out
}

/// Every staff member.
pub(crate) fn staff_members() -> Vec<StaffMember> {
    STAFF.iter().map(StaffDef::member).collect()
}

/// The six demo sign-ins: a district nurse of the north team, a GP of the
/// first practice, a hospital clinician, a social worker, the privacy officer
/// and the region administrator.
pub(crate) fn demo_sign_ins() -> Vec<StaffMember> {
    [
        StaffRole::DistrictNurse,
        StaffRole::Gp,
        StaffRole::HospitalClinician,
        StaffRole::SocialWorker,
        StaffRole::PrivacyOfficer,
        StaffRole::RegionAdmin,
    ]
    .into_iter()
    .filter_map(|role| STAFF.iter().find(|s| s.role == role))
    .map(StaffDef::member)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_codes() {
        for role in StaffRole::ALL {
            assert_eq!(StaffRole::from_code(role.code()), Some(role));
        }
        assert_eq!(StaffRole::from_code("surgeon"), None);
    }

    #[test]
    fn usernames_are_unique_lowercase() {
        let mut names: Vec<String> = STAFF.iter().map(StaffDef::username).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '.')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STAFF.len());
    }

    #[test]
    fn every_practice_has_two_or_three_gps() {
        for practice in ORG_GP_PRACTICES {
            let gps = staff_where(|r| r == StaffRole::Gp, Some(practice), None).len();
            assert!((2..=3).contains(&gps), "{practice}: {gps}");
        }
    }
}
