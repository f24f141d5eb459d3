//! Signed access tokens (RFC 8725): HS256 by default or RS256 with key files;
//! the algorithm is pinned, and
//! `exp`, `nbf`, `iss` and `aud` are always checked. The audience names the
//! role, so a customer token can never pass for an agent's.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Role;
use crate::error::{AppError, ErrorCode};

const ISSUER: &str = "switchboard";

fn audience(role: Role) -> &'static str {
    match role {
        Role::Customer => "switchboard:customer",
        Role::Agent => "switchboard:agent",
        Role::Admin => "switchboard:admin",
        Role::Partner => "switchboard:partner",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub name: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The queue priority a host website gives its customer; visitors' own
    /// tokens never carry one, so a visitor cannot choose their priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<crate::domain::Priority>,
    /// The team (by name) a host website sends its customer's chats to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Set on every token this server signs. Such a token names an account
    /// this server made, so when that account is gone the token is dead;
    /// only a host website's token (without it) may bring a new customer in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_issued: bool,
}

pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Tokens {
    pub fn new(secret: &str) -> Self {
        Tokens {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// RS256 with a PEM private key (to sign) and public key (to verify).
    pub fn rs256(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, String> {
        Ok(Tokens {
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(private_pem)
                .map_err(|error| format!("JWT_PRIVATE_KEY_FILE: {error}"))?,
            decoding: DecodingKey::from_rsa_pem(public_pem).map_err(|error| format!("JWT_PUBLIC_KEY_FILE: {error}"))?,
        })
    }

    pub fn from_keys(keys: &crate::config::JwtKeys) -> Result<Self, String> {
        match keys {
            crate::config::JwtKeys::Hs256 { secret } => Ok(Tokens::new(secret)),
            crate::config::JwtKeys::Rs256 { private_pem, public_pem } => Tokens::rs256(private_pem, public_pem),
        }
    }

    /// A token for `user_id` acting as `role`, valid for `ttl`.
    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        name: &str,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        self.issue_with_priority(user_id, role, name, None, ttl)
    }

    /// The same, carrying a customer's queue priority (as a host website's token may).
    pub fn issue_with_priority(
        &self,
        user_id: Uuid,
        role: Role,
        name: &str,
        priority: Option<crate::domain::Priority>,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        self.sign(user_id, role, name, (priority, None), true, ttl)
    }

    /// A fresh token in place of `claims`, for `ttl`. A host website's token
    /// stays a host website's, so it never gains what only this server's
    /// own tokens have.
    pub fn reissue(&self, claims: &Claims, name: &str, ttl: Duration) -> Result<(String, DateTime<Utc>), AppError> {
        self.sign(claims.sub, claims.role, name, (claims.priority, claims.team.clone()), claims.server_issued, ttl)
    }

    fn sign(
        &self,
        user_id: Uuid,
        role: Role,
        name: &str,
        (priority, team): (Option<crate::domain::Priority>, Option<String>),
        server_issued: bool,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        let now = Utc::now();
        let expires_at = now + ttl;
        let claims = Claims {
            sub: user_id,
            role,
            name: name.to_owned(),
            iss: ISSUER.to_owned(),
            aud: audience(role).to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            priority,
            team,
            server_issued,
        };
        let token = encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|error| AppError::internal(std::io::Error::other(error.to_string())))?;
        Ok((token, expires_at))
    }

    /// The claims of a valid token for one of `roles`.
    pub fn verify(&self, token: &str, roles: &[Role]) -> Result<Claims, AppError> {
        // The one algorithm this server signs with; a token naming any other is refused.
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&roles.iter().map(|role| audience(*role)).collect::<Vec<_>>());
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|error| {
                log::debug!("token refused: {error}");
                AppError::new(ErrorCode::Unauthorized, "the token is missing, invalid or expired")
            })?
            .claims;
        // The audience was checked against the role claim's spelling; both must agree.
        if claims.aud != audience(claims.role) || !roles.contains(&claims.role) {
            return Err(AppError::new(ErrorCode::Unauthorized, "the token is not valid here"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_passes_only_for_its_own_role() {
        let tokens = Tokens::new(SECRET);
        let (token, _) = tokens.issue(Uuid::new_v4(), Role::Customer, "Ann", Duration::minutes(5)).expect("issue");
        assert!(tokens.verify(&token, &[Role::Customer]).is_ok());
        assert!(tokens.verify(&token, &[Role::Agent]).is_err());
        assert!(Tokens::new("another-secret-another-secret-xx").verify(&token, &[Role::Customer]).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = Tokens::new(SECRET);
        let (token, _) = tokens.issue(Uuid::new_v4(), Role::Agent, "Bo", Duration::minutes(-10)).expect("issue");
        assert!(tokens.verify(&token, &[Role::Agent]).is_err());
    }
}
