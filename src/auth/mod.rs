//! Who is calling: password hashes and signed tokens.

pub mod extractors;
pub mod jwt;
pub mod passwords;
pub mod staff;

/// Whether a presented secret (a scrape token, a setup code) is the
/// expected one, in time that does not tell where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
