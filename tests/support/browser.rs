//! A tiny scripted browser for tests: follows redirects itself (so every hop is visible),
//! keeps cookies, clicks links and submits forms by element `id`, and stops at deep links.
//!
//! ```ignore
//! let mut b = Browser::new();
//! let page = b.goto(&format!("{origin}/signin")).await?.page()?;
//! let page = b.fill_and_submit("basic-signin", &[("account", "nocobase"), ("password", "admin123")]).await?.page()?;
//! assert!(page.has_id("signed-in-as"));
//! ```

use std::sync::Arc;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::{Client, Method};
use scraper::{ElementRef, Html, Selector};
use url::Url;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// A desktop Chrome.
pub const DESKTOP_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
/// WeCom's in-app browser on iOS (wecom-platform.md §4.1).
pub const WECOM_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.6 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
/// The cookie naming the member who holds the phone (see the sandbox's WeCom module).
pub const WECOM_MEMBER_COOKIE: &str = "sandbox_wecom_member";
const MAX_REDIRECTS: usize = 20;

/// A loaded HTTP(S) page.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The visible text of `<body>`, whitespace collapsed.
    pub fn text(&self) -> String {
        let html = self.html();
        let body = Selector::parse("body").expect("valid selector");
        let text: Vec<String> = html
            .select(&body)
            .flat_map(|b| b.text().map(str::to_string).collect::<Vec<_>>())
            .collect();
        text.join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn has_id(&self, id: &str) -> bool {
        let html = self.html();
        html.select(&by_id(id)).next().is_some()
    }

    /// Text content of the element with this id.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let html = self.html();
        let el = html.select(&by_id(id)).next()?;
        Some(
            el.text()
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    pub fn attr_of(&self, id: &str, attr: &str) -> Option<String> {
        let html = self.html();
        let el = html.select(&by_id(id)).next()?;
        el.value().attr(attr).map(str::to_string)
    }

    /// A query parameter of this page's URL.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(&self.url, name)
    }
}

/// Where a navigation ended.
#[derive(Debug, Clone)]
pub enum Navigation {
    Page(Page),
    /// A redirect to a non-http(s) URL (a custom-scheme deep link): the browser hands it to
    /// the OS and stays where it was; a test hands it to the app.
    External(Url),
}

impl Navigation {
    pub fn page(self) -> Result<Page> {
        match self {
            Navigation::Page(page) => Ok(page),
            Navigation::External(url) => {
                Err(format!("expected a page, the browser left for {url}").into())
            }
        }
    }

    pub fn external(self) -> Result<Url> {
        match self {
            Navigation::External(url) => Ok(url),
            Navigation::Page(page) => Err(format!(
                "expected a deep link, got page {} ({})",
                page.url, page.status
            )
            .into()),
        }
    }
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn by_id(id: &str) -> Selector {
    let escaped = id.replace('\\', "\\\\").replace('"', "\\\"");
    Selector::parse(&format!("[id=\"{escaped}\"]")).expect("valid id selector")
}

/// What clicking an element does.
enum Action {
    Get(Url),
    Submit {
        method: Method,
        url: Url,
        fields: Vec<(String, String)>,
    },
}

pub struct Browser {
    client: Client,
    jar: Arc<Jar>,
    wecom_member: Option<String>,
    current: Option<Page>,
    /// Every URL requested, redirects included, in order.
    pub visited: Vec<Url>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A desktop browser with an empty profile.
    pub fn new() -> Self {
        Self::with_user_agent(DESKTOP_UA)
    }

    pub fn with_user_agent(user_agent: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .user_agent(user_agent)
            .build()
            .expect("reqwest client builds");
        Browser {
            client,
            jar,
            wecom_member: None,
            current: None,
            visited: Vec::new(),
        }
    }

    /// WeCom's in-app browser on the phone of `member_userid` (e.g. "LiSi").
    pub fn wecom(member_userid: &str) -> Self {
        let mut browser = Self::with_user_agent(WECOM_UA);
        browser.wecom_member = Some(member_userid.to_string());
        browser
    }

    pub fn current(&self) -> Option<&Page> {
        self.current.as_ref()
    }

    /// Adds a cookie as if `url` had set it (`"name=value; Path=/"`).
    pub fn set_cookie(&self, url: &str, cookie: &str) -> Result<()> {
        self.jar.add_cookie_str(cookie, &Url::parse(url)?);
        Ok(())
    }

    /// The value of a cookie the browser would send to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&Url::parse(url).ok()?)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// Opens `url` (absolute, or relative to the current page).
    pub async fn goto(&mut self, url: &str) -> Result<Navigation> {
        let url = self.resolve(url)?;
        self.navigate(Method::GET, url, None).await
    }

    /// Clicks the element with this id on the current page: a link is followed, a form is
    /// submitted with its current values, a submit button submits its form.
    pub async fn click(&mut self, id: &str) -> Result<Navigation> {
        self.act(id, &[]).await
    }

    /// Submits the form with this id, with `fields` set (added when missing).
    pub async fn fill_and_submit(
        &mut self,
        form_id: &str,
        fields: &[(&str, &str)],
    ) -> Result<Navigation> {
        self.act(form_id, fields).await
    }

    async fn act(&mut self, id: &str, overrides: &[(&str, &str)]) -> Result<Navigation> {
        let page = self.current.as_ref().ok_or("no page is open")?;
        match find_action(page, id, overrides)? {
            Action::Get(url) => self.navigate(Method::GET, url, None).await,
            Action::Submit {
                method,
                mut url,
                fields,
            } if method == Method::GET => {
                url.query_pairs_mut().clear().extend_pairs(fields.iter());
                self.navigate(Method::GET, url, None).await
            }
            Action::Submit {
                method,
                url,
                fields,
            } => self.navigate(method, url, Some(fields)).await,
        }
    }

    fn resolve(&self, url: &str) -> Result<Url> {
        match (Url::parse(url), &self.current) {
            (Ok(url), _) => Ok(url),
            (Err(url::ParseError::RelativeUrlWithoutBase), Some(page)) => Ok(page.url.join(url)?),
            (Err(err), _) => Err(format!("bad URL {url:?}: {err}").into()),
        }
    }

    async fn navigate(
        &mut self,
        mut method: Method,
        mut url: Url,
        mut form: Option<Vec<(String, String)>>,
    ) -> Result<Navigation> {
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(url.scheme(), "http" | "https") {
                self.visited.push(url.clone());
                return Ok(Navigation::External(url));
            }
            if let Some(member) = &self.wecom_member {
                if self.cookie(url.as_str(), WECOM_MEMBER_COOKIE).is_none() {
                    self.jar
                        .add_cookie_str(&format!("{WECOM_MEMBER_COOKIE}={member}; Path=/"), &url);
                }
            }
            self.visited.push(url.clone());
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(fields) = &form {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter())
                    .finish();
                request = request
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body);
            }
            let response = request.send().await?;
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if status.is_redirection() {
                if let Some(location) = location {
                    url = url.join(&location)?;
                    // 303 always, and 301/302 after a POST (what browsers do), become GETs.
                    if status.as_u16() == 303
                        || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
                    {
                        method = Method::GET;
                        form = None;
                    }
                    continue;
                }
            }
            let headers = response.headers().clone();
            let body = response.text().await?;
            let page = Page {
                url,
                status: status.as_u16(),
                headers,
                body,
            };
            self.current = Some(page.clone());
            return Ok(Navigation::Page(page));
        }
        Err(format!("more than {MAX_REDIRECTS} redirects, last {url}").into())
    }
}

fn find_action(page: &Page, id: &str, overrides: &[(&str, &str)]) -> Result<Action> {
    let html = page.html();
    let element = html
        .select(&by_id(id))
        .next()
        .ok_or_else(|| format!("no element #{id} on {}", page.url))?;
    match element.value().name() {
        "a" => {
            let href = element
                .value()
                .attr("href")
                .ok_or_else(|| format!("link #{id} has no href"))?;
            Ok(Action::Get(page.url.join(href)?))
        }
        "form" => submit(page, element, None, overrides),
        "button" | "input" => {
            let form = element
                .ancestors()
                .filter_map(ElementRef::wrap)
                .find(|e| e.value().name() == "form")
                .ok_or_else(|| format!("#{id} is not inside a form"))?;
            submit(page, form, Some(element), overrides)
        }
        other => Err(format!("#{id} is a <{other}>, which cannot be clicked").into()),
    }
}

fn is_submit_button(e: &ElementRef) -> bool {
    let v = e.value();
    match v.name() {
        "button" => v
            .attr("type")
            .is_none_or(|t| t.eq_ignore_ascii_case("submit")),
        "input" => v
            .attr("type")
            .is_some_and(|t| t.eq_ignore_ascii_case("submit")),
        _ => false,
    }
}

fn submit(
    page: &Page,
    form: ElementRef,
    submitter: Option<ElementRef>,
    overrides: &[(&str, &str)],
) -> Result<Action> {
    let method = match form
        .value()
        .attr("method")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("POST") => Method::POST,
        _ => Method::GET,
    };
    let url = match form.value().attr("action") {
        Some(action) if !action.is_empty() => page.url.join(action)?,
        _ => page.url.clone(),
    };
    let controls = Selector::parse("input, textarea, select, button").expect("valid selector");
    let option = Selector::parse("option").expect("valid selector");
    let submitter = submitter.or_else(|| form.select(&controls).find(is_submit_button));
    let mut fields: Vec<(String, String)> = Vec::new();
    for control in form.select(&controls) {
        let v = control.value();
        let Some(name) = v.attr("name") else { continue };
        if v.attr("disabled").is_some() {
            continue;
        }
        if is_submit_button(&control) {
            if submitter.is_some_and(|s| s.id() == control.id()) {
                fields.push((name.to_string(), v.attr("value").unwrap_or("").to_string()));
            }
            continue;
        }
        let value = match v.name() {
            "textarea" => control.text().collect::<String>(),
            "select" => {
                let mut options = control.select(&option);
                let chosen = control
                    .select(&option)
                    .find(|o| o.value().attr("selected").is_some())
                    .or_else(|| options.next());
                match chosen {
                    Some(o) => o
                        .value()
                        .attr("value")
                        .map(str::to_string)
                        .unwrap_or_else(|| o.text().collect()),
                    None => continue,
                }
            }
            "button" => continue,
            _ => {
                let kind = v.attr("type").unwrap_or("text").to_ascii_lowercase();
                match kind.as_str() {
                    "checkbox" | "radio" if v.attr("checked").is_none() => continue,
                    "checkbox" | "radio" => v.attr("value").unwrap_or("on").to_string(),
                    "button" | "reset" | "image" | "file" => continue,
                    _ => v.attr("value").unwrap_or("").to_string(),
                }
            }
        };
        fields.push((name.to_string(), value));
    }
    for (name, value) in overrides {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_string(),
            None => fields.push((name.to_string(), value.to_string())),
        }
    }
    Ok(Action::Submit {
        method,
        url,
        fields,
    })
}
