//! The Careshare regional hub: the region's shared record as FHIR R4.
//!
//! - [`store`]: versions, search index and compartments on SQLite or PostgreSQL;
//! - [`engine`]: FHIR write semantics (create, update, delete, conditional operations,
//!   transactions, batches, bulk import) over the store;
//! - [`api`]: the HTTP surface (`/fhir`), a thin layer over engine and store;
//! - [`import`]: loading files and the demo region through the engine.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod engine;
pub mod guard;
pub mod import;
pub mod report;
pub mod store;
pub mod sync;
