//! The `embedded` method's classifier fed by the URLs a sign-in window really goes
//! through on the sandbox: success, WeCom's first-login failure, and its cure (the
//! first-time authorization from the WeCom workbench).

mod support;

use nocobase_wecom_companion::core::keeper;
use nocobase_wecom_companion::core::profile::SignInMethod;
use nocobase_wecom_companion::core::session::{Grant, Tokens};
use nocobase_wecom_companion::core::signin::embedded::{classify, Failure, Landing};
use nocobase_wecom_companion::core::signin::finish;
use support::app::{wecom_qr_sign_in, App};
use support::browser::Browser;

/// Loads the sign-in page like the app's window would, signs in with the WeCom QR as
/// `member`, and classifies every URL the window went through, in order.
async fn window_sign_in(app: &App, member: &str) -> Landing {
    let mut window = Browser::new();
    window
        .goto(&app.url("/signin?redirect=%2Fadmin"))
        .await
        .unwrap();
    wecom_qr_sign_in(&mut window, member).await;
    window
        .visited
        .iter()
        .map(|url| classify(&app.profile.origin, url))
        .find(|l| *l != Landing::Continue)
        .expect("the window reached a final page")
}

#[tokio::test]
async fn a_bound_member_lands_with_a_token_that_becomes_a_session() {
    let app = App::default().await;
    let Landing::SignedIn {
        authenticator,
        token,
    } = window_sign_in(&app, "ZhangSan").await
    else {
        panic!("expected a successful landing");
    };
    assert_eq!(authenticator, "wecom");
    let tokens = Tokens {
        access: token,
        refresh: None,
    };
    let session = finish(
        &app.ctx,
        &app.profile,
        SignInMethod::Embedded,
        Grant::NocoBaseToken,
        tokens,
        None,
    )
    .await
    .unwrap();
    assert_eq!(session.user.nickname.as_deref(), Some("张三"));
    assert!(session.expires_at.is_some(), "expiry read from the JWT");
    keeper::verify(&app.ctx, &app.profile).await.unwrap();
}

#[tokio::test]
async fn a_never_authorized_member_gets_first_login_required_until_the_workbench_cures_it() {
    let app = App::default().await;
    let landing = window_sign_in(&app, "LiSi").await;
    let Landing::Failed(Failure::FirstLoginRequired { message }) = landing else {
        panic!("expected the first-login failure, got {landing:?}");
    };
    assert_eq!(message, "Failed to get mobile");

    // The cure the seed documents: WeCom → Workbench → the app, once, inside WeCom.
    let mut phone = Browser::wecom("LiSi");
    let workbench = phone
        .goto(&app.url("/__sandbox/wecom/workbench?member=LiSi"))
        .await
        .unwrap()
        .page()
        .unwrap();
    let consent = phone.click("app-nocobase").await.unwrap().page().unwrap();
    assert!(
        consent.has_id("wecom-allow"),
        "first-time consent from {}: {}",
        workbench.url,
        consent.url
    );
    let home = phone.click("wecom-allow").await.unwrap().page().unwrap();
    assert!(home.has_id("signed-in-as"), "{}", home.url);
    assert!(app.sandbox.member_authorized("lisi"));

    // Signing in again now works.
    assert!(matches!(
        window_sign_in(&app, "LiSi").await,
        Landing::SignedIn { .. }
    ));
}

#[tokio::test]
async fn a_member_without_an_account_is_recognised_too() {
    let app = App::default().await;
    let mut phone = Browser::wecom("WangWu");
    phone
        .goto(&app.url("/__sandbox/wecom/workbench?member=WangWu"))
        .await
        .unwrap();
    phone.click("app-nocobase").await.unwrap();
    phone.click("wecom-allow").await.unwrap();
    let landing = window_sign_in(&app, "WangWu").await;
    assert!(
        matches!(&landing, Landing::Failed(Failure::FirstLoginRequired { message }) if message == "User not found."),
        "{landing:?}"
    );
}
