//! Restricted and sensitive records: which roles, which organisations.
//!
//! The record is a CarePlan (a kind every caring role may see) on the
//! person's team caseload, so that only the labels decide.

use careshare_policy::*;

use crate::world::*;

const RNPA: &str = "role-no-patient-access";
const SL: &str = "sensitive-label";
const RA: &str = "restricted-to-author";
const RU: &str = "restricted-unknown-author";

type Row = (&'static [Label], Author);

#[rustfmt::skip]
const LABEL_TABLE: &[(Row, [&str; 7])] = &[
    //                                                                  DN    CN    GP    HC    SW    PO    AD
    ((&[],                                          Author::Own),     ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ((&[],                                          Author::Other),   ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ((&[],                                          Author::Unknown), ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    // Restricted: any caring role, within the writing organisation.
    ((&[Label::Restricted],                         Author::Own),     ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ((&[Label::Restricted],                         Author::Other),   [RA,   RA,   RA,   RA,   RA,   RNPA, RNPA]),
    ((&[Label::Restricted],                         Author::Unknown), [RU,   RU,   RU,   RU,   RU,   RNPA, RNPA]),
    ((&[Label::Restricted, Label::SharedWithMe],    Author::Other),   ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ((&[Label::Restricted, Label::SharedElsewhere], Author::Other),   [RA,   RA,   RA,   RA,   RA,   RNPA, RNPA]),
    ((&[Label::Restricted, Label::SharedWithMe],    Author::Unknown), [RU,   RU,   RU,   RU,   RU,   RNPA, RNPA]),
    ((&[Label::VeryRestricted],                     Author::Other),   [RA,   RA,   RA,   RA,   RA,   RNPA, RNPA]),
    // Sharing alone (no label) changes nothing.
    ((&[Label::SharedElsewhere],                    Author::Other),   ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    // Sexual health, STI, HIV, mental health, substance misuse: GP and hospital clinician.
    ((&[Label::Act("SEX")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("SEX")],                         Author::Other),   [SL,   SL,   RA,   RA,   SL,   RNPA, RNPA]),
    ((&[Label::Act("SEX"), Label::SharedWithMe],    Author::Other),   [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("STD")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("STD")],                         Author::Other),   [SL,   SL,   RA,   RA,   SL,   RNPA, RNPA]),
    ((&[Label::Act("HIV")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("HIV")],                         Author::Other),   [SL,   SL,   RA,   RA,   SL,   RNPA, RNPA]),
    ((&[Label::Act("HIV")],                         Author::Unknown), [SL,   SL,   RU,   RU,   SL,   RNPA, RNPA]),
    ((&[Label::Act("PSY")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("MH")],                          Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("PSY")],                         Author::Other),   [SL,   SL,   RA,   RA,   SL,   RNPA, RNPA]),
    ((&[Label::Act("ETH")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("ETH")],                         Author::Other),   [SL,   SL,   RA,   RA,   SL,   RNPA, RNPA]),
    // Sexual assault, abuse, domestic violence: GP, hospital clinician, social worker.
    ((&[Label::Act("SDV")],                         Author::Own),     [SL,   SL,   "ok", "ok", "ok", RNPA, RNPA]),
    ((&[Label::Act("SDV")],                         Author::Other),   [SL,   SL,   RA,   RA,   RA,   RNPA, RNPA]),
    // Safeguarding: GP, district and community nurses, social worker.
    ((&[Label::Safeguarding],                       Author::Own),     ["ok", "ok", "ok", SL,   "ok", RNPA, RNPA]),
    ((&[Label::Safeguarding],                       Author::Other),   [RA,   RA,   RA,   SL,   RA,   RNPA, RNPA]),
    ((&[Label::Safeguarding, Label::SharedWithMe],  Author::Other),   ["ok", "ok", "ok", SL,   "ok", RNPA, RNPA]),
    // Unknown sensitivity codes: GP and hospital clinician.
    ((&[Label::Act("GDIS")],                        Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::Act("hiv")],                         Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    ((&[Label::CareshareOther],                     Author::Own),     [SL,   SL,   "ok", "ok", SL,   RNPA, RNPA]),
    // Several labels: allowed for all of them.
    ((&[Label::Act("HIV"), Label::Safeguarding],    Author::Own),     [SL,   SL,   "ok", SL,   SL,   RNPA, RNPA]),
    ((&[Label::Act("SDV"), Label::Safeguarding],    Author::Own),     [SL,   SL,   "ok", SL,   "ok", RNPA, RNPA]),
    ((&[Label::Restricted, Label::Safeguarding],    Author::Own),     ["ok", "ok", "ok", SL,   "ok", RNPA, RNPA]),
];

#[test]
fn labels_by_role_and_author() {
    check(per_role(LABEL_TABLE, |(labels, author), role| {
        let setup = Setup::new(role, Rel::TeamCaseload);
        setup.read(&setup.facts("CarePlan", author, labels))
    }));
}

/// Break-glass opens nothing labelled that belongs to another organisation;
/// the person's own organisation's labelled records follow the role table.
#[test]
fn break_glass_does_not_open_labels() {
    #[rustfmt::skip]
    let rows: &[(Row, [&str; 7])] = &[
        //                                                               DN    CN    GP    HC    SW                 PO    AD
        ((&[],                                       Author::Other),   ["bg", "bg", "bg", "bg", "no-relationship", RNPA, RNPA]),
        ((&[Label::Restricted],                      Author::Other),   [RA,   RA,   RA,   RA,   "no-relationship", RNPA, RNPA]),
        ((&[Label::Restricted],                      Author::Own),     ["bg", "bg", "bg", "bg", "no-relationship", RNPA, RNPA]),
        ((&[Label::Restricted, Label::SharedWithMe], Author::Other),   ["bg", "bg", "bg", "bg", "no-relationship", RNPA, RNPA]),
        ((&[Label::Act("HIV")],                      Author::Other),   [SL,   SL,   RA,   RA,   "no-relationship", RNPA, RNPA]),
        ((&[Label::Act("HIV")],                      Author::Own),     [SL,   SL,   "bg", "bg", "no-relationship", RNPA, RNPA]),
        ((&[Label::Safeguarding],                    Author::Other),   [RA,   RA,   RA,   SL,   "no-relationship", RNPA, RNPA]),
    ];
    check(per_role(rows, |(labels, author), role| {
        let setup = Setup::new(role, Rel::BreakGlassActive);
        setup.read_for(
            break_glass_purpose(role),
            &setup.facts("CarePlan", author, labels),
        )
    }));
}

/// Without a relationship, a refusal never mentions labels.
#[test]
fn no_relationship_hides_labels() {
    let rows: Vec<(Row, [&str; 7])> = LABEL_TABLE
        .iter()
        .map(|(row, _)| {
            (
                *row,
                [
                    "no-relationship",
                    "no-relationship",
                    "no-relationship",
                    "no-relationship",
                    "no-relationship",
                    RNPA,
                    RNPA,
                ],
            )
        })
        .collect();
    check(per_role(&rows, |(labels, author), role| {
        let setup = Setup::new(role, Rel::None);
        setup.read(&setup.facts("CarePlan", author, labels))
    }));
}

/// Break-glass for roles that may hold grants, treatment otherwise (so the
/// table shows the relationship refusal rather than the purpose).
pub fn break_glass_purpose(role: Role) -> Purpose {
    if role.is_clinical() {
        Purpose::BreakGlass
    } else {
        Purpose::Treatment
    }
}
