//! Reads a JWT's claims without verifying it. The client never trusts these for
//! security (the server checks every token); it only uses `exp`/`iat` to plan renewal
//! and `signInTime` to show when a session began.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    /// NocoBase session tokens: epoch milliseconds of the original sign-in.
    pub sign_in_time: Option<i64>,
    /// NocoBase session tokens: `temp: true` means "renewable by the token policy".
    pub temp: Option<bool>,
    pub user_id: Option<serde_json::Value>,
    pub sub: Option<String>,
    pub iss: Option<String>,
}

/// The claims of `token`, or `None` if it is not a JWT with a JSON payload.
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_nocobase_claims() {
        let t = jwt(r#"{"userId":1,"temp":true,"iat":10,"signInTime":10000,"exp":40,"jti":"x"}"#);
        let c = claims(&t).unwrap();
        assert_eq!(
            (c.iat, c.exp, c.sign_in_time, c.temp),
            (Some(10), Some(40), Some(10000), Some(true))
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for t in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "a.%%%.c",
            &jwt("not json"),
            &jwt("[1]"),
        ] {
            assert_eq!(claims(t), None, "{t}");
        }
    }
}
