//! The token endpoint (authorization_code, refresh_token, device_code) and revocation
//! (nocobase-idp-oauth.md §4–5, §8).

use super::*;

/// client_secret_basic, client_secret_post or `none` (public clients send only client_id).
pub(super) fn authenticate_client(w: &World, req: &Req, form: &Params) -> Result<Client, Response> {
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

pub(super) fn token(sb: &Shared, req: &Req) -> Response {
    if !req.is_form() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "only application/x-www-form-urlencoded content-type bodies are supported on POST /idpOAuth/token",
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
            "invalid_request",
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

/// The revocation endpoint. Unlike the token endpoint its answers carry no
/// `cache-control: no-store` (recorded live).
pub(super) fn revoke(sb: &Shared, req: &Req) -> Response {
    let mut resp = revocation(sb, req);
    resp.headers_mut().remove(axum::http::header::CACHE_CONTROL);
    resp
}

fn revocation(sb: &Shared, req: &Req) -> Response {
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
    // RFC 7009: unknown tokens are not an error. The answer has no body: 204 (recorded).
    StatusCode::NO_CONTENT.into_response()
}
