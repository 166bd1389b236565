//! The sandbox's shared state: its clock, switches, keys and the in-memory "database".
//!
//! Mutable state lives behind one mutex (`World`) that is never held across an `.await`,
//! so handlers stay simple and there is no lock ordering to get wrong.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng as _;

use super::nocobase::{PolicyConfig, Sessions};
use super::provider::{Keys, ProviderState};
use super::wecom::WecomState;
use super::SandboxOptions;

/// A NocoBase user (table `users`) with the fields the sandbox needs.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: u64,
    pub username: &'static str,
    pub nickname: &'static str,
    pub email: &'static str,
    pub phone: Option<&'static str>,
    /// Only the root account has a password: the others sign in with WeCom.
    pub password: Option<&'static str>,
    pub roles: &'static [&'static str],
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| *r == "admin" || *r == "root")
    }

    /// The role NocoBase puts in `nb_role_main` after sign-in (root wins).
    pub fn default_role(&self) -> &'static str {
        if self.roles.contains(&"root") {
            "root"
        } else {
            self.roles.first().copied().unwrap_or("member")
        }
    }
}

fn fixed_users() -> Vec<User> {
    vec![
        User {
            id: 1,
            username: "nocobase",
            nickname: "Super Admin",
            email: "admin@nocobase.com",
            phone: None,
            password: Some("admin123"),
            roles: &["admin", "member", "root"],
        },
        User {
            id: 2,
            username: "zhangsan",
            nickname: "张三",
            email: "zhangsan@example.com",
            phone: Some("13800000001"),
            password: None,
            roles: &["member"],
        },
        User {
            id: 3,
            username: "lisi",
            nickname: "李四",
            email: "lisi@example.com",
            phone: Some("13800000002"),
            password: None,
            roles: &["member"],
        },
    ]
}

/// Everything that changes while the sandbox runs.
pub(crate) struct World {
    pub policy: PolicyConfig,
    pub users: Vec<User>,
    pub sessions: Sessions,
    pub idp: ProviderState,
    pub wecom: WecomState,
}

impl World {
    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

pub(crate) struct Shared {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub origin: String,
    /// Whether plugin-idp-oauth is "installed".
    pub oauth_provider: bool,
    /// HS256 key of NocoBase session tokens (APP_KEY), new at every start.
    pub jwt_secret: [u8; 32],
    pub keys: Keys,
    clock_offset_secs: AtomicI64,
    custom_scheme_redirects: AtomicBool,
    wecom_auto_login: AtomicBool,
    world: Mutex<World>,
}

impl Shared {
    pub fn new(
        origin: String,
        opts: &SandboxOptions,
    ) -> Result<Shared, jsonwebtoken::errors::Error> {
        Ok(Shared {
            origin,
            oauth_provider: opts.oauth_provider,
            jwt_secret: rand::rng().random(),
            keys: Keys::load()?,
            clock_offset_secs: AtomicI64::new(0),
            custom_scheme_redirects: AtomicBool::new(opts.custom_scheme_redirects),
            wecom_auto_login: AtomicBool::new(opts.wecom_auto_login),
            world: Mutex::new(World {
                policy: PolicyConfig::new(opts.token_policy, 0),
                users: fixed_users(),
                sessions: Sessions::default(),
                idp: ProviderState::default(),
                wecom: WecomState::new(),
            }),
        })
    }

    /// Locks the world. A panic in another handler must not take the sandbox down with it,
    /// so a poisoned lock is simply taken over.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Server time in epoch milliseconds, including the test clock offset.
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        real + self.clock_offset_secs.load(Ordering::Relaxed) * 1000
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn set_clock_offset(&self, secs: i64) {
        self.clock_offset_secs.store(secs, Ordering::Relaxed);
    }

    pub fn clock_offset(&self) -> i64 {
        self.clock_offset_secs.load(Ordering::Relaxed)
    }

    pub fn custom_scheme_redirects(&self) -> bool {
        self.custom_scheme_redirects.load(Ordering::Relaxed)
    }

    pub fn set_custom_scheme_redirects(&self, on: bool) {
        self.custom_scheme_redirects.store(on, Ordering::Relaxed);
    }

    pub fn wecom_auto_login(&self) -> bool {
        self.wecom_auto_login.load(Ordering::Relaxed)
    }

    pub fn set_wecom_auto_login(&self, on: bool) {
        self.wecom_auto_login.store(on, Ordering::Relaxed);
    }

    /// The OAuth issuer, `<origin>/api`.
    pub fn issuer(&self) -> String {
        format!("{}/api", self.origin)
    }

    /// The one resource indicator the provider knows, `<origin>/api/` (trailing slash).
    pub fn resource(&self) -> String {
        format!("{}/api/", self.origin)
    }

    /// Turns a `redirect` parameter into a same-origin path, `/admin` when it is not one.
    /// Real NocoBase does not check this (an open redirect, nocobase-live.md §5); the sandbox
    /// stays on its own origin.
    pub fn local_path(&self, target: &str) -> String {
        self.same_origin_path(target)
            .unwrap_or_else(|| "/admin".to_string())
    }

    /// The path (and query) of `target` if it is a relative path or a URL on this origin.
    pub fn same_origin_path(&self, target: &str) -> Option<String> {
        let target = target.trim();
        let rest = match target.strip_prefix(&self.origin) {
            Some("") => return Some("/".to_string()),
            Some(rest) => rest,
            None => target,
        };
        (rest.starts_with('/') && !rest.starts_with("//") && !rest.starts_with("/\\"))
            .then(|| rest.to_string())
    }
}
