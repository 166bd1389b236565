//! The app's windows in the real WebKit, driven over WebDriver (`tauri-driver` +
//! `WebKitWebDriver`): the sign-in window's QR code, decoded from a screenshot, is the
//! device verification URL; the test scans it as 张三's phone would and the window then
//! says who signed in. Settings checks the server. Screenshots of each window in zh-CN
//! and en-US are saved under `target/screenshots/` for review.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::browser::Browser;
use support::desktop::{wait_until_unowned, within, Desktop, BIN, SINGLE_INSTANCE};
use tokio::process::Child;

/// `tauri-driver` on free ports with the desktop's environment, and a session that
/// starts the app with `args`.
struct Session {
    client: Client,
    _driver: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn session(desktop: &Desktop, lang: &str, args: &[&str]) -> Session {
    // Two TLS crypto providers are linked into this test binary: name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    wait_until_unowned(&desktop.bus, SINGLE_INSTANCE).await;
    let (port, native) = (free_port(), free_port());
    let driver = desktop
        .command(
            "tauri-driver",
            &[
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ],
        )
        .env("NWC_LANG", lang)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tauri-driver runs (cargo install tauri-driver --locked; scripts/setup)");
    // tauri-driver announces nothing when it listens: probe its port, bounded.
    within("tauri-driver to listen", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        json!({ "application": BIN, "args": args }),
    );
    let client = within(
        "a WebDriver session",
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("the app starts under WebDriver");
    Session {
        client,
        _driver: driver,
    }
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

/// A screenshot taken after the page has painted its current state (two animation
/// frames: the DOM runs ahead of the pixels).
async fn painted_screenshot(client: &Client) -> Vec<u8> {
    let frames = "const done = arguments[arguments.length - 1];\
                  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
    client.execute_async(frames, vec![]).await.unwrap();
    client.screenshot().await.unwrap()
}

/// Every QR code readable in a PNG.
fn decode_qr(png: &[u8]) -> Vec<String> {
    let image = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

#[tokio::test]
async fn the_sign_in_window_shows_a_qr_that_signs_in_from_wecom() {
    let desktop = Desktop::start().await;
    for lang in ["zh-CN", "en-US"] {
        let s = session(&desktop, lang, &["--open-window", "signin"]).await;
        let qr = within(
            "the QR code",
            s.client.wait().for_element(Locator::Css(
                "#device-view:not([hidden]) #qr[data-url^='http']",
            )),
        )
        .await
        .unwrap();
        let element = serde_json::to_value(&qr).unwrap();
        within("the QR image to load", async {
            let loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0";
            while s
                .client
                .execute(loaded, vec![element.clone()])
                .await
                .unwrap()
                != json!(true)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let url = qr.attr("data-url").await.unwrap().unwrap();
        assert!(
            url.starts_with(&format!("{}/idpOAuth/device?user_code=", desktop.origin())),
            "{url}"
        );
        // The DOM runs ahead of what is painted: wait until the window shows a readable QR.
        let (png, shown) = within("the QR to be painted", async {
            loop {
                let png = s.client.screenshot().await.unwrap();
                let found = decode_qr(&png);
                if !found.is_empty() {
                    break (png, found);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        std::fs::write(screenshot_path(&format!("signin-qr-{lang}")), &png).unwrap();
        assert_eq!(
            shown,
            vec![url.clone()],
            "the QR shown is the verification URL"
        );
        let code = s.client.find(Locator::Id("user-code")).await.unwrap();
        assert!(url.ends_with(&code.text().await.unwrap()));

        if lang == "zh-CN" {
            let hint = s.client.find(Locator::Id("first-time-hint")).await.unwrap();
            assert!(
                hint.text().await.unwrap().contains("手机号"),
                "the first-timer hint"
            );
            // 张三 scans it with WeCom: NocoBase opens inside WeCom, he confirms.
            let mut phone = Browser::wecom("ZhangSan");
            let confirm = phone.goto(&url).await.unwrap().page().unwrap();
            assert!(confirm.has_id("device-approve"), "{}", confirm.url);
            phone.click("device-approve").await.unwrap();
            let done = within(
                "the window to show the signed-in user",
                s.client
                    .wait()
                    .for_element(Locator::Css("#signed-in:not([hidden]) #signed-in-as")),
            )
            .await
            .unwrap();
            assert!(done.text().await.unwrap().contains("张三"));
            let png = painted_screenshot(&s.client).await;
            std::fs::write(screenshot_path("signin-done-zh-CN"), &png).unwrap();
            let status = desktop.status().await;
            assert_eq!(status["signedIn"], true, "{status}");
            // Signed out again for the English round, which must show a fresh QR.
            desktop.cli(&["signout"]).await;
        }
        s.client.close().await.unwrap();
    }
}

#[tokio::test]
async fn settings_checks_the_server_in_both_languages() {
    let desktop = Desktop::start().await;
    for (lang, found) in [("zh-CN", "2.2.15"), ("en-US", "2.2.15")] {
        let s = session(&desktop, lang, &["--open-window", "settings"]).await;
        let origin = within(
            "the profile form",
            s.client.wait().for_element(Locator::Css("#origin")),
        )
        .await
        .unwrap();
        within("the form to be filled", async {
            while origin.prop("value").await.unwrap().unwrap_or_default() != desktop.origin() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        s.client
            .find(Locator::Id("check-server"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let result = within(
            "the server check",
            s.client
                .wait()
                .for_element(Locator::Css("#server-check:not([hidden])")),
        )
        .await
        .unwrap();
        within("the check result", async {
            while !result.text().await.unwrap().contains(found) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let png = painted_screenshot(&s.client).await;
        std::fs::write(screenshot_path(&format!("settings-{lang}")), &png).unwrap();
        s.client.close().await.unwrap();
    }
}
