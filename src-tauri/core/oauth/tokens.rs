//! Token endpoint calls through the `oauth2` crate: code exchange, refresh, revoke and
//! the device grant. NocoBase needs `resource=<origin>/api/` for a JWT access token
//! that works on `/api/*` (without it the token is opaque and useless there).

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthorizationCode, ClientId, DeviceAuthorizationResponse, DeviceAuthorizationUrl,
    EmptyExtraDeviceAuthorizationFields, EndpointNotSet, EndpointSet, ErrorResponse,
    HttpClientError, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};

use super::discovery::Metadata;
use crate::core::error::{Error, Result};
use crate::core::nocobase::transport_error;
use crate::core::profile::Origin;
use crate::core::sensitive::Sensitive;
use crate::core::session::{now, Tokens};

/// `openid` for an id_token, `offline_access` (with `prompt=consent`) for a refresh
/// token, `api` for NocoBase's resource server (not checked today, but asked for as
/// NocoBase's own CLI does).
pub const SCOPES: [&str; 3] = ["openid", "offline_access", "api"];

pub type DeviceStart = DeviceAuthorizationResponse<EmptyExtraDeviceAuthorizationFields>;

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn token_client(metadata: &Metadata, client_id: &str) -> TokenClient {
    BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_token_uri(TokenUrl::from_url(metadata.token_endpoint.clone()))
}

/// Fresh tokens with their expiry.
#[derive(Debug)]
pub struct Issued {
    pub tokens: Tokens,
    pub expires_at: Option<i64>,
}

fn issued(response: &BasicTokenResponse, previous_refresh: Option<&Sensitive<String>>) -> Issued {
    Issued {
        tokens: Tokens {
            access: Sensitive::new(response.access_token().secret().clone()),
            // Refresh tokens rotate; keep the old one only if the server sent none.
            refresh: response
                .refresh_token()
                .map(|r| Sensitive::new(r.secret().clone()))
                .or_else(|| previous_refresh.cloned()),
        },
        expires_at: response.expires_in().map(|d| now() + d.as_secs() as i64),
    }
}

/// Maps an `oauth2` failure to the core's error, keeping the server's `error` code.
fn token_error<T: ErrorResponse + serde::Serialize>(
    origin: &Origin,
    e: RequestTokenError<HttpClientError<reqwest::Error>, T>,
) -> Error {
    match e {
        RequestTokenError::ServerResponse(body) => {
            let value = serde_json::to_value(&body).unwrap_or_default();
            Error::OAuth {
                error: value["error"].as_str().unwrap_or("error").to_owned(),
                description: value["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(inner)) => {
            transport_error(origin, &inner)
        }
        RequestTokenError::Request(other) => Error::Unreachable {
            origin: format!("{origin} ({other})"),
        },
        RequestTokenError::Parse(_, body) => Error::OAuth {
            error: "invalid_response".into(),
            description: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
        RequestTokenError::Other(detail) => Error::OAuth {
            error: "invalid_response".into(),
            description: detail,
        },
    }
}

pub async fn exchange_code(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    client_id: &str,
    code: String,
    verifier: PkceCodeVerifier,
    redirect_uri: &str,
) -> Result<Issued> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| Error::OAuth {
        error: "invalid_request".into(),
        description: "bad redirect".into(),
    })?;
    let response = token_client(metadata, client_id)
        .set_redirect_uri(redirect)
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", origin.resource())
        .request_async(http)
        .await
        .map_err(|e| token_error(origin, e))?;
    Ok(issued(&response, None))
}

pub async fn refresh(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    client_id: &str,
    refresh_token: &Sensitive<String>,
) -> Result<Issued> {
    let response = token_client(metadata, client_id)
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().clone()))
        .add_extra_param("resource", origin.resource())
        .request_async(http)
        .await
        .map_err(|e| token_error(origin, e))?;
    Ok(issued(&response, Some(refresh_token)))
}

/// Revokes a refresh token (and with it the grant), RFC 7009. Sent as the one form
/// POST the RFC describes rather than through `oauth2`, whose revocation refuses
/// `http://` endpoints (a loopback NocoBase is legitimate) and treats NocoBase's 204
/// answer as a failure. Callers treat errors as best effort: NocoBase on SQLite may
/// answer 500 while still revoking, and sign-out must finish locally anyway.
pub async fn revoke(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    client_id: &str,
    refresh_token: &Sensitive<String>,
) -> Result<()> {
    let Some(url) = metadata.revocation_endpoint.clone() else {
        return Ok(());
    };
    let form = [
        ("token", refresh_token.expose().as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", client_id),
    ];
    let response = http
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| transport_error(origin, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Err(Error::OAuth {
        error: body["error"].as_str().unwrap_or("server_error").to_owned(),
        description: body["error_description"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
    })
}

/// Starts the device grant: the user code, the verification URL (and its complete
/// form for a QR code) and how long they are valid.
pub async fn start_device(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    client_id: &str,
) -> Result<DeviceStart> {
    let url = metadata
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| Error::ProviderMissing {
            origin: origin.to_string(),
        })?;
    BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_device_authorization_url(DeviceAuthorizationUrl::from_url(url))
        .exchange_device_code()
        .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
        .add_extra_param("resource", origin.resource())
        .request_async(http)
        .await
        .map_err(|e| token_error(origin, e))
}

/// Polls the token endpoint until the user approves, declines or the code expires.
/// Waits the server's `interval` (5 s when it names none, as NocoBase does) and backs
/// off on `slow_down`, as RFC 8628 asks.
pub async fn poll_device(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    client_id: &str,
    start: &DeviceStart,
) -> Result<Issued> {
    let response = token_client(metadata, client_id)
        .exchange_device_access_token(start)
        .set_max_backoff_interval(Duration::from_secs(30))
        .request_async(http, tokio::time::sleep, Some(start.expires_in()))
        .await
        .map_err(|e| match token_error(origin, e) {
            Error::OAuth { error, .. } if error == "expired_token" => Error::FlowExpired,
            Error::OAuth { error, .. } if error == "access_denied" => Error::FlowCancelled,
            Error::OAuth { description, .. } if description.contains("expired") => {
                Error::FlowExpired
            }
            other => other,
        })?;
    Ok(issued(&response, None))
}

/// True for the answers that mean "this refresh token will never work again".
pub fn is_grant_gone(e: &Error) -> bool {
    matches!(e, Error::OAuth { error, .. } if error == "invalid_grant")
}

/// True when the server does not know our client (e.g. its database was reset).
pub fn is_unknown_client(e: &Error) -> bool {
    matches!(e, Error::OAuth { error, .. } if error == "invalid_client")
}
