//! Signing out: revoke on the server, then forget locally.

use super::context::Context;
use super::error::Result;
use super::nocobase::Credentials;
use super::oauth::{discover, tokens};
use super::profile::Profile;
use super::session::{EndReason, Grant};

/// Revokes the refresh token (which ends the grant) and blocks the access token with
/// `auth:signOut`, then wipes the session here. The server steps are best effort: an
/// unreachable server must not keep the user signed in on this computer.
/// Returns `false` when there was no session.
pub async fn sign_out(ctx: &Context, profile: &Profile) -> Result<bool> {
    let Some((session, tokens)) = ctx.sessions.load(profile.name.as_str())? else {
        return Ok(false);
    };
    if let (Grant::OAuth { client_id }, Some(refresh)) = (&session.grant, &tokens.refresh) {
        match discover(&ctx.http, &profile.origin).await {
            Ok(Some(metadata)) => {
                if let Err(e) =
                    tokens::revoke(&ctx.http, &profile.origin, &metadata, client_id, refresh).await
                {
                    // NocoBase on SQLite may answer 500 while still revoking.
                    tracing::warn!("revocation answered: {}", e.message());
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("revocation skipped: {}", e.message()),
        }
    }
    let authenticator = match session.grant {
        Grant::NocoBaseToken => Some(session.authenticator.as_str()),
        Grant::OAuth { .. } => None,
    };
    let reply = ctx
        .nocobase(&profile.origin)
        .sign_out(&Credentials {
            token: &tokens.access,
            authenticator,
        })
        .await;
    if let Err(e) = reply.result {
        tracing::warn!("auth:signOut answered: {}", e.message());
    }
    ctx.sessions
        .end(profile.name.as_str(), EndReason::SignedOut)?;
    Ok(true)
}
