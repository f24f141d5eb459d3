//! Who is calling: password hashes and signed tokens.

pub mod extractors;
pub mod jwt;
pub mod passwords;
pub mod staff;
