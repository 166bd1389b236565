//! The `device` method: OAuth device authorization grant (RFC 8628).
//!
//! The app shows a QR code of `verification_uri_complete`. Scanned with the WeCom
//! app, NocoBase opens *inside WeCom*, which signs the member in (and, the very first
//! time, asks their consent to share the phone number: the in-client authorization
//! WeCom requires); they confirm the device, and the app's polling gets the tokens.
//! On a terminal the same QR is drawn with Unicode blocks.

use qrcode::render::{svg, unicode};
use qrcode::QrCode;

use crate::core::context::Context;
use crate::core::error::{Error, Result};
use crate::core::oauth::tokens::{self, is_unknown_client, DeviceStart};
use crate::core::oauth::{discover, ClientKind, Metadata, Registration};
use crate::core::profile::{Profile, SignInMethod};
use crate::core::session::{now, Grant, Session};

/// A started device sign-in: show its code and QR, then [`DeviceSignIn::finish`].
pub struct DeviceSignIn {
    metadata: Metadata,
    client_id: String,
    start: DeviceStart,
    pub expires_at: i64,
}

pub async fn begin(ctx: &Context, profile: &Profile) -> Result<DeviceSignIn> {
    let origin = &profile.origin;
    let metadata = discover(&ctx.http, origin)
        .await?
        .filter(Metadata::supports_device_flow)
        .ok_or_else(|| Error::ProviderMissing {
            origin: origin.to_string(),
        })?;
    let mut client_id = device_client(ctx, profile, &metadata).await?;
    let start = match tokens::start_device(&ctx.http, origin, &metadata, &client_id).await {
        // The server forgot our client (e.g. its database was reset): register again.
        Err(e) if is_unknown_client(&e) => {
            ctx.clients.forget(origin, ClientKind::Device)?;
            client_id = device_client(ctx, profile, &metadata).await?;
            tokens::start_device(&ctx.http, origin, &metadata, &client_id).await?
        }
        other => other?,
    };
    Ok(DeviceSignIn {
        expires_at: now() + start.expires_in().as_secs() as i64,
        metadata,
        client_id,
        start,
    })
}

async fn device_client(ctx: &Context, profile: &Profile, metadata: &Metadata) -> Result<String> {
    match ctx
        .clients
        .client_id(
            &ctx.http,
            &profile.origin,
            metadata,
            ClientKind::Device,
            None,
        )
        .await?
    {
        Registration::Registered(id) => Ok(id),
        Registration::RedirectRefused(detail) => Err(Error::Registration { detail }),
    }
}

impl DeviceSignIn {
    pub fn user_code(&self) -> &str {
        self.start.user_code().secret()
    }

    pub fn verification_uri(&self) -> &str {
        self.start.verification_uri().as_str()
    }

    /// The URL for the QR code: it carries the user code, so nothing needs typing.
    pub fn verification_uri_complete(&self) -> String {
        match self.start.verification_uri_complete() {
            Some(complete) => complete.secret().clone(),
            None => format!("{}?user_code={}", self.verification_uri(), self.user_code()),
        }
    }

    /// Waits for the approval (polling politely) and stores the session.
    pub async fn finish(self, ctx: &Context, profile: &Profile) -> Result<Session> {
        let issued = tokens::poll_device(
            &ctx.http,
            &profile.origin,
            &self.metadata,
            &self.client_id,
            &self.start,
        )
        .await?;
        super::finish(
            ctx,
            profile,
            SignInMethod::Device,
            Grant::OAuth {
                client_id: self.client_id,
            },
            issued.tokens,
            issued.expires_at,
        )
        .await
    }
}

/// A QR code drawn with Unicode half blocks, for terminals.
pub fn terminal_qr(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// A QR code as SVG: crisp at any size, for the app's windows.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_qr_codes() {
        let url = "http://127.0.0.1:13000/idpOAuth/device?user_code=LZNN-SRJC";
        assert!(terminal_qr(url).unwrap().lines().count() > 10);
        assert!(qr_svg(url).unwrap().starts_with("<?xml"));
    }
}
