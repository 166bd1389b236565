//! The core and the CLI against a real NocoBase 2.2.15 (feature `real-nocobase`;
//! `NOCOBASE_URL`; run by `scripts/test` after `tests/nocobase/nocobase.sh reset-db`).
//!
//! WeCom cannot be reached from here, so the browser leg signs in with NocoBase's password
//! authenticator (`basic`) standing in for WeCom: the OAuth provider, the tokens, renewal,
//! refresh and sign-out are exactly the ones a WeCom user gets. The user's browser is a
//! headless Debian Chromium (`tests/browser/sign-in.js`) that receives the authorize URL
//! through the app's URL-opener seam.
//!
//! Every behaviour of the real server the product depends on is asserted here, so a
//! NocoBase that changes one of them fails this suite. Time cannot be moved on a real
//! server: tests that cross an expiry use a short token policy and wait for it.

#![cfg(feature = "real-nocobase")]

mod support;

use std::process::Stdio;

use nocobase_wecom_companion::core::keeper::{self, Kept};
use nocobase_wecom_companion::core::nocobase::{AuthCode, Credentials};
use nocobase_wecom_companion::core::oauth::{discover, tokens, ClientKind, Registration};
use nocobase_wecom_companion::core::paths::APP_ID;
use nocobase_wecom_companion::core::profile::SignInMethod;
use nocobase_wecom_companion::core::secrets::KeyringStore;
use nocobase_wecom_companion::core::session::{EndReason, Grant, Session, Tokens};
use nocobase_wecom_companion::core::signin::browser::{self, deep_link_redirect, BrowserOptions};
use nocobase_wecom_companion::core::signin::embedded::{classify, Failure, Landing};
use nocobase_wecom_companion::core::signin::{device, finish};
use nocobase_wecom_companion::core::Error;
use reqwest::Method;
use serde_json::Value;
use support::browser::query_param;
use support::real::{
    self, admin_token, approve_device, browser_sign_in, let_server_time_pass, unix_now, wait_until,
    Policy, RealApp, ShortPolicy, ADMIN_USERNAME,
};
use support::{api_client, jwt_claims, jwt_header};
use tokio::io::{AsyncBufReadExt, BufReader};
use url::Url;

/// The short policy of the expiry tests: tokens live 20 s, may be renewed up to 20 s after
/// they expired, and a session (and an OAuth grant) ends 60 s after sign-in.
const SHORT: Policy = Policy {
    token: "20s",
    renew: "20s",
    session: "60s",
};

fn stored(app: &RealApp) -> (Session, Tokens) {
    app.ctx
        .sessions
        .load(app.profile.name.as_str())
        .unwrap()
        .expect("a stored session")
}

/// `GET <path>` with a Bearer token: (status, `errors[0].code`, whether `x-new-token` came).
async fn api_get(origin: &str, path: &str, token: &str) -> (u16, Option<String>, bool) {
    let resp = api_client()
        .get(format!("{origin}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let renewed = resp.headers().contains_key("x-new-token");
    let body: Value = resp.json().await.unwrap_or_default();
    let code = body["errors"][0]["code"].as_str().map(str::to_owned);
    (status, code, renewed)
}

/// A device sign-in approved by root through the verification API, as NocoBase's device
/// page does when the user confirms.
async fn device_sign_in(app: &RealApp) -> Session {
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let admin = admin_token(&app.origin).await;
    approve_device(&app.origin, started.user_code(), &admin).await;
    started.finish(&app.ctx, &app.profile).await.unwrap()
}

#[tokio::test]
async fn discovery_finds_the_provider_and_no_wecom_authenticator() {
    let app = RealApp::new("basic");
    let nocobase = app.ctx.nocobase(&app.profile.origin);
    let info = nocobase.app_info().await.unwrap();
    assert_eq!(info.version.as_deref(), Some("2.2.15"));

    // The provider, validated by the core: issuer <origin>/api, endpoints on the origin,
    // S256, registration, the device grant, revocation, RFC 9207 `iss`.
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .expect("NocoBase 2.2.15 ships its OAuth provider, enabled");
    assert_eq!(metadata.issuer, format!("{}/api", app.origin));
    assert!(metadata.supports_device_flow());
    assert!(metadata.authorization_response_iss_parameter_supported);
    for (endpoint, path) in [
        (Some(&metadata.authorization_endpoint), "authorize"),
        (Some(&metadata.token_endpoint), "token"),
        (metadata.registration_endpoint.as_ref(), "register"),
        (
            metadata.device_authorization_endpoint.as_ref(),
            "device/auth",
        ),
        (metadata.revocation_endpoint.as_ref(), "revoke"),
    ] {
        assert_eq!(
            endpoint.map(Url::as_str),
            Some(format!("{}/api/idpOAuth/{path}", app.origin).as_str())
        );
    }

    // The authenticators the sign-in page offers: this server has only the password one,
    // which the CLI reports as "no WeCom authenticator" unless told to use it.
    let list = nocobase.public_authenticators().await.unwrap();
    let basic = list.iter().find(|a| a.name == "basic").expect("basic");
    assert_eq!(basic.auth_type, "Email/Password");
    assert!(list.iter().all(|a| !a.is_wecom()), "{list:?}");
}

#[tokio::test]
async fn registration_refuses_the_deep_link_and_accepts_loopback() {
    let app = RealApp::new("basic");
    let origin = &app.profile.origin;
    let metadata = discover(&app.ctx.http, origin).await.unwrap().unwrap();
    let clients = &app.ctx.clients;

    // 2.2.15 accepts only loopback http redirects with a port: the app's custom scheme is
    // refused as a redirect (not as an error), and remembered.
    let refused = clients
        .client_id(
            &app.ctx.http,
            origin,
            &metadata,
            ClientKind::DeepLink,
            Some(&deep_link_redirect()),
        )
        .await
        .unwrap();
    let Registration::RedirectRefused(why) = refused else {
        panic!("NocoBase 2.2.15 must refuse {}", deep_link_redirect());
    };
    assert!(why.contains("loopback"), "{why}");
    assert!(clients.deep_link_refused(origin).unwrap());
    assert!(clients
        .cached(origin, ClientKind::DeepLink)
        .unwrap()
        .is_none());

    for (kind, redirect) in [
        (
            ClientKind::Loopback,
            Some("http://127.0.0.1:53682/callback"),
        ),
        (ClientKind::Device, None),
    ] {
        let Registration::Registered(id) = clients
            .client_id(&app.ctx.http, origin, &metadata, kind, redirect)
            .await
            .unwrap()
        else {
            panic!("{kind:?} registration refused");
        };
        assert_eq!(clients.cached(origin, kind).unwrap(), Some(id));
    }
}

#[tokio::test]
async fn a_forgotten_client_is_detected_and_registered_again() {
    // What the core relies on to notice a client the server no longer knows (its database
    // was reset): authorize answers with NocoBase's error page, the device endpoint with
    // `invalid_client`.
    let app = RealApp::new("basic");
    let origin = app.origin.clone();
    let http = api_client();
    let pkce = support::pkce();
    let authorize = |client: &str, redirect: &str| {
        let mut url = Url::parse(&format!("{origin}/api/idpOAuth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "openid offline_access api")
            .append_pair("state", "st-forgotten")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "consent")
            .append_pair("resource", &format!("{origin}/api/"));
        url
    };
    let resp = http
        .get(authorize(
            "no-such-client",
            "http://127.0.0.1:53682/callback",
        ))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(
        location.starts_with("/idp-oauth/error?") && location.contains("error=invalid_client"),
        "{location}"
    );

    // A redirect the client was not registered with (another path) is refused the same way.
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let Registration::Registered(id) = app
        .ctx
        .clients
        .client_id(
            &app.ctx.http,
            &app.profile.origin,
            &metadata,
            ClientKind::Loopback,
            Some("http://127.0.0.1:53682/callback"),
        )
        .await
        .unwrap()
    else {
        panic!("loopback registration refused");
    };
    let resp = http
        .get(authorize(&id, "http://127.0.0.1:53682/elsewhere"))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("/idp-oauth/error?") && location.contains("error=invalid_redirect_uri"),
        "{location}"
    );
    // …whereas another port is fine for a native client (the listener's port is random).
    let resp = http
        .get(authorize(&id, "http://127.0.0.1:42505/callback"))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/idp-oauth/interaction/"),
        "{location}"
    );

    // The device flow with a client id the server never issued: `begin` registers again.
    std::fs::write(
        app.ctx.paths.clients_file(),
        format!(
            r#"{{"servers":{{"{}":{{"clients":{{"device":"no-such-client"}}}}}}}}"#,
            app.profile.origin.as_str()
        ),
    )
    .unwrap();
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let fresh = app
        .ctx
        .clients
        .cached(&app.profile.origin, ClientKind::Device)
        .unwrap()
        .unwrap();
    assert_ne!(fresh, "no-such-client");
    assert!(started
        .verification_uri_complete()
        .ends_with(started.user_code()));
}

#[tokio::test]
async fn browser_sign_in_on_the_real_sign_in_page() {
    let mut app = RealApp::new("basic");
    // The desktop app can take deep links, so it first asks for its custom scheme; 2.2.15
    // refuses it and the loopback fallback is taken.
    let options = BrowserOptions { deep_link: true };
    let flow = browser::sign_in(&app.ctx, &app.profile, options, &|_| {});
    let user = async {
        let authorize = app.opened.recv().await.expect("the app opened the browser");
        let redirect = query_param(&authorize, "redirect_uri").unwrap();
        assert!(
            redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
            "{redirect}"
        );
        for (name, value) in [
            ("response_type", "code"),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
            ("scope", "openid offline_access api"),
        ] {
            assert_eq!(
                query_param(&authorize, name).as_deref(),
                Some(value),
                "{name}"
            );
        }
        assert_eq!(
            query_param(&authorize, "resource"),
            Some(format!("{}/api/", app.origin))
        );
        let report = browser_sign_in(&authorize).await;
        (report, redirect)
    };
    let (session, (report, redirect)) = tokio::join!(flow, user);
    let session = session.unwrap();

    // The callback carried code, state and iss, and the app's page said who signed in.
    let callback = Url::parse(report.callback.as_deref().unwrap()).unwrap();
    assert!(callback.as_str().starts_with(&redirect), "{callback}");
    let mut keys: Vec<String> = callback
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["code", "iss", "state"]);
    assert_eq!(
        query_param(&callback, "iss"),
        Some(format!("{}/api", app.origin))
    );
    assert_eq!(report.status, Some(200));
    let text = report.text.clone().unwrap_or_default();
    assert!(text.contains("Super Admin"), "{text}");

    assert_eq!(session.user.username.as_deref(), Some(ADMIN_USERNAME));
    assert_eq!(session.method, SignInMethod::Browser);
    assert!(matches!(session.grant, Grant::OAuth { .. }));
    assert!(app
        .ctx
        .clients
        .deep_link_refused(&app.profile.origin)
        .unwrap());
    // The listener lived only during the flow.
    assert!(reqwest::get(format!("{redirect}?code=x&state=y"))
        .await
        .is_err());

    // The tokens: an RS256 JWT for the API resource, a rotating refresh token, one day.
    let (_, tokens) = stored(&app);
    let access = tokens.access.expose().clone();
    let header = jwt_header(&access);
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("at+jwt"))
    );
    let claims = jwt_claims(&access);
    assert_eq!(claims["aud"], format!("{}/api/", app.origin));
    assert_eq!(claims["iss"], format!("{}/api", app.origin));
    assert_eq!(claims["sub"], "1");
    assert_eq!(claims["scope"], "api");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );
    assert!(
        tokens.refresh.is_some(),
        "offline_access + prompt=consent gives a refresh token"
    );
    let expires_in = session.expires_at.unwrap() - unix_now() as i64;
    assert!((86_300..=86_400).contains(&expires_in), "{expires_in}");

    // The access token works on NocoBase's API, with no X-Authenticator, and no renewal.
    let creds = Credentials {
        token: &tokens.access,
        authenticator: None,
    };
    let nocobase = app.ctx.nocobase(&app.profile.origin);
    let users = nocobase
        .call(Method::GET, "users:list?pageSize=1", Some(&creds), None)
        .await;
    assert!(users.new_token.is_none());
    assert_eq!(users.result.unwrap()[0]["username"], ADMIN_USERNAME);
    let verified = keeper::verify(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(verified.user.nickname.as_deref(), Some("Super Admin"));
}

#[tokio::test]
async fn device_sign_in_approved_through_the_verification_api() {
    let app = RealApp::new("basic");
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let complete = started.verification_uri_complete();
    assert_eq!(
        complete,
        format!(
            "{}/idpOAuth/device?user_code={}",
            app.origin,
            started.user_code()
        )
    );

    // What NocoBase's device page sees: "login" without a session, "pending" with one.
    let admin = admin_token(&app.origin).await;
    let verification = format!(
        "{}/api/idpOAuth/device/verification?user_code={}",
        app.origin,
        started.user_code()
    );
    let anonymous: Value = api_client()
        .get(&verification)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["status"], "login", "{anonymous}");
    assert_eq!(anonymous["clientName"], "NocoBase WeCom Companion");
    let signed_in: Value = api_client()
        .get(&verification)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(signed_in["status"], "pending", "{signed_in}");

    let approved = approve_device(&app.origin, started.user_code(), &admin).await;
    assert_eq!(approved["status"], "complete", "{approved}");
    let session = started.finish(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(session.user.username.as_deref(), Some(ADMIN_USERNAME));
    assert_eq!(session.method, SignInMethod::Device);
    let (_, tokens) = stored(&app);
    assert!(
        tokens.refresh.is_some(),
        "the device grant gives a refresh token"
    );
    let (status, _, renewed) =
        api_get(&app.origin, "/api/auth:check", tokens.access.expose()).await;
    assert_eq!((status, renewed), (200, false));

    // Cancelled on the device page: the app hears a clear "cancelled".
    let cancelled = device::begin(&app.ctx, &app.profile).await.unwrap();
    let resp = api_client()
        .post(format!(
            "{}/api/idpOAuth/device/verification:cancel",
            app.origin
        ))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "user_code": cancelled.user_code() }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let err = cancelled.finish(&app.ctx, &app.profile).await.unwrap_err();
    assert!(matches!(err, Error::FlowCancelled), "{err:?}");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_grant() {
    let app = RealApp::new("basic");
    device_sign_in(&app).await;
    let (_, before) = stored(&app);

    // Signed out elsewhere with the access token: NocoBase blocks it (BLOCKED_TOKEN), and
    // one refresh recovers (the grant is untouched).
    let out = app
        .ctx
        .nocobase(&app.profile.origin)
        .sign_out(&Credentials {
            token: &before.access,
            authenticator: None,
        })
        .await;
    out.result.unwrap();
    let (status, code, _) = api_get(&app.origin, "/api/auth:check", before.access.expose()).await;
    assert_eq!((status, code.as_deref()), (401, Some("BLOCKED_TOKEN")));
    keeper::verify(&app.ctx, &app.profile).await.unwrap();
    let (_, after) = stored(&app);
    assert_ne!(after.access, before.access);
    assert_ne!(after.refresh, before.refresh, "refresh tokens rotate");
    let (status, _, _) = api_get(&app.origin, "/api/auth:check", after.access.expose()).await;
    assert_eq!(status, 200);

    // Someone replays the spent refresh token: the server revokes the whole grant (on
    // SQLite the replay itself answers 500, nocobase-idp-oauth.md §5), so the app's next
    // refresh finds the grant gone and ends the session.
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let Grant::OAuth { client_id } = stored(&app).0.grant else {
        panic!("an OAuth session");
    };
    let replay = tokens::refresh(
        &app.ctx.http,
        &app.profile.origin,
        &metadata,
        &client_id,
        before.refresh.as_ref().unwrap(),
    )
    .await;
    assert!(
        matches!(&replay, Err(Error::OAuth { error, .. }) if error == "invalid_grant" || error == "server_error"),
        "{replay:?}"
    );
    let err = keeper::keep_alive(&app.ctx, &app.profile, true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionEnded {
                reason: EndReason::GrantEnded
            }
        ),
        "{err:?}"
    );
    let (session, ended) = app.ctx.sessions.peek("real").unwrap();
    assert!(session.is_none());
    assert_eq!(ended.unwrap().reason, EndReason::GrantEnded);
    // Access tokens are stateless JWTs: the last one lives on until its exp.
    let (status, _, _) = api_get(&app.origin, "/api/auth:check", after.access.expose()).await;
    assert_eq!(status, 200);
}

/// Signs in with the device flow, then signs out with the core. The tokens it had.
async fn signed_in_then_out(app: &RealApp) -> (Tokens, String) {
    device_sign_in(app).await;
    let (session, tokens) = stored(app);
    let Grant::OAuth { client_id } = session.grant else {
        panic!("an OAuth session");
    };
    assert!(
        nocobase_wecom_companion::core::signout::sign_out(&app.ctx, &app.profile)
            .await
            .unwrap()
    );
    (tokens, client_id)
}

#[tokio::test]
async fn signout_blocks_the_access_token_and_ends_the_session() {
    let app = RealApp::new("basic");
    let (tokens, _) = signed_in_then_out(&app).await;
    // auth:signOut with the OAuth access token: NocoBase blocks it.
    let (status, code, _) = api_get(&app.origin, "/api/auth:check", tokens.access.expose()).await;
    assert_eq!((status, code.as_deref()), (401, Some("BLOCKED_TOKEN")));
    assert!(app.ctx.sessions.load("real").unwrap().is_none());
    assert_eq!(
        app.ctx.sessions.peek("real").unwrap().1.unwrap().reason,
        EndReason::SignedOut
    );
    // Signing out again is a no-op, not an error.
    assert!(
        !nocobase_wecom_companion::core::signout::sign_out(&app.ctx, &app.profile)
            .await
            .unwrap()
    );
}

/// Sign-out revokes the refresh token on the server, also on an `http://` (loopback)
/// server and whatever NocoBase on SQLite answers (500 while still revoking): afterwards
/// the old refresh token gets `invalid_grant`.
#[tokio::test]
async fn signout_revokes_the_refresh_token_on_the_server() {
    let app = RealApp::new("basic");
    let (tokens, client_id) = signed_in_then_out(&app).await;
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let refresh = tokens::refresh(
        &app.ctx.http,
        &app.profile.origin,
        &metadata,
        &client_id,
        tokens.refresh.as_ref().unwrap(),
    )
    .await;
    assert!(
        matches!(&refresh, Err(Error::OAuth { error, .. }) if error == "invalid_grant"),
        "the refresh token still works after sign-out: {refresh:?}"
    );
}

/// A NocoBase session token for root, as an SSO authenticator would hand it over.
async fn landing_token(origin: &str) -> String {
    admin_token(origin).await
}

#[tokio::test]
async fn embedded_landing_and_failure_pages_are_classified() {
    let app = RealApp::new("basic");
    let token = landing_token(&app.origin).await;

    // The landing of a successful SSO sign-in: `<redirect>?authenticator=<name>&token=<jwt>`.
    // NocoBase serves its SPA there (200 HTML); the page's script takes the token.
    let landing =
        Url::parse(&app.url(&format!("/admin?authenticator=basic&token={token}"))).unwrap();
    // Failures end on the sign-in page with the plugin's message in `error`.
    let first_login = Url::parse(
        &app.url("/signin?redirect=%2Fadmin&authenticator=basic&error=Failed%20to%20get%20mobile"),
    )
    .unwrap();
    let other = Url::parse(&app.url(
        "/signin?redirect=%2Fadmin&authenticator=basic&error=The%20WeCom%20API%20call%20failed",
    ))
    .unwrap();
    let plain_signin = Url::parse(&app.url("/signin?redirect=%2Fadmin")).unwrap();
    for url in [&landing, &first_login, &other, &plain_signin] {
        let resp = api_client().get(url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{url}: {content_type}"
        );
        assert!(resp.text().await.unwrap().contains("<html"), "{url}");
    }

    let origin = &app.profile.origin;
    assert_eq!(classify(origin, &plain_signin), Landing::Continue);
    assert!(matches!(
        classify(origin, &first_login),
        Landing::Failed(Failure::FirstLoginRequired { .. })
    ));
    assert_eq!(
        classify(origin, &other),
        Landing::Failed(Failure::Other {
            message: "The WeCom API call failed".into()
        })
    );
    let Landing::SignedIn {
        authenticator,
        token: handed_over,
    } = classify(origin, &landing)
    else {
        panic!("the landing URL must be a sign-in");
    };
    assert_eq!(authenticator, "basic");
    assert_eq!(handed_over.expose(), &token);

    // It becomes a session, checked by the server, with the JWT's expiry and sign-in time.
    let session = finish(
        &app.ctx,
        &app.profile,
        SignInMethod::Embedded,
        Grant::NocoBaseToken,
        Tokens {
            access: handed_over,
            refresh: None,
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(session.user.username.as_deref(), Some(ADMIN_USERNAME));
    let claims = jwt_claims(&token);
    assert_eq!(session.expires_at, claims["exp"].as_i64());
    assert_eq!(
        session.signed_in_at,
        claims["signInTime"].as_i64().unwrap() / 1000
    );
    assert_eq!(claims["temp"], true, "sign-in tokens are renewable");
    keeper::verify(&app.ctx, &app.profile).await.unwrap();

    // Signing out blocks the NocoBase token on the server.
    assert!(
        nocobase_wecom_companion::core::signout::sign_out(&app.ctx, &app.profile)
            .await
            .unwrap()
    );
    let (status, code, _) = api_get(&app.origin, "/api/auth:check", &token).await;
    assert_eq!((status, code.as_deref()), (401, Some("BLOCKED_TOKEN")));
}

/// The OAuth session under the short policy: refreshed (rotating) before each 20 s token
/// expires, until the grant's 60 s cap; then a clear "session limit reached".
async fn oauth_until_the_session_cap(app: &RealApp) {
    let t0 = unix_now();
    let session = device_sign_in(app).await;
    let (_, first) = stored(app);
    let claims = jwt_claims(first.access.expose());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        20,
        "the provider took the short policy after the restart"
    );
    let expires_in = session.expires_at.unwrap() - unix_now() as i64;
    assert!((14..=20).contains(&expires_in), "{expires_in}");
    assert!(matches!(
        keeper::keep_alive(&app.ctx, &app.profile, false)
            .await
            .unwrap(),
        Kept::Fresh(..)
    ));

    let mut refreshes = 0;
    let mut previous = first;
    let ended = loop {
        let (session, tokens) = stored(app);
        let due = keeper::next_action_at(&session, &tokens).expect("OAuth sessions refresh");
        wait_until(due as f64 + 0.5).await;
        match keeper::keep_alive(&app.ctx, &app.profile, false).await {
            Ok(Kept::Renewed(_, next)) => {
                assert_ne!(next.refresh, previous.refresh, "rotated");
                assert_ne!(next.access, previous.access);
                let verified = keeper::verify(&app.ctx, &app.profile).await.unwrap();
                assert_eq!(verified.user.username.as_deref(), Some(ADMIN_USERNAME));
                refreshes += 1;
                previous = next;
            }
            Ok(Kept::Fresh(..)) => panic!("the refresh was due"),
            Err(e) => break e,
        }
        assert!(unix_now() - t0 < 100.0, "the grant outlived its 60 s");
    };
    let elapsed = unix_now() - t0;
    assert!(refreshes >= 2, "{refreshes} refreshes before the cap");
    assert!(
        elapsed >= 59.0,
        "ended after {elapsed:.0}s, before the 60 s cap"
    );
    assert!(
        matches!(
            ended,
            Error::SessionEnded {
                reason: EndReason::GrantEnded
            }
        ),
        "{ended:?}"
    );
    assert!(
        ended.message().contains("Session limit reached"),
        "{}",
        ended.message()
    );
    assert_eq!(
        app.ctx.sessions.peek("real").unwrap().1.unwrap().reason,
        EndReason::GrantEnded
    );
}

/// The NocoBase-token session (embedded method) under the short policy: renewed through
/// `x-new-token`, the superseded token dies 10 s after its renewal (TOKEN_RENEW_FAILED), and
/// the session ends at the 60 s cap (EXPIRED_SESSION → "session limit reached").
async fn nocobase_token_until_the_session_cap(app: &RealApp) {
    let t0 = landing_token(&app.origin).await;
    let landing = Url::parse(&app.url(&format!("/admin?authenticator=basic&token={t0}"))).unwrap();
    let Landing::SignedIn { token, .. } = classify(&app.profile.origin, &landing) else {
        panic!("a landing");
    };
    finish(
        &app.ctx,
        &app.profile,
        SignInMethod::Embedded,
        Grant::NocoBaseToken,
        Tokens {
            access: token,
            refresh: None,
        },
        None,
    )
    .await
    .unwrap();
    let claims = jwt_claims(&t0);
    let exp0 = claims["exp"].as_i64().unwrap();
    let signed_in = claims["signInTime"].as_i64().unwrap() as f64 / 1000.0;
    assert_eq!(
        exp0 - claims["iat"].as_i64().unwrap(),
        20,
        "the short policy applies at once"
    );
    assert!(matches!(
        keeper::keep_alive(&app.ctx, &app.profile, false)
            .await
            .unwrap(),
        Kept::Fresh(..)
    ));

    // Just after exp: one auth:check, answered with x-new-token, adopted and stored.
    let (session, tokens) = stored(app);
    wait_until(keeper::next_action_at(&session, &tokens).unwrap() as f64 + 0.2).await;
    let Kept::Renewed(_, t1) = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap()
    else {
        panic!("renewal was due");
    };
    let renewed_at = unix_now();
    assert_ne!(t1.access.expose(), &t0);
    assert_eq!(stored(app).1.access, t1.access);
    let c1 = jwt_claims(t1.access.expose());
    assert_eq!(c1["signInTime"], claims["signInTime"], "same session");
    assert_ne!(c1["jti"], claims["jti"]);

    // More than 10 s after its renewal the superseded token is refused for good.
    wait_until(renewed_at + 11.0).await;
    let old = app
        .ctx
        .nocobase(&app.profile.origin)
        .check(&Credentials {
            token: &tokens.access,
            authenticator: Some("basic"),
        })
        .await;
    assert!(
        matches!(
            old.result,
            Err(Error::Auth {
                code: AuthCode::TokenRenewFailed,
                ..
            })
        ),
        "{:?}",
        old.result
    );

    // The renewed token expires in turn and is renewed again, while the session lasts.
    let (session, tokens) = stored(app);
    wait_until(keeper::next_action_at(&session, &tokens).unwrap() as f64 + 0.2).await;
    let Kept::Renewed(_, t2) = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap()
    else {
        panic!("renewal was due");
    };
    assert_ne!(t2.access, t1.access);

    // Past the 60 s session the next renewal is refused: EXPIRED_SESSION, session limit.
    let (session, tokens) = stored(app);
    let due = keeper::next_action_at(&session, &tokens).unwrap() as f64;
    assert!(
        due > signed_in + 60.0,
        "the third token outlives the session"
    );
    wait_until(due + 0.2).await;
    let err = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionEnded {
                reason: EndReason::SessionLimit
            }
        ),
        "{err:?}"
    );
    assert!(
        err.message().starts_with("Session limit reached"),
        "{}",
        err.message()
    );
    let (status, code, _) = api_get(&app.origin, "/api/auth:check", t2.access.expose()).await;
    assert_eq!((status, code.as_deref()), (401, Some("EXPIRED_SESSION")));
}

#[tokio::test]
async fn a_short_token_policy_renews_refreshes_and_ends_at_the_session_cap() {
    let origin = real::nocobase_url();
    // The provider reads the policy only when it starts: restart after setting it.
    let _policy = ShortPolicy::apply(&origin, SHORT, true).await;
    let policy = real::token_policy(&origin).await;
    assert_eq!(policy["tokenExpirationTime"], "20s", "{policy}");

    // Two sessions side by side, so the waits for server time overlap.
    let oauth = RealApp::new("basic");
    let embedded = RealApp::new("basic");
    tokio::join!(
        oauth_until_the_session_cap(&oauth),
        nocobase_token_until_the_session_cap(&embedded)
    );
}

#[tokio::test]
async fn a_runtime_policy_change_breaks_access_tokens_and_one_refresh_recovers() {
    // nocobase-idp-oauth.md §6: the provider keeps the policy it was built with, but the
    // bridge's internal NocoBase token follows the new one, is renewed once and then
    // refused (TOKEN_RENEW_FAILED) while the OAuth access token still looks valid for a day.
    // `keeper::verify` refreshes once on such a 401.
    let app = RealApp::new("basic");
    // The provider is built (and reads the default policy) at its first request.
    discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let runtime = Policy {
        token: "3s",
        renew: "20s",
        session: "1d",
    };
    let _policy = ShortPolicy::apply(&app.origin, runtime, false).await;
    let session = device_sign_in(&app).await;
    let expires_in = session.expires_at.unwrap() - unix_now() as i64;
    assert!(
        expires_in > 86_000,
        "the provider re-read the policy without a restart: {expires_in}"
    );
    let (_, first) = stored(&app);

    // The internal token expires after 3 s and is renewed (x-new-token, not for the app)…
    let_server_time_pass(4.0).await;
    let (status, _, renewed) = api_get(&app.origin, "/api/auth:check", first.access.expose()).await;
    assert_eq!((status, renewed), (200, true));
    // …and more than 10 s later the same, unexpired, access token is refused.
    let_server_time_pass(11.0).await;
    let (status, code, _) = api_get(&app.origin, "/api/auth:check", first.access.expose()).await;
    assert_eq!((status, code.as_deref()), (401, Some("TOKEN_RENEW_FAILED")));

    let verified = keeper::verify(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(verified.user.username.as_deref(), Some(ADMIN_USERNAME));
    let (_, second) = stored(&app);
    assert_ne!(second.access, first.access, "recovered by a refresh");
    let (status, _, _) = api_get(&app.origin, "/api/auth:check", second.access.expose()).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------------
// The CLI as a user runs it, against the real server.

const BIN: &str = env!("CARGO_BIN_EXE_nocobase-wecom-companion");

struct Cli {
    home: tempfile::TempDir,
    profile: String,
}

impl Cli {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.args(args)
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            // The URL-opener seam: the user's browser is the headless Chromium script.
            .env(
                "NWC_BROWSER",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/sign-in.js"),
            )
            .env("NWC_LANG", "en-US")
            .env_remove("NWC_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args).await;
        assert_eq!(code, 0, "{args:?}:\n{stdout}\n{stderr}");
        stdout
    }
}

#[tokio::test]
async fn the_cli_signs_in_with_the_browser_and_the_device_code() {
    KeyringStore::new(APP_ID).probe().unwrap_or_else(|e| {
        panic!("this test needs the OS keyring; run it with scripts/test ({e})")
    });
    let origin = real::nocobase_url();
    let cli = Cli {
        home: tempfile::tempdir().unwrap(),
        profile: format!("real{}", std::process::id()),
    };
    let p = cli.profile.as_str();

    // No WeCom authenticator on this server: a clear refusal, then the stand-in by name.
    let (code, _, stderr) = cli.run(&["profiles", "add", p, &origin]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("WeCom"), "{stderr}");
    let added = cli
        .ok(&["profiles", "add", p, &origin, "--authenticator", "basic"])
        .await;
    assert!(added.contains("basic"), "{added}");

    // `signin --method browser`: the CLI opens the authorize URL through NWC_BROWSER, the
    // headless Chromium signs in on the real page and the callback reaches the CLI.
    let transcript = cli
        .ok(&["--profile", p, "signin", "--method", "browser"])
        .await;
    assert!(
        transcript.contains("Signed in as Super Admin"),
        "{transcript}"
    );
    let status: Value =
        serde_json::from_str(&cli.ok(&["--profile", p, "status", "--json"]).await).unwrap();
    assert_eq!(status["signedIn"], true, "{status}");
    assert_eq!(status["method"], "browser");
    let token = cli.ok(&["--profile", p, "token"]).await.trim().to_owned();
    assert_eq!(api_get(&origin, "/api/auth:check", &token).await.0, 200);
    let refreshed = cli
        .ok(&["--profile", p, "token", "--refresh"])
        .await
        .trim()
        .to_owned();
    assert_ne!(refreshed, token);
    assert_eq!(api_get(&origin, "/api/auth:check", &refreshed).await.0, 200);
    assert!(cli
        .ok(&["--profile", p, "signout"])
        .await
        .contains("Signed out"));
    assert_eq!(
        api_get(&origin, "/api/auth:check", &refreshed)
            .await
            .1
            .as_deref(),
        Some("BLOCKED_TOKEN")
    );

    // `signin --method device`: the CLI prints the device link; the user approves it.
    let mut child = cli
        .command(&["--profile", p, "signin", "--method", "device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut transcript = String::new();
    let link = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the CLI printed the device link");
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some(at) = line.find(&format!("{origin}/idpOAuth/device?user_code=")) {
            break Url::parse(line[at..].trim()).unwrap();
        }
    };
    let user_code = query_param(&link, "user_code").unwrap();
    let admin = admin_token(&origin).await;
    approve_device(&origin, &user_code, &admin).await;
    while let Some(line) = lines.next_line().await.unwrap() {
        transcript.push_str(&line);
        transcript.push('\n');
    }
    assert!(child.wait().await.unwrap().success(), "{transcript}");
    assert!(
        transcript.contains("Signed in as Super Admin"),
        "{transcript}"
    );
    let token = cli.ok(&["--profile", p, "token"]).await.trim().to_owned();
    assert_eq!(api_get(&origin, "/api/auth:check", &token).await.0, 200);
    cli.ok(&["--profile", p, "signout"]).await;
    cli.ok(&["profiles", "remove", p]).await;
}
