//! The desktop app end to end: the real binary on a headless X server, its tray read and
//! clicked over D-Bus as a desktop's tray host does, links handed over the way the OS
//! does it (`gio open`, or a start with the link as the only argument), URLs it opens
//! read from the browser seam, against a sandbox started here. Sessions are made with
//! the CLI (same files and keyring) and checked with `status --json`.
//!
//! Run with `scripts/test` (a private session bus and an unlocked keyring). The tests
//! share that bus and so take turns; see `support::desktop`.

mod support;

use support::app::wecom_qr_sign_in;
use support::browser::{query_param, Browser, Navigation};
use support::desktop::{link, ui_text, Desktop, Entry, Tray, SINGLE_INSTANCE};

const MENU: [&str; 9] = [
    "<status>",
    "Sign in with WeCom…",
    "Open workbench",
    "Open mobile workbench",
    "First-time authorization guide…",
    "Switch profile",
    "Settings…",
    "Sign out",
    "Quit",
];

const SIGNED_IN: &str = "Signed in as 张三 · 127.0.0.1";
const SIGNED_OUT: &str = "Not signed in · 127.0.0.1";

/// Waits until the menu's status line is `status` and "Sign out" is enabled exactly
/// when signed in, and returns the menu. The app relabels and enables the items one by
/// one, and the host sees each change on its own: wait for all of them together.
async fn wait_for_state(tray: &Tray, status: &str, signed_in: bool) -> Vec<Entry> {
    let what = format!("“{status}” with Sign out enabled: {signed_in}");
    tray.wait_for(&what, |menu| {
        let first = menu.iter().find(|e| !e.separator)?;
        let sign_out = menu.iter().find(|e| e.label == "Sign out")?;
        (first.label == status && sign_out.enabled == signed_in).then(|| menu.to_vec())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_says_who_is_signed_in_and_the_session_survives_a_restart() {
    let mut d = Desktop::start().await;
    let mut app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    let menu = wait_for_state(&tray, SIGNED_OUT, false).await;
    let labels: Vec<_> = menu
        .iter()
        .filter(|e| !e.separator)
        .map(|e| &e.label)
        .collect();
    assert_eq!(labels[1..], MENU[1..], "{labels:?}");
    assert!(!menu[0].enabled, "the status line is not clickable");
    let profile = format!("{} · 127.0.0.1", d.profile);
    tray.wait_for("the profile under “Switch profile”", |menu| {
        let profiles = menu.iter().find(|e| e.label == "Switch profile")?;
        let listed: Vec<_> = profiles.children.iter().map(|e| &e.label).collect();
        (listed == [&profile]).then_some(())
    })
    .await;

    // Signed in with the CLI while the tray runs; the tray shows it from its next start.
    d.device_sign_in().await;
    tray.click("Quit").await;
    assert_eq!(app.wait_exit().await, 0);
    let mut app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    wait_for_state(&tray, SIGNED_IN, true).await;

    // Killed, not quit: the session is in the files and the keyring already.
    app.kill().await;
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    wait_for_state(&tray, SIGNED_IN, true).await;
    let status = d.status().await;
    assert_eq!(status["signedIn"], true, "{status}");
    assert_eq!(status["user"]["nickname"], "张三", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_opens_the_workbenches_in_the_browser() {
    let mut d = Desktop::start().await;
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    tray.wait_for_status(|s| s == SIGNED_OUT).await;
    let origin = d.origin();

    tray.click("Open workbench").await;
    assert_eq!(d.seam.next_url().await, format!("{origin}/admin"));
    tray.click("Open mobile workbench").await;
    assert_eq!(d.seam.next_url().await, format!("{origin}/m"));
    // By position too: the third entry is "Open workbench".
    tray.click(2).await;
    assert_eq!(d.seam.next_url().await, format!("{origin}/admin"));
    assert!(d.seam.arrived().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_from_the_tray_ends_the_session() {
    let mut d = Desktop::start().await;
    d.device_sign_in().await;
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    wait_for_state(&tray, SIGNED_IN, true).await;

    tray.click("Sign out").await;
    wait_for_state(&tray, &format!("{SIGNED_OUT} — Signed out."), false).await;
    let status = d.status().await;
    assert_eq!(status["signedIn"], false, "{status}");
    assert_eq!(status["lastEnd"]["reason"], "signedOut", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_opened_by_the_os_reaches_the_running_app() {
    let mut d = Desktop::start().await;
    let mut app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    tray.wait_for_status(|s| s == SIGNED_OUT).await;

    // At start the app registered itself as the scheme's handler in the user's dirs.
    let handler = d
        .data_dir()
        .join("applications/nocobase-wecom-companion-handler.desktop");
    let entry = std::fs::read_to_string(&handler).expect("the handler .desktop file");
    assert!(
        entry.contains(&format!("\"{}\" %u", support::desktop::BIN)),
        "{entry}"
    );
    assert!(entry.contains("MimeType=x-scheme-handler/com.nocobase.wecomcompanion"));

    // A hostile link first: a path that is really another host. Refused, not opened.
    let hostile = link("open?path=%2F%2Fevil.example%2Fx");
    assert_eq!(
        d.gio_open(&hostile).await,
        0,
        "the second launch hands over"
    );
    let legit = link("open?path=%2Fadmin%2Forders");
    assert_eq!(d.gio_open(&legit).await, 0, "the second launch hands over");
    // The first URL to reach the browser is the legitimate one, sent after.
    assert_eq!(
        d.seam.next_url().await,
        format!("{}/admin/orders", d.origin())
    );
    assert!(app.running(), "the running app handled both links");
    assert!(d.seam.arrived().is_empty());
    // It did get the hostile link, and refused it for its path (logged without the query).
    let log = app.wait_for_log("refused link").await;
    assert!(log.contains("link.refused.path"), "{log}");
    assert!(!log.contains("evil.example"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_starts_the_app_is_followed() {
    let mut d = Desktop::start().await;
    let cold = link("open?path=%2Fadmin%2Fcold");
    let app = d.spawn(&[&cold]).await;
    assert_eq!(
        d.seam.next_url().await,
        format!("{}/admin/cold", d.origin())
    );
    // …and the process goes on as the tray app.
    let tray = d.tray(&app).await;
    tray.wait_for_status(|s| s == SIGNED_OUT).await;
    assert!(d.seam.arrived().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioning_link_asks_before_it_changes_anything() {
    let mut d = Desktop::start().await;
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    tray.wait_for_status(|s| s == SIGNED_OUT).await;
    let before = std::fs::read(d.profiles_file()).unwrap();

    let provisioning =
        link("configure?origin=https%3A%2F%2Fnocobase.example.com&authenticator=wecom");
    assert_eq!(d.gio_open(&provisioning).await, 0);
    // Handled: the app shows what the link would set up, and asks.
    d.wait_for_window(&ui_text("ui.provision.window_title"))
        .await;
    // The app has gone on to later events (a tray click), still without a change.
    tray.click("Open workbench").await;
    assert_eq!(d.seam.next_url().await, format!("{}/admin", d.origin()));
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(d.profiles_file()).unwrap()),
        String::from_utf8_lossy(&before),
        "profiles.json changed before the user confirmed"
    );
    let listed = d.cli(&["profiles", "list"]).await;
    assert!(
        !listed.stdout.contains("nocobase.example.com"),
        "{}",
        listed.stdout
    );
    let profiles = tray.entry("Switch profile").await;
    assert!(
        !profiles
            .children
            .iter()
            .any(|e| e.label.contains("nocobase.example.com")),
        "no profile was added to the tray: {profiles:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_from_the_tray_ends_the_app() {
    let mut d = Desktop::start().await;
    let mut app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    tray.wait_for_status(|s| s == SIGNED_OUT).await;
    tray.click(MENU.len() - 1).await;
    assert_eq!(app.wait_exit().await, 0, "{}", app.stderr());
    // Gone from the bus too: the next launch is a first instance again.
    support::desktop::wait_until_unowned(&d.bus, SINGLE_INSTANCE).await;
}

/// Chooses the profile's sign-in method, as Settings does, before the app starts.
fn use_method(d: &Desktop, method: &str) {
    let path = d.profiles_file();
    let mut profiles: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    profiles["profiles"][0]["method"] = method.into();
    std::fs::write(&path, profiles.to_string()).unwrap();
}

/// Plays the user in the system browser: NocoBase's sign-in page, WeCom's QR as 张三,
/// the consent card. Returns where the browser went after Continue.
async fn sign_in_in_the_browser(authorize: &str) -> Navigation {
    let mut browser = Browser::new();
    browser.goto(authorize).await.unwrap().page().unwrap();
    let consent = wecom_qr_sign_in(&mut browser, "ZhangSan")
        .await
        .page()
        .unwrap();
    assert!(consent.has_id("consent-continue"), "{}", consent.url);
    browser.click("consent-continue").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_comes_back_through_the_loopback_listener() {
    let mut d = Desktop::start().await;
    use_method(&d, "browser");
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    wait_for_state(&tray, SIGNED_OUT, false).await;

    // The sign-in window starts the sign-in; the app opens NocoBase in the browser.
    tray.click("Sign in with WeCom…").await;
    let authorize = d.seam.next_url().await;
    assert!(
        authorize.starts_with(&format!("{}/api/idpOAuth/authorize?", d.origin())),
        "{authorize}"
    );
    let authorize_url = url::Url::parse(&authorize).unwrap();
    let redirect = query_param(&authorize_url, "redirect_uri").unwrap();
    assert!(
        redirect.starts_with("http://127.0.0.1:"),
        "NocoBase 2.2 takes loopback only: {redirect}"
    );

    let done = sign_in_in_the_browser(&authorize).await.page().unwrap();
    assert!(done.url.as_str().starts_with(&redirect), "{}", done.url);
    assert!(done.text().contains("张三"), "{}", done.text());
    wait_for_state(&tray, SIGNED_IN, true).await;
    let status = d.status().await;
    assert_eq!(status["method"], "browser", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_comes_back_through_the_os_deep_link() {
    let mut d = Desktop::start().await;
    // A provider that accepts custom-scheme redirects, unlike NocoBase 2.2.
    d.sandbox.set_custom_scheme_redirects(true);
    use_method(&d, "browser");
    let app = d.launch(&[]).await;
    let tray = d.tray(&app).await;
    wait_for_state(&tray, SIGNED_OUT, false).await;

    tray.click("Sign in with WeCom…").await;
    let authorize = d.seam.next_url().await;
    let authorize_url = url::Url::parse(&authorize).unwrap();
    assert_eq!(
        query_param(&authorize_url, "redirect_uri").as_deref(),
        Some("com.nocobase.wecomcompanion:/oauth/callback")
    );
    let Navigation::External(callback) = sign_in_in_the_browser(&authorize).await else {
        panic!("the browser should hand the callback to the OS");
    };
    // The OS starts a second instance with the link; it hands it to the running app.
    assert_eq!(d.gio_open(callback.as_str()).await, 0);
    wait_for_state(&tray, SIGNED_IN, true).await;
    assert_eq!(d.status().await["method"], "browser");
}
