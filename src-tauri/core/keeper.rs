//! Keeps sessions alive with no user action and no polling loop.
//!
//! - OAuth sessions: refresh shortly before the access token expires. Refresh tokens
//!   rotate and reusing a spent one revokes the whole grant, so a refresh is
//!   single-flight across processes (a lock file; the CLI and the app both take it),
//!   re-reads the session under the lock (another process may have just refreshed),
//!   and stores the new refresh token before anything else.
//! - NocoBase-token sessions: one `auth:check` just after the JWT's `exp`, inside the
//!   renew window, adopting the `x-new-token` at once.
//!
//! When the server ends a session the keeper ends it locally with a reason the UI
//! can show.

use std::fs::File;

use super::context::Context;
use super::error::{Error, Result};
use super::jwt;
use super::nocobase::{AuthCode, Credentials};
use super::oauth::discover;
use super::oauth::tokens::{self, is_grant_gone};
use super::profile::Profile;
use super::session::{EndReason, Grant, Session, Tokens};

/// Refresh an OAuth access token this long before it expires (at most; shorter for
/// very short tokens), as NocoBase's own CLI does.
const REFRESH_MARGIN_SECS: i64 = 60;
/// Renew a NocoBase token this long after its `exp` (renewal only works once expired).
const RENEW_DELAY_SECS: i64 = 2;

/// When the keeper should next act on a session (unix seconds).
pub fn next_action_at(session: &Session, tokens: &Tokens) -> Option<i64> {
    match session.grant {
        Grant::OAuth { .. } => {
            let exp = session.expires_at?;
            let lifetime = exp - session.renewed_at.unwrap_or(session.signed_in_at);
            let margin = REFRESH_MARGIN_SECS.min((lifetime / 4).max(1));
            Some(exp - margin)
        }
        Grant::NocoBaseToken => {
            let claims = jwt::claims(tokens.access.expose())?;
            // Only `temp` tokens are renewable; API-key style tokens just expire.
            if claims.temp != Some(true) {
                return None;
            }
            Some(claims.exp? + RENEW_DELAY_SECS)
        }
    }
}

/// What [`keep_alive`] did.
#[derive(Debug)]
pub enum Kept {
    /// Nothing to do yet.
    Fresh(Session, Tokens),
    /// Refreshed or renewed; the new tokens are stored.
    Renewed(Session, Tokens),
}

impl Kept {
    pub fn into_parts(self) -> (Session, Tokens) {
        match self {
            Kept::Fresh(s, t) | Kept::Renewed(s, t) => (s, t),
        }
    }
}

/// Makes sure the profile's session has a usable access token: refreshes or renews it
/// when due (`force` refreshes regardless). Ends the session locally when the server
/// has ended it, returning `Error::SessionEnded`.
pub async fn keep_alive(ctx: &Context, profile: &Profile, force: bool) -> Result<Kept> {
    let name = profile.name.as_str();
    let (session, tokens) = ctx.sessions.load(name)?.ok_or_else(|| Error::NotSignedIn {
        profile: name.into(),
    })?;
    if !force && next_action_at(&session, &tokens).is_none_or(|at| ctx.now() < at) {
        return Ok(Kept::Fresh(session, tokens));
    }
    let _lock = lock_profile(ctx, name).await?;
    // Another process may have refreshed while we waited for the lock.
    let (session, tokens) = ctx.sessions.load(name)?.ok_or_else(|| Error::NotSignedIn {
        profile: name.into(),
    })?;
    let due = next_action_at(&session, &tokens).is_some_and(|at| ctx.now() >= at);
    // A forced refresh only makes sense for OAuth; a NocoBase token renews only once expired.
    let forced = force && matches!(session.grant, Grant::OAuth { .. });
    if !due && !forced {
        return Ok(Kept::Fresh(session, tokens));
    }
    let outcome = match &session.grant {
        Grant::OAuth { client_id } => refresh(ctx, profile, &session, &tokens, client_id).await,
        Grant::NocoBaseToken => renew(ctx, profile, &session, &tokens).await,
    };
    match outcome {
        Ok((session, tokens)) => Ok(Kept::Renewed(session, tokens)),
        Err(Error::SessionEnded { reason }) => {
            ctx.sessions.end(name, reason)?;
            Err(Error::SessionEnded { reason })
        }
        Err(e) => Err(e),
    }
}

async fn refresh(
    ctx: &Context,
    profile: &Profile,
    session: &Session,
    tokens: &Tokens,
    client_id: &str,
) -> Result<(Session, Tokens)> {
    let Some(refresh_token) = &tokens.refresh else {
        return Err(Error::SessionEnded {
            reason: EndReason::GrantEnded,
        });
    };
    let metadata =
        discover(&ctx.http, &profile.origin)
            .await?
            .ok_or_else(|| Error::ProviderMissing {
                origin: profile.origin.to_string(),
            })?;
    let issued = tokens::refresh(
        &ctx.http,
        &profile.origin,
        &metadata,
        client_id,
        refresh_token,
    )
    .await
    .map_err(|e| {
        if is_grant_gone(&e) {
            Error::SessionEnded {
                reason: EndReason::GrantEnded,
            }
        } else {
            e
        }
    })?;
    let mut next = session.clone();
    next.expires_at = issued
        .expires_at
        .map(|at| at + ctx.clock_skew)
        .or_else(|| jwt::claims(issued.tokens.access.expose()).and_then(|c| c.exp));
    next.renewed_at = Some(ctx.now());
    // The rotated refresh token is the only valid one now: store it before anything else.
    ctx.sessions.save(&next, &issued.tokens)?;
    Ok((next, issued.tokens))
}

async fn renew(
    ctx: &Context,
    profile: &Profile,
    session: &Session,
    tokens: &Tokens,
) -> Result<(Session, Tokens)> {
    let reply = ctx
        .nocobase(&profile.origin)
        .check(&Credentials {
            token: &tokens.access,
            authenticator: Some(&session.authenticator),
        })
        .await;
    let mut next_tokens = tokens.clone();
    let mut next = session.clone();
    if let Some(new) = reply.new_token {
        next.expires_at = jwt::claims(new.expose()).and_then(|c| c.exp);
        next.renewed_at = Some(ctx.now());
        next_tokens.access = new;
        ctx.sessions.save(&next, &next_tokens)?;
    }
    match reply.result {
        Ok(user) => {
            if user != next.user {
                next.user = user;
                ctx.sessions.save(&next, &next_tokens)?;
            }
            Ok((next, next_tokens))
        }
        Err(Error::Auth { code, .. }) if code.end_reason().is_some() => Err(Error::SessionEnded {
            reason: code.end_reason().unwrap_or(EndReason::TokenRejected),
        }),
        Err(e) => Err(e),
    }
}

/// Checks the session against the server (`auth:check`), refreshing once on a 401
/// for OAuth sessions (NocoBase's bridge can reject a still-unexpired access token).
pub async fn verify(ctx: &Context, profile: &Profile) -> Result<Session> {
    let (session, tokens) = keep_alive(ctx, profile, false).await?.into_parts();
    let check = |tokens: Tokens, session: Session| async move {
        let authenticator = match session.grant {
            Grant::NocoBaseToken => Some(session.authenticator.clone()),
            Grant::OAuth { .. } => None,
        };
        let reply = ctx
            .nocobase(&profile.origin)
            .check(&Credentials {
                token: &tokens.access,
                authenticator: authenticator.as_deref(),
            })
            .await;
        (reply, tokens, session)
    };
    let (reply, tokens, session) = check(tokens, session).await;
    if let (Grant::NocoBaseToken, Some(new)) = (&session.grant, &reply.new_token) {
        let mut next = session.clone();
        next.expires_at = jwt::claims(new.expose()).and_then(|c| c.exp);
        next.renewed_at = Some(ctx.now());
        let next_tokens = Tokens {
            access: new.clone(),
            refresh: tokens.refresh.clone(),
        };
        ctx.sessions.save(&next, &next_tokens)?;
    }
    match reply.result {
        Ok(_) => Ok(ctx
            .sessions
            .peek(profile.name.as_str())?
            .0
            .unwrap_or(session)),
        Err(Error::Auth { code, .. })
            if matches!(session.grant, Grant::OAuth { .. })
                && code != AuthCode::SkipTokenRenew
                && code.end_reason().is_some() =>
        {
            let (session, _) = keep_alive(ctx, profile, true).await?.into_parts();
            Ok(session)
        }
        Err(Error::Auth { code, .. }) if code.end_reason().is_some() => {
            let reason = code.end_reason().unwrap_or(EndReason::TokenRejected);
            ctx.sessions.end(profile.name.as_str(), reason)?;
            Err(Error::SessionEnded { reason })
        }
        Err(e) => Err(e),
    }
}

/// The cross-process lock for one profile's tokens. Held while refreshing.
async fn lock_profile(ctx: &Context, profile: &str) -> Result<File> {
    let path = ctx.paths.lock_file(profile);
    tokio::task::spawn_blocking(move || {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    })
    .await
    .map_err(|e| Error::Keyring {
        detail: e.to_string(),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::nocobase::User;
    use crate::core::profile::{ProfileName, SignInMethod};

    fn session(grant: Grant, signed_in: i64, exp: Option<i64>) -> Session {
        Session {
            profile: ProfileName::parse("p").unwrap(),
            origin: "https://h".into(),
            authenticator: "wecom".into(),
            method: SignInMethod::Device,
            grant,
            user: User::default(),
            signed_in_at: signed_in,
            expires_at: exp,
            renewed_at: None,
        }
    }

    fn tokens(access: &str) -> Tokens {
        Tokens {
            access: access.into(),
            refresh: None,
        }
    }

    #[test]
    fn oauth_refreshes_before_expiry() {
        let oauth = Grant::OAuth {
            client_id: "c".into(),
        };
        assert_eq!(
            next_action_at(&session(oauth.clone(), 0, Some(86400)), &tokens("x")),
            Some(86340)
        );
        // A 60 s token is refreshed a quarter of its life early, not 60 s early.
        assert_eq!(
            next_action_at(&session(oauth.clone(), 0, Some(60)), &tokens("x")),
            Some(45)
        );
        assert_eq!(next_action_at(&session(oauth, 0, None), &tokens("x")), None);
    }

    #[test]
    fn nocobase_tokens_renew_just_after_exp() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"userId":1,"temp":true,"iat":100,"exp":130,"signInTime":100000}"#);
        let t = tokens(&format!("h.{payload}.s"));
        assert_eq!(
            next_action_at(&session(Grant::NocoBaseToken, 100, Some(130)), &t),
            Some(132)
        );
        let api_key =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"userId":1,"exp":130}"#);
        assert_eq!(
            next_action_at(
                &session(Grant::NocoBaseToken, 100, Some(130)),
                &tokens(&format!("h.{api_key}.s"))
            ),
            None
        );
    }
}
