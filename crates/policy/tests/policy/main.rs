//! The access policy, rule by rule, as tables; then the cross product of
//! the main dimensions; then properties over generated cases.

mod break_glass;
mod extraction;
mod labels;
mod matrix;
mod objection;
mod properties;
mod read;
mod relationship;
mod source_system;
mod unlinked;
mod world;
mod write;
