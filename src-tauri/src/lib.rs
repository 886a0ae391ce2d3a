//! The Careshare desktop app's shell, as a library: [`core::AppCore`] holds
//! every command as a plain async method (tested against a real hub in
//! `tests/core.rs`); `main.rs` only registers one-line Tauri commands that
//! call it. [`config`] reads the environment.

pub mod config;
pub mod core;
