//! NocoBase's 401 codes. Matched on `code`, never on the (localised) message.

use crate::core::session::EndReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthCode {
    EmptyToken,
    InvalidToken,
    BlockedToken,
    ExpiredSession,
    TokenRenewFailed,
    NotExistUser,
    SkipTokenRenew,
    ExpiredToken,
    RoleNotFoundForUser,
    UserHasNoRoles,
    RoleNotFound,
    /// A 401 with a code this version does not know, or none.
    Other(String),
}

impl AuthCode {
    pub fn parse(code: &str) -> AuthCode {
        match code {
            "EMPTY_TOKEN" => AuthCode::EmptyToken,
            "INVALID_TOKEN" => AuthCode::InvalidToken,
            "BLOCKED_TOKEN" => AuthCode::BlockedToken,
            "EXPIRED_SESSION" => AuthCode::ExpiredSession,
            "TOKEN_RENEW_FAILED" => AuthCode::TokenRenewFailed,
            "NOT_EXIST_USER" => AuthCode::NotExistUser,
            "SKIP_TOKEN_RENEW" => AuthCode::SkipTokenRenew,
            "EXPIRED_TOKEN" => AuthCode::ExpiredToken,
            "ROLE_NOT_FOUND_FOR_USER" => AuthCode::RoleNotFoundForUser,
            "USER_HAS_NO_ROLES_ERR" => AuthCode::UserHasNoRoles,
            "ROLE_NOT_FOUND_ERR" => AuthCode::RoleNotFound,
            other => AuthCode::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            AuthCode::EmptyToken => "EMPTY_TOKEN",
            AuthCode::InvalidToken => "INVALID_TOKEN",
            AuthCode::BlockedToken => "BLOCKED_TOKEN",
            AuthCode::ExpiredSession => "EXPIRED_SESSION",
            AuthCode::TokenRenewFailed => "TOKEN_RENEW_FAILED",
            AuthCode::NotExistUser => "NOT_EXIST_USER",
            AuthCode::SkipTokenRenew => "SKIP_TOKEN_RENEW",
            AuthCode::ExpiredToken => "EXPIRED_TOKEN",
            AuthCode::RoleNotFoundForUser => "ROLE_NOT_FOUND_FOR_USER",
            AuthCode::UserHasNoRoles => "USER_HAS_NO_ROLES_ERR",
            AuthCode::RoleNotFound => "ROLE_NOT_FOUND_ERR",
            AuthCode::Other(s) => s,
        }
    }

    /// Whether this code means the server has ended the session, and why.
    /// `SKIP_TOKEN_RENEW` and the role codes do not end a session.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self {
            AuthCode::EmptyToken | AuthCode::InvalidToken | AuthCode::ExpiredToken => {
                Some(EndReason::TokenRejected)
            }
            AuthCode::BlockedToken => Some(EndReason::SignedOutElsewhere),
            AuthCode::ExpiredSession => Some(EndReason::SessionLimit),
            AuthCode::TokenRenewFailed => Some(EndReason::RenewedElsewhere),
            AuthCode::NotExistUser => Some(EndReason::UserRemoved),
            AuthCode::UserHasNoRoles => Some(EndReason::NoRoles),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_map_to_reasons() {
        for code in [
            "EMPTY_TOKEN",
            "INVALID_TOKEN",
            "BLOCKED_TOKEN",
            "EXPIRED_SESSION",
            "TOKEN_RENEW_FAILED",
            "NOT_EXIST_USER",
            "SKIP_TOKEN_RENEW",
            "ROLE_NOT_FOUND_FOR_USER",
            "SOMETHING_NEW",
        ] {
            assert_eq!(AuthCode::parse(code).as_str(), code);
        }
        assert_eq!(
            AuthCode::parse("EXPIRED_SESSION").end_reason(),
            Some(EndReason::SessionLimit)
        );
        assert_eq!(
            AuthCode::parse("BLOCKED_TOKEN").end_reason(),
            Some(EndReason::SignedOutElsewhere)
        );
        assert_eq!(AuthCode::parse("SKIP_TOKEN_RENEW").end_reason(), None);
    }
}
