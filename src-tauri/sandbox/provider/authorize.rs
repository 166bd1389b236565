//! The authorization endpoint, the consent interaction and the resume that issues the code
//! (nocobase-idp-oauth.md §2).

use super::*;

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

pub(super) fn authorize(sb: &Shared, req: &Req) -> Response {
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
    let account = provider_session_user(sb, req);
    if prompts.contains(&"none") {
        let signed_in = account.is_some()
            || req
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

    let uid = http::random_b64(32);
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
            account,
            login: None,
            grant_id: None,
        },
    );
    let mut resp = redirect(
        StatusCode::SEE_OTHER,
        &format!("/idp-oauth/interaction/{uid}"),
    );
    interaction_cookies(&mut resp, &uid, now + INTERACTION_TTL);
    resp
}

/// A cookie and its keygrip signature (`<name>.sig`), as koa's signed cookies come.
fn signed_cookie(resp: &mut Response, name: &str, value: &str, attributes: &str) {
    http::add_cookie(resp, &format!("{name}={value}; {attributes}"));
    let signature = if value.is_empty() {
        String::new()
    } else {
        http::random_b64(20)
    };
    http::add_cookie(resp, &format!("{name}.sig={signature}; {attributes}"));
}

/// The two per-interaction cookies (recorded paths: the interaction API and the resume URL).
fn interaction_cookies(resp: &mut Response, uid: &str, expires_at: i64) {
    let expires = http::http_date(expires_at);
    signed_cookie(
        resp,
        "_interaction",
        uid,
        &format!("path=/api/idpOAuth/interaction/{uid}; expires={expires}; samesite=lax; httponly"),
    );
    signed_cookie(
        resp,
        "_interaction_resume",
        uid,
        &format!("path=/api/idpOAuth/authorize/{uid}; expires={expires}; samesite=lax; httponly"),
    );
}

fn clear_resume_cookie(resp: &mut Response, uid: &str) {
    signed_cookie(
        resp,
        "_interaction_resume",
        "",
        &format!("path=/api/idpOAuth/authorize/{uid}; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=lax; httponly"),
    );
}

/// Starts a provider session for `user_id` (the `_session` cookie, as long as a grant lives).
fn start_provider_session(sb: &Shared, resp: &mut Response, user_id: u64) {
    let now = sb.now_secs();
    let id = http::random_b64(32);
    let expires_at = {
        let mut w = sb.world();
        let expires_at = now + ttl(&mut w).session;
        w.idp.sessions.insert(
            id.clone(),
            ProviderSession {
                user_id,
                expires_at,
            },
        );
        expires_at
    };
    signed_cookie(
        resp,
        "_session",
        &id,
        &format!(
            "path=/; samesite=lax; httponly; expires={}",
            http::http_date(expires_at)
        ),
    );
}

/// The user of the browser's provider session, if it has a live one.
fn provider_session_user(sb: &Shared, req: &Req) -> Option<u64> {
    let id = req.cookie("_session").filter(|id| !id.is_empty())?;
    let now = sb.now_secs();
    let w = sb.world();
    w.idp
        .sessions
        .get(&id)
        .filter(|s| s.expires_at > now && w.user(s.user_id).is_some())
        .map(|s| s.user_id)
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

/// `GET /api/idpOAuth/interaction/<uid>` (what the SPA polls). At the login prompt it answers
/// `{"prompt":"login"}`, or, given the user's NocoBase token, finishes the login and answers
/// `{"redirectTo": <resume URL>}`; resuming then starts the consent interaction, which
/// answers `{"prompt":"consent","clientName","details"}` (recorded live).
pub(super) fn interaction_get(sb: &Shared, req: &Req, uid: &str) -> Response {
    let Some(view) = interaction_view(sb, uid) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "interaction session not found",
        );
    };
    let account = sb.world().idp.interactions.get(uid).and_then(|i| i.account);
    if account.is_some() {
        return http::json(
            StatusCode::OK,
            &json!({ "prompt": "consent", "clientName": view.client_name, "details": view.details }),
        );
    }
    match interaction_user(sb, req) {
        Err(_) => http::json(StatusCode::OK, &json!({ "prompt": "login" })),
        Ok(checked) => {
            if let Some(interaction) = sb.world().idp.interactions.get_mut(uid) {
                interaction.login = Some(checked.user.id);
            }
            let redirect_to = format!("{}/api/idpOAuth/authorize/{uid}", sb.origin);
            let mut resp = http::json(StatusCode::OK, &json!({ "redirectTo": redirect_to }));
            nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
            resp
        }
    }
}

/// `POST /api/idpOAuth/interaction/<uid>`: Continue and Cancel. In 2.2.15 this middleware runs
/// before the body parser, so `cancel` is never seen and both approve: kept faithfully.
pub(super) fn interaction_post(sb: &Shared, req: &Req, uid: &str) -> Response {
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
pub(super) fn resume(sb: &Shared, req: &Req, uid: &str) -> Response {
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
        let Some(user_id) = interaction.login else {
            // Not finished yet: back to the interaction page.
            drop(w);
            return redirect(
                StatusCode::SEE_OTHER,
                &format!("/idp-oauth/interaction/{uid}"),
            );
        };
        // The login prompt is done: a provider session, and a new interaction for consent.
        let Some(mut next) = w.idp.interactions.remove(uid) else {
            drop(w);
            return error_page(sb, "invalid_request", "interaction session not found", None);
        };
        let next_uid = http::random_b64(32);
        next.account = Some(user_id);
        next.login = None;
        next.expires_at = now + INTERACTION_TTL;
        w.idp.interactions.insert(next_uid.clone(), next);
        drop(w);
        let mut resp = redirect(
            StatusCode::SEE_OTHER,
            &format!("/idp-oauth/interaction/{next_uid}"),
        );
        clear_resume_cookie(&mut resp, uid);
        interaction_cookies(&mut resp, &next_uid, now + INTERACTION_TTL);
        start_provider_session(sb, &mut resp, user_id);
        return resp;
    };
    let Some(interaction) = w.idp.interactions.remove(uid) else {
        drop(w);
        return error_page(sb, "invalid_request", "interaction session not found", None);
    };
    let user_id = w.idp.grants.get(&grant_id).map(|g| g.user_id);
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
    clear_resume_cookie(&mut resp, uid);
    if let Some(user_id) = user_id {
        start_provider_session(sb, &mut resp, user_id);
    }
    resp
}
