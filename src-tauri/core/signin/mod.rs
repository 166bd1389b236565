//! The three ways to sign in. Each ends in [`finish`]: ask NocoBase who the token
//! belongs to, then store the session.
//!
//! - [`browser`]: OAuth code + PKCE in the system browser, callback on loopback or deep link.
//! - [`device`]: OAuth device grant; the QR / code is approved in WeCom on the phone.
//! - [`embedded`]: for servers without the provider; classifies an app window's URLs.

pub mod browser;
pub mod device;
pub mod embedded;

use super::context::Context;
use super::error::{Error, Result};
use super::jwt;
use super::nocobase::Credentials;
use super::profile::{Profile, SignInMethod};
use super::session::{Grant, Session, Tokens};

/// Checks the new token with `auth:check`, then stores the session (tokens in the
/// secret store first). Returns the stored session.
pub async fn finish(
    ctx: &Context,
    profile: &Profile,
    method: SignInMethod,
    grant: Grant,
    mut tokens: Tokens,
    expires_at: Option<i64>,
) -> Result<Session> {
    let nocobase = ctx.nocobase(&profile.origin);
    let authenticator = match grant {
        Grant::NocoBaseToken => Some(profile.authenticator.as_str()),
        Grant::OAuth { .. } => None,
    };
    let reply = nocobase
        .check(&Credentials {
            token: &tokens.access,
            authenticator,
        })
        .await;
    if let (Grant::NocoBaseToken, Some(new)) = (&grant, reply.new_token) {
        tokens.access = new;
    }
    let user = reply.result?;
    let claims = jwt::claims(tokens.access.expose()).unwrap_or_default();
    let session = Session {
        profile: profile.name.clone(),
        origin: profile.origin.to_string(),
        authenticator: profile.authenticator.clone(),
        method,
        grant,
        user,
        signed_in_at: claims
            .sign_in_time
            .map(|ms| ms / 1000)
            .unwrap_or_else(|| ctx.now()),
        expires_at: expires_at.map(|at| at + ctx.clock_skew).or(claims.exp),
        renewed_at: None,
    };
    ctx.sessions.save(&session, &tokens)?;
    Ok(session)
}

/// The method `auto` resolves to, given what the server offers and where we run.
pub fn resolve_method(
    wanted: SignInMethod,
    has_provider: bool,
    has_device_flow: bool,
    can_show_window: bool,
    has_display: bool,
) -> Result<SignInMethod> {
    match wanted {
        SignInMethod::Auto if !has_provider => {
            if can_show_window {
                Ok(SignInMethod::Embedded)
            } else {
                Err(Error::MethodNeedsWindow)
            }
        }
        // The app shows the device QR in its own window: scanned with WeCom, the
        // sign-in (and a first-time authorization) happens inside WeCom.
        SignInMethod::Auto if can_show_window && has_device_flow => Ok(SignInMethod::Device),
        SignInMethod::Auto if has_display => Ok(SignInMethod::Browser),
        SignInMethod::Auto if has_device_flow => Ok(SignInMethod::Device),
        SignInMethod::Auto => Ok(SignInMethod::Browser),
        SignInMethod::Embedded if !can_show_window => Err(Error::MethodNeedsWindow),
        SignInMethod::Browser | SignInMethod::Device if !has_provider => {
            Err(Error::ProviderMissing {
                origin: String::new(),
            })
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_what_fits() {
        use SignInMethod::*;
        assert_eq!(
            resolve_method(Auto, true, true, true, true).unwrap(),
            Device
        );
        assert_eq!(
            resolve_method(Auto, true, true, false, true).unwrap(),
            Browser
        );
        assert_eq!(
            resolve_method(Auto, true, true, false, false).unwrap(),
            Device
        );
        assert_eq!(
            resolve_method(Auto, false, false, true, true).unwrap(),
            Embedded
        );
        assert!(matches!(
            resolve_method(Auto, false, false, false, true),
            Err(Error::MethodNeedsWindow)
        ));
        assert!(matches!(
            resolve_method(Embedded, true, true, false, true),
            Err(Error::MethodNeedsWindow)
        ));
        assert!(matches!(
            resolve_method(Device, false, false, false, true),
            Err(Error::ProviderMissing { .. })
        ));
        assert_eq!(
            resolve_method(Browser, true, true, true, true).unwrap(),
            Browser
        );
    }
}
