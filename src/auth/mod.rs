//! Who is calling: password hashing now; tokens and extractors as the API grows.

pub mod passwords;
