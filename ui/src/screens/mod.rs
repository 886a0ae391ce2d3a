//! One module per screen.

pub mod break_glass;
pub mod caseload;
pub mod conflicts;
pub mod enrol;
pub mod patient;
pub mod unlock;
pub mod visit;
pub mod wiped;
