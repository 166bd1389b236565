//! Everything the core's operations share, built once by the CLI or the shell.

use std::sync::Arc;

use super::callback::PendingFlows;
use super::error::Result;
use super::nocobase::{http_client, NocoBase, Timeouts};
use super::oauth::ClientRegistry;
use super::opener::{SystemOpener, UrlOpener};
use super::paths::{Paths, APP_ID};
use super::profile::{Origin, Profiles};
use super::secrets::{KeyringStore, MemoryStore, SecretStore};
use super::session::SessionStore;
use super::store;

pub struct Context {
    pub paths: Paths,
    pub http: reqwest::Client,
    pub sessions: SessionStore,
    pub clients: ClientRegistry,
    pub flows: Arc<PendingFlows>,
    pub opener: Arc<dyn UrlOpener>,
    /// Deep-link callbacks (`<scheme>:/oauth/callback?…`) handed over by the shell.
    pub deep_links: tokio::sync::broadcast::Sender<String>,
    /// `X-Locale` for NocoBase, e.g. `zh-CN`.
    pub locale: String,
    /// Set when the OS keyring could not be used; sessions then live in memory only.
    pub keyring_problem: Option<String>,
    /// Seconds added to the system clock (tests cross token expiry without sleeping).
    pub clock_skew: i64,
}

impl Context {
    pub fn new(paths: Paths, secrets: Arc<dyn SecretStore>, opener: Arc<dyn UrlOpener>) -> Context {
        let (deep_links, _) = tokio::sync::broadcast::channel(8);
        Context {
            sessions: SessionStore::new(paths.sessions_file(), secrets),
            clients: ClientRegistry::new(paths.clients_file()),
            http: http_client(Timeouts::from_env()),
            flows: Arc::new(PendingFlows::new()),
            opener,
            deep_links,
            locale: "en-US".into(),
            keyring_problem: None,
            clock_skew: 0,
            paths,
        }
    }

    /// The product's context: OS directories, OS keyring (or memory, with the reason
    /// kept for the UI), the system browser.
    pub fn for_os() -> Context {
        Context::for_os_at(Paths::from_os())
    }

    /// Like [`Context::for_os`], with the files under `paths`.
    pub fn for_os_at(paths: Paths) -> Context {
        let keyring = KeyringStore::new(APP_ID);
        let (secrets, problem): (Arc<dyn SecretStore>, _) = match keyring.probe() {
            Ok(()) => (Arc::new(keyring), None),
            Err(e) => (Arc::new(MemoryStore::default()), Some(e.to_string())),
        };
        let mut ctx = Context::new(paths, secrets, Arc::new(SystemOpener));
        ctx.keyring_problem = problem;
        ctx
    }

    /// Unix seconds, as the keeper sees them.
    pub fn now(&self) -> i64 {
        super::session::now() + self.clock_skew
    }

    pub fn with_locale(mut self, locale: impl Into<String>) -> Context {
        self.locale = locale.into();
        self
    }

    pub fn nocobase(&self, origin: &Origin) -> NocoBase {
        NocoBase::new(self.http.clone(), origin.clone(), self.locale.clone())
    }

    /// The profiles file, plus a problem to report if it was corrupt (moved aside).
    pub fn load_profiles(&self) -> Result<(Profiles, Option<super::error::Error>)> {
        store::load_or_recover(&self.paths.profiles_file())
    }

    pub fn save_profiles(&self, profiles: &Profiles) -> Result<()> {
        store::save(&self.paths.profiles_file(), profiles)
    }
}
