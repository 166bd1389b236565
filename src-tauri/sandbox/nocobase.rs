//! NocoBase's auth API as recorded live on 2.2.15: `resource:action` routing, the
//! `{data}` / `{errors}` envelopes, HS256 session tokens, the token policy with
//! `x-new-token` renewal, sign-out blacklisting and the OAuth access-token bridge.
//!
//! The check order mirrors `BaseAuth.checkToken` (@nocobase/auth): decode → user → blacklist →
//! non-temp tokens → session cap → token age → renew limit → stream → renew (10 s cache).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rust_i18n::t;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::{self, data, errors, not_found, Req};
use super::state::{Shared, User, World};
use super::{provider, wecom, TokenPolicy};

/// Parallel requests with the same expired token get the same new token for this long
/// (`RENEWED_JTI_CACHE_MS` in plugin-auth's token controller).
const RENEW_CACHE_MS: i64 = 10_000;

pub(crate) const TOKEN_COOKIE: &str = "nb_auth_token_main";
const AUTHENTICATOR_COOKIE: &str = "nb_authenticator_main";
const CSRF_COOKIE: &str = "nb_csrf_token_main";
const ROLE_COOKIE: &str = "nb_role_main";

// ---------------------------------------------------------------------------------------------
// Token policy

/// `tokenControlConfig` record `token-policy-config`: the live policy plus the strings the
/// admin typed (NocoBase stores and echoes them verbatim).
pub(crate) struct PolicyConfig {
    pub policy: TokenPolicy,
    raw: [String; 3],
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl PolicyConfig {
    pub fn new(policy: TokenPolicy, now_ms: i64) -> Self {
        PolicyConfig {
            policy,
            raw: raw_strings(&policy),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// Replaces the policy; `raw` keeps the admin's spelling when there is one.
    pub fn set(&mut self, policy: TokenPolicy, raw: Option<[String; 3]>, now_ms: i64) {
        self.raw = raw.unwrap_or_else(|| raw_strings(&policy));
        self.policy = policy;
        self.updated_at_ms = now_ms;
    }

    pub fn raw(&self) -> &[String; 3] {
        &self.raw
    }

    fn record(&self) -> Value {
        json!({
            "createdAt": http::iso_datetime(self.created_at_ms),
            "updatedAt": http::iso_datetime(self.updated_at_ms),
            "key": "token-policy-config",
            "config": {
                "tokenExpirationTime": self.raw[0],
                "sessionExpirationTime": self.raw[2],
                "expiredTokenRenewLimit": self.raw[1],
            },
            "createdById": null,
            "updatedById": 1,
        })
    }
}

fn raw_strings(p: &TokenPolicy) -> [String; 3] {
    [
        format_ms(p.token_expiration),
        format_ms(p.expired_token_renew_limit),
        format_ms(p.session_expiration),
    ]
}

/// Parses an `ms`-style duration ("30s", "2m", "1.5h", "7d", "500", "10 minutes").
pub(crate) fn parse_ms(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let unit_ms = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "week" | "weeks" => 604_800_000.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_557_600_000.0,
        _ => return None,
    };
    let ms = n * unit_ms;
    (ms.is_finite() && ms < 1e15).then(|| Duration::from_millis(ms.round() as u64))
}

/// The shortest `ms`-style spelling of a duration.
pub(crate) fn format_ms(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Sessions and the check

/// NocoBase's `AuthErrorCode`s the sandbox produces (all 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    EmptyToken,
    InvalidToken,
    NotExistUser,
    BlockedToken,
    ExpiredSession,
    TokenRenewFailed,
    SkipTokenRenew,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::EmptyToken => "EMPTY_TOKEN",
            AuthError::InvalidToken => "INVALID_TOKEN",
            AuthError::NotExistUser => "NOT_EXIST_USER",
            AuthError::BlockedToken => "BLOCKED_TOKEN",
            AuthError::ExpiredSession => "EXPIRED_SESSION",
            AuthError::TokenRenewFailed => "TOKEN_RENEW_FAILED",
            AuthError::SkipTokenRenew => "SKIP_TOKEN_RENEW",
        }
    }

    /// en-US texts are the recorded ones; of the zh-CN texts only EMPTY_TOKEN's was recorded,
    /// the others are best guesses (clients must match on `code`, never on the text).
    pub fn message(self, locale: &str) -> String {
        match self {
            AuthError::EmptyToken => t!("sandbox.nb.empty_token", locale = locale),
            AuthError::NotExistUser => t!("sandbox.nb.not_exist_user", locale = locale),
            // Not translated by NocoBase either.
            AuthError::SkipTokenRenew => "Stream api not allow renew token.".into(),
            _ => t!("sandbox.nb.session_expired", locale = locale),
        }
        .into_owned()
    }

    pub fn response(self, locale: &str) -> Response {
        errors(
            StatusCode::UNAUTHORIZED,
            &self.message(locale),
            Some(self.code()),
        )
    }
}

/// Server-side session bookkeeping: `issuedTokens`, `tokenBlacklist`, the renew cache and
/// the OAuth bridge cache.
#[derive(Default)]
pub(crate) struct Sessions {
    issued: HashMap<String, Issued>,
    blacklist: HashSet<String>,
    renewed: HashMap<String, RenewedEntry>,
    /// OAuth access-token `jti` → internal NocoBase token, kept until the OAuth token's `exp`
    /// (plugin-idp-oauth `issueInternalToken`).
    bridge: HashMap<String, BridgeEntry>,
}

impl Sessions {
    /// In-memory caches a server restart loses; issued sessions survive (they are rows).
    pub fn forget_caches(&mut self) {
        self.renewed.clear();
        self.bridge.clear();
    }
}

struct Issued {
    sign_in_time: i64,
    authenticator: String,
}

struct RenewedEntry {
    token: String,
    authenticator: String,
    at_ms: i64,
}

struct BridgeEntry {
    token: String,
    exp: i64,
}

/// Claims of a NocoBase session token. Everything is optional on the way in so that foreign
/// but validly signed tokens are judged by the same rules as the real server.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionClaims {
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    user_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(
        rename = "signInTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    sign_in_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// A token that passed the check.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub user: User,
    /// The NocoBase token that was checked (for an OAuth access token: the internal one).
    pub token: String,
    jti: Option<String>,
    /// The JWT itself had expired (it was renewed, or is non-renewable).
    jwt_expired: bool,
    pub renewed: Option<Renewal>,
}

/// A renewal to hand back in `x-new-token`.
#[derive(Debug, Clone)]
pub(crate) struct Renewal {
    pub token: String,
    pub authenticator: String,
}

fn sign(sb: &Shared, claims: &SessionClaims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&sb.jwt_secret),
    )
    .unwrap_or_else(|err| {
        tracing::error!(%err, "sandbox: cannot sign a session token");
        String::new()
    })
}

/// Signs a fresh session token for `user_id` (like `BaseAuth.signNewToken`) and records it.
pub(crate) fn issue_session(
    sb: &Shared,
    w: &mut World,
    user_id: u64,
    authenticator: &str,
) -> String {
    let token_secs = millis(w.policy.policy.token_expiration) / 1000;
    let now_ms = sb.now_ms();
    issue_session_until(sb, w, user_id, authenticator, now_ms / 1000 + token_secs)
}

fn issue_session_until(
    sb: &Shared,
    w: &mut World,
    user_id: u64,
    authenticator: &str,
    exp: i64,
) -> String {
    let now_ms = sb.now_ms();
    // Like NocoBase at each sign-in, forget sessions older than the session cap.
    let session_ms = millis(w.policy.policy.session_expiration);
    w.sessions
        .issued
        .retain(|_, row| now_ms - row.sign_in_time <= session_ms);
    let jti = http::uuid_v4();
    w.sessions.issued.insert(
        jti.clone(),
        Issued {
            sign_in_time: now_ms,
            authenticator: authenticator.to_string(),
        },
    );
    sign(
        sb,
        &SessionClaims {
            user_id: Some(json!(user_id)),
            temp: Some(true),
            iat: Some(now_ms.div_euclid(1000)),
            sign_in_time: Some(now_ms),
            exp: Some(exp),
            jti: Some(jti),
        },
    )
}

fn decode_session(sb: &Shared, token: &str) -> Option<SessionClaims> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is judged below against the sandbox clock, with no leeway (like Node's jsonwebtoken).
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<SessionClaims>(
        token,
        &DecodingKey::from_secret(&sb.jwt_secret),
        &validation,
    )
    .ok()
    .map(|data| data.claims)
}

fn user_id_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `BaseAuth.checkToken` + `check`: validates a NocoBase token and renews it when due.
fn check_token(
    sb: &Shared,
    w: &mut World,
    token: &str,
    stream: bool,
) -> Result<Checked, AuthError> {
    let claims = decode_session(sb, token).ok_or(AuthError::InvalidToken)?;
    let now_ms = sb.now_ms();
    let jwt_expired = claims.exp.is_some_and(|exp| now_ms.div_euclid(1000) >= exp);
    let user = claims
        .user_id
        .as_ref()
        .and_then(user_id_of)
        .and_then(|id| w.user(id))
        .cloned()
        .ok_or(AuthError::NotExistUser)?;
    let block_key = claims.jti.clone().unwrap_or_else(|| token.to_string());
    if w.sessions.blacklist.contains(&block_key) {
        return Err(AuthError::BlockedToken);
    }
    let mut checked = Checked {
        user,
        token: token.to_string(),
        jti: claims.jti.clone(),
        jwt_expired,
        renewed: None,
    };
    // API-key style tokens: valid until exp, never renewed.
    if claims.temp != Some(true) {
        return if jwt_expired {
            Err(AuthError::InvalidToken)
        } else {
            Ok(checked)
        };
    }
    let policy = w.policy.policy;
    // The session cap comes first, so renewal never outlives it.
    if claims
        .sign_in_time
        .is_some_and(|t| now_ms - t > millis(policy.session_expiration))
    {
        return Err(AuthError::ExpiredSession);
    }
    let too_old = claims
        .iat
        .is_some_and(|iat| now_ms - iat * 1000 > millis(policy.token_expiration));
    if !jwt_expired && !too_old {
        return Ok(checked);
    }
    let renew_limit = millis(policy.expired_token_renew_limit);
    if renew_limit > 0
        && claims
            .exp
            .is_some_and(|exp| now_ms - exp * 1000 > renew_limit)
    {
        return Err(AuthError::ExpiredSession);
    }
    if stream {
        return Err(AuthError::SkipTokenRenew);
    }
    let jti = claims.jti.as_deref().ok_or(AuthError::InvalidToken)?;
    checked.renewed = Some(renew(sb, w, jti, &claims)?);
    Ok(checked)
}

/// `tokenController.renew`: moves the `issuedTokens` row to a new jti, once.
fn renew(sb: &Shared, w: &mut World, jti: &str, old: &SessionClaims) -> Result<Renewal, AuthError> {
    let now_ms = sb.now_ms();
    w.sessions
        .renewed
        .retain(|_, entry| now_ms - entry.at_ms < RENEW_CACHE_MS);
    if let Some(hit) = w.sessions.renewed.get(jti) {
        return Ok(Renewal {
            token: hit.token.clone(),
            authenticator: hit.authenticator.clone(),
        });
    }
    let row = w
        .sessions
        .issued
        .remove(jti)
        .ok_or(AuthError::TokenRenewFailed)?;
    let new_jti = http::uuid_v4();
    let token_secs = millis(w.policy.policy.token_expiration) / 1000;
    let iat = now_ms.div_euclid(1000);
    let token = sign(
        sb,
        &SessionClaims {
            user_id: old.user_id.clone(),
            temp: Some(true),
            iat: Some(iat),
            sign_in_time: old.sign_in_time,
            exp: Some(iat + token_secs),
            jti: Some(new_jti.clone()),
        },
    );
    let authenticator = row.authenticator.clone();
    w.sessions.issued.insert(new_jti, row);
    w.sessions.renewed.insert(
        jti.to_string(),
        RenewedEntry {
            token: token.clone(),
            authenticator: authenticator.clone(),
            at_ms: now_ms,
        },
    );
    Ok(Renewal {
        token,
        authenticator,
    })
}

/// plugin-idp-oauth's bearer bridge: a valid OAuth access token is swapped for an internal
/// NocoBase token, cached per OAuth `jti` until the OAuth token expires. The cached token
/// is never replaced when it gets renewed, which reproduces the 2.2.15 TOKEN_RENEW_FAILED
/// bug after a runtime policy change (nocobase-idp-oauth.md §6).
fn bridge(sb: &Shared, w: &mut World, access_token: &str) -> Result<String, AuthError> {
    let at = provider::verify_access_token(sb, access_token).ok_or(AuthError::InvalidToken)?;
    let now = sb.now_secs();
    if let Some(entry) = w.sessions.bridge.get(&at.jti) {
        if entry.exp > now {
            return Ok(entry.token.clone());
        }
    }
    let token_secs = millis(w.policy.policy.token_expiration) / 1000;
    let internal = issue_session_until(sb, w, at.sub, "basic", (now + token_secs).min(at.exp));
    w.sessions.bridge.insert(
        at.jti,
        BridgeEntry {
            token: internal.clone(),
            exp: at.exp,
        },
    );
    Ok(internal)
}

/// Checks any token NocoBase would accept as a bearer: a session token or (with the OAuth
/// provider on) an OAuth access token.
pub(crate) fn authenticate_token(
    sb: &Shared,
    token: &str,
    stream: bool,
) -> Result<Checked, AuthError> {
    let mut w = sb.world();
    let token = if sb.oauth_provider && provider::looks_like_access_token(token) {
        bridge(sb, &mut w, token)?
    } else {
        token.to_string()
    };
    check_token(sb, &mut w, &token, stream)
}

/// `ctx.getBearerToken()`: the Authorization header, then `?token=`. Never the cookie.
pub(crate) fn bearer_token(req: &Req) -> Option<String> {
    let from_header = req.header("authorization").map(|value| {
        let value = value.trim();
        match value.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim().to_string(),
            _ => value.to_string(),
        }
    });
    from_header
        .filter(|t| !t.is_empty())
        .or_else(|| req.query().non_empty("token").map(str::to_string))
}

/// The auth middleware of a non-public action.
pub(crate) fn authenticate(sb: &Shared, req: &Req) -> Result<Checked, AuthError> {
    let token = bearer_token(req).ok_or(AuthError::EmptyToken)?;
    let stream = req.header("accept") == Some("text/event-stream");
    authenticate_token(sb, &token, stream)
}

/// Mints a session token for any user id, as if that user had just signed in.
pub(crate) fn mint_token(sb: &Shared, user_id: u64) -> String {
    let mut w = sb.world();
    issue_session(sb, &mut w, user_id, "basic")
}

/// Adds what a renewal sends back: `x-new-token` and the refreshed auth cookies.
pub(crate) fn attach_renewal(sb: &Shared, resp: &mut Response, renewal: Option<&Renewal>) {
    let Some(renewal) = renewal else { return };
    http::set_header(resp, "x-new-token", &renewal.token);
    let expires = session_cookie_expiry(sb);
    http::add_cookie(
        resp,
        &format!(
            "{TOKEN_COOKIE}={}; path=/; expires={expires}; samesite=lax; httponly",
            renewal.token
        ),
    );
    http::add_cookie(
        resp,
        &format!(
            "{AUTHENTICATOR_COOKIE}={}; path=/; expires={expires}; samesite=lax; httponly",
            renewal.authenticator
        ),
    );
}

fn session_cookie_expiry(sb: &Shared) -> String {
    let session_secs = millis(sb.world().policy.policy.session_expiration) / 1000;
    http::http_date(sb.now_secs() + session_secs)
}

/// The four cookies `BaseAuth.signIn` sets (v2.1.25+).
pub(crate) fn sign_in_cookies(
    sb: &Shared,
    token: &str,
    authenticator: &str,
    role: &str,
) -> Vec<String> {
    let expires = session_cookie_expiry(sb);
    let csrf = http::random_b64(24);
    vec![
        format!("{TOKEN_COOKIE}={token}; path=/; expires={expires}; samesite=lax; httponly"),
        format!("{AUTHENTICATOR_COOKIE}={authenticator}; path=/; expires={expires}; samesite=lax; httponly"),
        format!("{CSRF_COOKIE}={csrf}; path=/; expires={expires}; samesite=lax"),
        format!("{ROLE_COOKIE}={role}; path=/; expires={expires}; samesite=lax"),
    ]
}

/// The cookies `auth:signOut` clears.
pub(crate) fn sign_out_cookies() -> Vec<String> {
    const GONE: &str = "expires=Thu, 01 Jan 1970 00:00:00 GMT";
    vec![
        format!("{TOKEN_COOKIE}=; path=/; {GONE}; samesite=lax; httponly"),
        format!("{AUTHENTICATOR_COOKIE}=; path=/; {GONE}; samesite=lax; httponly"),
        format!("{ROLE_COOKIE}=; path=/; {GONE}; samesite=lax"),
        format!("{CSRF_COOKIE}=; path=/; {GONE}; samesite=lax"),
        format!("_session=; path=/; {GONE}; samesite=lax; httponly"),
    ]
}

/// `auth:signOut`: blacklists the presented token. Like `jwt.block`, an already expired JWT
/// cannot be decoded and so is silently not blocked.
pub(crate) fn sign_out(sb: &Shared, checked: &Checked) {
    if checked.jwt_expired {
        return;
    }
    let key = checked.jti.clone().unwrap_or_else(|| checked.token.clone());
    sb.world().sessions.blacklist.insert(key);
}

// ---------------------------------------------------------------------------------------------
// Routing

/// `/api/<resource>:<action>` — NocoBase's resourcer. Any method is accepted, as there.
pub(crate) async fn action(
    State(sb): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Req,
) -> Response {
    let Some((resource, action)) = name.split_once(':') else {
        return not_found();
    };
    match (resource, action) {
        ("app", "getInfo") => app_info(&req),
        ("authenticators", "publicList") => public_list(&sb),
        ("auth", "signIn") => sign_in(&sb, &req),
        ("auth", "check") => with_auth(&sb, &req, |_, _, c| data(user_json(&c.user, true))),
        ("auth", "signOut") => with_auth(&sb, &req, sign_out_action),
        ("users", "list") => with_auth(&sb, &req, users_list),
        ("users", "destroy") => with_auth(&sb, &req, admin_only(users_destroy)),
        ("tokenControlConfig", "get") => with_auth(&sb, &req, admin_only(policy_get)),
        ("tokenControlConfig", "update") => with_auth(&sb, &req, admin_only(policy_update)),
        ("wecom", "getAuthUrl") => wecom::get_auth_url(&sb, &req),
        ("wecom", "redirect") => wecom::callback(&sb, &req),
        _ => not_found(),
    }
}

type Action = fn(&Shared, &Req, &Checked) -> Response;

/// Runs `f` behind the auth middleware; renewals ride along on every answer, errors included.
fn with_auth(
    sb: &Shared,
    req: &Req,
    f: impl FnOnce(&Shared, &Req, &Checked) -> Response,
) -> Response {
    match authenticate(sb, req) {
        Err(err) => err.response(req.api_locale()),
        Ok(checked) => {
            let mut resp = match req.header("x-role") {
                // plugin-acl setCurrentRole: `__union__` means all of the user's roles.
                Some(role) if role != "__union__" && !checked.user.roles.contains(&role) => errors(
                    StatusCode::UNAUTHORIZED,
                    "The role does not belong to the user",
                    Some("ROLE_NOT_FOUND_FOR_USER"),
                ),
                _ => f(sb, req, &checked),
            };
            attach_renewal(sb, &mut resp, checked.renewed.as_ref());
            resp
        }
    }
}

/// ACL: only root/admin may manage the token policy (`pm.security.token-policy`) and users.
fn admin_only(f: Action) -> impl FnOnce(&Shared, &Req, &Checked) -> Response {
    move |sb, req, checked| {
        if checked.user.is_admin() {
            f(sb, req, checked)
        } else {
            errors(StatusCode::FORBIDDEN, "No permissions", None)
        }
    }
}

/// CORS as @koa/cors is configured in 2.2: the origin is reflected, `x-new-token` exposed,
/// credentials only for the trusted (same) origin.
pub(crate) async fn cors(req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let host = req
        .headers()
        .get("x-forwarded-host")
        .or_else(|| req.headers().get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http")
        .to_string();
    let preflight = req.method() == Method::OPTIONS && origin.is_some();
    let requested_headers = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let headers = resp.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("content-disposition,x-new-token"),
        );
        if origin == format!("{proto}://{host}") {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET,HEAD,PUT,POST,DELETE,PATCH"),
            );
            if let Some(requested) = requested_headers {
                headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
            }
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Actions

fn app_info(req: &Req) -> Response {
    data(json!({
        "database": { "dialect": "sqlite" },
        "version": "2.2.15",
        "lang": req.api_locale(),
        "name": "main",
        "theme": "default",
    }))
}

fn public_list(sb: &Shared) -> Response {
    data(json!([
        {
            "name": "basic",
            "authType": "Email/Password",
            "authTypeTitle": "{{t(\"Password\", {\"ns\":\"@nocobase/plugin-auth\"})}}",
            "title": null,
            "options": {
                "allowSignUp": true,
                "signupForm": [{
                    "field": "username",
                    "show": true,
                    "required": true,
                    "uiSchema": {
                        "type": "string",
                        "title": "{{t(\"Username\")}}",
                        "x-component": "Input",
                        "x-validator": { "username": true },
                        "required": true
                    }
                }]
            }
        },
        wecom::public_entry(sb),
    ]))
}

/// When the sandbox's fixed users and roles were "created" (their `createdAt`/`updatedAt`).
const SEEDED_AT: &str = "2026-01-01T00:00:00.000Z";

/// The user record as `auth:check` / `auth:signIn` / `users:list` return it: every column of
/// the `users` collection but the hidden ones (password, reset token), as 2.2.15 sends them.
pub(crate) fn user_json(user: &User, with_roles: bool) -> Value {
    let mut value = json!({
        "appLang": null,
        "createdAt": SEEDED_AT,
        "createdById": null,
        "email": user.email,
        "id": user.id,
        "nickname": user.nickname,
        "passwordChangeTz": null,
        "phone": user.phone,
        "systemSettings": "{}",
        "updatedAt": SEEDED_AT,
        "updatedById": null,
        "username": user.username,
    });
    if with_roles {
        value["roles"] = user
            .roles
            .iter()
            .map(|name| role_json(user, name))
            .collect();
    }
    value
}

/// A role record as `auth:check` embeds it (with the `rolesUsers` through-row).
fn role_json(user: &User, name: &str) -> Value {
    let admin = name == "admin" || name == "root";
    let (snippets, actions) = if admin {
        (
            json!(["pm", "pm.*", "ui.*"]),
            json!([
                "create",
                "view",
                "update",
                "destroy",
                "export",
                "importXlsx"
            ]),
        )
    } else {
        (json!(["!pm", "!pm.*", "!ui.*"]), json!(["view:own"]))
    };
    json!({
        "createdAt": SEEDED_AT,
        "updatedAt": SEEDED_AT,
        "allowConfigure": if admin { json!(true) } else { Value::Null },
        "allowNewAiEmployee": true,
        "allowNewMenu": true,
        "allowNewMobileMenu": true,
        "default": name == "member",
        "description": null,
        "hidden": name == "root",
        "name": name,
        "snippets": snippets,
        "strategy": { "actions": actions },
        "title": format!("{{{{t(\"{}\")}}}}", capitalize(name)),
        "rolesUsers": {
            "createdAt": SEEDED_AT,
            "updatedAt": SEEDED_AT,
            "default": null,
            "roleName": name,
            "userId": user.id,
        },
        "_pivot_": null,
    })
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `assertTrustedSignInOrigin`: a present Origin (else Referer) must be our own origin.
fn trusted_sign_in_origin(req: &Req) -> bool {
    let presented = req.header("origin").map(str::to_string).or_else(|| {
        req.header("referer").map(|referer| {
            url::Url::parse(referer)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|_| "null".to_string())
        })
    });
    presented.is_none_or(|origin| origin == req.own_origin())
}

/// Basic (username/email + password) sign-in, shared by `auth:signIn` and the sign-in page.
pub(crate) enum BasicSignIn {
    Ok { user: User, token: String },
    MissingAccount,
    BadCredentials,
}

pub(crate) fn basic_sign_in(sb: &Shared, account: &str, password: &str) -> BasicSignIn {
    sign_in_as(sb, account, false, password)
}

/// `account` matches a username or an email; the legacy `email` field only an email.
fn sign_in_as(sb: &Shared, account: &str, email_only: bool, password: &str) -> BasicSignIn {
    if account.trim().is_empty() {
        return BasicSignIn::MissingAccount;
    }
    let mut w = sb.world();
    let user = w
        .users
        .iter()
        .find(|u| u.email == account || (!email_only && u.username == account))
        .filter(|u| u.password.is_some_and(|p| p == password))
        .cloned();
    match user {
        None => BasicSignIn::BadCredentials,
        Some(user) => {
            let token = issue_session(sb, &mut w, user.id, "basic");
            BasicSignIn::Ok { user, token }
        }
    }
}

fn sign_in(sb: &Shared, req: &Req) -> Response {
    let locale = req.api_locale();
    if !trusted_sign_in_origin(req) {
        return errors(StatusCode::FORBIDDEN, "Invalid sign-in origin", None);
    }
    // Storer.get: an unknown name silently means the first enabled authenticator (basic).
    if req.header("x-authenticator") == Some("wecom") {
        // The WeCom authenticator signs in from its callback with a WeCom code, never with a
        // password. Its exact validation message is not recorded; this locale string is.
        return errors(
            StatusCode::BAD_REQUEST,
            &t!("sandbox.nb.wecom.enter_code", locale = locale),
            None,
        );
    }
    let body = req.body_params().unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    let (account, email_only) = match text("account") {
        "" => (text("email"), true),
        account => (account, false),
    };
    match sign_in_as(sb, account, email_only, text("password")) {
        BasicSignIn::MissingAccount => errors(
            StatusCode::BAD_REQUEST,
            &t!("sandbox.nb.missing_account", locale = locale),
            None,
        ),
        BasicSignIn::BadCredentials => errors(
            StatusCode::UNAUTHORIZED,
            &t!("sandbox.nb.bad_credentials", locale = locale),
            None,
        ),
        BasicSignIn::Ok { user, token } => {
            let mut resp = data(json!({ "user": user_json(&user, false), "token": token }));
            for cookie in sign_in_cookies(sb, &token, "basic", user.default_role()) {
                http::add_cookie(&mut resp, &cookie);
            }
            resp
        }
    }
}

fn sign_out_action(sb: &Shared, _req: &Req, checked: &Checked) -> Response {
    sign_out(sb, checked);
    let mut resp = http::json(StatusCode::OK, &json!({}));
    for cookie in sign_out_cookies() {
        http::add_cookie(&mut resp, &cookie);
    }
    resp
}

fn users_list(sb: &Shared, req: &Req, _checked: &Checked) -> Response {
    let query = req.query();
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let page_size = query
        .get("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(20);
    // `fields=id,nickname` or `fields[]=id&fields[]=nickname`.
    let fields: Vec<String> = query
        .0
        .iter()
        .filter(|(k, _)| k == "fields" || k == "fields[]")
        .flat_map(|(_, v)| v.split(','))
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let w = sb.world();
    let count = w.users.len();
    let rows: Vec<Value> = w
        .users
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|u| {
            let full = user_json(u, false);
            if fields.is_empty() {
                return full;
            }
            fields
                .iter()
                .filter_map(|f| full.get(f).map(|v| (f.clone(), v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    http::json(
        StatusCode::OK,
        &json!({
            "data": rows,
            "meta": {
                "count": count,
                "page": page,
                "pageSize": page_size,
                "totalPage": count.div_ceil(page_size),
            }
        }),
    )
}

/// `users:destroy?filterByTk=<id>`: lets tests delete a user (→ NOT_EXIST_USER). The root
/// account is protected.
fn users_destroy(sb: &Shared, req: &Req, _checked: &Checked) -> Response {
    let Some(id) = req
        .query()
        .get("filterByTk")
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return errors(StatusCode::BAD_REQUEST, "filterByTk is required", None);
    };
    if id == 1 {
        return errors(StatusCode::FORBIDDEN, "No permissions", None);
    }
    let mut w = sb.world();
    let before = w.users.len();
    w.users.retain(|u| u.id != id);
    data(json!(before - w.users.len()))
}

fn policy_get(sb: &Shared, _req: &Req, _checked: &Checked) -> Response {
    data(sb.world().policy.record())
}

fn policy_update(sb: &Shared, req: &Req, _checked: &Checked) -> Response {
    let body = req.body_params().unwrap_or(Value::Null);
    let config = body
        .get("config")
        .or_else(|| body.pointer("/values/config"));
    let Some(config) = config.and_then(Value::as_object) else {
        return errors(StatusCode::BAD_REQUEST, "config is required", None);
    };
    let now_ms = sb.now_ms();
    let mut w = sb.world();
    match apply_policy_strings(&w.policy, config) {
        Err(message) => errors(StatusCode::BAD_REQUEST, &message, None),
        Ok((policy, raw)) => {
            w.policy.set(policy, Some(raw), now_ms);
            data(json!([w.policy.record()]))
        }
    }
}

/// Merges `{"tokenExpirationTime": "30s", …}` into the current policy; missing keys keep
/// their value.
pub(crate) fn apply_policy_strings(
    current: &PolicyConfig,
    config: &serde_json::Map<String, Value>,
) -> Result<(TokenPolicy, [String; 3]), String> {
    let mut policy = current.policy;
    let mut raw = current.raw().clone();
    let keys = [
        "tokenExpirationTime",
        "expiredTokenRenewLimit",
        "sessionExpirationTime",
    ];
    for (i, key) in keys.iter().enumerate() {
        let Some(value) = config.get(*key) else {
            continue;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("Invalid value of {key}")),
        };
        let duration = parse_ms(&text).ok_or_else(|| format!("Invalid value of {key}: {text}"))?;
        match i {
            0 => policy.token_expiration = duration,
            1 => policy.expired_token_renew_limit = duration,
            _ => policy.session_expiration = duration,
        }
        raw[i] = text;
    }
    Ok((policy, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_strings_round_trip() {
        assert_eq!(parse_ms("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_ms("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ms("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ms("10 minutes"), Some(Duration::from_secs(600)));
        assert_eq!(parse_ms("500"), Some(Duration::from_millis(500)));
        assert_eq!(parse_ms("soon"), None);
        assert_eq!(parse_ms("-1s"), None);
        assert_eq!(format_ms(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_ms(Duration::from_secs(150)), "150s");
        assert_eq!(format_ms(Duration::from_millis(1500)), "1500ms");
    }
}
