//! The `browser` method: OAuth 2.1 authorization code + PKCE in the system browser
//! (RFC 8252). The user picks WeCom on NocoBase's sign-in page; NocoBase redirects
//! back to the app with a code.
//!
//! Callback: the deep link `<scheme>:/oauth/callback` when the app can receive deep
//! links and the server registers it; otherwise (NocoBase 2.2 accepts only loopback)
//! a listener on `127.0.0.1:<random port>` that exists only while the flow waits,
//! answers exactly one path, and closes.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use reqwest::StatusCode;
use rust_i18n::t;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::core::callback::{PendingFlow, STATE_LIFETIME};
use crate::core::context::Context;
use crate::core::error::{Error, Result};
use crate::core::nocobase::transport_error;
use crate::core::oauth::tokens::{self, SCOPES};
use crate::core::oauth::{discover, ClientKind, Metadata, Registration};
use crate::core::paths::SCHEME;
use crate::core::profile::{Origin, Profile, SignInMethod};
use crate::core::session::{Grant, Session};

/// What the flow is doing, for the UI or the terminal.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The authorize page is being opened; show the URL too, in case no browser opens.
    OpenBrowser { url: Url },
    /// The browser is open; waiting for the user to finish there.
    Waiting { via_deep_link: bool },
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserOptions {
    /// The app can receive `<scheme>:` deep links (the desktop app can; the CLI cannot).
    pub deep_link: bool,
}

/// The deep-link redirect URI (RFC 8252 §7.1: reverse-DNS scheme, one slash).
pub fn deep_link_redirect() -> String {
    format!("{SCHEME}:/oauth/callback")
}

enum Route {
    DeepLink,
    Loopback(tokio::net::TcpListener),
}

pub async fn sign_in(
    ctx: &Context,
    profile: &Profile,
    options: BrowserOptions,
    on_progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Session> {
    let origin = &profile.origin;
    let metadata = discover(&ctx.http, origin)
        .await?
        .ok_or_else(|| Error::ProviderMissing {
            origin: origin.to_string(),
        })?;

    let (route, redirect_uri, client_id) = choose_route(ctx, profile, &metadata, options).await?;
    let (mut authorize, mut state, mut verifier) =
        authorize_url(&metadata, origin.resource(), &client_id, &redirect_uri)?;
    // Ask the server once before bothering the user: a client it forgot (database
    // reset) or a redirect it no longer accepts shows up here, not as an error page
    // in the user's browser.
    let client_id = match preflight(ctx, origin, &authorize).await? {
        Preflight::Ok => client_id,
        Preflight::UnknownClient => {
            let kind = match route {
                Route::DeepLink => ClientKind::DeepLink,
                Route::Loopback(_) => ClientKind::Loopback,
            };
            ctx.clients.forget(origin, kind)?;
            let id = registered(ctx, profile, &metadata, kind, &redirect_uri).await?;
            (authorize, state, verifier) =
                authorize_url(&metadata, origin.resource(), &id, &redirect_uri)?;
            id
        }
    };

    // One browser sign-in at a time: a new one replaces an abandoned one.
    ctx.flows.clear();
    ctx.flows.insert(PendingFlow {
        state: state.secret().clone(),
        verifier,
        redirect_uri: redirect_uri.clone(),
        issuer: metadata.issuer.trim_end_matches('/').to_owned(),
        client_id: client_id.clone(),
        started: std::time::Instant::now(),
    });
    let state = state.secret().clone();

    let via_deep_link = matches!(route, Route::DeepLink);
    let mut deep_links = ctx.deep_links.subscribe();
    on_progress(Progress::OpenBrowser {
        url: authorize.clone(),
    });
    if let Err(e) = ctx.opener.open(&authorize) {
        tracing::warn!("could not open the browser: {e}");
    }
    on_progress(Progress::Waiting { via_deep_link });

    let outcome = tokio::time::timeout(STATE_LIFETIME, async {
        match route {
            Route::Loopback(listener) => {
                wait_loopback(ctx, profile, &metadata, listener, &redirect_uri).await
            }
            Route::DeepLink => loop {
                let Ok(url) = deep_links.recv().await else {
                    break Err(Error::FlowCancelled);
                };
                match complete(ctx, profile, &metadata, &url).await {
                    Err(Error::CallbackRejected { reason }) => {
                        tracing::warn!("deep-link callback refused: {reason}");
                    }
                    done => break done,
                }
            },
        }
    })
    .await
    .unwrap_or(Err(Error::FlowExpired));
    ctx.flows.cancel(&state);
    outcome
}

async fn choose_route(
    ctx: &Context,
    profile: &Profile,
    metadata: &Metadata,
    options: BrowserOptions,
) -> Result<(Route, String, String)> {
    let origin = &profile.origin;
    if options.deep_link && !ctx.clients.deep_link_refused(origin)? {
        let redirect = deep_link_redirect();
        match ctx
            .clients
            .client_id(
                &ctx.http,
                origin,
                metadata,
                ClientKind::DeepLink,
                Some(&redirect),
            )
            .await?
        {
            Registration::Registered(id) => return Ok((Route::DeepLink, redirect, id)),
            Registration::RedirectRefused(why) => {
                tracing::info!("server refuses deep-link redirects ({why}); using loopback");
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::Io {
            path: "127.0.0.1:0".into(),
            source: e,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let id = registered(ctx, profile, metadata, ClientKind::Loopback, &redirect).await?;
    Ok((Route::Loopback(listener), redirect, id))
}

async fn registered(
    ctx: &Context,
    profile: &Profile,
    metadata: &Metadata,
    kind: ClientKind,
    redirect: &str,
) -> Result<String> {
    match ctx
        .clients
        .client_id(&ctx.http, &profile.origin, metadata, kind, Some(redirect))
        .await?
    {
        Registration::Registered(id) => Ok(id),
        Registration::RedirectRefused(detail) => Err(Error::Registration { detail }),
    }
}

/// The authorize URL: PKCE S256, a fresh 128-bit `state`, `prompt=consent` (without it
/// NocoBase issues no refresh token), and `resource` (without it the access token
/// does not work on `/api/*`).
fn authorize_url(
    metadata: &Metadata,
    resource: String,
    client_id: &str,
    redirect_uri: &str,
) -> Result<(Url, CsrfToken, PkceCodeVerifier)> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| Error::Registration {
        detail: e.to_string(),
    })?;
    let client = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::from_url(metadata.authorization_endpoint.clone()))
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .add_extra_param("prompt", "consent")
        .add_extra_param("resource", resource)
        .url();
    Ok((url, state, verifier))
}

enum Preflight {
    Ok,
    UnknownClient,
}

async fn preflight(ctx: &Context, origin: &Origin, authorize_url: &Url) -> Result<Preflight> {
    let response = ctx
        .http
        .get(authorize_url.clone())
        .send()
        .await
        .map_err(|e| transport_error(origin, &e))?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if response.status().is_redirection()
        && location.contains("/idp-oauth/error")
        && (location.contains("error=invalid_client")
            || location.contains("error=invalid_redirect_uri"))
    {
        return Ok(Preflight::UnknownClient);
    }
    Ok(Preflight::Ok)
}

/// Validates a callback URL and, if it is ours, exchanges the code and stores the session.
async fn complete(
    ctx: &Context,
    profile: &Profile,
    metadata: &Metadata,
    callback: &str,
) -> Result<Session> {
    let accepted = ctx.flows.accept(callback)?;
    let client_id = accepted.flow.client_id.clone();
    let issued = tokens::exchange_code(
        &ctx.http,
        &profile.origin,
        metadata,
        &client_id,
        accepted.code,
        accepted.flow.verifier,
        &accepted.flow.redirect_uri,
    )
    .await?;
    super::finish(
        ctx,
        profile,
        SignInMethod::Browser,
        Grant::OAuth { client_id },
        issued.tokens,
        issued.expires_at,
    )
    .await
}

type Hit = (String, oneshot::Sender<(StatusCode, String)>);

/// Serves `/callback` on the loopback listener until a valid callback completes the
/// flow (or it fails for good). Forged hits get an error page and do not end the wait.
async fn wait_loopback(
    ctx: &Context,
    profile: &Profile,
    metadata: &Metadata,
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
) -> Result<Session> {
    let (hits_tx, mut hits) = mpsc::channel::<Hit>(4);
    let base = Arc::new(redirect_uri.to_owned());
    let app = axum::Router::new()
        .route("/callback", get(on_callback))
        .with_state((hits_tx, base));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    let result = loop {
        let Some((url, reply)) = hits.recv().await else {
            break Err(Error::FlowCancelled);
        };
        match complete(ctx, profile, metadata, &url).await {
            Ok(session) => {
                let name = session.user.display_name();
                let _ = reply.send((
                    StatusCode::OK,
                    page(true, &t!("callback.page.signed_in", name = name)),
                ));
                break Ok(session);
            }
            Err(e @ Error::CallbackRejected { .. }) => {
                tracing::warn!("loopback callback refused: {}", e.id());
                let _ = reply.send((StatusCode::BAD_REQUEST, page(false, &e.message())));
            }
            Err(e) => {
                let _ = reply.send((StatusCode::OK, page(false, &e.message())));
                break Err(e);
            }
        }
    };
    let _ = stop_tx.send(());
    let _ = server.await;
    result
}

async fn on_callback(
    State((hits, base)): State<(mpsc::Sender<Hit>, Arc<String>)>,
    RawQuery(query): RawQuery,
) -> impl IntoResponse {
    let url = format!("{}?{}", base, query.unwrap_or_default());
    let (reply_tx, reply_rx) = oneshot::channel();
    if hits.send((url, reply_tx)).await.is_err() {
        return (
            StatusCode::GONE,
            [("connection", "close")],
            Html(page(false, &t!("error.flow_cancelled"))),
        );
    }
    let (status, body) = reply_rx
        .await
        .unwrap_or((StatusCode::GONE, page(false, &t!("error.flow_cancelled"))));
    (status, [("connection", "close")], Html(body))
}

/// The small page the browser shows after the redirect. No script, no remote assets.
fn page(ok: bool, message: &str) -> String {
    let title = t!("app.name");
    let heading = if ok {
        t!("callback.page.ok")
    } else {
        t!("callback.page.failed")
    };
    let hint = if ok {
        t!("callback.page.close_tab")
    } else {
        t!("callback.page.retry")
    };
    let colour = if ok { "#07c160" } else { "#f5222d" };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
<meta name=\"viewport\" content=\"width=device-width\">\
<style>body{{font-family:system-ui,sans-serif;background:#f5f7fa;display:flex;justify-content:center;padding-top:12vh;margin:0}}\
main{{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:32px 40px;max-width:420px;text-align:center}}\
h1{{color:{colour};font-size:22px}}small{{color:#888}}</style></head>\
<body><main><small>{title}</small><h1 id=\"result\">{heading}</h1><p>{msg}</p><p>{hint}</p></main></body></html>",
        title = html_escape::encode_text(&title),
        heading = html_escape::encode_text(&heading),
        msg = html_escape::encode_text(message),
        hint = html_escape::encode_text(&hint),
    )
}
