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

mod authorize;
mod device;
mod registration;
mod token;

pub(crate) use authorize::interaction_view;
pub(crate) use device::{device_decide, device_view};

use authorize::{authorize, interaction_get, interaction_post, resume};
use device::{device_auth, device_verification_get, device_verification_post};
use registration::{read_registration, register};
use token::{authenticate_client, revoke, token};

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
    sessions: HashMap<String, ProviderSession>,
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
        self.sessions.retain(|_, s| s.expires_at > now);
    }

    fn revoke_grant(&mut self, grant_id: &str) {
        if let Some(grant) = self.grants.get_mut(grant_id) {
            grant.revoked = true;
        }
        // Like `revokeByGrantId`: every model of the grant goes (refresh tokens, device codes).
        self.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
        self.devices
            .retain(|_, d| d.grant_id.as_deref() != Some(grant_id));
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

#[derive(Clone)]
struct Interaction {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scope: Vec<String>,
    code_challenge: String,
    resource: Option<String>,
    prompt_consent: bool,
    expires_at: i64,
    /// The NocoBase user the provider knows for this interaction: from its `_session` cookie
    /// at authorize time, or once the login step finished (then the prompt is consent).
    account: Option<u64>,
    /// Set when the SPA finished the login prompt with the user's NocoBase token; resuming
    /// then starts a new interaction for the consent prompt (as oidc-provider does).
    login: Option<u64>,
    /// Set once the consent form was submitted.
    grant_id: Option<String>,
}

/// A provider session (`_session` cookie): who signed in at the provider, until when.
struct ProviderSession {
    user_id: u64,
    expires_at: i64,
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
    /// Absent when no resource-server scope was granted (oidc-provider omits empty claims).
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
    if claims.iss != sb.issuer() || claims.aud != sb.resource() || claims.exp <= sb.now_secs() {
        return None;
    }
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
        (Method::GET | Method::POST, "authorize") => {
            let mut resp = authorize(&sb, &req);
            http::no_store(&mut resp);
            resp
        }
        (Method::GET | Method::POST, p) if p.starts_with("authorize/") => {
            let mut resp = resume(&sb, &req, &trimmed["authorize/".len()..]);
            http::no_store(&mut resp);
            resp
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

#[cfg(test)]
mod tests {
    use super::device::normalize_user_code;
    use super::registration::{check_redirect_uri, is_loopback_with_port};
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
