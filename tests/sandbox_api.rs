//! The sandbox's NocoBase auth API against the recorded 2.2.15 exchanges.

mod support;

use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use serde_json::{json, Value};
use support::{api_client, jwt_claims, sign_in_admin};

async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("JSON body")
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn app_info_and_public_list_have_the_recorded_shape() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    assert!(origin.starts_with("http://127.0.0.1:") && !origin.ends_with('/'));

    let info = body(
        http.get(format!("{origin}/api/app:getInfo"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["data"]["version"], "2.2.15");
    assert_eq!(info["data"]["name"], "main");
    assert_eq!(info["data"]["database"]["dialect"], "sqlite");

    let resp = http
        .get(format!("{origin}/api/authenticators:publicList"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(resp.headers()["vary"], "Origin");
    let list = body(resp).await;
    let basic = &list["data"][0];
    assert_eq!(basic["name"], "basic");
    assert_eq!(basic["authType"], "Email/Password");
    assert_eq!(
        basic["authTypeTitle"],
        "{{t(\"Password\", {\"ns\":\"@nocobase/plugin-auth\"})}}"
    );
    assert_eq!(basic["title"], Value::Null);
    assert_eq!(basic["options"]["allowSignUp"], true);
    assert_eq!(basic["options"]["signupForm"][0]["field"], "username");
    let wecom = &list["data"][1];
    assert_eq!(
        wecom,
        &json!({
            "name": "wecom",
            "authType": "WeCom",
            "authTypeTitle": "{{t(\"WeCom\", {\"ns\":\"@nocobase/plugin-auth-wecom\"})}}",
            "title": "企业微信",
            "options": { "autoSignup": false, "autoLogin": true }
        })
    );
    sb.set_wecom_auto_login(false);
    let list = body(
        http.get(format!("{origin}/api/authenticators:publicList"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"][1]["options"]["autoLogin"], false);
    sb.shutdown().await;
}

#[tokio::test]
async fn sign_in_check_sign_out_and_blocked_token() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();

    let resp = http
        .post(format!("{origin}/api/auth:signIn"))
        .header("X-Authenticator", "basic")
        .json(&json!({ "account": "admin@nocobase.com", "password": "admin123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 4);
    assert!(
        cookies[0].starts_with("nb_auth_token_main=eyJ")
            && cookies[0].ends_with("samesite=lax; httponly")
    );
    assert!(cookies.iter().any(|c| c.starts_with("nb_role_main=root;")));
    let signed_in = body(resp).await;
    let user = &signed_in["data"]["user"];
    assert_eq!(
        (
            &user["email"],
            &user["id"],
            &user["nickname"],
            &user["username"]
        ),
        (
            &json!("admin@nocobase.com"),
            &json!(1),
            &json!("Super Admin"),
            &json!("nocobase")
        )
    );
    // Every column of `users` but the hidden ones, as 2.2.15 sends it (tests/conformance.rs).
    let mut columns: Vec<&String> = user.as_object().unwrap().keys().collect();
    columns.sort();
    assert_eq!(
        columns,
        [
            "appLang",
            "createdAt",
            "createdById",
            "email",
            "id",
            "nickname",
            "passwordChangeTz",
            "phone",
            "systemSettings",
            "updatedAt",
            "updatedById",
            "username"
        ]
    );
    let token = signed_in["data"]["token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&token);
    assert_eq!(claims["userId"], 1);
    assert_eq!(claims["temp"], true);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );
    assert!(
        claims["signInTime"].as_i64().unwrap() > 1_000_000_000_000,
        "signInTime is in ms"
    );
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);

    // Bearer, then ?token=; the cookie alone is not enough.
    let check = http
        .get(format!("{origin}/api/auth:check"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200);
    assert!(check.headers().get("x-new-token").is_none());
    let user = body(check).await;
    assert_eq!(user["data"]["username"], "nocobase");
    let roles: Vec<&str> = user["data"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "member", "root"]);
    let by_query = http
        .get(format!("{origin}/api/auth:check?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let by_cookie = http
        .get(format!("{origin}/api/auth:check"))
        .header("Cookie", format!("nb_auth_token_main={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 401);
    assert_eq!(body(by_cookie).await["errors"][0]["code"], "EMPTY_TOKEN");

    let out = http
        .post(format!("{origin}/api/auth:signOut"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let cleared = set_cookies(&out);
    assert_eq!(cleared.len(), 5);
    assert!(cleared
        .iter()
        .all(|c| c.contains("expires=Thu, 01 Jan 1970 00:00:00 GMT")));
    assert_eq!(body(out).await, json!({}));

    for path in ["auth:check", "auth:signOut"] {
        let resp = http
            .post(format!("{origin}/api/{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            body(resp).await,
            json!({ "errors": [{ "message": "Your session has expired. Please sign in again.", "code": "BLOCKED_TOKEN" }] })
        );
    }
    let anonymous = http
        .post(format!("{origin}/api/auth:signOut"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(anonymous).await["errors"][0]["code"], "EMPTY_TOKEN");
    sb.shutdown().await;
}

#[tokio::test]
async fn sign_in_failures_and_the_origin_check() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let sign_in = |payload: Value, extra: Option<(&'static str, String)>| {
        let mut req = http
            .post(format!("{origin}/api/auth:signIn"))
            .header("X-Authenticator", "basic")
            .json(&payload);
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        req.send()
    };

    let wrong = sign_in(
        json!({ "account": "admin@nocobase.com", "password": "wrong" }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        body(wrong).await,
        json!({ "errors": [{ "message": "The username/email or password is incorrect, please re-enter" }] })
    );
    let unknown = sign_in(
        json!({ "account": "nobody@example.com", "password": "x" }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 401);
    let missing = sign_in(json!({ "password": "x" }), None).await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        body(missing).await["errors"][0]["message"],
        "Please enter your username or email"
    );

    let foreign = sign_in(
        json!({ "account": "admin@nocobase.com", "password": "admin123" }),
        Some(("Origin", "http://evil.example".to_string())),
    )
    .await
    .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(
        foreign.headers()["access-control-allow-origin"],
        "http://evil.example"
    );
    assert_eq!(
        foreign.headers()["access-control-expose-headers"],
        "content-disposition,x-new-token"
    );
    assert!(foreign
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    assert_eq!(
        body(foreign).await,
        json!({ "errors": [{ "message": "Invalid sign-in origin" }] })
    );

    let referer = sign_in(
        json!({ "account": "admin@nocobase.com", "password": "admin123" }),
        Some(("Referer", "http://evil.example/page".to_string())),
    )
    .await
    .unwrap();
    assert_eq!(referer.status(), 403);

    let same = sign_in(
        json!({ "account": "admin@nocobase.com", "password": "admin123" }),
        Some(("Origin", origin.clone())),
    )
    .await
    .unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.headers()["access-control-allow-credentials"], "true");

    // An unknown authenticator name silently means the first enabled one (basic); so does none.
    let fallback = http
        .post(format!("{origin}/api/auth:signIn"))
        .header("X-Authenticator", "nosuch")
        .json(&json!({ "account": "nocobase", "password": "admin123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback.status(), 200);
    let no_header = http
        .post(format!("{origin}/api/auth:signIn"))
        .json(&json!({ "account": "nocobase", "password": "admin123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn messages_follow_x_locale_but_codes_do_not() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let resp = http
        .get(format!("{origin}/api/auth:check"))
        .header("X-Locale", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        body(resp).await,
        json!({ "errors": [{ "message": "未认证。请登录以继续。", "code": "EMPTY_TOKEN" }] })
    );
    let resp = http
        .get(format!("{origin}/api/auth:check"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(resp).await["errors"][0]["message"],
        "Unauthenticated. Please sign in to continue."
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_and_missing_users() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let code_for = |token: String| {
        let http = http.clone();
        let origin = origin.clone();
        async move {
            let resp = http
                .get(format!("{origin}/api/auth:check"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
            body(resp).await["errors"][0]["code"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(
        code_for("garbage.token.value".into()).await,
        "INVALID_TOKEN"
    );
    assert_eq!(code_for("not-a-jwt".into()).await, "INVALID_TOKEN");
    // Signed with another key (the one of another sandbox).
    let other = start().await;
    assert_eq!(code_for(other.mint_token(1)).await, "INVALID_TOKEN");
    other.shutdown().await;
    // Validly signed, but nobody has id 99.
    assert_eq!(code_for(sb.mint_token(99)).await, "NOT_EXIST_USER");

    // A user deleted after signing in.
    let admin = sign_in_admin(&http, &origin).await;
    let lisi = sb.mint_token(3);
    let member = http
        .post(format!("{origin}/api/users:destroy?filterByTk=1"))
        .bearer_auth(&lisi)
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), 403);
    assert_eq!(
        body(member).await,
        json!({ "errors": [{ "message": "No permissions" }] })
    );
    let destroyed = http
        .post(format!("{origin}/api/users:destroy?filterByTk=3"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(destroyed.status(), 200);
    assert_eq!(code_for(lisi).await, "NOT_EXIST_USER");
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_resources_are_plain_text_404() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let token = sign_in_admin(&http, &origin).await;
    for path in [
        "/api/nosuchresource:list",
        "/api/auth:nosuch",
        "/api/noaction",
        "/nowhere",
    ] {
        let resp = http
            .get(format!("{origin}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.unwrap(), "Not Found");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn token_policy_is_admin_only() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let url = format!("{origin}/api/tokenControlConfig:get?filterByTk=token-policy-config");
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(body(anonymous).await["errors"][0]["code"], "EMPTY_TOKEN");

    let member = http
        .get(&url)
        .bearer_auth(sb.mint_token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), 403);
    assert_eq!(
        body(member).await,
        json!({ "errors": [{ "message": "No permissions" }] })
    );

    let admin = sign_in_admin(&http, &origin).await;
    let config = body(http.get(&url).bearer_auth(&admin).send().await.unwrap()).await;
    assert_eq!(config["data"]["key"], "token-policy-config");
    assert_eq!(
        config["data"]["config"],
        json!({ "tokenExpirationTime": "1d", "sessionExpirationTime": "7d", "expiredTokenRenewLimit": "1d" })
    );

    let updated = http
        .post(format!("{origin}/api/tokenControlConfig:update?filterByTk=token-policy-config"))
        .bearer_auth(&admin)
        .json(&json!({ "config": { "tokenExpirationTime": "30s", "expiredTokenRenewLimit": "40s", "sessionExpirationTime": "150s" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(
        body(updated).await["data"][0]["config"]["tokenExpirationTime"],
        "30s"
    );
    // New tokens follow the policy at once.
    let fresh = sign_in_admin(&http, &origin).await;
    let claims = jwt_claims(&fresh);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30
    );

    let bad = http
        .post(format!(
            "{origin}/api/tokenControlConfig:update?filterByTk=token-policy-config"
        ))
        .bearer_auth(&fresh)
        .json(&json!({ "config": { "tokenExpirationTime": "soon" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn users_list_is_paginated() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let token = sign_in_admin(&http, &origin).await;
    let list = body(
        http.get(format!("{origin}/api/users:list?pageSize=1&fields=id"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"], json!([{ "id": 1 }]));
    assert_eq!(
        list["meta"],
        json!({ "count": 3, "page": 1, "pageSize": 1, "totalPage": 3 })
    );
    let wrong_role = http
        .get(format!("{origin}/api/users:list?pageSize=1"))
        .bearer_auth(&token)
        .header("X-Role", "nosuchrole")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_role.status(), 401);
    assert_eq!(
        body(wrong_role).await,
        json!({ "errors": [{ "message": "The role does not belong to the user", "code": "ROLE_NOT_FOUND_FOR_USER" }] })
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn control_endpoints_steer_the_sandbox_over_http() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();

    let policy = http
        .post(format!("{origin}/__sandbox/control/policy"))
        .json(&json!({ "tokenExpirationTime": "30s", "expiredTokenRenewLimit": "40s", "sessionExpirationTime": "150s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200);
    let token = sign_in_admin(&http, &origin).await;
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30
    );
    let bad = http
        .post(format!("{origin}/__sandbox/control/policy"))
        .json(&json!({ "tokenExpirationTime": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        200,
        "plain numbers are milliseconds, as in ms()"
    );
    let bad = http
        .post(format!("{origin}/__sandbox/control/policy"))
        .json(&json!({ "tokenExpirationTime": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let clock = http
        .post(format!("{origin}/__sandbox/control/clock"))
        .json(&json!({ "offsetSeconds": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(body(clock).await, json!({ "offsetSeconds": 3600 }));
    let expired = http
        .get(format!("{origin}/api/auth:check"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(expired).await["errors"][0]["code"], "EXPIRED_SESSION");

    let options = http
        .post(format!("{origin}/__sandbox/control/options"))
        .json(&json!({ "customSchemeRedirects": true, "wecomAutoLogin": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(options).await,
        json!({ "customSchemeRedirects": true, "wecomAutoLogin": false })
    );
    let wrong = http
        .post(format!("{origin}/__sandbox/control/options"))
        .json(&json!({ "wecomAutoLogin": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);

    let restart = http
        .post(format!("{origin}/__sandbox/control/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(restart.status(), 200);

    let members = body(
        http.get(format!("{origin}/__sandbox/control/members"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        members,
        json!([
            { "username": "ZhangSan", "nickname": "张三", "authorized": true },
            { "username": "LiSi", "nickname": "李四", "authorized": false },
            { "username": "WangWu", "nickname": "王五", "authorized": false },
        ])
    );
    assert!(sb.member_authorized("zhangsan") && sb.member_authorized("ZhangSan"));
    assert!(!sb.member_authorized("lisi"));
    sb.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_proper_answers() {
    let sb = start().await;
    let http = api_client();
    let origin = sb.origin();
    let admin = sign_in_admin(&http, &origin).await;
    let cases: Vec<(&str, &str, Option<&str>, &str, u16)> = vec![
        ("POST", "/api/auth:signIn", Some("application/json"), "{not json", 400),
        ("POST", "/api/idpOAuth/register", Some("application/json"), "{", 400),
        ("POST", "/api/idpOAuth/register", Some("application/json"), "[1,2]", 400),
        ("POST", "/api/idpOAuth/token", Some("application/json"), "{}", 400),
        ("POST", "/api/idpOAuth/token", Some("application/x-www-form-urlencoded"), "%%%", 400),
        ("POST", "/api/idpOAuth/revoke", None, "", 400),
        ("POST", "/api/idpOAuth/device/auth", None, "", 400),
        ("GET", "/api/idpOAuth/authorize", None, "", 302),
        ("GET", "/api/idpOAuth/authorize/nosuch", None, "", 302),
        ("POST", "/api/idpOAuth/interaction/nosuch", Some("application/x-www-form-urlencoded"), "submit=1", 303),
        ("GET", "/api/idpOAuth/interaction/nosuch", None, "", 400),
        // The verification API answers 200 with a status, even for no or unknown codes.
        ("GET", "/api/idpOAuth/device/verification", None, "", 200),
        ("GET", "/api/idpOAuth/device/verification?user_code=%FF%FE", None, "", 200),
        ("PUT", "/api/idpOAuth/register/nosuch", None, "", 404),
        ("GET", "/api/wecom:redirect", None, "", 302),
        ("GET", "/__sandbox/wecom/sso/login", None, "", 400),
        ("GET", "/__sandbox/wecom/sso/login?login_type=CorpApp&appid=ww5andb0x&agentid=1000002&redirect_uri=http%3A%2F%2Fevil.example%2F", None, "", 400),
        ("GET", "/__sandbox/wecom/sso/scan?key=x&member=ZhangSan", None, "", 400),
        ("POST", "/__sandbox/wecom/sso/confirm", None, "", 400),
        ("POST", "/__sandbox/wecom/oauth2/allow", None, "ticket=nosuch", 400),
        ("GET", "/__sandbox/wecom/phone?member=Nobody", None, "", 404),
        ("GET", "/__sandbox/wecom/workbench?member=Nobody", None, "", 404),
        ("GET", "/idp-oauth/interaction/nosuch", None, "", 400),
        ("POST", "/__sandbox/control/clock", Some("application/json"), "[]", 400),
        ("POST", "/__sandbox/control/clock", Some("application/json"), "{\"offsetSeconds\":\"soon\"}", 400),
        ("POST", "/__sandbox/signin", None, "", 303),
    ];
    for (method, path, content_type, payload, expected) in cases {
        let mut req = http
            .request(method.parse().unwrap(), format!("{origin}{path}"))
            .body(payload.to_string());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            expected,
            "{method} {path} {payload:?}"
        );
    }

    let huge = "x".repeat(10_000);
    let resp = http
        .get(format!("{origin}/api/auth:check"))
        .bearer_auth(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(body(resp).await["errors"][0]["code"], "INVALID_TOKEN");
    let resp = http
        .post(format!(
            "{origin}/api/tokenControlConfig:update?filterByTk=token-policy-config"
        ))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A token that could not live in a cookie is dropped, the URL is cleaned all the same.
    let resp = http
        .get(format!(
            "{origin}/admin?token=a%3Bb%3Dc&authenticator=basic"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/admin");
    assert!(resp.headers().get("set-cookie").is_none());

    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{origin}/api/auth:check"))
        .header("Origin", "http://app.example")
        .header(
            "Access-Control-Request-Headers",
            "authorization,x-authenticator",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "authorization,x-authenticator"
    );
    sb.shutdown().await;
}
