//! Which language to speak: zh-CN, en-US or id-ID. Follows the system locale unless
//! the user picks one (`--lang`, `NWC_LANG`, or Settings).

pub const LOCALES: [&str; 3] = ["en-US", "zh-CN", "id-ID"];

/// Maps any locale spelling (`zh_CN.UTF-8`, `zh-Hans`, `id`, `en_GB`) to a supported one.
pub fn supported(requested: &str) -> &'static str {
    let lower = requested.trim().to_ascii_lowercase().replace('_', "-");
    if lower.starts_with("zh") {
        "zh-CN"
    } else if lower.starts_with("id") || lower.starts_with("in-") {
        "id-ID"
    } else {
        "en-US"
    }
}

/// The locale to use: an explicit choice, else `NWC_LANG`, else the system's.
pub fn choose(explicit: Option<&str>) -> &'static str {
    let from_env = std::env::var("NWC_LANG").ok();
    let requested = explicit
        .map(str::to_owned)
        .or(from_env)
        .or_else(sys_locale::get_locale)
        .unwrap_or_default();
    supported(&requested)
}

/// Sets the language for every message from now on.
pub fn apply(locale: &str) {
    rust_i18n::set_locale(supported(locale));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_locale_spellings() {
        assert_eq!(supported("zh_CN.UTF-8"), "zh-CN");
        assert_eq!(supported("zh-Hans-CN"), "zh-CN");
        assert_eq!(supported("id_ID"), "id-ID");
        assert_eq!(supported("en_GB.UTF-8"), "en-US");
        assert_eq!(supported(""), "en-US");
        assert_eq!(supported("C"), "en-US");
    }
}
