//! The `browser` method end to end over real HTTP: the app opens the authorize URL, a
//! scripted browser plays the user through NocoBase's sign-in page, the simulated WeCom
//! QR login and the consent card, and the callback reaches the app by loopback or by
//! deep link.

mod support;

use nocobase_wecom_companion::core::oauth::ClientKind;
use nocobase_wecom_companion::core::session::Grant;
use nocobase_wecom_companion::core::signin::browser::{self, BrowserOptions};
use nocobase_wecom_companion::core::{keeper, Error};
use nocobase_wecom_companion::sandbox::SandboxOptions;
use support::app::{wecom_qr_sign_in, App};
use support::browser::{query_param, Browser, Navigation};

/// Follows the authorize URL as 张三 up to the consent card.
async fn to_consent(browser: &mut Browser, authorize: &str) {
    let signin = browser.goto(authorize).await.unwrap().page().unwrap();
    assert!(signin.url.path().ends_with("/signin"), "{}", signin.url);
    let consent = wecom_qr_sign_in(browser, "ZhangSan").await.page().unwrap();
    assert!(
        consent.has_id("consent-continue"),
        "consent card: {}",
        consent.url
    );
}

#[tokio::test]
async fn loopback_callback_signs_in_and_closes_the_listener() {
    let mut app = App::default().await;
    let flow = browser::sign_in(&app.ctx, &app.profile, BrowserOptions::default(), &|_| {});
    let user = async {
        let authorize = app.opened.recv().await.unwrap();
        // What the app asked for: PKCE S256, consent, the API resource, a loopback redirect.
        let redirect = query_param(&authorize, "redirect_uri").unwrap();
        assert!(
            redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
            "{redirect}"
        );
        assert_eq!(
            query_param(&authorize, "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert_eq!(
            query_param(&authorize, "prompt").as_deref(),
            Some("consent")
        );
        assert_eq!(
            query_param(&authorize, "resource"),
            Some(format!("{}/api/", app.sandbox.origin()))
        );
        assert!(query_param(&authorize, "state").unwrap().len() >= 22);

        let mut b = Browser::new();
        to_consent(&mut b, authorize.as_str()).await;
        let done = b.click("consent-continue").await.unwrap().page().unwrap();
        assert!(done.url.as_str().starts_with(&redirect), "{}", done.url);
        (done, redirect)
    };
    let (session, (page, redirect)) = tokio::join!(flow, user);
    let session = session.unwrap();
    assert_eq!(session.user.nickname.as_deref(), Some("张三"));
    assert!(matches!(session.grant, Grant::OAuth { .. }));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("张三"), "{}", page.text());

    // The listener lived only during the flow: replaying the callback finds nobody.
    let replay = reqwest::get(format!("{redirect}?code=x&state=y")).await;
    assert!(replay.is_err(), "the loopback listener must be closed");

    // The stored session works on the API (keeper verifies with auth:check).
    let verified = keeper::verify(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(verified.user.username.as_deref(), Some("zhangsan"));
    assert!(app
        .ctx
        .clients
        .cached(&app.profile.origin, ClientKind::Loopback)
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn forged_callbacks_are_refused_and_the_real_one_still_works() {
    let mut app = App::default().await;
    let flow = browser::sign_in(&app.ctx, &app.profile, BrowserOptions::default(), &|_| {});
    let user = async {
        let authorize = app.opened.recv().await.unwrap();
        let redirect = query_param(&authorize, "redirect_uri").unwrap();
        let state = query_param(&authorize, "state").unwrap();
        let iss = format!("{}/api", app.sandbox.origin());
        let http = reqwest::Client::new();
        for (query, why) in [
            (
                format!("code=forged&state=not-the-state&iss={iss}"),
                "unknown state",
            ),
            (
                format!("code=forged&state={state}&iss=https://evil.example/api"),
                "wrong issuer",
            ),
            (format!("code=forged&state={state}"), "no issuer"),
            (
                format!("code=forged&state={state}&state=other&iss={iss}"),
                "two states",
            ),
        ] {
            let r = http
                .get(format!("{redirect}?{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{why}");
        }
        let mut b = Browser::new();
        to_consent(&mut b, authorize.as_str()).await;
        b.click("consent-continue").await.unwrap().page().unwrap()
    };
    let (session, page) = tokio::join!(flow, user);
    assert_eq!(session.unwrap().user.nickname.as_deref(), Some("张三"));
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn deep_link_callback_when_the_server_accepts_custom_schemes() {
    let mut app = App::start(SandboxOptions {
        custom_scheme_redirects: true,
        ..SandboxOptions::default()
    })
    .await;
    let options = BrowserOptions { deep_link: true };
    let flow = browser::sign_in(&app.ctx, &app.profile, options, &|_| {});
    let user = async {
        let authorize = app.opened.recv().await.unwrap();
        assert_eq!(
            query_param(&authorize, "redirect_uri").as_deref(),
            Some("com.nocobase.wecomcompanion:/oauth/callback")
        );
        let mut b = Browser::new();
        to_consent(&mut b, authorize.as_str()).await;
        let Navigation::External(link) = b.click("consent-continue").await.unwrap() else {
            panic!("the browser should hand the deep link to the OS");
        };
        // A forged deep link first: refused, and the flow keeps waiting.
        let forged = format!(
            "com.nocobase.wecomcompanion:/oauth/callback?code=x&state=nope&iss={}",
            query_param(&link, "iss").unwrap()
        );
        app.ctx.deep_links.send(forged).unwrap();
        // Then what the OS delivers.
        app.ctx.deep_links.send(link.to_string()).unwrap();
    };
    let (session, ()) = tokio::join!(flow, user);
    assert_eq!(session.unwrap().user.nickname.as_deref(), Some("张三"));
    assert!(app
        .ctx
        .clients
        .cached(&app.profile.origin, ClientKind::DeepLink)
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn nocobase_2_2_refuses_the_deep_link_so_loopback_is_used() {
    let mut app = App::default().await;
    let flow = browser::sign_in(
        &app.ctx,
        &app.profile,
        BrowserOptions { deep_link: true },
        &|_| {},
    );
    let user = async {
        let authorize = app.opened.recv().await.unwrap();
        let redirect = query_param(&authorize, "redirect_uri").unwrap();
        assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
        let mut b = Browser::new();
        to_consent(&mut b, authorize.as_str()).await;
        b.click("consent-continue").await.unwrap().page().unwrap()
    };
    let (session, _) = tokio::join!(flow, user);
    session.unwrap();
    assert!(app
        .ctx
        .clients
        .deep_link_refused(&app.profile.origin)
        .unwrap());
}

#[tokio::test]
async fn a_forgotten_client_is_registered_again() {
    let mut app = App::default().await;
    // A client id the server has never issued, as after a database reset.
    std::fs::create_dir_all(app.ctx.paths.config_dir.clone()).unwrap();
    std::fs::write(
        app.ctx.paths.clients_file(),
        format!(
            r#"{{"servers":{{"{}":{{"clients":{{"loopback":"no-such-client"}}}}}}}}"#,
            app.sandbox.origin()
        ),
    )
    .unwrap();
    let flow = browser::sign_in(&app.ctx, &app.profile, BrowserOptions::default(), &|_| {});
    let user = async {
        let authorize = app.opened.recv().await.unwrap();
        assert_ne!(
            query_param(&authorize, "client_id").as_deref(),
            Some("no-such-client")
        );
        let mut b = Browser::new();
        to_consent(&mut b, authorize.as_str()).await;
        b.click("consent-continue").await.unwrap().page().unwrap()
    };
    let (session, _) = tokio::join!(flow, user);
    session.unwrap();
}

#[tokio::test]
async fn a_server_without_the_provider_is_a_clear_error() {
    let app = App::start(SandboxOptions {
        oauth_provider: false,
        ..SandboxOptions::default()
    })
    .await;
    let err = browser::sign_in(&app.ctx, &app.profile, BrowserOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProviderMissing { .. }), "{err:?}");
}
