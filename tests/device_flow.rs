//! The `device` method over real HTTP: the QR's URL is opened as a phone would (in a
//! plain browser, or inside WeCom), the member confirms the device, the app's polling
//! gets the tokens.

mod support;

use nocobase_wecom_companion::core::signin::device;
use nocobase_wecom_companion::core::Error;
use support::app::{wecom_qr_sign_in, App};
use support::browser::Browser;

#[tokio::test]
async fn approved_in_a_browser_via_wecom_qr() {
    let app = App::default().await;
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let url = started.verification_uri_complete();
    assert!(
        url.starts_with(&format!(
            "{}/idpOAuth/device?user_code=",
            app.sandbox.origin()
        )),
        "{url}"
    );
    assert!(url.ends_with(started.user_code()));
    let mut b = Browser::new();
    b.goto(&url).await.unwrap().page().unwrap();
    let confirm = wecom_qr_sign_in(&mut b, "ZhangSan").await.page().unwrap();
    assert!(confirm.has_id("device-approve"), "{}", confirm.url);
    assert!(confirm.text().contains(started.user_code()));
    let done = b.click("device-approve").await.unwrap().page().unwrap();
    assert!(done.has_id("device-done"));
    let session = started.finish(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(session.user.nickname.as_deref(), Some("张三"));
}

#[tokio::test]
async fn scanned_inside_wecom_a_first_timer_consents_once_then_confirms() {
    let app = App::default().await;
    assert!(!app.sandbox.member_authorized("lisi"));
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    // 李四 scans the QR with the WeCom app: NocoBase opens inside WeCom and signs him in
    // there; WeCom asks, this once, to share his phone number.
    let mut phone = Browser::wecom("LiSi");
    let consent = phone
        .goto(&started.verification_uri_complete())
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(
        consent.has_id("wecom-allow"),
        "WeCom's first-time consent: {}",
        consent.url
    );
    let confirm = phone.click("wecom-allow").await.unwrap().page().unwrap();
    assert!(confirm.has_id("device-approve"), "{}", confirm.url);
    phone.click("device-approve").await.unwrap().page().unwrap();
    let session = started.finish(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(session.user.nickname.as_deref(), Some("李四"));
    assert!(app.sandbox.member_authorized("lisi"));
}

#[tokio::test]
async fn cancelled_on_the_phone_is_a_clear_cancel() {
    let app = App::default().await;
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let mut phone = Browser::wecom("ZhangSan");
    let confirm = phone
        .goto(&started.verification_uri_complete())
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(confirm.has_id("device-cancel"), "{}", confirm.url);
    phone.click("device-cancel").await.unwrap();
    let err = started.finish(&app.ctx, &app.profile).await.unwrap_err();
    assert!(matches!(err, Error::FlowCancelled), "{err:?}");
    assert!(app.ctx.sessions.load("test").unwrap().is_none());
}
