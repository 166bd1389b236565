//! The device authorization endpoint and the verification API behind `/idpOAuth/device`
//! (nocobase-idp-oauth.md §8).

use super::*;

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
pub(super) fn normalize_user_code(raw: &str) -> String {
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

pub(super) fn device_auth(sb: &Shared, req: &Req) -> Response {
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
            "invalid_request",
            &format!("{DEVICE_GRANT} is not allowed for this client"),
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

/// What the verification API answers when there is nothing to show (recorded live: always 200,
/// `{"status":"missing_code"}` or `{"status":"not_found","userCode":…}`).
fn no_device(user_code: Option<&str>) -> Response {
    match user_code {
        None => http::json(StatusCode::OK, &json!({ "status": "missing_code" })),
        Some(code) => http::json(
            StatusCode::OK,
            &json!({ "status": "not_found", "userCode": code }),
        ),
    }
}

/// `GET /api/idpOAuth/device/verification?user_code=` — a pending request shows `"login"`
/// without a usable NocoBase token (recorded), otherwise its state.
pub(super) fn device_verification_get(sb: &Shared, req: &Req) -> Response {
    let query = req.query();
    let Some(code) = query.non_empty("user_code") else {
        return no_device(None);
    };
    let Some(view) = device_view(sb, code) else {
        return no_device(Some(code));
    };
    match nocobase::authenticate(sb, req) {
        Err(_) if view.status == "pending" => http::json(StatusCode::OK, &view.json("login")),
        Err(_) => http::json(StatusCode::OK, &view.json(view.status)),
        Ok(checked) => {
            let mut resp = http::json(StatusCode::OK, &view.json(view.status));
            nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
            resp
        }
    }
}

/// `POST /api/idpOAuth/device/verification:approve|:cancel`, `{"user_code"}` (or
/// `?user_code=`), with a NocoBase token. Not behind NocoBase's auth middleware: without a
/// user it is a plain 401 with no code. A request that is no longer pending is answered with
/// its state, unchanged (recorded live).
pub(super) fn device_verification_post(sb: &Shared, req: &Req, approve: bool) -> Response {
    let Ok(checked) = nocobase::authenticate(sb, req) else {
        return errors(StatusCode::UNAUTHORIZED, "Authentication required", None);
    };
    let body = req.body_params().unwrap_or(Value::Null);
    let query = req.query();
    let code = body
        .get("user_code")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .or_else(|| query.non_empty("user_code"))
        .map(str::to_string);
    let mut resp = match code {
        None => no_device(None),
        Some(code) => match device_decide(sb, &code, checked.user.id, approve) {
            Ok(view) => http::json(StatusCode::OK, &view.json(view.status)),
            Err(DeviceError::Unknown) => no_device(Some(&code)),
            Err(DeviceError::NotPending) => match device_view(sb, &code) {
                Some(view) => http::json(StatusCode::OK, &view.json(view.status)),
                None => no_device(Some(&code)),
            },
        },
    };
    nocobase::attach_renewal(sb, &mut resp, checked.renewed.as_ref());
    resp
}
