//! Profiles: which NocoBase to sign in to, and how.
//!
//! Everything a user or a provisioning link types is parsed here once into types that
//! cannot hold a bad value: an [`Origin`] is https (or http on loopback) with no query,
//! a [`WorkbenchPath`] can only point inside that origin.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use super::error::{Error, Result};

/// A NocoBase server's base URL: scheme, host, port and an optional public path
/// (`https://host/nocobase`), normalised with no trailing slash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin(Url);

impl Origin {
    /// Parses what a user typed. A missing scheme means https; a trailing `/admin`,
    /// `/m`, `/signin` or `/api` (pasted from the browser) is dropped.
    pub fn parse(input: &str) -> Result<Origin> {
        let bad = |problem: &'static str| Error::InvalidOrigin {
            input: input.to_owned(),
            problem,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(bad("origin.problem.empty"));
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("origin.problem.characters"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let mut url = Url::parse(&with_scheme).map_err(|_| bad("origin.problem.unparsable"))?;
        let host = url.host_str().ok_or(bad("origin.problem.no_host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => return Err(bad("origin.problem.http_not_loopback")),
            _ => return Err(bad("origin.problem.scheme")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("origin.problem.credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("origin.problem.query"));
        }
        let mut path = url.path().trim_end_matches('/').to_owned();
        for app_route in ["/admin", "/m", "/signin", "/api"] {
            if let Some(prefix) = path.strip_suffix(app_route) {
                path = prefix.to_owned();
                break;
            }
        }
        if path.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(bad("origin.problem.path"));
        }
        url.set_path(&path);
        Ok(Origin(url))
    }

    /// `https://host[/public]` with no trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The public path, `""` or e.g. `/nocobase`.
    pub fn public_path(&self) -> &str {
        self.0.path().trim_end_matches('/')
    }

    /// `<origin>/api/<rest>`.
    pub fn api(&self, rest: &str) -> String {
        format!("{}/api/{}", self.as_str(), rest.trim_start_matches('/'))
    }

    /// The OAuth issuer NocoBase's provider uses: `<origin>/api`.
    pub fn issuer(&self) -> String {
        format!("{}/api", self.as_str())
    }

    /// The protected resource NocoBase's provider expects (the trailing slash matters).
    pub fn resource(&self) -> String {
        format!("{}/api/", self.as_str())
    }

    /// `<origin><path>` for a path already validated as a [`WorkbenchPath`].
    pub fn join(&self, path: &WorkbenchPath) -> Url {
        Url::parse(&format!("{}{}", self.as_str(), path.as_str()))
            .expect("a valid origin plus a validated path is a valid URL")
    }

    /// True when `url` is this origin or below its public path.
    pub fn contains(&self, url: &Url) -> bool {
        url.scheme() == self.0.scheme()
            && url.host_str() == self.0.host_str()
            && url.port_or_known_default() == self.0.port_or_known_default()
            && (self.public_path().is_empty()
                || url.path() == self.public_path()
                || url
                    .path()
                    .strip_prefix(self.public_path())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The path of `url` relative to the public path (`/admin` for `https://h/nb/admin`).
    pub fn relative_path<'u>(&self, url: &'u Url) -> &'u str {
        url.path()
            .strip_prefix(self.public_path())
            .filter(|p| p.starts_with('/'))
            .unwrap_or(url.path())
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback(self.host())
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.as_str())
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Origin::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A path inside the origin: starts with one `/`, no `..`, no backslash, no control
/// characters, no scheme or host. May carry a query (`/admin/x?tab=1`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkbenchPath(String);

impl WorkbenchPath {
    pub fn parse(input: &str) -> Result<WorkbenchPath> {
        let bad = || Error::InvalidPath {
            input: input.to_owned(),
        };
        let path = input.trim();
        let ok = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(char::is_control)
            && !path.contains(' ');
        if !ok {
            return Err(bad());
        }
        // Parse against a dummy base to look at the real segments (percent-decoding
        // included) and refuse anything that climbs out or changes host.
        let base = Url::parse("http://base.invalid").expect("static URL");
        let joined = base.join(path).map_err(|_| bad())?;
        if joined.host_str() != Some("base.invalid") {
            return Err(bad());
        }
        let raw_path = path.split(['?', '#']).next().unwrap_or_default();
        let decoded = percent_decode(raw_path);
        if decoded.split('/').any(|seg| seg == "..")
            || decoded.contains('\\')
            || decoded.starts_with("//")
        {
            return Err(bad());
        }
        Ok(WorkbenchPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn desktop_default() -> WorkbenchPath {
        WorkbenchPath("/admin".into())
    }

    pub fn mobile_default() -> WorkbenchPath {
        WorkbenchPath("/m".into())
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl TryFrom<String> for WorkbenchPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        WorkbenchPath::parse(&s)
    }
}

impl From<WorkbenchPath> for String {
    fn from(p: WorkbenchPath) -> String {
        p.0
    }
}

impl fmt::Display for WorkbenchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkbenchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkbenchPath({})", self.0)
    }
}

/// How to sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethod {
    /// The best the server and the surroundings allow.
    #[default]
    Auto,
    /// OAuth authorization code + PKCE in the system browser.
    Browser,
    /// OAuth device grant: a code / QR approved on another device (WeCom on the phone).
    Device,
    /// An app-owned window for servers without the OAuth provider.
    Embedded,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Auto => "auto",
            SignInMethod::Browser => "browser",
            SignInMethod::Device => "device",
            SignInMethod::Embedded => "embedded",
        }
    }
}

impl FromStr for SignInMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SignInMethod::Auto),
            "browser" => Ok(SignInMethod::Browser),
            "device" => Ok(SignInMethod::Device),
            "embedded" => Ok(SignInMethod::Embedded),
            _ => Err(Error::InvalidMethod { input: s.into() }),
        }
    }
}

impl fmt::Display for SignInMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name: short, file-name safe (it names the lock file and keyring entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);

impl ProfileName {
    pub fn parse(input: &str) -> Result<ProfileName> {
        let name = input.trim();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && !name.starts_with('.');
        if ok {
            Ok(ProfileName(name.to_owned()))
        } else {
            Err(Error::InvalidProfileName {
                input: input.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProfileName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ProfileName::parse(&s)
    }
}

impl From<ProfileName> for String {
    fn from(p: ProfileName) -> String {
        p.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One NocoBase server and how to sign in to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: ProfileName,
    pub origin: Origin,
    /// The name of the WeCom authenticator on that server (`X-Authenticator`).
    pub authenticator: String,
    #[serde(default = "WorkbenchPath::desktop_default")]
    pub desktop_path: WorkbenchPath,
    #[serde(default = "WorkbenchPath::mobile_default")]
    pub mobile_path: WorkbenchPath,
    /// The WeCom workbench home link; `None` means origin + mobile path, which is what
    /// NocoBase ≥ 1.4 with "automatic login" expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_link: Option<Url>,
    #[serde(default)]
    pub method: SignInMethod,
    /// Remembered once a WeCom sign-in has worked: the member's first-time
    /// authorization inside WeCom is done.
    #[serde(default)]
    pub wecom_authorized: bool,
}

impl Profile {
    pub fn new(name: ProfileName, origin: Origin, authenticator: impl Into<String>) -> Profile {
        Profile {
            name,
            origin,
            authenticator: authenticator.into(),
            desktop_path: WorkbenchPath::desktop_default(),
            mobile_path: WorkbenchPath::mobile_default(),
            home_link: None,
            method: SignInMethod::Auto,
            wecom_authorized: false,
        }
    }

    /// The link to set as the WeCom app's home page.
    pub fn home_link(&self) -> Url {
        self.home_link
            .clone()
            .unwrap_or_else(|| self.origin.join(&self.mobile_path))
    }

    /// Checks and sets the home link: https (or loopback http) and on this origin.
    pub fn set_home_link(&mut self, input: &str) -> Result<()> {
        let url = Url::parse(input.trim()).map_err(|_| Error::InvalidPath {
            input: input.to_owned(),
        })?;
        if !self.origin.contains(&url) {
            return Err(Error::InvalidPath {
                input: input.to_owned(),
            });
        }
        self.home_link = Some(url);
        Ok(())
    }
}

/// The profiles file: several profiles, one active.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ProfileName>,
    /// The language chosen in Settings; `None` follows the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

impl Profiles {
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name.as_str() == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Profile> {
        self.profiles.iter_mut().find(|p| p.name.as_str() == name)
    }

    /// The profile to use: the named one, else the active one, else the only one.
    pub fn select(&self, name: Option<&str>) -> Result<&Profile> {
        match name {
            Some(n) => self
                .get(n)
                .ok_or_else(|| Error::UnknownProfile { name: n.into() }),
            None => self
                .active
                .as_ref()
                .and_then(|a| self.get(a.as_str()))
                .or(match self.profiles.as_slice() {
                    [only] => Some(only),
                    _ => None,
                })
                .ok_or(Error::NoProfile),
        }
    }

    /// Adds a profile; the first one becomes active.
    pub fn add(&mut self, profile: Profile) -> Result<()> {
        if self.get(profile.name.as_str()).is_some() {
            return Err(Error::ProfileExists {
                name: profile.name.to_string(),
            });
        }
        if self.active.is_none() {
            self.active = Some(profile.name.clone());
        }
        self.profiles.push(profile);
        Ok(())
    }

    /// Adds or replaces a profile by name.
    pub fn upsert(&mut self, profile: Profile) {
        match self.get_mut(profile.name.as_str()) {
            Some(existing) => *existing = profile,
            None => {
                let _ = self.add(profile);
            }
        }
    }

    pub fn use_profile(&mut self, name: &str) -> Result<()> {
        let profile = self
            .get(name)
            .ok_or_else(|| Error::UnknownProfile { name: name.into() })?;
        self.active = Some(profile.name.clone());
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<Profile> {
        let index = self
            .profiles
            .iter()
            .position(|p| p.name.as_str() == name)
            .ok_or_else(|| Error::UnknownProfile { name: name.into() })?;
        let removed = self.profiles.remove(index);
        if self.active.as_ref() == Some(&removed.name) {
            self.active = self.profiles.first().map(|p| p.name.clone());
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        let cases = [
            (
                "https://NocoBase.Example.com/",
                "https://nocobase.example.com",
            ),
            ("nocobase.example.com", "https://nocobase.example.com"),
            ("https://host:443/nocobase/", "https://host/nocobase"),
            ("https://host/nocobase/admin", "https://host/nocobase"),
            ("https://host/admin/", "https://host"),
            ("http://127.0.0.1:13000", "http://127.0.0.1:13000"),
            ("http://localhost:13000/m", "http://localhost:13000"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ];
        for (input, want) in cases {
            assert_eq!(Origin::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn bad_origins_say_why() {
        for (input, problem) in [
            ("", "origin.problem.empty"),
            (
                "http://nocobase.example.com",
                "origin.problem.http_not_loopback",
            ),
            ("ftp://host", "origin.problem.scheme"),
            ("https://user:pw@host", "origin.problem.credentials"),
            ("https://host/?x=1", "origin.problem.query"),
            ("https://host/a b", "origin.problem.characters"),
            ("https://", "origin.problem.unparsable"),
        ] {
            match Origin::parse(input) {
                Err(Error::InvalidOrigin { problem: p, .. }) => assert_eq!(p, problem, "{input}"),
                other => panic!("{input}: expected InvalidOrigin, got {other:?}"),
            }
        }
    }

    #[test]
    fn origin_knows_its_api_and_issuer() {
        let o = Origin::parse("https://h/nb").unwrap();
        assert_eq!(o.api("auth:check"), "https://h/nb/api/auth:check");
        assert_eq!(o.issuer(), "https://h/nb/api");
        assert_eq!(o.resource(), "https://h/nb/api/");
        assert!(o.contains(&Url::parse("https://h/nb/admin?x=1").unwrap()));
        assert!(!o.contains(&Url::parse("https://h/nbx/admin").unwrap()));
        assert!(!o.contains(&Url::parse("https://h:8443/nb/admin").unwrap()));
        assert!(!o.contains(&Url::parse("http://h/nb/admin").unwrap()));
        assert!(!o.contains(&Url::parse("https://evil/nb/admin").unwrap()));
    }

    #[test]
    fn workbench_paths_stay_on_the_origin() {
        for ok in ["/admin", "/m", "/admin/abc?tab=1", "/apps/x/admin#frag"] {
            WorkbenchPath::parse(ok).unwrap();
        }
        for bad in [
            "admin",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil",
            "https://evil.example/admin",
            "/../etc",
            "/admin/%2e%2e/x",
            "/a/..",
            "/a\u{0}b",
            "/a\nb",
            "",
            "/a b",
        ] {
            assert!(
                WorkbenchPath::parse(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn home_link_defaults_to_origin_plus_mobile_path() {
        let mut p = Profile::new(
            ProfileName::parse("work").unwrap(),
            Origin::parse("https://h/nb").unwrap(),
            "wecom",
        );
        assert_eq!(p.home_link().as_str(), "https://h/nb/m");
        assert!(p.set_home_link("https://evil/m").is_err());
        p.set_home_link("https://h/nb/admin").unwrap();
        assert_eq!(p.home_link().as_str(), "https://h/nb/admin");
    }

    #[test]
    fn profiles_select_and_switch() {
        let mk = |n: &str| {
            Profile::new(
                ProfileName::parse(n).unwrap(),
                Origin::parse("https://h").unwrap(),
                "wecom",
            )
        };
        let mut all = Profiles::default();
        assert!(matches!(all.select(None), Err(Error::NoProfile)));
        all.add(mk("a")).unwrap();
        all.add(mk("b")).unwrap();
        assert!(matches!(all.add(mk("a")), Err(Error::ProfileExists { .. })));
        assert_eq!(all.select(None).unwrap().name.as_str(), "a");
        all.use_profile("b").unwrap();
        assert_eq!(all.select(None).unwrap().name.as_str(), "b");
        assert!(matches!(
            all.use_profile("zz"),
            Err(Error::UnknownProfile { .. })
        ));
        all.remove("b").unwrap();
        assert_eq!(all.active.as_ref().unwrap().as_str(), "a");
    }

    #[test]
    fn profile_names_are_file_safe() {
        ProfileName::parse("work-1.prod_x").unwrap();
        for bad in ["", "../x", "a/b", ".hidden", "名字", "a b"] {
            assert!(ProfileName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_parse() {
        assert_eq!(
            "Device".parse::<SignInMethod>().unwrap(),
            SignInMethod::Device
        );
        assert!("qr".parse::<SignInMethod>().is_err());
    }
}
