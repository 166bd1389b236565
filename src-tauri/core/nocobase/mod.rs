//! A small client for NocoBase's HTTP API.
//!
//! What it guarantees: `Authorization: Bearer`, `X-Authenticator` and `X-Locale` on
//! every call; never an `Origin` or `Referer` (NocoBase answers 403 "Invalid sign-in
//! origin" to a foreign one); the `{data}` / `{errors:[{message,code}]}` envelopes;
//! 401 codes as [`AuthCode`]; and `x-new-token` read from *every* response, success or
//! error, handed back with the result so the caller can adopt it at once.

mod codes;

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

pub use codes::AuthCode;

use super::error::{Error, Result};
use super::profile::Origin;
use super::sensitive::Sensitive;

const USER_AGENT: &str = concat!("NocoBase-WeCom-Companion/", env!("CARGO_PKG_VERSION"));

/// Timeouts for every request. Overridable for tests of slow servers.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// `NWC_HTTP_TIMEOUT_SECS` shortens both (for tests and slow-link diagnosis).
    pub fn from_env() -> Timeouts {
        std::env::var("NWC_HTTP_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(|s| Timeouts {
                connect: Duration::from_secs_f64(s),
                request: Duration::from_secs_f64(s),
            })
            .unwrap_or_default()
    }
}

/// The HTTP client the whole core shares: rustls, no redirects (an OAuth client must
/// not follow them), bounded timeouts, no cookies.
pub fn http_client(timeouts: Timeouts) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .build()
        .expect("a client with these options always builds")
}

/// Turns a transport failure into a sentence about the server.
pub fn transport_error(origin: &Origin, e: &reqwest::Error) -> Error {
    let origin = origin.to_string();
    if e.is_timeout() {
        return Error::Timeout { origin };
    }
    if let Some(detail) = tls_problem(e) {
        return Error::Tls { origin, detail };
    }
    Error::Unreachable { origin }
}

fn tls_problem(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
            || lower.contains("invalidcontenttype")
        {
            return Some(text);
        }
        source = err.source();
    }
    None
}

/// A NocoBase user as `auth:check` returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Value,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl User {
    /// What to call the user: nickname, else username, else email, else the id.
    pub fn display_name(&self) -> String {
        [&self.nickname, &self.username, &self.email]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// An entry of `authenticators:publicList`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticator {
    pub name: String,
    #[serde(default)]
    pub auth_type: String,
    #[serde(default)]
    pub auth_type_title: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub options: Value,
}

impl Authenticator {
    /// The WeCom plugin is closed source and its `authType` string is not documented, so
    /// look for WeCom in the type and its title (the only public hints).
    pub fn is_wecom(&self) -> bool {
        let hay = format!(
            "{} {}",
            self.auth_type,
            self.auth_type_title.as_deref().unwrap_or_default()
        )
        .to_lowercase();
        hay.contains("wecom")
            || hay.contains("work-wechat")
            || hay.contains("workwechat")
            || hay.contains("wxwork")
            || hay.contains("企业微信")
    }

    pub fn label(&self) -> String {
        match self.title.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{} ({})", self.name, t),
            None => self.name.clone(),
        }
    }
}

/// Picks the WeCom authenticator to use: the named one (which must exist), or the only
/// WeCom one on the server.
pub fn choose_wecom(
    origin: &Origin,
    all: &[Authenticator],
    wanted: Option<&str>,
) -> Result<String> {
    if let Some(name) = wanted {
        return all
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.name.clone())
            .ok_or_else(|| Error::AuthenticatorNotFound {
                name: name.into(),
                available: all.iter().map(|a| a.name.clone()).collect(),
            });
    }
    let wecom: Vec<&Authenticator> = all.iter().filter(|a| a.is_wecom()).collect();
    match wecom.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(Error::NoWeComAuthenticator {
            origin: origin.to_string(),
        }),
        several => Err(Error::SeveralWeComAuthenticators {
            names: several.iter().map(|a| a.label()).collect(),
        }),
    }
}

/// `app:getInfo`: what the server says about itself.
#[derive(Debug, Clone, Deserialize)]
pub struct AppInfo {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The result of a call plus any renewed token the server sent with it.
#[derive(Debug)]
pub struct Reply<T> {
    pub result: Result<T>,
    pub new_token: Option<Sensitive<String>>,
}

impl<T> Reply<T> {
    fn failed(e: Error) -> Reply<T> {
        Reply {
            result: Err(e),
            new_token: None,
        }
    }
}

/// Who a call is made as.
pub struct Credentials<'a> {
    pub token: &'a Sensitive<String>,
    /// `X-Authenticator`; `None` for OAuth access tokens (the server ignores it there).
    pub authenticator: Option<&'a str>,
}

#[derive(Clone)]
pub struct NocoBase {
    http: reqwest::Client,
    origin: Origin,
    locale: String,
}

impl NocoBase {
    pub fn new(http: reqwest::Client, origin: Origin, locale: impl Into<String>) -> NocoBase {
        NocoBase {
            http,
            origin,
            locale: locale.into(),
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub async fn app_info(&self) -> Result<AppInfo> {
        self.call(Method::GET, "app:getInfo", None, None)
            .await
            .result
            .and_then(decode)
    }

    pub async fn public_authenticators(&self) -> Result<Vec<Authenticator>> {
        self.call(Method::GET, "authenticators:publicList", None, None)
            .await
            .result
            .and_then(decode)
    }

    /// `auth:check`: who the token belongs to. Also the heartbeat that renews an
    /// expired NocoBase token (the server answers with `x-new-token`).
    pub async fn check(&self, creds: &Credentials<'_>) -> Reply<User> {
        let reply = self
            .call(Method::GET, "auth:check", Some(creds), None)
            .await;
        Reply {
            result: reply.result.and_then(decode),
            new_token: reply.new_token,
        }
    }

    pub async fn sign_out(&self, creds: &Credentials<'_>) -> Reply<()> {
        let reply = self
            .call(Method::POST, "auth:signOut", Some(creds), None)
            .await;
        Reply {
            result: reply.result.map(|_| ()),
            new_token: reply.new_token,
        }
    }

    /// Any `resource:action`. `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        action: &str,
        creds: Option<&Credentials<'_>>,
        body: Option<&Value>,
    ) -> Reply<Value> {
        let url = self.origin.api(action);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&self.locale) {
            headers.insert("X-Locale", v);
        }
        if let Some(c) = creds {
            match HeaderValue::from_str(&format!("Bearer {}", c.token.expose())) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    headers.insert(AUTHORIZATION, v);
                }
                Err(_) => {
                    return Reply::failed(Error::Auth {
                        code: AuthCode::InvalidToken,
                        message: "malformed token".into(),
                    })
                }
            }
            if let Some(name) = c.authenticator {
                if let Ok(v) = HeaderValue::from_str(name) {
                    headers.insert("X-Authenticator", v);
                }
            }
        }
        let mut request = self.http.request(method, &url).headers(headers);
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Reply::failed(transport_error(&self.origin, &e)),
        };
        let new_token = response
            .headers()
            .get("x-new-token")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| Sensitive::new(v.to_owned()));
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Reply {
                    result: Err(transport_error(&self.origin, &e)),
                    new_token,
                }
            }
        };
        Reply {
            result: interpret(&url, status, is_json, &bytes),
            new_token,
        }
    }
}

/// Maps a NocoBase answer to data or a typed error.
fn interpret(url: &str, status: StatusCode, is_json: bool, bytes: &[u8]) -> Result<Value> {
    if status == StatusCode::NOT_FOUND && !is_json {
        return Err(Error::NotFound { url: url.into() });
    }
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) if bytes.is_empty() && status.is_success() => Value::Null,
        Err(_) => {
            return Err(Error::NotJson {
                url: url.into(),
                status: status.as_u16(),
            })
        }
    };
    if status.is_success() {
        return Ok(body.get("data").cloned().unwrap_or(Value::Null));
    }
    let first = body
        .get("errors")
        .and_then(|e| e.get(0))
        .cloned()
        .unwrap_or(Value::Null);
    let message = first
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
        .to_owned();
    let code = first.get("code").and_then(Value::as_str);
    match (status, code) {
        (StatusCode::UNAUTHORIZED, Some(code)) => Err(Error::Auth {
            code: AuthCode::parse(code),
            message,
        }),
        (StatusCode::UNAUTHORIZED, None) => Err(Error::Auth {
            code: AuthCode::Other(String::new()),
            message,
        }),
        _ => Err(Error::Http {
            status: status.as_u16(),
            message,
        }),
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Http {
        status: 200,
        message: format!("unexpected answer: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_become_data_or_typed_errors() {
        let ok = interpret("u", StatusCode::OK, true, br#"{"data":{"id":1}}"#).unwrap();
        assert_eq!(ok["id"], 1);
        let err = interpret(
            "u",
            StatusCode::UNAUTHORIZED,
            true,
            "{\"errors\":[{\"message\":\"未认证。请登录以继续。\",\"code\":\"EMPTY_TOKEN\"}]}"
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Auth {
                code: AuthCode::EmptyToken,
                ..
            }
        ));
        let forbidden = interpret(
            "u",
            StatusCode::FORBIDDEN,
            true,
            br#"{"errors":[{"message":"Invalid sign-in origin"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(forbidden, Error::Http { status: 403, .. }));
        assert!(matches!(
            interpret("u", StatusCode::NOT_FOUND, false, b"Not Found"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            interpret("u", StatusCode::OK, false, b"<html>"),
            Err(Error::NotJson { status: 200, .. })
        ));
        assert!(matches!(
            interpret("u", StatusCode::OK, true, br#"{"data":"#),
            Err(Error::NotJson { .. })
        ));
        assert!(interpret("u", StatusCode::OK, true, b"").unwrap().is_null());
    }

    #[test]
    fn finds_wecom_authenticators() {
        let a: Vec<Authenticator> = serde_json::from_str(
            r#"[{"name":"basic","authType":"Email/Password","authTypeTitle":"{{t(\"Password\")}}","title":null,"options":{}},
                {"name":"wecom","authType":"WeCom","title":"企业微信","options":{}},
                {"name":"qywx","authType":"x","authTypeTitle":"企业微信","options":{}}]"#,
        )
        .unwrap();
        let names: Vec<_> = a
            .iter()
            .filter(|x| x.is_wecom())
            .map(|x| x.name.as_str())
            .collect();
        assert_eq!(names, ["wecom", "qywx"]);
    }
}
