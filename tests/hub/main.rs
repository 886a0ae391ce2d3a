//! Integration tests of the hub: each spawns the real `careshare-hub` binary on port 0 with
//! a fresh database, and most run twice, on SQLite and on PostgreSQL.

mod harness;

mod authz;
mod care;
mod crud;
mod demo;
mod examples;
mod identity;
mod search;
mod sync;
mod transactions;
