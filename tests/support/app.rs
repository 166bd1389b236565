//! The product's core wired to a sandbox, for in-process flow tests: a `Context` with
//! throw-away directories and an in-memory secret store, and an opener that hands every
//! URL the app opens to the test (playing the system browser).

use std::sync::Arc;

use nocobase_wecom_companion::core::opener::UrlOpener;
use nocobase_wecom_companion::core::paths::Paths;
use nocobase_wecom_companion::core::profile::{Origin, Profile, ProfileName};
use nocobase_wecom_companion::core::secrets::MemoryStore;
use nocobase_wecom_companion::core::Context;
use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use tokio::sync::mpsc;
use url::Url;

use super::browser::{Browser, Navigation};

/// The browser seam: URLs the app opens arrive on a channel.
pub struct CapturingOpener(mpsc::UnboundedSender<Url>);

impl UrlOpener for CapturingOpener {
    fn open(&self, url: &Url) -> nocobase_wecom_companion::core::Result<()> {
        let _ = self.0.send(url.clone());
        Ok(())
    }
}

pub struct App {
    pub sandbox: Sandbox,
    pub ctx: Context,
    pub profile: Profile,
    /// URLs the app asked the system browser to open.
    pub opened: mpsc::UnboundedReceiver<Url>,
    _dir: tempfile::TempDir,
}

impl App {
    pub async fn start(options: SandboxOptions) -> App {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let (tx, opened) = mpsc::unbounded_channel();
        let ctx = Context::new(
            Paths::under(dir.path()),
            Arc::new(MemoryStore::default()),
            Arc::new(CapturingOpener(tx)),
        );
        let profile = Profile::new(
            ProfileName::parse("test").unwrap(),
            Origin::parse(&sandbox.origin()).unwrap(),
            "wecom",
        );
        App {
            sandbox,
            ctx,
            profile,
            opened,
            _dir: dir,
        }
    }

    pub async fn default() -> App {
        App::start(SandboxOptions::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.origin())
    }

    /// Sets both clocks forward: the server's and the app's.
    pub fn advance_clock(&mut self, secs: i64) {
        self.ctx.clock_skew = secs;
        self.sandbox.set_clock_offset(secs);
    }
}

/// Plays the user at NocoBase's sign-in page: "Sign in via WeCom", scan the QR as
/// `member` on the (simulated) phone, confirm on the phone. Returns where NocoBase sent
/// the browser afterwards.
pub async fn wecom_qr_sign_in(browser: &mut Browser, member: &str) -> Navigation {
    let page = browser.click("wecom-signin").await.unwrap().page().unwrap();
    assert!(
        page.has_id(&format!("scan-{member}")),
        "WeCom QR page: {}",
        page.url
    );
    let phone = browser
        .click(&format!("scan-{member}"))
        .await
        .unwrap()
        .page()
        .unwrap();
    assert!(
        phone.has_id("wecom-confirm"),
        "phone confirmation: {}",
        phone.url
    );
    browser.click("wecom-confirm").await.unwrap()
}
