//! The deep-link router: every `com.nocobase.wecomcompanion:` URL the OS hands the app
//! is parsed here into a typed [`Route`], or refused. Nothing acts on a link before
//! this check, and a refusal is logged without the query string (it may carry a code).
//!
//! Routes (both `scheme://name?…` and `scheme:/name?…` spellings):
//! - `oauth/callback?code&state&iss` — only while a browser sign-in that chose the deep
//!   link is waiting (the state itself is checked later by `callback`).
//! - `signin[?profile=NAME]` — start a sign-in.
//! - `open?path=/x[&profile=NAME]` — open a path on the profile's origin.
//! - `configure?origin=https://…&authenticator=…&desktop=/admin&mobile=/m&home=…&name=…`
//!   — an administrator's provisioning link; the app shows what it will set and asks.

use url::Url;

use super::callback::PendingFlows;
use super::paths::SCHEME;
use super::profile::{Origin, ProfileName, WorkbenchPath};
use super::signin::browser::deep_link_redirect;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Hand the whole URL to the pending browser sign-in.
    OAuthCallback(String),
    SignIn {
        profile: Option<ProfileName>,
    },
    Open {
        path: WorkbenchPath,
        profile: Option<ProfileName>,
    },
    Configure(Box<Provisioning>),
}

/// What a provisioning link asks to set up. Every field is already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioning {
    pub name: ProfileName,
    pub origin: Origin,
    pub authenticator: Option<String>,
    pub desktop_path: Option<WorkbenchPath>,
    pub mobile_path: Option<WorkbenchPath>,
    pub home_link: Option<Url>,
}

/// Why a link was refused: a message id (`link.refused.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

const MAX_LINK_LEN: usize = 4096;

pub fn route(link: &str, flows: &PendingFlows) -> Result<Route, Refusal> {
    if link.len() > MAX_LINK_LEN {
        return Err(Refusal("link.refused.too_long"));
    }
    let url = Url::parse(link).map_err(|_| Refusal("link.refused.malformed"))?;
    if url.scheme() != SCHEME {
        return Err(Refusal("link.refused.scheme"));
    }
    if url.username() != "" || url.password().is_some() || url.port().is_some() {
        return Err(Refusal("link.refused.malformed"));
    }
    let name = match url.host_str() {
        Some(host) => format!("{host}{}", url.path()),
        None => url.path().trim_start_matches('/').to_owned(),
    };
    let name = name.trim_end_matches('/');
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(Refusal("link.refused.duplicate_parameter"));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let profile = match get("profile") {
        Some(p) => Some(ProfileName::parse(p).map_err(|_| Refusal("link.refused.profile"))?),
        None => None,
    };
    match name {
        "oauth/callback" => {
            let mut base = url.clone();
            base.set_query(None);
            base.set_fragment(None);
            // Exactly the redirect URI we register, and only while it is awaited.
            if base.as_str() != deep_link_redirect() || !flows.expects(base.as_str()) {
                return Err(Refusal("link.refused.no_pending_signin"));
            }
            Ok(Route::OAuthCallback(link.to_owned()))
        }
        "signin" => Ok(Route::SignIn { profile }),
        "open" => {
            let path = get("path").ok_or(Refusal("link.refused.path"))?;
            let path = WorkbenchPath::parse(path).map_err(|_| Refusal("link.refused.path"))?;
            Ok(Route::Open { path, profile })
        }
        "configure" => configure(&get).map(|p| Route::Configure(Box::new(p))),
        _ => Err(Refusal("link.refused.unknown")),
    }
}

fn configure<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Provisioning, Refusal> {
    let origin_text = get("origin").ok_or(Refusal("link.refused.origin"))?;
    // Provisioning links come from outside: https only, even for loopback.
    if !origin_text
        .trim()
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        return Err(Refusal("link.refused.origin"));
    }
    let origin = Origin::parse(origin_text).map_err(|_| Refusal("link.refused.origin"))?;
    let path = |key: &str| -> Result<Option<WorkbenchPath>, Refusal> {
        get(key)
            .map(|p| WorkbenchPath::parse(p).map_err(|_| Refusal("link.refused.path")))
            .transpose()
    };
    let authenticator = match get("authenticator") {
        Some(a) if is_plain_name(a) => Some(a.to_owned()),
        Some(_) => return Err(Refusal("link.refused.authenticator")),
        None => None,
    };
    let home_link = match get("home") {
        Some(h) => {
            let url = Url::parse(h).map_err(|_| Refusal("link.refused.home"))?;
            if !origin.contains(&url) {
                return Err(Refusal("link.refused.home"));
            }
            Some(url)
        }
        None => None,
    };
    let name = match get("name") {
        Some(n) => ProfileName::parse(n).map_err(|_| Refusal("link.refused.profile"))?,
        None => ProfileName::parse(&default_name(&origin))
            .map_err(|_| Refusal("link.refused.profile"))?,
    };
    Ok(Provisioning {
        name,
        origin,
        authenticator,
        desktop_path: path("desktop")?,
        mobile_path: path("mobile")?,
        home_link,
    })
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// `nocobase.example.com` → `nocobase-example-com`.
fn default_name(origin: &Origin) -> String {
    let name: String = origin
        .host()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    if name.is_empty() {
        "work".into()
    } else {
        name
    }
}

/// A link as it may appear in a log: scheme and route, never the query.
pub fn redacted(link: &str) -> String {
    let cut = link.find(['?', '#']).unwrap_or(link.len());
    link.get(..cut.min(200))
        .unwrap_or("<unprintable>")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::callback::PendingFlow;
    use oauth2::PkceCodeVerifier;

    fn none() -> PendingFlows {
        PendingFlows::new()
    }

    #[test]
    fn app_links_route() {
        let f = none();
        assert_eq!(
            route("com.nocobase.wecomcompanion://signin", &f),
            Ok(Route::SignIn { profile: None })
        );
        assert_eq!(
            route("com.nocobase.wecomcompanion:/signin?profile=work", &f),
            Ok(Route::SignIn {
                profile: Some(ProfileName::parse("work").unwrap())
            })
        );
        assert_eq!(
            route(
                "com.nocobase.wecomcompanion://open?path=%2Fadmin%2Forders",
                &f
            ),
            Ok(Route::Open {
                path: WorkbenchPath::parse("/admin/orders").unwrap(),
                profile: None
            })
        );
    }

    #[test]
    fn hostile_links_are_refused() {
        let f = none();
        for (link, why) in [
            (
                "com.nocobase.wecomcompanion://open?path=https://evil.example",
                "link.refused.path",
            ),
            (
                "com.nocobase.wecomcompanion://open?path=//evil.example",
                "link.refused.path",
            ),
            (
                "com.nocobase.wecomcompanion://open?path=/a&path=/b",
                "link.refused.duplicate_parameter",
            ),
            ("com.nocobase.wecomcompanion://open", "link.refused.path"),
            (
                "com.nocobase.wecomcompanion://rm-rf",
                "link.refused.unknown",
            ),
            ("other.scheme://signin", "link.refused.scheme"),
            (
                "com.nocobase.wecomcompanion://signin?profile=../x",
                "link.refused.profile",
            ),
            (
                "com.nocobase.wecomcompanion:/oauth/callback?code=c&state=s",
                "link.refused.no_pending_signin",
            ),
            ("not a url", "link.refused.malformed"),
        ] {
            assert_eq!(route(link, &f), Err(Refusal(why)), "{link}");
        }
        let long = format!(
            "com.nocobase.wecomcompanion://signin?x={}",
            "a".repeat(5000)
        );
        assert_eq!(route(&long, &f), Err(Refusal("link.refused.too_long")));
    }

    #[test]
    fn the_callback_route_exists_only_while_awaited() {
        let flows = PendingFlows::new();
        flows.insert(PendingFlow {
            state: "s".into(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            redirect_uri: deep_link_redirect(),
            issuer: "https://h/api".into(),
            client_id: "c".into(),
            started: std::time::Instant::now(),
        });
        let link =
            "com.nocobase.wecomcompanion:/oauth/callback?code=c&state=s&iss=https%3A%2F%2Fh%2Fapi";
        assert_eq!(route(link, &flows), Ok(Route::OAuthCallback(link.into())));
        // The two-slash spelling is not the registered redirect URI.
        assert!(route(
            "com.nocobase.wecomcompanion://oauth/callback?code=c&state=s",
            &flows
        )
        .is_err());
    }

    #[test]
    fn provisioning_links_are_validated_and_https_only() {
        let f = none();
        let link = "com.nocobase.wecomcompanion://configure?origin=https%3A%2F%2Fnocobase.example.com&authenticator=wecom&desktop=%2Fadmin&mobile=%2Fm&home=https%3A%2F%2Fnocobase.example.com%2Fm";
        let Ok(Route::Configure(p)) = route(link, &f) else {
            panic!()
        };
        assert_eq!(p.origin.as_str(), "https://nocobase.example.com");
        assert_eq!(p.name.as_str(), "nocobase-example-com");
        assert_eq!(p.authenticator.as_deref(), Some("wecom"));
        for bad in [
            "com.nocobase.wecomcompanion://configure?origin=http%3A%2F%2F127.0.0.1%3A13000",
            "com.nocobase.wecomcompanion://configure?origin=nocobase.example.com",
            "com.nocobase.wecomcompanion://configure?origin=https%3A%2F%2Fh&home=https%3A%2F%2Fevil%2Fm",
            "com.nocobase.wecomcompanion://configure?origin=https%3A%2F%2Fh&desktop=%2F%2Fevil",
            "com.nocobase.wecomcompanion://configure?origin=https%3A%2F%2Fh&authenticator=a%20b",
            "com.nocobase.wecomcompanion://configure",
        ] {
            assert!(route(bad, &f).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_drops_the_query() {
        assert_eq!(
            redacted("com.x:/oauth/callback?code=SECRET&state=s"),
            "com.x:/oauth/callback"
        );
        assert_eq!(redacted("com.x://signin"), "com.x://signin");
    }
}
