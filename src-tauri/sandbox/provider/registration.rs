//! Dynamic client registration: NocoBase's loopback-only check in front of oidc-provider's
//! metadata rules (nocobase-idp-oauth.md §1), and RFC 7592 read access.

use super::*;

pub(super) fn register(sb: &Shared, req: &Req, nocobase_check: bool) -> Response {
    let body = if req.is_json() {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => v,
            // koa-bodyparser refuses it before NocoBase or oidc-provider see it: NocoBase's
            // error envelope with JSON.parse's message (recorded live).
            Err(err) => return errors(StatusCode::BAD_REQUEST, &err.to_string(), None),
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
    if nocobase_check {
        if let Err(resp) = assert_registration_redirect_uris(meta) {
            return resp;
        }
    }
    let metadata = match ClientMetadata::validate(meta) {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    let (client, rat) = metadata.into_client(sb);
    let mut body = client.metadata.clone();
    body["registration_access_token"] = json!(rat);
    sb.world().idp.clients.insert(client.id.clone(), client);
    let mut resp = http::json(StatusCode::CREATED, &body);
    http::no_store(&mut resp);
    resp
}

/// NocoBase's own refusal (provider-dispatch.js): oidc-provider's error body, but sent by
/// NocoBase, so without oidc-provider's `cache-control: no-store` (recorded live).
fn nocobase_refusal(description: &str) -> Response {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "invalid_client_metadata", "error_description": description }),
    )
}

fn invalid_metadata(description: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// A string-array member of the registration request (`default` when absent).
fn string_list(
    meta: &serde_json::Map<String, Value>,
    key: &str,
    default: &[&str],
) -> Result<Vec<String>, Response> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid_metadata(&format!("{key} must only contain strings"))),
        Some(_) => Err(invalid_metadata(&format!("{key} must be an array"))),
    }
}

/// NocoBase's own check in front of oidc-provider (provider-dispatch.js
/// `assertRegistrationRedirectUris`): `app:` ids are reserved, and every redirect URI must be
/// loopback http with an explicit port; device-only clients may omit them.
fn assert_registration_redirect_uris(
    meta: &serde_json::Map<String, Value>,
) -> Result<(), Response> {
    if meta
        .get("client_id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with("app:"))
    {
        return Err(nocobase_refusal("client_id prefix app: is reserved"));
    }
    let grant_types = string_list(meta, "grant_types", &["authorization_code"])
        .map_err(|_| nocobase_refusal(LOOPBACK_ONLY))?;
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
    if ok {
        Ok(())
    } else {
        Err(nocobase_refusal(LOOPBACK_ONLY))
    }
}

/// Registration metadata that passed oidc-provider's rules.
struct ClientMetadata {
    application_type: String,
    name: Option<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    auth_method: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    scope: Option<String>,
}

impl ClientMetadata {
    fn validate(meta: &serde_json::Map<String, Value>) -> Result<ClientMetadata, Response> {
        const GRANTS: [&str; 4] = [
            "implicit",
            "authorization_code",
            "refresh_token",
            DEVICE_GRANT,
        ];
        const RESPONSE_TYPES: [&str; 4] = ["code", "id_token", "code id_token", "none"];
        const AUTH_METHODS: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];
        let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);

        let application_type = text("application_type").unwrap_or_else(|| "web".to_string());
        if application_type != "web" && application_type != "native" {
            return Err(invalid_metadata(
                "application_type must be one of [native, web]",
            ));
        }
        let grant_types = string_list(meta, "grant_types", &["authorization_code"])?;
        if grant_types.iter().any(|g| !GRANTS.contains(&g.as_str())) {
            return Err(invalid_metadata("grant_types can only contain 'implicit', 'authorization_code', 'refresh_token', or 'urn:ietf:params:oauth:grant-type:device_code'"));
        }
        let response_types = string_list(meta, "response_types", &["code"])?;
        if response_types
            .iter()
            .any(|r| !RESPONSE_TYPES.contains(&r.as_str()))
        {
            return Err(invalid_metadata(
                "response_types can only contain 'code id_token', 'code', 'id_token', or 'none'",
            ));
        }
        if response_types.iter().any(|r| r.contains("code"))
            && !grant_types.iter().any(|g| g == "authorization_code")
        {
            return Err(invalid_metadata(
                "grant_types must contain 'authorization_code' when code is amongst response_types",
            ));
        }
        let auth_method =
            text("token_endpoint_auth_method").unwrap_or_else(|| "client_secret_basic".to_string());
        if !AUTH_METHODS.contains(&auth_method.as_str()) {
            return Err(invalid_metadata(
                "token_endpoint_auth_method must be one of none, client_secret_basic, client_secret_post",
            ));
        }
        let redirect_uris = string_list(meta, "redirect_uris", &[])?;
        if redirect_uris.is_empty() && !response_types.is_empty() {
            return Err(invalid_metadata("redirect_uris is mandatory property"));
        }
        let native = application_type == "native";
        for uri in &redirect_uris {
            check_redirect_uri(native, uri)?;
        }
        Ok(ClientMetadata {
            name: text("client_name"),
            scope: text("scope"),
            post_logout_redirect_uris: string_list(meta, "post_logout_redirect_uris", &[])?,
            application_type,
            grant_types,
            response_types,
            auth_method,
            redirect_uris,
        })
    }

    /// The registered client (with a server-generated id, as always in 2.2.15) and its
    /// registration access token.
    fn into_client(self, sb: &Shared) -> (Client, String) {
        let client_id = http::random_b64(32);
        let rat = http::random_b64(32);
        let mut metadata = json!({
            "application_type": self.application_type,
            "grant_types": self.grant_types,
            "id_token_signed_response_alg": "RS256",
            "require_auth_time": false,
            "response_types": self.response_types,
            "subject_type": "public",
            "token_endpoint_auth_method": self.auth_method,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "require_pushed_authorization_requests": false,
            "dpop_bound_access_tokens": false,
            "client_id_issued_at": sb.now_secs(),
            "client_id": client_id,
        });
        if let Some(name) = &self.name {
            metadata["client_name"] = json!(name);
        }
        metadata["redirect_uris"] = json!(self.redirect_uris);
        if let Some(scope) = &self.scope {
            metadata["scope"] = json!(scope);
        }
        let secret = (self.auth_method != "none").then(|| http::random_b64(48));
        if let Some(secret) = &secret {
            metadata["client_secret"] = json!(secret);
            metadata["client_secret_expires_at"] = json!(0);
        }
        metadata["registration_client_uri"] =
            json!(format!("{}/api/idpOAuth/register/{client_id}", sb.origin));
        let client = Client {
            id: client_id,
            name: self.name,
            native: self.application_type == "native",
            secret,
            grant_types: self.grant_types,
            response_types: self.response_types,
            redirect_uris: self.redirect_uris,
            registration_access_token: rat.clone(),
            metadata,
        };
        (client, rat)
    }
}

/// NocoBase's rule: `http:`, a loopback hostname and a non-empty `URL.port`.
pub(super) fn is_loopback_with_port(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| u.scheme() == "http" && is_loopback_host(&u) && u.port().is_some())
}

/// oidc-provider's redirect-URI rules for native and web clients.
pub(super) fn check_redirect_uri(native: bool, uri: &str) -> Result<(), Response> {
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

pub(super) fn read_registration(sb: &Shared, req: &Req, client_id: &str) -> Response {
    let presented = nocobase::bearer_token(req);
    let w = sb.world();
    match w.idp.clients.get(client_id) {
        Some(client) if presented.as_deref() == Some(client.registration_access_token.as_str()) => {
            let mut body = client.metadata.clone();
            body["registration_access_token"] = json!(client.registration_access_token);
            let mut resp = http::json(StatusCode::OK, &body);
            http::no_store(&mut resp);
            resp
        }
        _ if presented.is_none() => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "no access token provided",
        ),
        _ => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "invalid token provided",
        ),
    }
}
