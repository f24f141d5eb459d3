//! The actors, one per file.

pub mod persistence;
