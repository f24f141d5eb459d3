//! The rules an agent's or admin's account follows wherever it is created:
//! `POST /api/admin/agents`, the first-admin setup and `switchboard user add`.
//! One place, so a rule changed here holds on every path in.

use crate::error::AppError;

/// Fewer characters than this is too easy to guess.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Argon2 hashes all of it: a bound keeps one sign-in from costing a megabyte of hashing.
pub const PASSWORD_MAX_BYTES: usize = 1024;

const USERNAME_MAX_BYTES: usize = 64;
const DISPLAY_NAME_MAX_CHARS: usize = 100;

/// The username as it is stored: trimmed, 1 to 64 ASCII letters, digits or `. _ - @`.
pub fn username(raw: &str) -> Result<String, AppError> {
    let username = raw.trim();
    if username.is_empty()
        || username.len() > USERNAME_MAX_BYTES
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(AppError::validation("username must be 1 to 64 letters, digits or . _ - @"));
    }
    Ok(username.to_owned())
}

pub fn check_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < PASSWORD_MIN_CHARS || password.len() > PASSWORD_MAX_BYTES {
        return Err(AppError::validation(format!(
            "password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_BYTES} characters"
        )));
    }
    Ok(())
}

/// The name others see, trimmed; `field` names it in the error as the caller spelled it.
pub fn display_name<'a>(field: &str, raw: &'a str) -> Result<&'a str, AppError> {
    let name = raw.trim();
    let length = name.chars().count();
    // The untrimmed text is checked: a trailing newline is a mistake, not padding.
    if length == 0 || length > DISPLAY_NAME_MAX_CHARS || raw.chars().any(crate::domain::is_unprintable) {
        return Err(AppError::validation(format!(
            "{field} must be 1 to {DISPLAY_NAME_MAX_CHARS} printable characters"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_trimmed_and_limited_to_a_safe_alphabet() {
        assert_eq!(username("  ops.lead@acme ").map_err(|e| e.message), Ok("ops.lead@acme".to_owned()));
        for refused in ["", "   ", "has space", "tab\there", "émile", &"a".repeat(65)] {
            assert!(username(refused).is_err(), "{refused:?} should be refused");
        }
    }

    #[test]
    fn a_password_needs_eight_characters_and_at_most_a_kilobyte() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("ééééééé").is_err(), "seven characters, however many bytes");
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn a_display_name_is_printable() {
        assert_eq!(display_name("name", "  Ola  ").map_err(|e| e.message), Ok("Ola"));
        assert!(display_name("name", " ").is_err());
        assert!(display_name("name", "line\nbreak").is_err());
        assert!(display_name("name", "Support\u{202e}").is_err(), "a bidi override");
        assert!(display_name("name", &"n".repeat(101)).is_err());
    }
}
