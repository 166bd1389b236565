//! The OAuth 2.1 provider of plugin-idp-oauth 2.2.15 (oidc-provider 9.7), the subset a
//! desktop client meets: discovery, dynamic registration with NocoBase's loopback-only
//! rule, authorize + PKCE + consent interaction, authorization-code / refresh-token /
//! device-code grants, revocation and the device verification API.
//!
//! Behaviour follows nocobase-idp-oauth.md, bugs included (Cancel approves; the `/register/`
//! path skips NocoBase's redirect check; the policy is read once per provider start).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::http::{self, append_query, errors, not_found, oauth_error, redirect, Params, Req};
use super::nocobase::{self, AuthError, TOKEN_COOKIE};
use super::state::{Shared, World};

/// Sandbox-only RSA key (generated with `openssl genrsa 2048` for this sandbox). It is public
/// on purpose and signs nothing outside the sandbox: it is not a secret.
const SANDBOX_RSA_PEM: &str = include_str!("sandbox-only-rsa-key.pem");
/// Modulus and exponent of that key (base64url), published in the JWKS.
const SANDBOX_RSA_N: &str = "6XLRVk5VUdoe32zmwVF8qnA1i7aJmiXT32nJ9HTo3Gmx6IEfQmeLW84Ft6mFaNNmGvYr3xJqzdWb4L_xCLEz5LwpdYI4LutV-zg0t2YFD_TmYYsIwkb2e7EgbkTl7PZAb7LAza09MCkZSx_gZDkvJhAn1DZ3ITD1ni6OkEL6bXmhpKEsoMPGP9gzgKpqF9HMLMRf_bklB2BmI7HxQHrwUugucenXQ-S4XFaoIxJ21mazzcFR9LysXMLqYGaZuposnQQz7Ge8XKRwnYnw2CWc6RhGd3Xx8J7XxKplrs4NL8pSZxLr2yWQVsuGfGVRNau_duxstCga9bj9yGHe4mTdwQ";
const SANDBOX_RSA_E: &str = "AQAB";
const KID: &str = "idp-oauth-rs256";

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const SCOPES: [&str; 6] = ["openid", "offline_access", "profile", "email", "api", "mcp"];
/// Scopes of the `api` resource server; only these appear in a JWT's `scope`.
const RESOURCE_SCOPES: [&str; 1] = ["api"];
const CODE_TTL: i64 = 60;
const DEVICE_CODE_TTL: i64 = 600;
const ID_TOKEN_TTL: i64 = 3600;
const INTERACTION_TTL: i64 = 3600;
/// oidc-provider's user-code alphabet ("base-20": no vowels, no look-alikes).
const USER_CODE_CHARSET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

const LOOPBACK_ONLY: &str =
    "redirect_uris must only contain http loopback callback URLs with an explicit port";
const GRANT_INVALID: &str = "grant request is invalid";
const NO_CLIENT_AUTH: &str = "no client authentication mechanism provided";
const BAD_TARGET: &str = "resource indicator is missing, or unknown";

pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn load() -> Result<Keys, jsonwebtoken::errors::Error> {
        Ok(Keys {
            encoding: EncodingKey::from_rsa_pem(SANDBOX_RSA_PEM.as_bytes())?,
            decoding: DecodingKey::from_rsa_components(SANDBOX_RSA_N, SANDBOX_RSA_E)?,
        })
    }
}

/// Lifetimes taken from the token policy when the provider is built (service.js
/// `createConfiguration`): access = tokenExpirationTime, refresh/grant = sessionExpirationTime.
#[derive(Debug, Clone, Copy)]
struct Ttl {
    access: i64,
    session: i64,
}

#[derive(Default)]
pub(crate) struct ProviderState {
    ttl: Option<Ttl>,
    clients: HashMap<String, Client>,
    interactions: HashMap<String, Interaction>,
    codes: HashMap<String, AuthCode>,
    grants: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, RefreshToken>,
    devices: HashMap<String, DeviceCode>,
}

impl ProviderState {
    /// A server restart: the next OAuth request rebuilds the provider from the policy.
    /// Clients, grants and tokens are database rows and survive.
    pub fn restart(&mut self) {
        self.ttl = None;
    }

    fn prune(&mut self, now: i64) {
        self.interactions.retain(|_, i| i.expires_at > now);
        self.codes.retain(|_, c| c.expires_at > now);
        // Expired device codes are kept a while so that polls get `expired_token`.
        self.devices
            .retain(|_, d| d.expires_at + DEVICE_CODE_TTL > now);
        self.refresh_tokens.retain(|_, r| r.expires_at > now);
    }

    fn revoke_grant(&mut self, grant_id: &str) {
        if let Some(grant) = self.grants.get_mut(grant_id) {
            grant.revoked = true;
        }
        self.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
    }
}

#[derive(Debug, Clone)]
struct Client {
    id: String,
    name: Option<String>,
    native: bool,
    secret: Option<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    redirect_uris: Vec<String>,
    registration_access_token: String,
    /// The registration metadata, as `GET registration_client_uri` returns it.
    metadata: Value,
}

impl Client {
    fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.clone())
    }

    fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// oidc-provider `redirectUriAllowed`: exact match, except that native clients on a
    /// loopback http redirect may use any port (RFC 8252 §7.3). Host and path must match.
    fn redirect_allowed(&self, candidate: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == candidate) {
            return true;
        }
        let Ok(mut presented) = url::Url::parse(candidate) else {
            return false;
        };
        if !(self.native && presented.scheme() == "http" && is_loopback_host(&presented)) {
            return false;
        }
        let _ = presented.set_port(None);
        self.redirect_uris.iter().any(|registered| {
            url::Url::parse(registered).is_ok_and(|mut r| {
                let _ = r.set_port(None);
                r == presented
            })
        })
    }
}

struct Interaction {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scope: Vec<String>,
    code_challenge: String,
    resource: Option<String>,
    prompt_consent: bool,
    expires_at: i64,
    /// Set once the consent form was submitted.
    grant_id: Option<String>,
}

struct AuthCode {
    client_id: String,
    grant_id: String,
    redirect_uri: String,
    code_challenge: String,
    resource: Option<String>,
    expires_at: i64,
    consumed: bool,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    user_id: u64,
    scope: Vec<String>,
    resource: Option<String>,
    offline: bool,
    /// Consent time + sessionExpirationTime: the hard cap of every refresh.
    expires_at: i64,
    revoked: bool,
}

struct RefreshToken {
    grant_id: String,
    client_id: String,
    expires_at: i64,
    consumed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

struct DeviceCode {
    user_code: String,
    client_id: String,
    scope: Vec<String>,
    resource: Option<String>,
    expires_at: i64,
    status: DeviceStatus,
    grant_id: Option<String>,
    consumed: bool,
}

fn is_loopback_host(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// The TTLs in force, building the provider (reading the policy) on first use.
fn ttl(w: &mut World) -> Ttl {
    if let Some(ttl) = w.idp.ttl {
        return ttl;
    }
    let policy = w.policy.policy;
    let ttl = Ttl {
        access: policy.token_expiration.as_secs() as i64,
        session: policy.session_expiration.as_secs() as i64,
    };
    w.idp.ttl = Some(ttl);
    ttl
}

fn parse_scope(raw: &str) -> Vec<String> {
    let mut scope: Vec<String> = Vec::new();
    for s in raw.split_whitespace() {
        if SCOPES.contains(&s) && !scope.iter().any(|x| x == s) {
            scope.push(s.to_string());
        }
    }
    scope
}

fn has(scope: &[String], name: &str) -> bool {
    scope.iter().any(|s| s == name)
}

fn pkce_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    client_id: String,
    iss: String,
    jti: String,
    sub: String,
    iat: i64,
    exp: i64,
    scope: String,
    aud: String,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    iss: String,
}

fn rs256_header(typ: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = typ.map(str::to_string);
    header.kid = Some(KID.to_string());
    header
}

fn sign_rs256<T: Serialize>(sb: &Shared, header: &Header, claims: &T) -> String {
    jsonwebtoken::encode(header, claims, &sb.keys.encoding).unwrap_or_else(|err| {
        tracing::error!(%err, "sandbox: cannot sign an RS256 token");
        String::new()
    })
}

/// A verified OAuth access token, as the bearer bridge needs it.
pub(crate) struct VerifiedAccessToken {
    pub sub: u64,
    pub jti: String,
    pub exp: i64,
}

/// Whether a bearer looks like one of our RS256 access tokens (NocoBase's own are HS256).
pub(crate) fn looks_like_access_token(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::RS256)
}

/// Signature, issuer, audience and expiry (sandbox clock) of an access token.
pub(crate) fn verify_access_token(sb: &Shared, token: &str) -> Option<VerifiedAccessToken> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessClaims>(token, &sb.keys.decoding, &validation)
        .ok()?
        .claims;
    let valid =
        claims.iss == sb.issuer() && claims.aud == sb.resource() && claims.exp > sb.now_secs();
    valid.then_some(())?;
    Some(VerifiedAccessToken {
        sub: claims.sub.parse().ok()?,
        jti: claims.jti,
        exp: claims.exp,
    })
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    token_type: &'static str,
}

/// Issues access (+ id, + refresh) tokens for a grant.
fn issue_tokens(sb: &Shared, w: &mut World, grant_id: &str) -> Option<TokenResponse> {
    let ttl = ttl(w);
    let grant = w.idp.grants.get(grant_id)?.clone();
    let now = sb.now_secs();
    let (access_token, scope) = match &grant.resource {
        // With a resource indicator: an RS256 JWT for the `api` resource server.
        Some(aud) => {
            let scope: Vec<&str> = grant
                .scope
                .iter()
                .map(String::as_str)
                .filter(|s| RESOURCE_SCOPES.contains(s))
                .collect();
            let claims = AccessClaims {
                client_id: grant.client_id.clone(),
                iss: sb.issuer(),
                jti: http::random_b64(32),
                sub: grant.user_id.to_string(),
                iat: now,
                exp: now + ttl.access,
                scope: scope.join(" "),
                aud: aud.clone(),
            };
            (
                sign_rs256(sb, &rs256_header(Some("at+jwt")), &claims),
                claims.scope,
            )
        }
        // Without one: an opaque token that NocoBase's API does not accept.
        None => (http::random_b64(32), grant.scope.join(" ")),
    };
    let id_token = has(&grant.scope, "openid").then(|| {
        let claims = IdClaims {
            sub: grant.user_id.to_string(),
            aud: &grant.client_id,
            exp: now + ID_TOKEN_TTL,
            iat: now,
            iss: sb.issuer(),
        };
        sign_rs256(sb, &rs256_header(None), &claims)
    });
    let refresh_token = grant.offline.then(|| {
        let token = http::random_b64(32);
        w.idp.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                grant_id: grant_id.to_string(),
                client_id: grant.client_id.clone(),
                expires_at: (now + ttl.session).min(grant.expires_at),
                consumed: false,
            },
        );
        token
    });
    Some(TokenResponse {
        access_token,
        expires_in: ttl.access,
        id_token,
        refresh_token,
        scope,
        token_type: "Bearer",
    })
}

fn new_grant(
    sb: &Shared,
    w: &mut World,
    client: &Client,
    user_id: u64,
    scope: &[String],
    resource: Option<String>,
    consent_prompted: bool,
) -> String {
    let ttl = ttl(w);
    // oidc-provider drops offline_access unless consent was prompted (device flow: always).
    let offline =
        has(scope, "offline_access") && consent_prompted && client.allows_grant("refresh_token");
    let scope = scope
        .iter()
        .filter(|s| offline || s.as_str() != "offline_access")
        .cloned()
        .collect();
    let grant_id = http::random_b64(32);
    w.idp.grants.insert(
        grant_id.clone(),
        Grant {
            client_id: client.id.clone(),
            user_id,
            scope,
            resource,
            offline,
            expires_at: sb.now_secs() + ttl.session,
            revoked: false,
        },
    );
    grant_id
}

// ---------------------------------------------------------------------------------------------
// Routing

/// `/api/.well-known/*` (discovery).
pub(crate) async fn well_known(
    State(sb): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match name.as_str() {
        "openid-configuration" | "oauth-authorization-server" => {
            ttl(&mut sb.world());
            let mut resp = http::json(StatusCode::OK, &discovery(&sb));
            http::set_header(&mut resp, "access-control-allow-origin", "*");
            http::set_header(&mut resp, "vary", "Origin");
            resp
        }
        _ => not_found(),
    }
}

fn discovery(sb: &Shared) -> Value {
    let o = &sb.origin;
    json!({
        "authorization_endpoint": format!("{o}/api/idpOAuth/authorize"),
        "device_authorization_endpoint": format!("{o}/api/idpOAuth/device/auth"),
        "claims_parameter_supported": false,
        "claims_supported": ["sub", "name", "preferred_username", "email", "email_verified", "sid", "auth_time", "iss"],
        "code_challenge_methods_supported": ["S256"],
        "end_session_endpoint": format!("{o}/api/idpOAuth/end-session"),
        "grant_types_supported": ["implicit", "authorization_code", "refresh_token", DEVICE_GRANT],
        "issuer": sb.issuer(),
        "jwks_uri": format!("{o}/api/idpOAuth/jwks"),
        "registration_endpoint": format!("{o}/api/idpOAuth/register"),
        "authorization_response_iss_parameter_supported": true,
        "response_modes_supported": ["form_post", "fragment", "query"],
        "response_types_supported": ["code id_token", "code", "id_token", "none"],
        "scopes_supported": SCOPES,
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_jwt", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "PS256", "ES256", "Ed25519", "EdDSA"],
        "token_endpoint": format!("{o}/api/idpOAuth/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
        // Recorded as is: 2.2.15 advertises PAR outside /api.
        "pushed_authorization_request_endpoint": format!("{o}/request"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{o}/api/idpOAuth/me"),
        "dpop_signing_alg_values_supported": ["ES256", "Ed25519", "EdDSA"],
        "revocation_endpoint": format!("{o}/api/idpOAuth/revoke"),
        "claim_types_supported": ["normal"],
        "introspection_endpoint": format!("{o}/api/idpOAuth/introspection"),
    })
}

/// `/api/idpOAuth/*`. NocoBase's own routes match exactly; oidc-provider's router ignores
/// case and a trailing slash (which is what lets `/register/` skip NocoBase's check).
pub(crate) async fn dispatch(
    State(sb): State<Arc<Shared>>,
    Path(rest): Path<String>,
    req: Req,
) -> Response {
    {
        let mut w = sb.world();
        ttl(&mut w);
        let now = sb.now_secs();
        w.idp.prune(now);
    }
    let method = req.method.clone();
    if let Some(uid) = rest.strip_prefix("interaction/") {
        return match method {
            Method::GET => interaction_get(&sb, &req, uid),
            Method::POST => interaction_post(&sb, &req, uid),
            _ => not_found(),
        };
    }
    match (&method, rest.as_str()) {
        (&Method::GET, "device/verification") => return device_verification_get(&sb, &req),
        (&Method::POST, "device/verification:approve") => {
            return device_verification_post(&sb, &req, true)
        }
        (&Method::POST, "device/verification:cancel") => {
            return device_verification_post(&sb, &req, false)
        }
        _ => {}
    }
    let trimmed = rest.strip_suffix('/').unwrap_or(&rest);
    let lower = trimmed.to_ascii_lowercase();
    // Lower-casing ASCII keeps byte offsets, so ids can be sliced from `trimmed`.
    match (method, lower.as_str()) {
        (Method::POST, "register") => {
            let nocobase_check = rest == "register" && !sb.custom_scheme_redirects();
            register(&sb, &req, nocobase_check)
        }
        (Method::GET, p) if p.starts_with("register/") => {
            read_registration(&sb, &req, &trimmed["register/".len()..])
        }
        (Method::GET | Method::POST, "authorize") => authorize(&sb, &req),
        (Method::GET | Method::POST, p) if p.starts_with("authorize/") => {
            resume(&sb, &req, &trimmed["authorize/".len()..])
        }
        (Method::POST, "token") => token(&sb, &req),
        (Method::POST, "revoke") => revoke(&sb, &req),
        (Method::POST, "device/auth") => device_auth(&sb, &req),
        (Method::GET, "jwks") => http::json(
            StatusCode::OK,
            &json!({ "keys": [{ "kty": "RSA", "use": "sig", "kid": KID, "alg": "RS256", "n": SANDBOX_RSA_N, "e": SANDBOX_RSA_E }] }),
        ),
        // Access tokens for the api resource are not valid at userinfo (recorded).
        (Method::GET | Method::POST, "me") => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "invalid token provided",
        ),
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------------------------
// Registration

fn register(sb: &Shared, req: &Req, nocobase_check: bool) -> Response {
    let invalid_metadata =
        |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", d);
    let body = if req.is_json() {
        match req.json() {
            Some(v) => v,
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "could not parse the request body as JSON",
                )
            }
        }
    } else if nocobase_check {
        // NocoBase's check runs on whatever koa-bodyparser made of it: a form body has no
        // redirect_uris array, so it fails the loopback rule (recorded).
        req.body_params().unwrap_or(Value::Null)
    } else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "only application/json content-type bodies are supported on POST /register",
        );
    };
    let empty = serde_json::Map::new();
    let meta = body.as_object().unwrap_or(&empty);

    let strings = |key: &str, default: &[&str]| -> Result<Vec<String>, Response> {
        match meta.get(key) {
            None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid_metadata(&format!("{key} must only contain strings"))),
            Some(_) => Err(invalid_metadata(&format!("{key} must be an array"))),
        }
    };
    let grant_types = match strings("grant_types", &["authorization_code"]) {
        Ok(g) => g,
        Err(resp) if nocobase_check => {
            drop(resp);
            return invalid_metadata(LOOPBACK_ONLY);
        }
        Err(resp) => return resp,
    };

    if nocobase_check {
        // provider-dispatch.js assertRegistrationRedirectUris.
        if meta
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|id| id.starts_with("app:"))
        {
            return invalid_metadata("client_id prefix app: is reserved");
        }
        let device_only = grant_types.iter().any(|g| g == DEVICE_GRANT)
            && !grant_types.iter().any(|g| g == "authorization_code");
        let ok = match meta.get("redirect_uris") {
            None | Some(Value::Null) => device_only,
            Some(Value::Array(list)) if list.is_empty() => device_only,
            Some(Value::Array(list)) => list
                .iter()
                .all(|u| u.as_str().is_some_and(is_loopback_with_port)),
            Some(_) => false,
        };
        if !ok {
            return invalid_metadata(LOOPBACK_ONLY);
        }
    }

    // oidc-provider's own metadata rules.
    let application_type = meta
        .get("application_type")
        .and_then(Value::as_str)
        .unwrap_or("web");
    if application_type != "web" && application_type != "native" {
        return invalid_metadata("application_type must be one of [native, web]");
    }
    let native = application_type == "native";
    const GRANTS: [&str; 4] = [
        "implicit",
        "authorization_code",
        "refresh_token",
        DEVICE_GRANT,
    ];
    if grant_types.iter().any(|g| !GRANTS.contains(&g.as_str())) {
        return invalid_metadata("grant_types can only contain 'implicit', 'authorization_code', 'refresh_token', or 'urn:ietf:params:oauth:grant-type:device_code'");
    }
    let response_types = match strings("response_types", &["code"]) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if response_types
        .iter()
        .any(|r| !["code", "id_token", "code id_token", "none"].contains(&r.as_str()))
    {
        return invalid_metadata(
            "response_types can only contain 'code id_token', 'code', 'id_token', or 'none'",
        );
    }
    if response_types.iter().any(|r| r.contains("code"))
        && !grant_types.iter().any(|g| g == "authorization_code")
    {
        return invalid_metadata(
            "grant_types must contain 'authorization_code' when code is amongst response_types",
        );
    }
    let auth_method = meta
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or("client_secret_basic");
    if !["none", "client_secret_basic", "client_secret_post"].contains(&auth_method) {
        return invalid_metadata("token_endpoint_auth_method must be one of none, client_secret_basic, client_secret_post");
    }
    let redirect_uris = match strings("redirect_uris", &[]) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if redirect_uris.is_empty() && !response_types.is_empty() {
        return invalid_metadata("redirect_uris is mandatory property");
    }
    for uri in &redirect_uris {
        if let Err(resp) = check_redirect_uri(native, uri) {
            return resp;
        }
    }
    let post_logout = match strings("post_logout_redirect_uris", &[]) {
        Ok(p) => p,
        Err(resp) => return resp,
    };

    let client_id = http::random_b64(32);
    let rat = http::random_b64(32);
    let issued_at = sb.now_secs();
    let mut metadata = json!({
        "application_type": application_type,
        "grant_types": grant_types,
        "id_token_signed_response_alg": "RS256",
        "require_auth_time": false,
        "response_types": response_types,
        "subject_type": "public",
        "token_endpoint_auth_method": auth_method,
        "post_logout_redirect_uris": post_logout,
        "require_pushed_authorization_requests": false,
        "dpop_bound_access_tokens": false,
        "client_id_issued_at": issued_at,
        "client_id": client_id,
    });
    let name = meta
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(name) = &name {
        metadata["client_name"] = json!(name);
    }
    metadata["redirect_uris"] = json!(redirect_uris);
    if let Some(scope) = meta.get("scope").and_then(Value::as_str) {
        metadata["scope"] = json!(scope);
    }
    let secret = (auth_method != "none").then(|| http::random_b64(48));
    if let Some(secret) = &secret {
        metadata["client_secret"] = json!(secret);
        metadata["client_secret_expires_at"] = json!(0);
    }
    metadata["registration_client_uri"] =
        json!(format!("{}/api/idpOAuth/register/{client_id}", sb.origin));
    let client = Client {
        id: client_id.clone(),
        name,
        native,
        secret,
        grant_types,
        response_types,
        redirect_uris,
        registration_access_token: rat.clone(),
        metadata: metadata.clone(),
    };
    sb.world().idp.clients.insert(client_id, client);
    metadata["registration_access_token"] = json!(rat);
    let mut resp = http::json(StatusCode::CREATED, &metadata);
    http::no_store(&mut resp);
    resp
}

/// NocoBase's rule: `http:`, a loopback hostname and a non-empty `URL.port`.
fn is_loopback_with_port(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| u.scheme() == "http" && is_loopback_host(&u) && u.port().is_some())
}

/// oidc-provider's redirect-URI rules for native and web clients.
fn check_redirect_uri(native: bool, uri: &str) -> Result<(), Response> {
    let invalid = |d: &str| {
        Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            d,
        ))
    };
    let Ok(url) = url::Url::parse(uri) else {
        return invalid("redirect_uris must only contain valid uris");
    };
    if url.fragment().is_some() {
        return invalid("redirect_uris must not contain fragments");
    }
    match (native, url.scheme()) {
        (_, "https") => Ok(()),
        (true, "http") if is_loopback_host(&url) => Ok(()),
        (true, "http") => invalid("redirect_uris for native clients using http as a protocol can only use loopback addresses as hostnames"),
        (true, scheme) if scheme.contains('.') => Ok(()),
        (true, _) => invalid("redirect_uris for native clients using Custom URI scheme should use reverse domain name based scheme"),
        (false, "http") => Ok(()),
        (false, _) => invalid("redirect_uris must only contain web uris"),
    }
}

fn read_registration(sb: &Shared, req: &Req, client_id: &str) -> Response {
    let presented = nocobase::bearer_token(req);
    let w = sb.world();
    match w.idp.clients.get(client_id) {
        Some(client) if presented.as_deref() == Some(client.registration_access_token.as_str()) => {
            let mut resp = http::json(StatusCode::OK, &client.metadata);
            http::no_store(&mut resp);
            resp
        }
        _ => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "invalid token provided",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization endpoint and interaction

/// Errors oidc-provider cannot send to the client: NocoBase's error page.
fn error_page(sb: &Shared, error: &str, description: &str, state: Option<&str>) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    let issuer = sb.issuer();
    pairs.push(("iss", &issuer));
    redirect(StatusCode::FOUND, &append_query("/idp-oauth/error", &pairs))
}

/// Errors sent back to a verified redirect_uri (303, query or fragment).
fn client_error(
    sb: &Shared,
    redirect_uri: &str,
    fragment: bool,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    out.append_pair("error", error)
        .append_pair("error_description", description);
    if let Some(state) = state {
        out.append_pair("state", state);
    }
    out.append_pair("iss", &sb.issuer());
    let location = if fragment {
        format!("{redirect_uri}#{}", out.finish())
    } else {
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        format!("{redirect_uri}{sep}{}", out.finish())
    };
    redirect(StatusCode::SEE_OTHER, &location)
}

fn authorize(sb: &Shared, req: &Req) -> Response {
    let params = if req.method == Method::POST {
        req.form()
    } else {
        req.query()
    };
    let state = params.non_empty("state");
    let Some(client_id) = params.non_empty("client_id") else {
        return error_page(
            sb,
            "invalid_request",
            "missing required parameter 'client_id'",
            state,
        );
    };
    let Some(client) = sb.world().idp.clients.get(client_id).cloned() else {
        return error_page(sb, "invalid_client", "client is invalid", state);
    };
    let redirect_uri = match params.non_empty("redirect_uri") {
        Some(uri) => uri.to_string(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return error_page(
                sb,
                "invalid_request",
                "missing required parameter 'redirect_uri'",
                state,
            )
        }
    };
    if !client.redirect_allowed(&redirect_uri) {
        return error_page(
            sb,
            "invalid_redirect_uri",
            "redirect_uri did not match any of the client's registered redirect_uris",
            state,
        );
    }
    let fail = |error: &str, description: &str| {
        client_error(sb, &redirect_uri, false, error, description, state)
    };
    let Some(response_type) = params.non_empty("response_type") else {
        return fail(
            "invalid_request",
            "missing required parameter 'response_type'",
        );
    };
    if response_type != "code" {
        let fragment = response_type
            .split_whitespace()
            .any(|t| t == "token" || t == "id_token");
        return client_error(
            sb,
            &redirect_uri,
            fragment,
            "unsupported_response_type",
            "unsupported response_type requested",
            state,
        );
    }
    if !client.response_types.iter().any(|r| r == "code") {
        return fail(
            "unauthorized_client",
            "requested response_type is not allowed for this client",
        );
    }
    // PKCE is required (`pkce.required = () => true`), S256 only.
    if params
        .get("code_challenge_method")
        .is_some_and(|m| m != "S256")
    {
        return fail(
            "invalid_request",
            "not supported value of code_challenge_method",
        );
    }
    let Some(code_challenge) = params.non_empty("code_challenge") else {
        return fail(
            "invalid_request",
            "code_challenge must be provided with code_challenge_method",
        );
    };
    if !(43..=128).contains(&code_challenge.len()) {
        return fail(
            "invalid_request",
            "code_challenge must be a string with a minimum length of 43 characters",
        );
    }
    let resource = match params.count("resource") {
        0 => None,
        1 if params.get("resource") == Some(sb.resource().as_str()) => Some(sb.resource()),
        _ => return fail("invalid_target", BAD_TARGET),
    };
    let scope = parse_scope(params.get("scope").unwrap_or(""));
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split_whitespace()
        .collect();
    if prompts.contains(&"none") {
        let signed_in = req
            .cookie(TOKEN_COOKIE)
            .is_some_and(|t| nocobase::authenticate_token(sb, &t, false).is_ok());
        return if signed_in {
            fail(
                "interaction_required",
                "native clients require End-User interaction",
            )
        } else {
            fail("login_required", "End-User authentication is required")
        };
    }

    let uid = http::random_b64(16);
    let now = sb.now_secs();
    sb.world().idp.interactions.insert(
        uid.clone(),
        Interaction {
            client_id: client.id.clone(),
            redirect_uri,
            state: state.map(str::to_string),
            scope,
            code_challenge: code_challenge.to_string(),
            resource,
            prompt_consent: prompts.contains(&"consent"),
            expires_at: now + INTERACTION_TTL,
            grant_id: None,
        },
    );
    let mut resp = redirect(
        StatusCode::SEE_OTHER,
        &format!("/idp-oauth/interaction/{uid}"),
    );
    let expires = http::http_date(now + INTERACTION_TTL);
    http::add_cookie(&mut resp, &format!("_interaction={uid}; path=/idp-oauth/interaction/{uid}; expires={expires}; samesite=lax; httponly"));
    http::add_cookie(&mut resp, &format!("_interaction_resume={uid}; path=/api/idpOAuth/authorize/{uid}; expires={expires}; samesite=lax; httponly"));
    resp
}

/// What the consent card shows.
pub(crate) struct InteractionView {
    pub client_name: String,
    /// "openid offline_access api | <origin>/api/: api", as the interaction API reports it.
    pub details: String,
}

pub(crate) fn interaction_view(sb: &Shared, uid: &str) -> Option<InteractionView> {
    let w = sb.world();
    let interaction = w.idp.interactions.get(uid)?;
    let client = w.idp.clients.get(&interaction.client_id)?;
    let mut details = interaction.scope.join(" ");
    if let Some(resource) = &interaction.resource {
        let api: Vec<&str> = interaction
            .scope
            .iter()
            .map(String::as_str)
            .filter(|s| RESOURCE_SCOPES.contains(s))
            .collect();
        details = format!("{details} | {resource}: {}", api.join(" "));
    }
    Some(InteractionView {
        client_name: client.display_name(),
        details,
    })
}

/// The user behind an interaction request: the SPA sends a Bearer token, the sandbox's
/// no-JavaScript form relies on the browser's NocoBase session cookie.
fn interaction_user(sb: &Shared, req: &Req) -> Result<nocobase::Checked, AuthError> {
    match nocobase::bearer_token(req) {
        Some(token) => nocobase::authenticate_token(sb, &token, false),
        None => {
            let token = req.cookie(TOKEN_COOKIE).ok_or(AuthError::EmptyToken)?;
            nocobase::authenticate_token(sb, &token, false)
        }
    }
}

/// `GET /api/idpOAuth/interaction/<uid>` (what the SPA polls).
fn interaction_get(sb: &Shared, req: &Req, uid: &str) -> Response {
    let Some(view) = interaction_view(sb, uid) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "interaction session not found",
        );
    };
    match interaction_user(sb, req) {
        Err(_) => http::json(StatusCode::OK, &json!({ "prompt": "login" })),
        Ok(checked) => {
            let mut resp = http::json(
                StatusCode::OK,
                &json!({ "prompt": "consent", "clientName": view.client_name, "details": view.details }),
            );
            nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
            resp
        }
    }
}

/// `POST /api/idpOAuth/interaction/<uid>`: Continue and Cancel. In 2.2.15 this middleware runs
/// before the body parser, so `cancel` is never seen and both approve: kept faithfully.
fn interaction_post(sb: &Shared, req: &Req, uid: &str) -> Response {
    let user = match interaction_user(sb, req) {
        Ok(checked) => checked.user,
        Err(err) if req.wants_json() => return err.response(req.api_locale()),
        Err(_) => {
            let back = format!("/idp-oauth/interaction/{uid}");
            return redirect(
                StatusCode::SEE_OTHER,
                &format!("/signin?redirect={}", http::encode_component(&back)),
            );
        }
    };
    {
        let mut w = sb.world();
        let Some(interaction) = w.idp.interactions.get(uid) else {
            drop(w);
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "interaction session not found",
            );
        };
        let (client_id, scope, resource, prompted) = (
            interaction.client_id.clone(),
            interaction.scope.clone(),
            interaction.resource.clone(),
            interaction.prompt_consent,
        );
        let Some(client) = w.idp.clients.get(&client_id).cloned() else {
            drop(w);
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "client is invalid",
            );
        };
        let grant_id = new_grant(sb, &mut w, &client, user.id, &scope, resource, prompted);
        if let Some(interaction) = w.idp.interactions.get_mut(uid) {
            interaction.grant_id = Some(grant_id);
        }
    }
    let redirect_to = format!("{}/api/idpOAuth/authorize/{uid}", sb.origin);
    if req.wants_json() {
        http::json(StatusCode::OK, &json!({ "redirectTo": redirect_to }))
    } else {
        redirect(StatusCode::SEE_OTHER, &redirect_to)
    }
}

/// `/api/idpOAuth/authorize/<uid>`: resumes the authorization after the interaction.
fn resume(sb: &Shared, req: &Req, uid: &str) -> Response {
    if req.cookie("_interaction_resume").as_deref() != Some(uid) {
        return error_page(
            sb,
            "invalid_request",
            "interaction session id cookie not found",
            None,
        );
    }
    let now = sb.now_secs();
    let mut w = sb.world();
    let Some(interaction) = w.idp.interactions.get(uid) else {
        drop(w);
        return error_page(sb, "invalid_request", "interaction session not found", None);
    };
    let Some(grant_id) = interaction.grant_id.clone() else {
        // Not finished yet: back to the interaction page.
        drop(w);
        return redirect(
            StatusCode::SEE_OTHER,
            &format!("/idp-oauth/interaction/{uid}"),
        );
    };
    let Some(interaction) = w.idp.interactions.remove(uid) else {
        drop(w);
        return error_page(sb, "invalid_request", "interaction session not found", None);
    };
    let code = http::random_b64(32);
    w.idp.codes.insert(
        code.clone(),
        AuthCode {
            client_id: interaction.client_id,
            grant_id,
            redirect_uri: interaction.redirect_uri.clone(),
            code_challenge: interaction.code_challenge,
            resource: interaction.resource,
            expires_at: now + CODE_TTL,
            consumed: false,
        },
    );
    drop(w);
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = interaction.state.as_deref() {
        pairs.push(("state", state));
    }
    let issuer = sb.issuer();
    pairs.push(("iss", &issuer));
    let mut resp = redirect(
        StatusCode::SEE_OTHER,
        &append_query(&interaction.redirect_uri, &pairs),
    );
    const GONE: &str = "expires=Thu, 01 Jan 1970 00:00:00 GMT";
    http::add_cookie(
        &mut resp,
        &format!(
            "_interaction=; path=/idp-oauth/interaction/{uid}; {GONE}; samesite=lax; httponly"
        ),
    );
    http::add_cookie(&mut resp, &format!("_interaction_resume=; path=/api/idpOAuth/authorize/{uid}; {GONE}; samesite=lax; httponly"));
    resp
}

// ---------------------------------------------------------------------------------------------
// Token and revocation endpoints

/// client_secret_basic, client_secret_post or `none` (public clients send only client_id).
fn authenticate_client(w: &World, req: &Req, form: &Params) -> Result<Client, Response> {
    let basic = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_string(), Some(secret.to_string())))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => match form.non_empty("client_id") {
            Some(id) => (
                id.to_string(),
                form.get("client_secret").map(str::to_string),
            ),
            None => {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    NO_CLIENT_AUTH,
                ))
            }
        },
    };
    let failed = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    };
    let client = w.idp.clients.get(&id).ok_or_else(failed)?;
    if client.secret.is_some() && client.secret != secret {
        return Err(failed());
    }
    Ok(client.clone())
}

fn token_ok(body: &TokenResponse) -> Response {
    let mut resp = http::json(StatusCode::OK, &json!(body));
    http::no_store(&mut resp);
    resp
}

fn invalid_grant() -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", GRANT_INVALID)
}

fn missing(param: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("missing required parameter '{param}'"),
    )
}

fn token(sb: &Shared, req: &Req) -> Response {
    if !req.is_form() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "only application/x-www-form-urlencoded content-type bodies are supported on POST /token",
        );
    }
    let form = req.form();
    let mut w = sb.world();
    let client = match authenticate_client(&w, req, &form) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Some(grant_type) = form.non_empty("grant_type") else {
        return missing("grant_type");
    };
    if !["authorization_code", "refresh_token", DEVICE_GRANT].contains(&grant_type) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant_type requested",
        );
    }
    if !client.allows_grant(grant_type) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "requested grant type is not allowed for this client",
        );
    }
    let resource = match form.count("resource") {
        0 => None,
        1 => form.get("resource").map(str::to_string),
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", BAD_TARGET),
    };
    match grant_type {
        "authorization_code" => code_grant(sb, &mut w, &client, &form, resource),
        "refresh_token" => refresh_grant(sb, &mut w, &client, &form, resource),
        _ => device_grant(sb, &mut w, &client, &form),
    }
}

fn code_grant(
    sb: &Shared,
    w: &mut World,
    client: &Client,
    form: &Params,
    resource: Option<String>,
) -> Response {
    let Some(code) = form.non_empty("code") else {
        return missing("code");
    };
    let now = sb.now_secs();
    let Some(stored) = w.idp.codes.get_mut(code) else {
        return invalid_grant();
    };
    if stored.consumed {
        // Replay: oidc-provider revokes everything issued from this code.
        let grant_id = stored.grant_id.clone();
        w.idp.revoke_grant(&grant_id);
        return invalid_grant();
    }
    if stored.expires_at <= now || stored.client_id != client.id {
        return invalid_grant();
    }
    // `resource` at the token endpoint must be the one given at authorize.
    if let Some(resource) = &resource {
        if stored.resource.as_ref() != Some(resource) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", BAD_TARGET);
        }
    }
    let verifier_ok = form
        .non_empty("code_verifier")
        .is_some_and(|v| pkce_s256(v) == stored.code_challenge);
    if !verifier_ok || form.get("redirect_uri") != Some(stored.redirect_uri.as_str()) {
        return invalid_grant();
    }
    stored.consumed = true;
    let grant_id = stored.grant_id.clone();
    match w.idp.grants.get(&grant_id) {
        Some(g) if !g.revoked && g.expires_at > now => {}
        _ => return invalid_grant(),
    }
    match issue_tokens(sb, w, &grant_id) {
        Some(body) => token_ok(&body),
        None => invalid_grant(),
    }
}

fn refresh_grant(
    sb: &Shared,
    w: &mut World,
    client: &Client,
    form: &Params,
    resource: Option<String>,
) -> Response {
    let Some(presented) = form.non_empty("refresh_token") else {
        return missing("refresh_token");
    };
    let now = sb.now_secs();
    let Some(rt) = w.idp.refresh_tokens.get_mut(presented) else {
        return invalid_grant();
    };
    if rt.client_id != client.id {
        return invalid_grant();
    }
    let grant_id = rt.grant_id.clone();
    if rt.consumed {
        // Reuse detection: a rotated refresh token came back, so the grant is revoked.
        w.idp.revoke_grant(&grant_id);
        return invalid_grant();
    }
    if rt.expires_at <= now {
        return invalid_grant();
    }
    let Some(grant) = w.idp.grants.get(&grant_id).cloned() else {
        return invalid_grant();
    };
    if grant.revoked || grant.expires_at <= now {
        return invalid_grant();
    }
    if let Some(resource) = &resource {
        if grant.resource.as_ref() != Some(resource) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", BAD_TARGET);
        }
    }
    if let Some(requested) = form.get("scope") {
        if requested.split_whitespace().any(|s| !has(&grant.scope, s)) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "refresh token missing requested scope",
            );
        }
    }
    // Public clients: rotate on every use.
    if let Some(rt) = w.idp.refresh_tokens.get_mut(presented) {
        rt.consumed = true;
    }
    match issue_tokens(sb, w, &grant_id) {
        Some(body) => token_ok(&body),
        None => invalid_grant(),
    }
}

fn device_grant(sb: &Shared, w: &mut World, client: &Client, form: &Params) -> Response {
    let Some(device_code) = form.non_empty("device_code") else {
        return missing("device_code");
    };
    let now = sb.now_secs();
    let Some(device) = w.idp.devices.get_mut(device_code) else {
        return invalid_grant();
    };
    if device.client_id != client.id {
        return invalid_grant();
    }
    if device.consumed {
        if let Some(grant_id) = device.grant_id.clone() {
            w.idp.revoke_grant(&grant_id);
        }
        return invalid_grant();
    }
    match device.status {
        DeviceStatus::Denied => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "access_denied",
                "End-User aborted interaction",
            );
        }
        _ if device.expires_at <= now => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "expired_token",
                "device code is expired",
            );
        }
        DeviceStatus::Pending => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "authorization request is still pending as the end-user hasn't yet completed the user interaction steps",
            );
        }
        DeviceStatus::Approved => {}
    }
    device.consumed = true;
    let Some(grant_id) = device.grant_id.clone() else {
        return invalid_grant();
    };
    match issue_tokens(sb, w, &grant_id) {
        Some(body) => token_ok(&body),
        None => invalid_grant(),
    }
}

fn revoke(sb: &Shared, req: &Req) -> Response {
    let form = req.form();
    let mut w = sb.world();
    let client = match authenticate_client(&w, req, &form) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Some(token) = form.non_empty("token") else {
        return missing("token");
    };
    if jsonwebtoken::decode_header(token).is_ok() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "Structured JWT Tokens cannot be revoked via the revocation_endpoint",
        );
    }
    let grant_id = w
        .idp
        .refresh_tokens
        .get(token)
        .filter(|rt| rt.client_id == client.id)
        .map(|rt| rt.grant_id.clone());
    if let Some(grant_id) = grant_id {
        // Revoking a refresh token revokes its grant; access tokens live on (stateless JWTs).
        w.idp.revoke_grant(&grant_id);
    }
    // RFC 7009: unknown tokens are not an error.
    let mut resp = StatusCode::OK.into_response();
    http::no_store(&mut resp);
    resp
}

// ---------------------------------------------------------------------------------------------
// Device flow

fn new_user_code(existing: &HashMap<String, DeviceCode>) -> String {
    use rand::Rng as _;
    loop {
        let mut rng = rand::rng();
        let chars: String = (0..8)
            .map(|_| USER_CODE_CHARSET[rng.random_range(0..USER_CODE_CHARSET.len())] as char)
            .collect();
        let code = format!("{}-{}", &chars[..4], &chars[4..]);
        if !existing.values().any(|d| d.user_code == code) {
            return code;
        }
    }
}

/// oidc-provider normalizes user codes: case and separators do not matter.
fn normalize_user_code(raw: &str) -> String {
    let letters: String = raw
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| USER_CODE_CHARSET.contains(&(*c as u8)) && c.is_ascii())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

fn device_auth(sb: &Shared, req: &Req) -> Response {
    let form = req.form();
    let now = sb.now_secs();
    let mut w = sb.world();
    let client = match authenticate_client(&w, req, &form) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if !client.allows_grant(DEVICE_GRANT) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "requested grant type is not allowed for this client",
        );
    }
    let resource = match form.count("resource") {
        0 => None,
        1 if form.get("resource") == Some(sb.resource().as_str()) => Some(sb.resource()),
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", BAD_TARGET),
    };
    let device_code = http::random_b64(32);
    let user_code = new_user_code(&w.idp.devices);
    w.idp.devices.insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            client_id: client.id.clone(),
            scope: parse_scope(form.get("scope").unwrap_or("")),
            resource,
            expires_at: now + DEVICE_CODE_TTL,
            status: DeviceStatus::Pending,
            grant_id: None,
            consumed: false,
        },
    );
    let verification_uri = format!("{}/idpOAuth/device", sb.origin);
    // No `interval` field in 2.2.15 (clients fall back to RFC 8628's 5 s).
    let mut resp = http::json(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "expires_in": DEVICE_CODE_TTL,
        }),
    );
    http::no_store(&mut resp);
    resp
}

/// A device request as the verification page sees it.
#[derive(Debug, Clone)]
pub(crate) struct DeviceView {
    pub user_code: String,
    pub client_name: String,
    /// "pending", "complete", "cancelled" or "expired".
    pub status: &'static str,
}

impl DeviceView {
    fn json(&self, status: &str) -> Value {
        json!({ "userCode": self.user_code, "clientName": self.client_name, "status": status })
    }
}

fn find_device<'a>(w: &'a World, user_code: &str) -> Option<(&'a String, &'a DeviceCode)> {
    let wanted = normalize_user_code(user_code);
    w.idp.devices.iter().find(|(_, d)| d.user_code == wanted)
}

pub(crate) fn device_view(sb: &Shared, user_code: &str) -> Option<DeviceView> {
    let now = sb.now_secs();
    let w = sb.world();
    let (_, device) = find_device(&w, user_code)?;
    let client_name = w
        .idp
        .clients
        .get(&device.client_id)
        .map(Client::display_name)
        .unwrap_or_default();
    let status = match device.status {
        DeviceStatus::Approved => "complete",
        DeviceStatus::Denied => "cancelled",
        DeviceStatus::Pending if device.expires_at <= now => "expired",
        DeviceStatus::Pending => "pending",
    };
    Some(DeviceView {
        user_code: device.user_code.clone(),
        client_name,
        status,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceError {
    Unknown,
    /// Already approved, cancelled or expired.
    NotPending,
}

/// Approves (creating the grant) or cancels a pending device request.
pub(crate) fn device_decide(
    sb: &Shared,
    user_code: &str,
    user_id: u64,
    approve: bool,
) -> Result<DeviceView, DeviceError> {
    let view = device_view(sb, user_code).ok_or(DeviceError::Unknown)?;
    if view.status != "pending" {
        return Err(DeviceError::NotPending);
    }
    let mut w = sb.world();
    let (device_code, device) = find_device(&w, user_code).ok_or(DeviceError::Unknown)?;
    let (device_code, client_id, scope, resource) = (
        device_code.clone(),
        device.client_id.clone(),
        device.scope.clone(),
        device.resource.clone(),
    );
    let grant_id = if approve {
        let client = w
            .idp
            .clients
            .get(&client_id)
            .cloned()
            .ok_or(DeviceError::Unknown)?;
        // The device flow has no prompt parameter: offline_access only needs asking for.
        Some(new_grant(
            sb, &mut w, &client, user_id, &scope, resource, true,
        ))
    } else {
        None
    };
    if let Some(device) = w.idp.devices.get_mut(&device_code) {
        device.status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        device.grant_id = grant_id;
    }
    Ok(DeviceView {
        status: if approve { "complete" } else { "cancelled" },
        ..view
    })
}

/// `GET /api/idpOAuth/device/verification?user_code=` — `status` is "login" without a
/// usable NocoBase token (recorded), otherwise the request's state.
fn device_verification_get(sb: &Shared, req: &Req) -> Response {
    let locale = req.api_locale();
    let Some(code) = req.query().non_empty("user_code").map(str::to_string) else {
        return errors(
            StatusCode::BAD_REQUEST,
            &rust_i18n::t!("sandbox.device.missing_code", locale = locale),
            None,
        );
    };
    let Some(view) = device_view(sb, &code) else {
        return errors(
            StatusCode::NOT_FOUND,
            &rust_i18n::t!("sandbox.device.invalid", locale = locale),
            None,
        );
    };
    match nocobase::authenticate(sb, req) {
        Err(_) => http::json(StatusCode::OK, &view.json("login")),
        Ok(checked) => {
            let mut resp = http::json(StatusCode::OK, &view.json(view.status));
            nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
            resp
        }
    }
}

/// `POST /api/idpOAuth/device/verification:approve|:cancel`, JSON `{"user_code"}`, Bearer.
fn device_verification_post(sb: &Shared, req: &Req, approve: bool) -> Response {
    let locale = req.api_locale();
    let checked = match nocobase::authenticate(sb, req) {
        Ok(c) => c,
        Err(err) => return err.response(locale),
    };
    let body = req.body_params().unwrap_or(Value::Null);
    let code = body
        .get("user_code")
        .or_else(|| body.get("userCode"))
        .and_then(Value::as_str);
    let mut resp = match code {
        None => errors(
            StatusCode::BAD_REQUEST,
            &rust_i18n::t!("sandbox.device.missing_code", locale = locale),
            None,
        ),
        Some(code) => match device_decide(sb, code, checked.user.id, approve) {
            Ok(view) => http::json(StatusCode::OK, &view.json(view.status)),
            Err(DeviceError::Unknown) => errors(
                StatusCode::NOT_FOUND,
                &rust_i18n::t!("sandbox.device.invalid", locale = locale),
                None,
            ),
            Err(DeviceError::NotPending) => errors(
                StatusCode::BAD_REQUEST,
                &rust_i18n::t!("sandbox.device.not_pending", locale = locale),
                None,
            ),
        },
    };
    nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_key_signs_and_verifies() {
        let keys = Keys::load().expect("sandbox key loads");
        let token = jsonwebtoken::encode(
            &rs256_header(Some("at+jwt")),
            &json!({"sub": "1"}),
            &keys.encoding,
        )
        .expect("signs");
        let mut v = Validation::new(Algorithm::RS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        assert!(jsonwebtoken::decode::<Value>(&token, &keys.decoding, &v).is_ok());
    }

    #[test]
    fn redirect_rules() {
        assert!(is_loopback_with_port("http://127.0.0.1:53682/callback"));
        assert!(is_loopback_with_port("http://[::1]:53682/callback"));
        assert!(!is_loopback_with_port("http://127.0.0.1/callback"));
        assert!(!is_loopback_with_port("http://127.0.0.1:80/callback"));
        assert!(!is_loopback_with_port("https://127.0.0.1:53682/callback"));
        assert!(check_redirect_uri(true, "com.nocobase.wecomcompanion:/oauth/callback").is_ok());
        assert!(check_redirect_uri(true, "nocobase-wecom://oauth/callback").is_err());
        assert!(check_redirect_uri(false, "com.example.app:/cb").is_err());
    }

    #[test]
    fn native_loopback_matching_ignores_only_the_port() {
        let client = Client {
            id: "c".into(),
            name: None,
            native: true,
            secret: None,
            grant_types: vec![],
            response_types: vec![],
            redirect_uris: vec!["http://127.0.0.1:37521/callback".into()],
            registration_access_token: String::new(),
            metadata: Value::Null,
        };
        assert!(client.redirect_allowed("http://127.0.0.1:42505/callback"));
        assert!(!client.redirect_allowed("http://localhost:42505/callback"));
        assert!(!client.redirect_allowed("http://127.0.0.1:42505/other"));
    }

    #[test]
    fn user_codes_normalize() {
        assert_eq!(normalize_user_code("lznn srjc"), "LZNN-SRJC");
        assert_eq!(normalize_user_code("LZNN-SRJC"), "LZNN-SRJC");
    }
}
