//! The simulated WeCom and the WeCom authenticator: QR login, the first-login rule, the
//! Workbench authorization, in-client automatic login and the pages around them.

mod support;

use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use serde_json::{json, Value};
use support::api_client;
use support::browser::{query_param, Browser, Page};

async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}

/// Signs in through the WeCom QR panel as `member`, starting from `/admin`.
async fn qr_sign_in(browser: &mut Browser, origin: &str, member: &str) -> Page {
    let signin = browser
        .goto(&format!("{origin}/admin"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(signin.url.path(), "/signin");
    assert_eq!(signin.query("redirect").as_deref(), Some("/admin"));
    let qr = browser.click("wecom-signin").await.unwrap().page().unwrap();
    assert_eq!(qr.url.path(), "/__sandbox/wecom/sso/login");
    browser.click(&format!("scan-{member}")).await.unwrap();
    browser
        .click("wecom-confirm")
        .await
        .unwrap()
        .page()
        .unwrap()
}

fn sign_in_error(page: &Page) -> Option<String> {
    (page.url.path() == "/signin")
        .then(|| page.query("error"))
        .flatten()
}

#[tokio::test]
async fn zhangsan_signs_in_with_the_qr_code() {
    let sb = start().await;
    let origin = sb.origin();
    let mut browser = Browser::new();
    let page = qr_sign_in(&mut browser, &origin, "ZhangSan").await;
    assert_eq!(page.url.as_str(), format!("{origin}/admin"));
    assert_eq!(page.text_of("signed-in-as").as_deref(), Some("张三"));

    // The callback's final redirect carried the session, as NocoBase's SSO plugins do.
    let handoff = browser
        .visited
        .iter()
        .find(|u| u.path() == "/admin" && u.query().is_some())
        .expect("a redirect to /admin?authenticator=wecom&token=…");
    assert!(handoff
        .query()
        .unwrap()
        .starts_with("authenticator=wecom&token=eyJ"));
    let token = query_param(handoff, "token").unwrap();
    let check: Value = api_client()
        .get(format!("{origin}/api/auth:check"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["data"]["username"], "zhangsan");
    // The QR panel's redirect_uri is the authenticator's callback on this origin.
    let login = browser
        .visited
        .iter()
        .find(|u| u.path() == "/__sandbox/wecom/sso/login")
        .unwrap();
    assert_eq!(query_param(login, "login_type").as_deref(), Some("CorpApp"));
    assert_eq!(query_param(login, "agentid").as_deref(), Some("1000002"));
    assert_eq!(
        query_param(login, "redirect_uri"),
        Some(format!("{origin}/api/wecom:redirect"))
    );
}

#[tokio::test]
async fn lisi_fails_first_by_qr_until_authorized_from_the_workbench() {
    let sb = start().await;
    let origin = sb.origin();
    let mut desktop = Browser::new();

    // QR login cannot get the phone number of a member who never authorized in the client.
    let failed = qr_sign_in(&mut desktop, &origin, "LiSi").await;
    assert!(
        desktop.visited.iter().any(|u| u.as_str()
            == format!("{origin}/signin?redirect=%2Fadmin&authenticator=wecom&error=Failed%20to%20get%20mobile")),
        "{:?}",
        desktop.visited
    );
    assert_eq!(
        sign_in_error(&failed).as_deref(),
        Some("Failed to get mobile")
    );
    assert_eq!(
        failed.text_of("signin-error").as_deref(),
        Some("Failed to get mobile")
    );
    assert!(failed.has_id("wecom-first-login"));
    assert!(!sb.member_authorized("LiSi"));

    // The documented cure: WeCom › Workbench › NocoBase, inside the client.
    let mut phone = Browser::new();
    let workbench = phone
        .goto(&format!("{origin}/__sandbox/wecom/workbench?member=LiSi"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(workbench.text().contains("WeCom › Workbench"));
    assert_eq!(
        workbench.attr_of("app-nocobase", "href"),
        Some(format!("{origin}/m"))
    );
    let consent = phone.click("app-nocobase").await.unwrap().page().unwrap();
    assert_eq!(consent.url.path(), "/__sandbox/wecom/oauth2/authorize");
    assert_eq!(
        consent.query("scope").as_deref(),
        Some("snsapi_privateinfo")
    );
    assert_eq!(consent.query("agentid").as_deref(), Some("1000002"));
    assert!(consent
        .text()
        .contains("NocoBase requests your phone number and email"));
    let mobile = phone.click("wecom-allow").await.unwrap().page().unwrap();
    assert_eq!(mobile.url.as_str(), format!("{origin}/m"));
    assert_eq!(mobile.text_of("signed-in-as").as_deref(), Some("李四"));
    assert!(sb.member_authorized("LiSi") && sb.member_authorized("lisi"));

    // From now on QR login works for 李四.
    let mut desktop = Browser::new();
    let admin = qr_sign_in(&mut desktop, &origin, "LiSi").await;
    assert_eq!(admin.text_of("signed-in-as").as_deref(), Some("李四"));

    // The second visit inside the client needs no consent (silent).
    let mut phone = Browser::wecom("LiSi");
    let silent = phone
        .goto(&format!("{origin}/m"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(silent.text_of("signed-in-as").as_deref(), Some("李四"));
}

#[tokio::test]
async fn wangwu_has_no_nocobase_user() {
    let sb = start().await;
    let origin = sb.origin();
    let mut desktop = Browser::new();
    let failed = qr_sign_in(&mut desktop, &origin, "WangWu").await;
    assert_eq!(
        sign_in_error(&failed).as_deref(),
        Some("Failed to get mobile")
    );

    // Authorizing in the client gives the phone number, which matches nobody.
    let mut phone = Browser::wecom("WangWu");
    let consent = phone
        .goto(&format!("{origin}/m"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(consent.has_id("wecom-allow"));
    let failed = phone.click("wecom-allow").await.unwrap().page().unwrap();
    assert!(phone.visited.iter().any(|u| u.as_str()
        == format!("{origin}/signin?redirect=%2Fm&authenticator=wecom&error=User%20not%20found.")));
    assert_eq!(sign_in_error(&failed).as_deref(), Some("User not found."));
    assert!(sb.member_authorized("WangWu"));

    let mut desktop = Browser::new();
    let failed = qr_sign_in(&mut desktop, &origin, "WangWu").await;
    assert_eq!(sign_in_error(&failed).as_deref(), Some("User not found."));
}

#[tokio::test]
async fn in_wecom_device_approval_with_automatic_login() {
    let sb = start().await;
    let origin = sb.origin();
    let http = api_client();
    let (status, client) = {
        let resp = http
            .post(format!("{origin}/api/idpOAuth/register"))
            .json(&json!({ "client_name": "NocoBase WeCom Companion", "application_type": "native", "token_endpoint_auth_method": "none",
                           "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"], "response_types": [] }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 201);
    let client_id = client["client_id"].as_str().unwrap();
    let started: Value = http
        .post(format!("{origin}/api/idpOAuth/device/auth"))
        .form(&[
            ("client_id", client_id),
            ("scope", "openid api offline_access"),
            ("resource", &format!("{origin}/api/")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // 李四 opens the verification link in WeCom: automatic login, first-time consent.
    let mut phone = Browser::wecom("LiSi");
    let consent = phone
        .goto(started["verification_uri_complete"].as_str().unwrap())
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(consent.url.path(), "/__sandbox/wecom/oauth2/authorize");
    assert!(consent.has_id("wecom-allow") && consent.has_id("wecom-deny"));
    let confirm = phone.click("wecom-allow").await.unwrap().page().unwrap();
    assert_eq!(
        confirm.url.as_str(),
        started["verification_uri_complete"].as_str().unwrap()
    );
    assert!(
        confirm
            .text()
            .contains("NocoBase WeCom Companion wants to sign in as 李四."),
        "{}",
        confirm.text()
    );
    let done = phone.click("device-approve").await.unwrap().page().unwrap();
    assert_eq!(
        done.attr_of("device-done", "data-status").as_deref(),
        Some("complete")
    );

    let tokens: Value = http
        .post(format!("{origin}/api/idpOAuth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started["device_code"].as_str().unwrap()),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().expect("approved");
    assert_eq!(support::jwt_claims(at)["sub"], "3");
    assert!(sb.member_authorized("LiSi"));
}

#[tokio::test]
async fn without_automatic_login_wecom_pages_behave_like_a_browser() {
    let sb = Sandbox::start(SandboxOptions {
        wecom_auto_login: false,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let origin = sb.origin();
    let mut phone = Browser::wecom("ZhangSan");
    let signin = phone
        .goto(&format!("{origin}/admin"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(signin.url.path(), "/signin");
    // Tapping the button inside WeCom goes to in-client OAuth, not to the QR panel; 张三 has
    // authorized before, so it is silent.
    let admin = phone.click("wecom-signin").await.unwrap().page().unwrap();
    assert!(phone
        .visited
        .iter()
        .any(|u| u.path() == "/__sandbox/wecom/oauth2/authorize"));
    assert!(!phone
        .visited
        .iter()
        .any(|u| u.path() == "/__sandbox/wecom/sso/login"));
    assert_eq!(admin.text_of("signed-in-as").as_deref(), Some("张三"));

    // Switched on at run time, it applies at once.
    sb.set_wecom_auto_login(true);
    let mut phone = Browser::wecom("ZhangSan");
    let mobile = phone
        .goto(&format!("{origin}/m"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(mobile.text_of("signed-in-as").as_deref(), Some("张三"));
    assert!(!phone.visited.iter().any(|u| u.path() == "/signin"));
}

#[tokio::test]
async fn the_in_client_pages_need_the_wecom_client() {
    let sb = start().await;
    let origin = sb.origin();
    let http = api_client();
    let location = http
        .get(format!(
            "{origin}/api/wecom:getAuthUrl?authenticator=wecom&redirect=%2Fadmin"
        ))
        .header("User-Agent", support::browser::WECOM_UA)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        location.starts_with("/__sandbox/wecom/oauth2/authorize?appid=ww5andb0x&redirect_uri="),
        "{location}"
    );
    assert!(location.contains("&response_type=code&scope=snsapi_privateinfo&state="));
    assert!(location.ends_with("&agentid=1000002"));

    // The same link opened in an ordinary browser.
    let mut desktop = Browser::new();
    let page = desktop
        .goto(&format!("{origin}{location}"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(page
        .text()
        .contains("Please open this link in the WeCom client"));

    // XHR flavour of getAuthUrl.
    let xhr: Value = http
        .get(format!(
            "{origin}/api/wecom:getAuthUrl?authenticator=wecom&redirect=%2Fadmin"
        ))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(xhr["data"].as_str().unwrap().starts_with("/__sandbox/wecom/sso/login?login_type=CorpApp&appid=ww5andb0x&agentid=1000002&redirect_uri="));
}

#[tokio::test]
async fn the_callback_rejects_unknown_state_and_reused_codes() {
    let sb = start().await;
    let origin = sb.origin();
    let http = api_client();
    let location =
        |resp: reqwest::Response| resp.headers()["location"].to_str().unwrap().to_string();

    let unknown = http
        .get(format!("{origin}/api/wecom:redirect?code=abc&state=nosuch"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 302);
    assert!(location(unknown).starts_with("/signin?redirect=%2Fadmin&authenticator=wecom&error="));

    // Capture one real code/state pair and replay it.
    let mut browser = Browser::new();
    browser
        .goto(&format!("{origin}/signin?redirect=%2Fm"))
        .await
        .unwrap();
    browser.click("wecom-signin").await.unwrap();
    browser.click("scan-ZhangSan").await.unwrap();
    let page = browser
        .click("wecom-confirm")
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(page.text_of("signed-in-as").as_deref(), Some("张三"));
    let callback = browser
        .visited
        .iter()
        .find(|u| u.path() == "/api/wecom:redirect")
        .unwrap()
        .clone();
    let replay = http.get(callback.as_str()).send().await.unwrap();
    assert!(
        location(replay).contains("&authenticator=wecom&error="),
        "state is single use"
    );

    // Declining on the phone: no code.
    let mut browser = Browser::new();
    browser.goto(&format!("{origin}/signin")).await.unwrap();
    browser.click("wecom-signin").await.unwrap();
    browser.click("scan-ZhangSan").await.unwrap();
    let declined = browser.click("wecom-cancel").await.unwrap().page().unwrap();
    assert_eq!(
        sign_in_error(&declined).as_deref(),
        Some("Authorization code does not exist.")
    );
}

#[tokio::test]
async fn pages_consume_tokens_carry_the_banner_and_speak_three_languages() {
    let sb = start().await;
    let origin = sb.origin();
    let token = sb.mint_token(1);
    let mut browser = Browser::new();
    let page = browser
        .goto(&format!(
            "{origin}/admin?authenticator=basic&token={token}&tab=1"
        ))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(page.url.as_str(), format!("{origin}/admin?tab=1"));
    assert_eq!(page.text_of("signed-in-as").as_deref(), Some("Super Admin"));
    assert_eq!(
        page.text_of("sandbox-banner").as_deref(),
        Some("Sandbox — not a real NocoBase / WeCom")
    );

    let zh = browser
        .goto(&format!("{origin}/signin?locale=zh-CN"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(zh.text_of("wecom-signin").as_deref(), Some("企业微信登录"));
    assert_eq!(zh.text_of("wecom-first-login").as_deref(), Some("初次登录"));
    let id = browser
        .goto(&format!("{origin}/signin?locale=id-ID"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(
        id.text_of("wecom-signin").as_deref(),
        Some("Masuk melalui WeCom")
    );
    let en = browser
        .goto(&format!("{origin}/signin"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(
        en.text_of("wecom-signin").as_deref(),
        Some("Sign in via WeCom")
    );
    assert!(en
        .text()
        .contains("For the first time signing in via WeCom, please refer: First-Time Login"));

    // Where pages send anonymous users (the recorded spellings of `redirect`).
    let http = api_client();
    let to_signin = |path: &'static str| {
        let http = http.clone();
        let origin = origin.clone();
        async move {
            let resp = http.get(format!("{origin}{path}")).send().await.unwrap();
            assert_eq!(resp.status(), 302);
            resp.headers()["location"].to_str().unwrap().to_string()
        }
    };
    assert_eq!(to_signin("/admin").await, "/signin?redirect=/admin");
    assert_eq!(
        to_signin("/idpOAuth/device?user_code=ABCD-EFGH").await,
        "/signin?redirect=/idpOAuth/device%3Fuser_code%3DABCD-EFGH"
    );

    // The sign-in form, its error, and signing out.
    let mut browser = Browser::new();
    browser.goto(&format!("{origin}/m")).await.unwrap();
    let wrong = browser
        .fill_and_submit(
            "basic-signin",
            &[("account", "nocobase"), ("password", "nope")],
        )
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(wrong.query("redirect").as_deref(), Some("/m"));
    assert!(wrong.text_of("signin-error").unwrap().contains("incorrect"));
    let mobile = browser
        .fill_and_submit(
            "basic-signin",
            &[("account", "nocobase"), ("password", "admin123")],
        )
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(mobile.url.path(), "/m");
    let out = browser.click("signout").await.unwrap().page().unwrap();
    assert_eq!(out.url.path(), "/signin");
    let again = browser
        .goto(&format!("{origin}/admin"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert_eq!(again.url.path(), "/signin");

    // Every simulated WeCom page has the banner too.
    let mut browser = Browser::new();
    let workbench = browser
        .goto(&format!("{origin}/__sandbox/wecom/workbench"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(workbench.has_id("sandbox-banner") && workbench.has_id("workbench-LiSi"));
}
