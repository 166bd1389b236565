//! Workbench URLs: the only URLs the app opens on its own, and always on the origin.

use url::Url;

use super::error::Result;
use super::profile::{Profile, WorkbenchPath};

/// Which workbench to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workbench {
    Desktop,
    Mobile,
}

/// `origin + path`, where `path` is the profile's desktop or mobile path, or a given
/// path inside the origin (`open?path=…` deep links, `open PATH` on the CLI).
pub fn url(profile: &Profile, which: Workbench, path: Option<&str>) -> Result<Url> {
    let path = match path {
        Some(p) => WorkbenchPath::parse(p)?,
        None => match which {
            Workbench::Desktop => profile.desktop_path.clone(),
            Workbench::Mobile => profile.mobile_path.clone(),
        },
    };
    let url = profile.origin.join(&path);
    debug_assert!(profile.origin.contains(&url));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::profile::{Origin, ProfileName};

    #[test]
    fn builds_workbench_urls_on_the_origin_only() {
        let p = Profile::new(
            ProfileName::parse("w").unwrap(),
            Origin::parse("https://h/nb").unwrap(),
            "wecom",
        );
        assert_eq!(
            url(&p, Workbench::Desktop, None).unwrap().as_str(),
            "https://h/nb/admin"
        );
        assert_eq!(
            url(&p, Workbench::Mobile, None).unwrap().as_str(),
            "https://h/nb/m"
        );
        assert_eq!(
            url(&p, Workbench::Desktop, Some("/admin/orders?x=1"))
                .unwrap()
                .as_str(),
            "https://h/nb/admin/orders?x=1"
        );
        for hostile in ["https://evil/x", "//evil/x", "/\\evil", "/../x", "/a\u{7}"] {
            assert!(
                url(&p, Workbench::Desktop, Some(hostile)).is_err(),
                "{hostile}"
            );
        }
    }
}
