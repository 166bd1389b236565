//! The sandbox's OAuth provider (plugin-idp-oauth 2.2.15) against nocobase-idp-oauth.md.

mod support;

use std::time::Duration;

use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions, TokenPolicy};
use serde_json::{json, Value};
use support::browser::{query_param, Browser, Navigation};
use support::{api_client, jwt_claims, jwt_header, loopback_callback, pkce, sign_in_admin, Pkce};
use url::Url;

const LOOPBACK_ONLY: &str =
    "redirect_uris must only contain http loopback callback URLs with an explicit port";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Env {
    sb: Sandbox,
    http: reqwest::Client,
    origin: String,
}

impl Env {
    async fn start(opts: SandboxOptions) -> Env {
        let sb = Sandbox::start(opts).await.expect("sandbox starts");
        let origin = sb.origin();
        Env {
            sb,
            http: api_client(),
            origin,
        }
    }

    fn resource(&self) -> String {
        format!("{}/api/", self.origin)
    }

    async fn register(&self, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/idpOAuth/register", self.origin))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A native public client for the loopback flow (the CLI's payload).
    async fn loopback_client(&self, redirect_uri: &str) -> String {
        let (status, body) = self
            .register(json!({
                "client_name": "Probe Desktop", "application_type": "native", "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "redirect_uris": [redirect_uri]
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["client_id"].as_str().unwrap().to_string()
    }

    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        pkce: &Pkce,
        extra: &[(&str, &str)],
    ) -> String {
        let mut url = Url::parse(&format!("{}/api/idpOAuth/authorize", self.origin)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", "st-1")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    /// The CLI's parameters: offline_access + api, prompt=consent, resource with the slash.
    fn cli_authorize_url(&self, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> String {
        let resource = self.resource();
        self.authorize_url(
            client_id,
            redirect_uri,
            pkce,
            &[
                ("scope", "openid offline_access api"),
                ("prompt", "consent"),
                ("resource", &resource),
            ],
        )
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
        let resp = self
            .http
            .post(format!("{}/api/idpOAuth/token", self.origin))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.json().await.unwrap_or(Value::Null), headers)
    }

    async fn exchange(
        &self,
        client_id: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> (u16, Value) {
        let resource = self.resource();
        let (status, body, headers) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("code_verifier", verifier),
                ("resource", &resource),
            ])
            .await;
        assert_eq!(headers["cache-control"], "no-store");
        (status, body)
    }

    async fn refresh(&self, client_id: &str, refresh_token: &str) -> (u16, Value) {
        let (status, body, _) = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ])
            .await;
        (status, body)
    }

    async fn check(&self, token: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/api/auth:check", self.origin))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// The browser leg with a password sign-in; returns the callback URL the app received.
    async fn browser_leg(&self, browser: &mut Browser, authorize_url: &str) -> Url {
        let page = browser.goto(authorize_url).await.unwrap().page().unwrap();
        let page = if page.has_id("basic-signin") {
            assert_eq!(page.url.path(), "/signin");
            browser
                .fill_and_submit(
                    "basic-signin",
                    &[("account", "nocobase"), ("password", "admin123")],
                )
                .await
                .unwrap()
                .page()
                .unwrap()
        } else {
            page
        };
        assert!(
            page.has_id("consent-continue"),
            "consent card expected, got {}",
            page.url
        );
        let callback = browser
            .click("consent-continue")
            .await
            .unwrap()
            .page()
            .unwrap();
        assert!(callback.has_id("app-callback"));
        callback.url
    }

    /// A full loopback authorization; returns the token response.
    async fn authorize_and_exchange(&self, client_id: &str, redirect_uri: &str) -> Value {
        let pkce = pkce();
        let mut browser = Browser::new();
        let callback = self
            .browser_leg(
                &mut browser,
                &self.cli_authorize_url(client_id, redirect_uri, &pkce),
            )
            .await;
        let code = query_param(&callback, "code").expect("code");
        let (status, body) = self
            .exchange(client_id, &code, &pkce.verifier, redirect_uri)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn error_of(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or(""),
        body["error_description"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn discovery_documents_carry_this_origin() {
    let env = Env::start(SandboxOptions::default()).await;
    for name in ["openid-configuration", "oauth-authorization-server"] {
        let resp = env
            .http
            .get(format!("{}/api/.well-known/{name}", env.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        let doc: Value = resp.json().await.unwrap();
        let o = &env.origin;
        assert_eq!(doc["issuer"], format!("{o}/api"));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{o}/api/idpOAuth/authorize")
        );
        assert_eq!(doc["token_endpoint"], format!("{o}/api/idpOAuth/token"));
        assert_eq!(
            doc["device_authorization_endpoint"],
            format!("{o}/api/idpOAuth/device/auth")
        );
        assert_eq!(
            doc["registration_endpoint"],
            format!("{o}/api/idpOAuth/register")
        );
        assert_eq!(
            doc["revocation_endpoint"],
            format!("{o}/api/idpOAuth/revoke")
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert!(doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none")));
    }
    let jwks: Value = env
        .http
        .get(format!("{}/api/idpOAuth/jwks", env.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "idp-oauth-rs256");
}

#[tokio::test]
async fn registration_follows_the_2_2_15_rules() {
    let env = Env::start(SandboxOptions::default()).await;
    let native = |uris: Value| {
        json!({ "client_name": "Probe Desktop", "application_type": "native", "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "redirect_uris": uris })
    };

    let (status, body) = env
        .register(native(json!(["http://127.0.0.1:53682/callback"])))
        .await;
    assert_eq!(status, 201);
    let client_id = body["client_id"].as_str().unwrap();
    assert_eq!(client_id.len(), 43);
    assert_eq!(body["application_type"], "native");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(
        body["redirect_uris"],
        json!(["http://127.0.0.1:53682/callback"])
    );
    assert_eq!(
        body["registration_client_uri"],
        format!("{}/api/idpOAuth/register/{client_id}", env.origin)
    );
    assert!(body.get("client_secret").is_none());
    let rat = body["registration_access_token"].as_str().unwrap();
    let read = env
        .http
        .get(body["registration_client_uri"].as_str().unwrap())
        .bearer_auth(rat)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let unauthorized = env
        .http
        .get(body["registration_client_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    for ok in [
        "http://localhost:53682/callback",
        "http://[::1]:53682/callback",
    ] {
        assert_eq!(env.register(native(json!([ok]))).await.0, 201, "{ok}");
    }
    let refused = [
        json!(["com.nocobase.wecomcompanion:/oauth/callback"]),
        json!(["com.nocobase.wecomcompanion://oauth/callback"]),
        json!(["nocobase-wecom://oauth/callback"]),
        json!(["http://127.0.0.1/callback"]),
        json!(["http://127.0.0.1:80/callback"]),
        json!(["https://127.0.0.1:53682/callback"]),
        json!(["https://app.example.com/oauth/callback"]),
        json!([
            "http://127.0.0.1:53682/callback",
            "com.nocobase.wecomcompanion:/oauth/callback"
        ]),
        Value::Null,
    ];
    for uris in refused {
        let (status, body) = env.register(native(uris.clone())).await;
        assert_eq!(status, 400, "{uris}");
        assert_eq!(
            body,
            json!({ "error": "invalid_client_metadata", "error_description": LOOPBACK_ONLY }),
            "{uris}"
        );
    }
    let form = env
        .http
        .post(format!("{}/api/idpOAuth/register", env.origin))
        .form(&[
            ("client_name", "x"),
            ("redirect_uris", "http://127.0.0.1:53682/callback"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    assert_eq!(
        form.json::<Value>().await.unwrap()["error_description"],
        LOOPBACK_ONLY
    );

    let mut reserved = native(json!(["http://127.0.0.1:53682/callback"]));
    reserved["client_id"] = json!("app:desktop");
    assert_eq!(
        env.register(reserved).await,
        (
            400,
            json!({ "error": "invalid_client_metadata", "error_description": "client_id prefix app: is reserved" })
        )
    );
    let mut chosen = native(json!(["http://127.0.0.1:53682/callback"]));
    chosen["client_id"] = json!("my-desktop");
    let (status, body) = env.register(chosen).await;
    assert_eq!(status, 201);
    assert_ne!(
        body["client_id"], "my-desktop",
        "client_id is always generated"
    );

    let (status, device) = env
        .register(json!({ "client_name": "Probe Device", "application_type": "native", "token_endpoint_auth_method": "none",
                          "grant_types": [DEVICE_GRANT, "refresh_token"], "response_types": [], "scope": "openid api offline_access" }))
        .await;
    assert_eq!(status, 201, "{device}");
    let (status, confidential) = env
        .register(
            json!({ "client_name": "Web", "redirect_uris": ["http://127.0.0.1:53682/callback"] }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert!(confidential["client_secret"].is_string());

    // With the switch: oidc-provider's native rules.
    env.sb.set_custom_scheme_redirects(true);
    assert_eq!(
        env.register(native(json!([
            "com.nocobase.wecomcompanion:/oauth/callback"
        ])))
        .await
        .0,
        201
    );
    assert_eq!(
        env.register(native(json!(["http://127.0.0.1:53682/callback"])))
            .await
            .0,
        201
    );
    assert_eq!(
        env.register(native(json!(["nocobase-wecom://oauth/callback"])))
            .await,
        (
            400,
            json!({ "error": "invalid_redirect_uri",
                    "error_description": "redirect_uris for native clients using Custom URI scheme should use reverse domain name based scheme" })
        )
    );
    env.sb.set_custom_scheme_redirects(false);
    assert_eq!(
        env.register(native(json!([
            "com.nocobase.wecomcompanion:/oauth/callback"
        ])))
        .await
        .0,
        400
    );

    // The recorded 2.2.15 bug (§1b): `/register/` and `/Register` skip NocoBase's check.
    for path in ["register/", "Register"] {
        let resp = env
            .http
            .post(format!("{}/api/idpOAuth/{path}", env.origin))
            .json(&native(json!([
                "com.nocobase.wecomcompanion:/oauth/callback"
            ])))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{path}");
    }
    let resp = env
        .http
        .post(format!("{}/api/idpOAuth//register", env.origin))
        .json(&native(json!(["http://127.0.0.1:53682/callback"])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn authorize_errors_go_to_the_error_page_or_the_client() {
    let env = Env::start(SandboxOptions::default()).await;
    let redirect_uri = "http://127.0.0.1:53682/callback";
    let client_id = env.loopback_client(redirect_uri).await;
    let p = pkce();
    let get = |url: String| {
        let http = env.http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (resp.status().as_u16(), location)
        }
    };

    let (status, location) = get(env.authorize_url("nosuch", redirect_uri, &p, &[])).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("/idp-oauth/error?error=invalid_client&error_description=client+is+invalid&state=st-1&iss="), "{location}");

    for other in [
        "http://127.0.0.1:53682/other",
        "http://localhost:53682/callback",
        "com.example.app:/callback",
    ] {
        let (status, location) = get(env.authorize_url(&client_id, other, &p, &[])).await;
        assert_eq!(status, 302, "{other}");
        assert!(
            location.starts_with("/idp-oauth/error?error=invalid_redirect_uri&error_description=redirect_uri+did+not+match+any+of+the+client%27s+registered+redirect_uris"),
            "{location}"
        );
    }

    let resource = env.resource();
    let iss = url::form_urlencoded::byte_serialize(format!("{}/api", env.origin).as_bytes())
        .collect::<String>();
    let no_pkce = format!(
        "{}/api/idpOAuth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state=st-1",
        env.origin,
        url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
    );
    let (status, location) = get(no_pkce).await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        format!("{redirect_uri}?error=invalid_request&error_description=code_challenge+must+be+provided+with+code_challenge_method&state=st-1&iss={iss}")
    );
    let plain = env
        .authorize_url(&client_id, redirect_uri, &p, &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let (status, location) = get(plain).await;
    assert_eq!(status, 303);
    assert!(location.starts_with(&format!("{redirect_uri}?error=invalid_request&error_description=not+supported+value+of+code_challenge_method")));
    let no_slash = resource.trim_end_matches('/').to_string();
    for bad in [no_slash.as_str(), "http://elsewhere.example/api/"] {
        let (status, location) =
            get(env.authorize_url(&client_id, redirect_uri, &p, &[("resource", bad)])).await;
        assert_eq!(status, 303);
        assert!(location.contains("error=invalid_target&error_description=resource+indicator+is+missing%2C+or+unknown"), "{location}");
        assert!(location.contains("&state=st-1&iss="));
    }
    let (status, location) = get(env
        .authorize_url(&client_id, redirect_uri, &p, &[("response_type", "token")])
        .replace("response_type=code&", ""))
    .await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with(&format!("{redirect_uri}#error=unsupported_response_type")),
        "{location}"
    );

    // Native loopback: any port is fine; unknown scopes are accepted.
    let (status, location) = get(env.authorize_url(
        &client_id,
        "http://127.0.0.1:42505/callback",
        &p,
        &[("scope", "openid foo"), ("resource", &resource)],
    ))
    .await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with("/idp-oauth/interaction/"),
        "{location}"
    );
    // prompt=none: a native client always needs the user.
    let (status, location) =
        get(env.authorize_url(&client_id, redirect_uri, &p, &[("prompt", "none")])).await;
    assert_eq!(status, 303);
    assert!(location.contains("error=login_required"));

    let mut browser = Browser::new();
    let page = browser
        .goto(&format!(
            "{}/idp-oauth/error?error=invalid_client&error_description=client+is+invalid",
            env.origin
        ))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(
        page.text_of("oauth-error").as_deref(),
        Some("invalid_client")
    );
    assert!(page.has_id("sandbox-banner"));
}

#[tokio::test]
async fn wecom_qr_browser_leg_ends_in_tokens_that_work_on_the_api() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, mut received) = loopback_callback().await;
    // Registered with one port, authorized with another: native loopback ignores the port.
    let client_id = env.loopback_client("http://127.0.0.1:53682/callback").await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let p = pkce();
    let mut browser = Browser::new();

    let page = browser
        .goto(&env.cli_authorize_url(&client_id, &redirect_uri, &p))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(page.url.path(), "/signin");
    let back = page.query("redirect").unwrap();
    assert!(back.starts_with("/idp-oauth/interaction/"));
    assert!(
        page.url
            .as_str()
            .contains("/signin?redirect=%2Fidp-oauth%2Finteraction%2F"),
        "recorded spelling"
    );
    // The interaction cookie belongs to the interaction API's path (recorded live).
    let api = back.replacen("/idp-oauth/", "/api/idpOAuth/", 1);
    assert!(browser
        .cookie(&format!("{}{api}", env.origin), "_interaction")
        .is_some());

    let qr = browser.click("wecom-signin").await.unwrap().page().unwrap();
    assert_eq!(qr.url.path(), "/__sandbox/wecom/sso/login");
    assert_eq!(qr.query("appid").as_deref(), Some("ww5andb0x"));
    assert_eq!(
        qr.query("redirect_uri"),
        Some(format!("{}/api/wecom:redirect", env.origin))
    );
    let phone = browser
        .click("scan-ZhangSan")
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(phone.text().contains("Confirm sign-in to NocoBase?"));
    let consent = browser
        .click("wecom-confirm")
        .await
        .unwrap()
        .page()
        .unwrap();
    // The WeCom callback handed the session back through ?authenticator=wecom&token=….
    assert!(browser
        .visited
        .iter()
        .any(|u| u.path() == back && query_param(u, "authenticator").as_deref() == Some("wecom")));
    assert_eq!(consent.url.path(), back);
    assert_eq!(
        consent.url.query(),
        None,
        "token and authenticator are consumed"
    );
    assert!(consent.text().contains("Authorize application"));
    assert!(consent
        .text()
        .contains("Probe Desktop requests access to your account"));

    let callback = browser
        .click("consent-continue")
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(callback.has_id("app-callback"));
    let got = received.recv().await.unwrap();
    assert!(got.starts_with("/callback?code="));
    let code = callback.query("code").unwrap();
    assert_eq!(code.len(), 43);
    assert_eq!(callback.query("state").as_deref(), Some("st-1"));
    assert_eq!(callback.query("iss"), Some(format!("{}/api", env.origin)));

    let (status, tokens) = env
        .exchange(&client_id, &code, &p.verifier, &redirect_uri)
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "api");
    assert_eq!(tokens["expires_in"], 86_400);
    assert_eq!(tokens["refresh_token"].as_str().unwrap().len(), 43);
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_header(at),
        json!({ "alg": "RS256", "typ": "at+jwt", "kid": "idp-oauth-rs256" })
    );
    let claims = jwt_claims(at);
    assert_eq!(claims["sub"], "2");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["iss"], format!("{}/api", env.origin));
    assert_eq!(claims["aud"], env.resource());
    assert_eq!(claims["scope"], "api");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["aud"],
        client_id.as_str()
    );

    let (status, user) = env.check(at).await;
    assert_eq!(status, 200);
    assert_eq!(user["data"]["username"], "zhangsan");
    let by_query = env
        .http
        .get(format!("{}/api/users:list?token={at}", env.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let wecom_header = env
        .http
        .get(format!("{}/api/auth:check", env.origin))
        .bearer_auth(at)
        .header("X-Authenticator", "wecom")
        .send()
        .await
        .unwrap();
    assert_eq!(wecom_header.status(), 200);

    // The browser is signed in to NocoBase now: a second authorization shows only consent.
    let p2 = pkce();
    let again = browser
        .goto(&env.cli_authorize_url(&client_id, &redirect_uri, &p2))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(
        again.has_id("consent-continue"),
        "consent is shown every time"
    );
    let admin = browser
        .goto(&format!("{}/admin", env.origin))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(admin.text_of("signed-in-as").as_deref(), Some("张三"));
}

#[tokio::test]
async fn cancel_still_approves_and_codes_are_single_use() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, _received) = loopback_callback().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = env.loopback_client(&redirect_uri).await;
    let p = pkce();
    let mut browser = Browser::new();
    let page = browser
        .goto(&env.cli_authorize_url(&client_id, &redirect_uri, &p))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(page.has_id("basic-signin"));
    browser
        .fill_and_submit(
            "basic-signin",
            &[("account", "admin@nocobase.com"), ("password", "admin123")],
        )
        .await
        .unwrap();
    // 2.2.15 bug, kept: Cancel yields a code too.
    let callback = browser
        .click("consent-cancel")
        .await
        .unwrap()
        .page()
        .unwrap();
    let code = callback.query("code").expect("Cancel still approves");

    // Wrong verifier or redirect_uri: invalid_grant (the code stays usable).
    let (status, body) = env
        .exchange(
            &client_id,
            &code,
            "wrong-verifier-wrong-verifier-wrong-verifier",
            &redirect_uri,
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("invalid_grant", "grant request is invalid"))
    );
    let (status, _) = env
        .exchange(
            &client_id,
            &code,
            &p.verifier,
            "http://127.0.0.1:1/callback",
        )
        .await;
    assert_eq!(status, 400);

    let (status, tokens) = env
        .exchange(&client_id, &code, &p.verifier, &redirect_uri)
        .await;
    assert_eq!(status, 200);
    let (status, body) = env
        .exchange(&client_id, &code, &p.verifier, &redirect_uri)
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("invalid_grant", "grant request is invalid"))
    );
    // The replay revoked the grant: the refresh token from the first exchange is dead…
    let (status, _) = env
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400);
    // …but the access token lives until its exp.
    assert_eq!(
        env.check(tokens["access_token"].as_str().unwrap()).await.0,
        200
    );

    // A code is good for 60 s.
    let p = pkce();
    let callback = env_browser_code(&env, &mut browser, &client_id, &redirect_uri, &p).await;
    env.sb.set_clock_offset(61);
    let (status, _) = env
        .exchange(&client_id, &callback, &p.verifier, &redirect_uri)
        .await;
    assert_eq!(status, 400);
}

async fn env_browser_code(
    env: &Env,
    browser: &mut Browser,
    client_id: &str,
    redirect_uri: &str,
    p: &Pkce,
) -> String {
    let url = env
        .browser_leg(browser, &env.cli_authorize_url(client_id, redirect_uri, p))
        .await;
    query_param(&url, "code").unwrap()
}

#[tokio::test]
async fn token_endpoint_rules() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, _received) = loopback_callback().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = env.loopback_client(&redirect_uri).await;
    let mut browser = Browser::new();

    // client_id is required.
    let (status, body, _) = env
        .token(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({ "error": "invalid_request", "error_description": "no client authentication mechanism provided" })
        )
    );
    let (status, body, _) = env
        .token(&[("grant_type", "password"), ("client_id", &client_id)])
        .await;
    assert_eq!((status, error_of(&body).0), (400, "unsupported_grant_type"));

    // Without prompt=consent: no refresh token. resource only at authorize is enough.
    let p = pkce();
    let resource = env.resource();
    let url = env.authorize_url(
        &client_id,
        &redirect_uri,
        &p,
        &[
            ("scope", "openid offline_access api"),
            ("resource", &resource),
        ],
    );
    let code = query_param(&env.browser_leg(&mut browser, &url).await, "code").unwrap();
    let (status, body, _) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", &p.verifier),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        env.check(body["access_token"].as_str().unwrap()).await.0,
        200
    );

    // resource only at the token endpoint: invalid_target.
    let p = pkce();
    let url = env.authorize_url(
        &client_id,
        &redirect_uri,
        &p,
        &[
            ("scope", "openid offline_access api"),
            ("prompt", "consent"),
        ],
    );
    let code = query_param(&env.browser_leg(&mut browser, &url).await, "code").unwrap();
    let (status, body) = env
        .exchange(&client_id, &code, &p.verifier, &redirect_uri)
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (
            400,
            (
                "invalid_target",
                "resource indicator is missing, or unknown"
            )
        )
    );

    // No resource anywhere: an opaque access token that the API refuses.
    let p = pkce();
    let url = env.authorize_url(
        &client_id,
        &redirect_uri,
        &p,
        &[
            ("scope", "openid offline_access api"),
            ("prompt", "consent"),
        ],
    );
    let code = query_param(&env.browser_leg(&mut browser, &url).await, "code").unwrap();
    let (status, body, _) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", &p.verifier),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access api");
    let opaque = body["access_token"].as_str().unwrap();
    assert_eq!(opaque.len(), 43);
    let (status, body) = env.check(opaque).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (401, Some("INVALID_TOKEN"))
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_grant() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, _received) = loopback_callback().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = env.loopback_client(&redirect_uri).await;
    let tokens = env.authorize_and_exchange(&client_id, &redirect_uri).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap();

    let (status, second) = env.refresh(&client_id, rt1).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2, "rotated on every refresh");
    assert_eq!(second["scope"], "api");
    assert!(second["id_token"].is_string());
    assert_eq!(
        env.check(second["access_token"].as_str().unwrap()).await.0,
        200
    );

    // Reusing RT1 revokes the grant; RT2 dies with it.
    let (status, body) = env.refresh(&client_id, rt1).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("invalid_grant", "grant request is invalid"))
    );
    let (status, body) = env.refresh(&client_id, rt2).await;
    assert_eq!(
        body,
        json!({ "error": "invalid_grant", "error_description": "grant request is invalid" })
    );
    assert_eq!(status, 400);
    // Access tokens live on until exp.
    assert_eq!(
        env.check(tokens["access_token"].as_str().unwrap()).await.0,
        200
    );
    assert_eq!(
        env.check(second["access_token"].as_str().unwrap()).await.0,
        200
    );
}

#[tokio::test]
async fn revocation_and_sign_out_with_an_access_token() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, _received) = loopback_callback().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = env.loopback_client(&redirect_uri).await;
    let tokens = env.authorize_and_exchange(&client_id, &redirect_uri).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let revoke = |form: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = format!("{}/api/idpOAuth/revoke", env.origin);
        async move {
            let resp = http.post(url).form(&form).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };

    let (status, body) = revoke(vec![
        ("token", at.to_string()),
        ("client_id", client_id.clone()),
    ])
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "error": "unsupported_token_type", "error_description": "Structured JWT Tokens cannot be revoked via the revocation_endpoint" })
    );
    let (status, _) = revoke(vec![
        ("token", rt.to_string()),
        ("token_type_hint", "refresh_token".into()),
    ])
    .await;
    assert_eq!(status, 400, "client_id is required");

    // Sign out with the access token: that token is blocked, the refresh token is not.
    let out = env
        .http
        .post(format!("{}/api/auth:signOut", env.origin))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let (status, body) = env.check(at).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (401, Some("BLOCKED_TOKEN"))
    );
    let (status, refreshed) = env.refresh(&client_id, rt).await;
    assert_eq!(status, 200);
    let at2 = refreshed["access_token"].as_str().unwrap().to_string();
    let rt2 = refreshed["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(env.check(&at2).await.0, 200);

    // Revoking the refresh token kills the grant but not the access token.
    let (status, body) = revoke(vec![
        ("token", rt2.clone()),
        ("client_id", client_id.clone()),
        ("token_type_hint", "refresh_token".into()),
    ])
    .await;
    // 204 with no body (NocoBase on SQLite answers 500 here; tests/conformance.rs).
    assert_eq!((status, body.as_str()), (204, ""));
    let (status, body) = env.refresh(&client_id, &rt2).await;
    assert_eq!((status, error_of(&body).0), (400, "invalid_grant"));
    assert_eq!(env.check(&at2).await.0, 200);

    // An expired access token: INVALID_TOKEN.
    env.sb.set_clock_offset(86_401);
    let (status, body) = env.check(&at2).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (401, Some("INVALID_TOKEN"))
    );
}

#[tokio::test]
async fn the_provider_reads_the_policy_once_until_restarted() {
    let env = Env::start(SandboxOptions::default()).await;
    let (port, _received) = loopback_callback().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = env.loopback_client(&redirect_uri).await; // builds the provider: 1 d / 7 d

    env.sb.set_token_policy(TokenPolicy {
        token_expiration: Duration::from_secs(60),
        expired_token_renew_limit: Duration::from_secs(60),
        session_expiration: Duration::from_secs(300),
    });
    let tokens = env.authorize_and_exchange(&client_id, &redirect_uri).await;
    assert_eq!(tokens["expires_in"], 86_400, "no restart, old lifetimes");
    // The 2.2.15 bridge bug: the internal token follows the new policy, gets renewed once, and
    // then the cached (already renewed) internal token fails for the rest of the day.
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(env.check(at).await.0, 200);
    env.sb.set_clock_offset(65);
    let resp = env
        .http
        .get(format!("{}/api/auth:check", env.origin))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-new-token").is_some());
    env.sb.set_clock_offset(77);
    let (status, body) = env.check(at).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (401, Some("TOKEN_RENEW_FAILED"))
    );
    // A refresh gives a new jti, hence a new bridge token.
    let (status, refreshed) = env
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.check(refreshed["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    env.sb.set_clock_offset(0);

    // After a restart: 60 s access tokens, and the grant is capped 300 s after consent.
    env.sb.restart_provider();
    let tokens = env.authorize_and_exchange(&client_id, &redirect_uri).await;
    assert_eq!(tokens["expires_in"], 60);
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    env.sb.set_clock_offset(63);
    assert_eq!(
        env.check(tokens["access_token"].as_str().unwrap()).await.1["errors"][0]["code"],
        "INVALID_TOKEN"
    );
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_string();
    for offset in [63, 118, 173, 228, 283] {
        env.sb.set_clock_offset(offset);
        let (status, body) = env.refresh(&client_id, &rt).await;
        assert_eq!(status, 200, "refresh at +{offset}: {body}");
        assert_eq!(body["expires_in"], 60);
        rt = body["refresh_token"].as_str().unwrap().to_string();
    }
    env.sb.set_clock_offset(338);
    let (status, body) = env.refresh(&client_id, &rt).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("invalid_grant", "grant request is invalid"))
    );
}

async fn device_client(env: &Env) -> String {
    let (status, body) = env
        .register(json!({ "client_name": "Probe Device", "application_type": "native", "token_endpoint_auth_method": "none",
                          "grant_types": [DEVICE_GRANT, "refresh_token"], "response_types": [], "scope": "openid api offline_access" }))
        .await;
    assert_eq!(status, 201);
    body["client_id"].as_str().unwrap().to_string()
}

async fn device_start(env: &Env, client_id: &str) -> Value {
    let resource = env.resource();
    let resp = env
        .http
        .post(format!("{}/api/idpOAuth/device/auth", env.origin))
        .form(&[
            ("client_id", client_id),
            ("scope", "openid api offline_access"),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn device_poll(env: &Env, client_id: &str, device_code: &str) -> (u16, Value) {
    let (status, body, _) = env
        .token(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .await;
    (status, body)
}

#[tokio::test]
async fn device_flow_approve_over_the_api() {
    let env = Env::start(SandboxOptions::default()).await;
    let client_id = device_client(&env).await;
    let started = device_start(&env, &client_id).await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(
        started["verification_uri"],
        format!("{}/idpOAuth/device", env.origin)
    );
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}/idpOAuth/device?user_code={user_code}", env.origin)
    );
    assert_eq!(started["expires_in"], 600);
    assert!(started.get("interval").is_none());
    let device_code = started["device_code"].as_str().unwrap();

    let (status, body) = device_poll(&env, &client_id, device_code).await;
    assert_eq!((status, error_of(&body).0), (400, "authorization_pending"));
    let (status, body) = device_poll(&env, &client_id, device_code).await;
    assert_eq!(
        (status, error_of(&body).0),
        (400, "authorization_pending"),
        "never slow_down"
    );

    let verification = format!(
        "{}/api/idpOAuth/device/verification?user_code={user_code}",
        env.origin
    );
    let anonymous: Value = env
        .http
        .get(&verification)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        anonymous,
        json!({ "userCode": user_code, "clientName": "Probe Device", "status": "login" })
    );
    let admin = sign_in_admin(&env.http, &env.origin).await;
    let pending: Value = env
        .http
        .get(&verification)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending");

    let approve = |token: Option<String>| {
        let mut req = env
            .http
            .post(format!(
                "{}/api/idpOAuth/device/verification:approve",
                env.origin
            ))
            .json(&json!({ "user_code": user_code }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let unauthenticated = approve(None).await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let approved = approve(Some(admin.clone())).await.unwrap();
    assert_eq!(approved.status(), 200);
    assert_eq!(
        approved.json::<Value>().await.unwrap()["status"],
        "complete"
    );

    let (status, tokens) = device_poll(&env, &client_id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "api");
    assert_eq!(tokens["expires_in"], 86_400);
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access was requested"
    );
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["sub"],
        "1"
    );
    assert_eq!(
        env.check(tokens["access_token"].as_str().unwrap()).await.0,
        200
    );
    let (status, body) = device_poll(&env, &client_id, device_code).await;
    assert_eq!((status, error_of(&body).0), (400, "invalid_grant"));

    // Device codes last 600 s.
    let late = device_start(&env, &client_id).await;
    env.sb.set_clock_offset(601);
    let (status, body) = device_poll(&env, &client_id, late["device_code"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&body).0), (400, "expired_token"));
}

#[tokio::test]
async fn device_flow_cancel_on_the_verification_page() {
    let env = Env::start(SandboxOptions::default()).await;
    let client_id = device_client(&env).await;
    let started = device_start(&env, &client_id).await;
    let complete = started["verification_uri_complete"].as_str().unwrap();

    let mut browser = Browser::new();
    let page = browser.goto(complete).await.unwrap().page().unwrap();
    assert_eq!(page.url.path(), "/signin");
    let page = browser
        .fill_and_submit(
            "basic-signin",
            &[("account", "nocobase"), ("password", "admin123")],
        )
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(page.url.as_str(), complete);
    let user_code = started["user_code"].as_str().unwrap();
    assert!(
        page.text().contains(&format!(
            "Probe Device wants to sign in as Super Admin. Code: {user_code}"
        )),
        "{}",
        page.text()
    );
    let done = browser
        .click("device-cancel")
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(
        done.attr_of("device-done", "data-status").as_deref(),
        Some("cancelled")
    );

    let (status, body) =
        device_poll(&env, &client_id, started["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({ "error": "access_denied", "error_description": "End-User aborted interaction" })
        )
    );
}

#[tokio::test]
async fn custom_scheme_redirects_end_in_a_deep_link_when_switched_on() {
    let env = Env::start(SandboxOptions {
        custom_scheme_redirects: true,
        ..SandboxOptions::default()
    })
    .await;
    let redirect_uri = "com.nocobase.wecomcompanion:/oauth/callback";
    let client_id = env.loopback_client(redirect_uri).await;
    let p = pkce();
    let mut browser = Browser::new();
    browser
        .goto(&env.cli_authorize_url(&client_id, redirect_uri, &p))
        .await
        .unwrap();
    browser
        .fill_and_submit(
            "basic-signin",
            &[("account", "nocobase"), ("password", "admin123")],
        )
        .await
        .unwrap();
    let nav = browser.click("consent-continue").await.unwrap();
    let Navigation::External(link) = nav else {
        panic!("expected a deep link")
    };
    assert_eq!(link.scheme(), "com.nocobase.wecomcompanion");
    let code = query_param(&link, "code").unwrap();
    let (status, tokens) = env
        .exchange(&client_id, &code, &p.verifier, redirect_uri)
        .await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test]
async fn without_the_oauth_plugin_everything_is_404() {
    let env = Env::start(SandboxOptions {
        oauth_provider: false,
        ..SandboxOptions::default()
    })
    .await;
    for path in [
        "/api/.well-known/openid-configuration",
        "/api/.well-known/oauth-authorization-server",
        "/api/idpOAuth/register",
        "/api/idpOAuth/token",
    ] {
        let resp = env
            .http
            .post(format!("{}{path}", env.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.unwrap(), "Not Found");
        let resp = env
            .http
            .get(format!("{}{path}", env.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    // The rest of NocoBase is there.
    assert_eq!(
        env.http
            .get(format!("{}/api/app:getInfo", env.origin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
