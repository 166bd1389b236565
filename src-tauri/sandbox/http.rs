//! Small HTTP helpers shared by the sandbox modules: one request extractor that never
//! rejects on bad input, parameter bags, response builders, cookies, URL encoding and
//! locale negotiation.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::Rng as _;
use serde_json::{json, Value};

/// Request bodies above this size are refused (413); nothing the sandbox serves needs more.
const MAX_BODY: usize = 1 << 20;

pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";
pub(crate) const HTML_UTF8: &str = "text/html; charset=utf-8";
pub(crate) const TEXT_UTF8: &str = "text/plain; charset=utf-8";

/// Everything a handler may look at. Built by hand instead of with axum's typed extractors so
/// that malformed queries or bodies reach the handler, which answers the way NocoBase would.
pub(crate) struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, TEXT_UTF8)],
                "Payload Too Large",
            )
                .into_response()
        })?;
        Ok(Req {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            peer,
        })
    }
}

impl Req {
    pub fn query(&self) -> Params {
        Params::parse(self.uri.query().unwrap_or(""))
    }

    /// The body read as `application/x-www-form-urlencoded`, whatever the content type says.
    pub fn form(&self) -> Params {
        Params::parse(&String::from_utf8_lossy(&self.body))
    }

    /// The body as JSON, `None` when it is not valid JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type_is(&self, mime: &str) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(mime))
        })
    }

    pub fn is_json(&self) -> bool {
        self.content_type_is("application/json")
    }

    pub fn is_form(&self) -> bool {
        self.content_type_is("application/x-www-form-urlencoded")
    }

    /// Body parameters the way koa-bodyparser sees them: JSON object or url-encoded form.
    pub fn body_params(&self) -> Option<Value> {
        if self.is_form() {
            let map: serde_json::Map<String, Value> = self
                .form()
                .0
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Some(Value::Object(map))
        } else {
            self.json()
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie(&self.headers, name)
    }

    /// `<path>?<query>` of this request, the form NocoBase uses for `redirect`.
    pub fn path_and_query(&self) -> String {
        self.uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| self.uri.path().to_string())
    }

    /// The locale NocoBase's API uses: `X-Locale`, then `?locale=`, then the app default.
    pub fn api_locale(&self) -> &'static str {
        self.header("x-locale")
            .and_then(normalize_locale)
            .or_else(|| self.query().get("locale").and_then(normalize_locale))
            .unwrap_or(DEFAULT_LOCALE)
    }

    /// The locale of sandbox pages: `?locale=`, then `X-Locale`, then `Accept-Language`.
    pub fn page_locale(&self) -> &'static str {
        self.query()
            .get("locale")
            .and_then(normalize_locale)
            .or_else(|| self.header("x-locale").and_then(normalize_locale))
            .or_else(|| {
                self.header("accept-language").and_then(|list| {
                    list.split(',')
                        .filter_map(|item| item.split(';').next())
                        .find_map(normalize_locale)
                })
            })
            .unwrap_or(DEFAULT_LOCALE)
    }

    /// `<proto>://<host>` of this request, honouring X-Forwarded-Proto/Host like NocoBase.
    pub fn own_origin(&self) -> String {
        let proto = self.header("x-forwarded-proto").unwrap_or("http");
        let host = self
            .header("x-forwarded-host")
            .or_else(|| self.header("host"))
            .unwrap_or("");
        format!("{proto}://{host}")
    }

    pub fn is_from_loopback(&self) -> bool {
        self.peer.is_some_and(|addr| addr.ip().is_loopback())
    }

    /// Whether a JSON answer is wanted rather than an HTML navigation.
    pub fn wants_json(&self) -> bool {
        self.is_json()
            || self
                .header("accept")
                .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
    }
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// An ordered bag of url-encoded parameters.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &str) -> Self {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, treating an empty string like a missing parameter.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }

    /// The parameters re-encoded without `names`; empty when nothing is left.
    pub fn encode_without(&self, names: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.0.iter().filter(|(k, _)| !names.contains(&k.as_str())) {
            out.append_pair(k, v);
        }
        out.finish()
    }
}

/// Appends url-encoded pairs to a URL that may already carry a query (`+` for spaces, as
/// oidc-provider and the WeCom redirects do).
pub(crate) fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", out.finish())
}

/// JavaScript's `encodeURIComponent` (`%20` for spaces), which NocoBase uses for `redirect`
/// and `error` in its own redirects.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Responses

pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON_UTF8)],
        body.to_string(),
    )
        .into_response()
}

/// NocoBase's success envelope `{"data": …}`.
pub(crate) fn data(value: Value) -> Response {
    json(StatusCode::OK, &json!({ "data": value }))
}

/// NocoBase's error envelope; `code` is absent for plain (non-auth) errors.
pub(crate) fn errors(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    let mut item = json!({ "message": message });
    if let Some(code) = code {
        item["code"] = json!(code);
    }
    json(status, &json!({ "errors": [item] }))
}

/// What NocoBase (Koa) answers for any route nobody handles.
pub(crate) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, TEXT_UTF8)],
        "Not Found",
    )
        .into_response()
}

/// oidc-provider's error body.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    no_store(&mut resp);
    resp
}

pub(crate) fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub(crate) fn html(status: StatusCode, page: String) -> Response {
    (status, [(header::CONTENT_TYPE, HTML_UTF8)], page).into_response()
}

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    // Locations are built from encoded parts; a value that still is not a valid header
    // (non-ASCII from a hostile parameter) falls back to the home page instead of panicking.
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    let mut resp = status.into_response();
    resp.headers_mut().insert(header::LOCATION, value);
    resp
}

/// Koa's `ctx.redirect` writes a small body: `Redirecting to <url>.`, as HTML (the URL
/// escaped) when the client accepts HTML, plain text otherwise (recorded live). Added to every
/// bodiless redirect the sandbox answers.
pub(crate) async fn koa_redirect_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let accepts_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let refused =
                    parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                !refused && matches!(media.as_str(), "text/html" | "text/*" | "*/*")
            })
        });
    let resp = next.run(req).await;
    let bodiless = axum::body::HttpBody::size_hint(resp.body()).exact() == Some(0);
    if !resp.status().is_redirection()
        || !bodiless
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    let Some(location) = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return resp;
    };
    let (mut parts, _) = resp.into_parts();
    let (content_type, body) = if accepts_html {
        (
            HTML_UTF8,
            format!("Redirecting to {}.", html_escape::encode_safe(&location)),
        )
    } else {
        (TEXT_UTF8, format!("Redirecting to {location}."))
    };
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub(crate) fn add_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(crate) fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, value);
    }
}

// ---------------------------------------------------------------------------------------------
// Dates, random values, locales

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// RFC 7231 date (`Tue, 01 Dec 2026 07:56:33 GMT`) for cookie `expires`.
pub(crate) fn http_date(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// ISO 8601 in UTC with milliseconds (`2026-11-24T07:49:44.815Z`), as Sequelize prints dates.
pub(crate) fn iso_datetime(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        epoch_ms.rem_euclid(1000)
    )
}

/// `n` random bytes as unpadded base64url (32 bytes → the 43 characters oidc-provider uses).
pub(crate) fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Letters and digits only: WeCom's `state` must be `[a-zA-Z0-9]{,128}`.
pub(crate) fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A random (v4) UUID, the form of NocoBase's `jti`.
pub(crate) fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) const DEFAULT_LOCALE: &str = "en-US";

/// Maps a language tag to one of the sandbox's locales.
pub(crate) fn normalize_locale(tag: &str) -> Option<&'static str> {
    let tag = tag.trim().to_ascii_lowercase();
    let primary = tag.split(['-', '_']).next().unwrap_or("");
    match primary {
        "zh" => Some("zh-CN"),
        "id" => Some("id-ID"),
        "en" => Some("en-US"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_match_the_recorded_format() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // Taken from the recorded exchange (Set-Cookie of a 7-day session).
        assert_eq!(http_date(1_796_111_793), "Tue, 01 Dec 2026 07:56:33 GMT");
        assert_eq!(iso_datetime(1_795_506_993_071), "2026-11-24T07:56:33.071Z");
    }

    #[test]
    fn encode_component_is_javascripts() {
        assert_eq!(
            encode_component("/idp-oauth/interaction/a b?x=1"),
            "%2Fidp-oauth%2Finteraction%2Fa%20b%3Fx%3D1"
        );
        assert_eq!(encode_component("User not found."), "User%20not%20found.");
    }

    #[test]
    fn locales_are_normalized() {
        assert_eq!(normalize_locale("zh-CN"), Some("zh-CN"));
        assert_eq!(normalize_locale("zh"), Some("zh-CN"));
        assert_eq!(normalize_locale("id"), Some("id-ID"));
        assert_eq!(normalize_locale("fr-FR"), None);
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
