//! The `embedded` method's pure logic: classify the URLs an app-owned sign-in window
//! navigates to. The WeCom plugin (like every NocoBase SSO plugin) ends its flow with
//! `…<redirect>?authenticator=X&token=T` on success and
//! `…/signin?redirect=…&authenticator=X&error=MSG` on failure.

use url::Url;

use crate::core::profile::Origin;
use crate::core::sensitive::Sensitive;

#[derive(Debug, PartialEq)]
pub enum Landing {
    /// Not a final page (the sign-in page, WeCom's QR page, …): let it load.
    Continue,
    /// Signed in: a NocoBase session token for `authenticator`.
    SignedIn {
        authenticator: String,
        token: Sensitive<String>,
    },
    /// The sign-in failed with the plugin's message.
    Failed(Failure),
}

#[derive(Debug, PartialEq)]
pub enum Failure {
    /// WeCom did not release the member's phone number, or no user matched: the
    /// member must first open the app inside WeCom once (the first-time authorization).
    FirstLoginRequired {
        message: String,
    },
    Other {
        message: String,
    },
}

/// The WeCom plugin's first-login failures, in the languages it ships (en, zh-CN).
/// These messages are all the plugin gives us: it has no codes.
const FIRST_LOGIN_MESSAGES: [&str; 4] = [
    "failed to get mobile",
    "user not found",
    "未获取到手机号",
    "用户不存在",
];

pub fn is_first_login_message(message: &str) -> bool {
    let normalised = message
        .trim()
        .trim_end_matches(['.', '。', '!', '！'])
        .to_lowercase();
    FIRST_LOGIN_MESSAGES.iter().any(|m| normalised == *m)
}

pub fn classify(origin: &Origin, url: &Url) -> Landing {
    // Only the profile's own server can hand over a session. A token in any other
    // URL is ignored (and the window's navigation policy keeps it out anyway).
    if !origin.contains(url) {
        return Landing::Continue;
    }
    let mut token = None;
    let mut authenticator = None;
    let mut error = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "token" => token = Some(v.into_owned()),
            "authenticator" => authenticator = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            _ => {}
        }
    }
    let path = origin.relative_path(url);
    let on_signin = path == "/signin" || path.ends_with("/signin");
    if let (true, Some(message)) = (on_signin, error) {
        let failure = if is_first_login_message(&message) {
            Failure::FirstLoginRequired { message }
        } else {
            Failure::Other { message }
        };
        return Landing::Failed(failure);
    }
    match (token, authenticator) {
        (Some(t), Some(a)) if !t.is_empty() && !a.is_empty() => Landing::SignedIn {
            authenticator: a,
            token: Sensitive::new(t),
        },
        _ => Landing::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(origin: &str, url: &str) -> Landing {
        classify(&Origin::parse(origin).unwrap(), &Url::parse(url).unwrap())
    }

    #[test]
    fn success_landing_hands_over_the_token() {
        let l = at("https://h", "https://h/admin?authenticator=wecom&token=T1");
        assert_eq!(
            l,
            Landing::SignedIn {
                authenticator: "wecom".into(),
                token: "T1".into()
            }
        );
        let sub = at(
            "https://h/nb",
            "https://h/nb/m?authenticator=wecom&token=T2",
        );
        assert!(matches!(sub, Landing::SignedIn { .. }));
    }

    #[test]
    fn first_login_failures_are_recognised_in_both_languages() {
        for msg in [
            "Failed%20to%20get%20mobile",
            "User%20not%20found.",
            "%E6%9C%AA%E8%8E%B7%E5%8F%96%E5%88%B0%E6%89%8B%E6%9C%BA%E5%8F%B7",
            "%E7%94%A8%E6%88%B7%E4%B8%8D%E5%AD%98%E5%9C%A8%E3%80%82",
        ] {
            let l = at(
                "https://h",
                &format!("https://h/signin?redirect=%2Fadmin&authenticator=wecom&error={msg}"),
            );
            assert!(
                matches!(l, Landing::Failed(Failure::FirstLoginRequired { .. })),
                "{msg}: {l:?}"
            );
        }
        let other = at("https://h", "https://h/signin?redirect=%2Fadmin&authenticator=wecom&error=The%20WeCom%20API%20call%20failed");
        assert!(matches!(other, Landing::Failed(Failure::Other { .. })));
    }

    #[test]
    fn other_pages_and_other_hosts_continue() {
        assert_eq!(
            at("https://h", "https://h/signin?redirect=%2Fadmin"),
            Landing::Continue
        );
        assert_eq!(
            at(
                "https://h",
                "https://login.work.weixin.qq.com/wwlogin/sso/login?x=1"
            ),
            Landing::Continue
        );
        assert_eq!(
            at(
                "https://h",
                "https://evil/admin?authenticator=wecom&token=T"
            ),
            Landing::Continue
        );
        assert_eq!(
            at(
                "https://h/nb",
                "https://h/admin?authenticator=wecom&token=T"
            ),
            Landing::Continue
        );
        assert_eq!(
            at("https://h", "https://h/admin?token=&authenticator=wecom"),
            Landing::Continue
        );
    }
}
