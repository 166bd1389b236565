//! The sandbox: a loopback server that behaves like NocoBase 2.2.15 (auth API, token policy,
//! the built-in OAuth provider, a WeCom authenticator) plus a simulated WeCom, so the
//! product can be exercised over real HTTP without either.
//!
//! Layout: `nocobase` (auth API and token policy), `provider` (OAuth subset), `wecom`
//! (simulated WeCom + the WeCom authenticator), `pages` (HTML), `http` (helpers), `state`
//! (clock, data, stores). Tests and other processes steer it with the methods of
//! [`Sandbox`] or the JSON endpoints under `/__sandbox/control/`.

// Handlers return `Result<_, Response>` to bail out with a ready answer (the usual axum
// pattern); the responses are built once per request, so boxing them buys nothing.
#![allow(clippy::result_large_err)]

mod http;
mod nocobase;
mod pages;
mod provider;
mod state;
mod wecom;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use http::Req;
use state::Shared;

/// NocoBase's token policy (`tokenControlConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    pub token_expiration: Duration,
    pub expired_token_renew_limit: Duration,
    pub session_expiration: Duration,
}

impl Default for TokenPolicy {
    /// NocoBase's defaults: 1 d / 1 d / 7 d.
    fn default() -> Self {
        const DAY: u64 = 86_400;
        TokenPolicy {
            token_expiration: Duration::from_secs(DAY),
            expired_token_renew_limit: Duration::from_secs(DAY),
            session_expiration: Duration::from_secs(7 * DAY),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// 0 = ephemeral. The sandbox always binds 127.0.0.1 only.
    pub port: u16,
    pub token_policy: TokenPolicy,
    /// false = exactly like 2.2.15 (loopback http redirects with an explicit port only);
    /// true = oidc-provider's native rules (reverse-DNS custom schemes, loopback, https).
    pub custom_scheme_redirects: bool,
    /// false = a NocoBase without plugin-idp-oauth: `/api/.well-known/*` and
    /// `/api/idpOAuth/*` answer 404.
    pub oauth_provider: bool,
    /// The WeCom authenticator's "Automatic login" option.
    pub wecom_auto_login: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            token_policy: TokenPolicy::default(),
            custom_scheme_redirects: false,
            oauth_provider: true,
            wecom_auto_login: true,
        }
    }
}

/// A running sandbox. Dropping it stops the server; [`Sandbox::shutdown`] also waits for it.
pub struct Sandbox {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> io::Result<Sandbox> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, opts.port)).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(
            Shared::new(format!("http://127.0.0.1:{port}"), &opts).map_err(io::Error::other)?,
        );
        let app = router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = server.await {
                tracing::error!(%err, "sandbox server failed");
            }
        });
        Ok(Sandbox {
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    /// Like `tokenControlConfig:update`: NocoBase tokens follow at once; the OAuth provider
    /// only after [`Sandbox::restart_provider`].
    pub fn set_token_policy(&self, policy: TokenPolicy) {
        let now = self.shared.now_ms();
        self.shared.world().policy.set(policy, None, now);
    }

    /// A server restart as the provider sees it: the policy is read again at the next OAuth
    /// request. Clients, grants and tokens survive; in-memory caches do not.
    pub fn restart_provider(&self) {
        let mut w = self.shared.world();
        w.idp.restart();
        w.sessions.forget_caches();
    }

    pub fn set_custom_scheme_redirects(&self, on: bool) {
        self.shared.set_custom_scheme_redirects(on);
    }

    pub fn set_wecom_auto_login(&self, on: bool) {
        self.shared.set_wecom_auto_login(on);
    }

    /// Whether this WeCom member has done the first-time authorization inside the WeCom
    /// client. Takes the WeCom userid ("LiSi") or the NocoBase username ("lisi").
    pub fn member_authorized(&self, username: &str) -> bool {
        wecom::member_authorized(&self.shared, username)
    }

    /// Runs the server's clock this many seconds ahead (JWT iat/exp, TTLs, renew windows,
    /// the 10 s renew cache): lets tests cross expiry without sleeping.
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.set_clock_offset(secs);
    }

    /// A NocoBase session token for `user_id`, as if that user had just signed in with the
    /// basic authenticator. An id no user has gives a token that meets `NOT_EXIST_USER`.
    pub fn mint_token(&self, user_id: u64) -> String {
        nocobase::mint_token(&self.shared, user_id)
    }

    /// Stops accepting connections and waits (up to 5 s) for requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves until Ctrl-C, then shuts down (for `nocobase-wecom-companion sandbox`).
    pub async fn run_until_ctrl_c(self) -> io::Result<()> {
        let result = tokio::signal::ctrl_c().await;
        self.shutdown().await;
        result
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a sandbox, prints its URL on stdout and serves until Ctrl-C.
pub async fn serve_forever(opts: SandboxOptions) -> io::Result<()> {
    let sandbox = Sandbox::start(opts).await?;
    println!("{}", sandbox.origin());
    sandbox.run_until_ctrl_c().await
}

fn router(shared: Arc<Shared>) -> Router {
    let oauth_provider = shared.oauth_provider;
    let mut app = Router::new()
        .route("/api/{name}", any(nocobase::action))
        .layer(axum::middleware::from_fn(nocobase::cors));
    if oauth_provider {
        app = app
            .route("/api/.well-known/{name}", get(provider::well_known))
            .route("/api/idpOAuth/{*rest}", any(provider::dispatch));
    }
    app.merge(pages::routes(oauth_provider))
        .merge(wecom::routes())
        .route("/__sandbox/control/policy", post(control_policy))
        .route("/__sandbox/control/restart", post(control_restart))
        .route("/__sandbox/control/options", post(control_options))
        .route("/__sandbox/control/clock", post(control_clock))
        .route("/__sandbox/control/members", get(control_members))
        .fallback(|| async { http::not_found() })
        .layer(axum::middleware::from_fn(http::koa_redirect_body))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Control endpoints: the same switches over HTTP, for other processes (loopback only).

fn control_error(status: StatusCode, message: &str) -> Response {
    http::json(status, &json!({ "error": message }))
}

fn control_body(req: &Req) -> Result<serde_json::Map<String, Value>, Response> {
    if !req.is_from_loopback() {
        return Err(control_error(StatusCode::FORBIDDEN, "loopback only"));
    }
    if req.body.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match req.json() {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(control_error(
            StatusCode::BAD_REQUEST,
            "expected a JSON object",
        )),
    }
}

/// `{"tokenExpirationTime":"30s","expiredTokenRenewLimit":"40s","sessionExpirationTime":"150s"}`
async fn control_policy(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let body = match control_body(&req) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let now = sb.now_ms();
    let mut w = sb.world();
    match nocobase::apply_policy_strings(&w.policy, &body) {
        Err(message) => control_error(StatusCode::BAD_REQUEST, &message),
        Ok((policy, raw)) => {
            w.policy.set(policy, Some(raw), now);
            let [token, renew, session] = w.policy.raw().clone();
            http::json(
                StatusCode::OK,
                &json!({
                    "tokenExpirationTime": token,
                    "expiredTokenRenewLimit": renew,
                    "sessionExpirationTime": session,
                }),
            )
        }
    }
}

async fn control_restart(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    if let Err(resp) = control_body(&req) {
        return resp;
    }
    let mut w = sb.world();
    w.idp.restart();
    w.sessions.forget_caches();
    http::json(StatusCode::OK, &json!({}))
}

/// `{"customSchemeRedirects": bool?, "wecomAutoLogin": bool?}`
async fn control_options(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let body = match control_body(&req) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    for key in body.keys() {
        if key != "customSchemeRedirects" && key != "wecomAutoLogin" {
            return control_error(StatusCode::BAD_REQUEST, &format!("unknown option {key}"));
        }
    }
    let flag = |key: &str| body.get(key).map(Value::as_bool);
    match (flag("customSchemeRedirects"), flag("wecomAutoLogin")) {
        (Some(None), _) | (_, Some(None)) => {
            return control_error(StatusCode::BAD_REQUEST, "options must be booleans");
        }
        (custom, auto) => {
            if let Some(Some(on)) = custom {
                sb.set_custom_scheme_redirects(on);
            }
            if let Some(Some(on)) = auto {
                sb.set_wecom_auto_login(on);
            }
        }
    }
    http::json(
        StatusCode::OK,
        &json!({
            "customSchemeRedirects": sb.custom_scheme_redirects(),
            "wecomAutoLogin": sb.wecom_auto_login(),
        }),
    )
}

/// `{"offsetSeconds": n}`
async fn control_clock(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let body = match control_body(&req) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match body.get("offsetSeconds").and_then(Value::as_i64) {
        Some(secs) => {
            sb.set_clock_offset(secs);
            http::json(
                StatusCode::OK,
                &json!({ "offsetSeconds": sb.clock_offset() }),
            )
        }
        None => control_error(StatusCode::BAD_REQUEST, "offsetSeconds must be an integer"),
    }
}

/// `[{"username","nickname","authorized"}]` (username = WeCom userid).
async fn control_members(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    if !req.is_from_loopback() {
        return control_error(StatusCode::FORBIDDEN, "loopback only");
    }
    http::json(StatusCode::OK, &wecom::members_json(&sb))
}

/// Starts a sandbox in this process and makes the `sandbox` profile (in `ctx`'s files)
/// point at it and active. Used by `--sandbox`; give it a context whose files are
/// [`crate::core::paths::Paths::for_sandbox`], so real settings stay untouched.
pub async fn start_in_process(ctx: &crate::core::Context) -> crate::core::Result<Sandbox> {
    use crate::core::profile::{Origin, Profile, ProfileName};
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .map_err(|source| crate::core::Error::Io {
            path: "127.0.0.1:0".into(),
            source,
        })?;
    let origin = Origin::parse(&sandbox.origin())?;
    let (mut all, _) = ctx.load_profiles()?;
    let name = ProfileName::parse("sandbox")?;
    let mut profile = all
        .get(name.as_str())
        .cloned()
        .unwrap_or_else(|| Profile::new(name.clone(), origin.clone(), "wecom"));
    if profile.origin != origin {
        // A new sandbox is a new server: the old session and client ids mean nothing.
        ctx.sessions.forget(name.as_str())?;
        profile.origin = origin;
    }
    all.upsert(profile);
    all.use_profile(name.as_str())?;
    ctx.save_profiles(&all)?;
    Ok(sandbox)
}
