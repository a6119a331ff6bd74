//! A browser as far as HTTP goes, for the bank's screens and the staff console: it keeps its
//! cookies, does not follow redirects (a test sees each `303` and its `Location`) unless told
//! to, and reads the page's hidden inputs, texts and links. The one such client of the
//! workspace (issue 11); a suite that needs more (the staff member's current code, the mailed
//! password) wraps it.
//!
//! The cookie jar is by hand, not reqwest's `cookie_store`: every cookie the backend sets is
//! `Path=/` on one host, and a jar a test can read ([`Browser::cookie_header`]) is worth more
//! than domain and expiry rules nobody exercises here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE, USER_AGENT};

/// How a [`Browser`] behaves beyond the defaults (no redirects followed, reqwest's own
/// `User-Agent`, no `Origin` or `Referer`, no timeout).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The address its connections come from (any 127.0.0.0/8 address reaches a listener on
    /// 127.0.0.1), for rules per client address.
    pub local_address: Option<IpAddr>,
    /// Sent as `User-Agent` on every request.
    pub user_agent: Option<&'static str>,
    /// Follow redirects (up to ten, keeping the cookies each one sets) and return the last
    /// page, whose [`Page::path`] tells where it ended; `location` is then `None`.
    pub follow_redirects: bool,
    /// Send `Origin` and `Referer` with a post, as a browser's form submit does.
    pub same_origin_posts: bool,
    /// Give up on a request after this long.
    pub timeout: Option<Duration>,
}

/// A browser session: its cookies are shared by its clones.
#[derive(Clone)]
pub struct Browser {
    base: String,
    http: reqwest::Client,
    jar: Arc<Mutex<BTreeMap<String, String>>>,
    options: Options,
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL path it came from (after redirects, when they are followed).
    pub path: String,
    pub status: u16,
    /// The `Location` header (a redirect not followed).
    pub location: Option<String>,
    pub headers: HeaderMap,
    /// The body as text (HTML, CSV, JSON).
    pub body: String,
}

impl Browser {
    /// A browser with no cookies, at `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: &str) -> Browser {
        Browser::with(base, Options::default())
    }

    /// A browser whose connections come from `ip` (see [`Options::local_address`]).
    pub fn from_ip(base: &str, ip: IpAddr) -> Browser {
        Browser::with(
            base,
            Options {
                local_address: Some(ip),
                ..Options::default()
            },
        )
    }

    /// A browser with no cookies, behaving as `options` say.
    pub fn with(base: &str, options: Options) -> Browser {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(ip) = options.local_address {
            http = http.local_address(ip);
        }
        if let Some(t) = options.timeout {
            http = http.timeout(t);
        }
        Browser {
            base: base.trim_end_matches('/').to_owned(),
            http: http.build().expect("an HTTP client"),
            jar: Arc::new(Mutex::new(BTreeMap::new())),
            options,
        }
    }

    /// Where it points (`http://127.0.0.1:<port>`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The `Cookie` header it sends now.
    pub fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// One cookie's value, if it holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    /// Hold a cookie as if a response had set it (a copy from another browser, a forged one).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// Keeps the cookies a response sets; an empty value or `Max-Age=0` deletes one.
    fn keep_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().expect("a Set-Cookie header in ASCII");
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("a cookie without '=': {text}"));
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() || attrs.to_ascii_lowercase().contains("max-age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn request(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.header(COOKIE, self.cookie_header());
        match self.options.user_agent {
            Some(ua) => req.header(USER_AGENT, ua),
            None => req,
        }
    }

    async fn read(&self, res: reqwest::Response) -> Page {
        self.keep_cookies(res.headers());
        Page {
            path: res.url().path().to_owned(),
            status: res.status().as_u16(),
            location: res
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            headers: res.headers().clone(),
            body: res.text().await.expect("a response body"),
        }
    }

    /// Reads the answer, following its redirects if the options say so.
    async fn answer(&self, res: reqwest::Response) -> Page {
        let mut page = self.read(res).await;
        if !self.options.follow_redirects {
            return page;
        }
        for _ in 0..10 {
            if !(300..400).contains(&page.status) {
                return page;
            }
            let to = page.location.take().expect("a redirect with a Location");
            let res = self
                .request(self.http.get(self.url(&to)))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {to} (a redirect): {e}"));
            page = self.read(res).await;
        }
        panic!("more than ten redirects, the last to {}", page.path)
    }

    /// GET a path (or a full URL), with the cookies.
    pub async fn get(&self, path_or_url: &str) -> Page {
        let res = self
            .request(self.http.get(self.url(path_or_url)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path_or_url}: {e}"));
        self.answer(res).await
    }

    /// GET a path (or a full URL) as another device would ask for it: this `User-Agent`, the
    /// same cookies.
    pub async fn get_as(&self, path_or_url: &str, user_agent: &str) -> Page {
        let res = self
            .request(self.http.get(self.url(path_or_url)))
            .header(USER_AGENT, user_agent)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path_or_url}: {e}"));
        self.answer(res).await
    }

    /// POST a form, with the cookies.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.request(self.http.post(self.url(path)));
        if self.options.same_origin_posts {
            req = req
                .header(ORIGIN, &self.base)
                .header(REFERER, self.url(path));
        }
        let res = req
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        self.answer(res).await
    }

    /// A form post with the CSRF token of the page it is on (`page` is fetched first).
    pub async fn act(&self, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let p = self.get(page).await;
        let csrf = p.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, &form).await
    }
}

impl Page {
    /// The start tag of the first element with `attr` (`name="x"`, `id="x"`), if any.
    fn tag_with(&self, attr: &str) -> Option<&str> {
        let at = self.body.find(attr)?;
        let start = self.body[..at].rfind('<').unwrap_or(0);
        let end = at + self.body[at..].find('>').unwrap_or(self.body.len() - at);
        Some(&self.body[start..end])
    }

    /// The value of an input named `name` (hidden or not), unescaped.
    ///
    /// # Panics
    /// No such input, or one without a value.
    pub fn input(&self, name: &str) -> String {
        let tag = self
            .tag_with(&format!("name=\"{name}\""))
            .unwrap_or_else(|| panic!("no input {name} in {}:\n{}", self.path, self.body));
        attr_in(tag, "value").unwrap_or_else(|| panic!("input {name} has no value: {tag}"))
    }

    /// The form's CSRF token.
    pub fn csrf(&self) -> String {
        self.input("csrf")
    }

    /// The `href` of the element with this `id`, unescaped.
    ///
    /// # Panics
    /// No such element, or one without an `href`.
    pub fn href_of(&self, id: &str) -> String {
        let tag = self
            .tag_with(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in {}:\n{}", self.path, self.body));
        attr_in(tag, "href").unwrap_or_else(|| panic!("#{id} has no href: {tag}"))
    }

    /// The text of the element with this `id`, trimmed (up to its first child tag).
    pub fn text_of(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[at..];
        let rest = &rest[rest.find('>').expect("the tag's end") + 1..];
        Some(
            rest[..rest.find('<').expect("the element's end")]
                .trim()
                .to_owned(),
        )
    }

    /// The message shown for a field (`<p class="error" id="e-FIELD" role="alert">`).
    pub fn field_error(&self, field: &str) -> Option<String> {
        let needle = format!("id=\"e-{field}\" role=\"alert\">");
        let at = self.body.find(&needle)?;
        let rest = &self.body[at + needle.len()..];
        Some(rest[..rest.find('<').expect("the message's end")].to_owned())
    }
}

/// The value of the attribute `name` in a start tag, unescaped.
fn attr_in(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let (at, _) = tag.match_indices(&needle).find(|(at, _)| {
        tag[..*at]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace)
    })?;
    let rest = &tag[at + needle.len()..];
    Some(html_unescape(&rest[..rest.find('"')?]))
}

/// Undoes HTML escaping: the named entities a template engine emits and any numeric one
/// (minijinja writes `/` as `&#x2f;`).
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Page {
        Page {
            path: "/x".into(),
            status: 200,
            location: None,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    #[test]
    fn reads_inputs_links_texts_and_field_errors_from_html() {
        let p = page(
            r#"<form><input type="hidden" name="csrf" value="a&amp;b"><input data-value="no"
 value="k1" name="request_key"><a class="btn" id="open-app" href="otpbank:&#x2f;&#x2f;setup?service_id=1&amp;user_id=2&#61;">open</a> &unknown; &<a href="/older?b=1" id="older">x</a><span id="amount" class="n"> 1,000 </span><p class="error" id="e-code" role="alert">半角数字6桁</p>"#,
        );
        assert_eq!(p.csrf(), "a&b", "the value unescaped");
        assert_eq!(
            p.input("request_key"),
            "k1",
            "value before name, data-value is not value"
        );
        assert_eq!(
            p.href_of("open-app"),
            "otpbank://setup?service_id=1&user_id=2="
        );
        assert_eq!(p.href_of("older"), "/older?b=1", "href before id");
        assert_eq!(p.text_of("amount").as_deref(), Some("1,000"));
        assert_eq!(p.text_of("nope"), None);
        assert_eq!(p.field_error("code").as_deref(), Some("半角数字6桁"));
        assert_eq!(p.field_error("email"), None);
        assert_eq!(html_unescape("a &unknown; & b"), "a &unknown; & b");
        assert!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.input("nope"))).is_err(),
            "a missing input stops the test"
        );
    }

    #[test]
    fn keeps_and_deletes_cookies() {
        let b = Browser::new("http://127.0.0.1:1/");
        assert_eq!(b.base(), "http://127.0.0.1:1");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "sid=ab; Path=/; HttpOnly".parse().unwrap());
        h.append(
            SET_COOKIE,
            "lang=ja; Path=/; Max-Age=31536000".parse().unwrap(),
        );
        b.keep_cookies(&h);
        assert_eq!(b.cookie_header(), "lang=ja; sid=ab");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "sid=; Path=/; Max-Age=0".parse().unwrap());
        h.append(SET_COOKIE, "lang=en; Path=/; max-age=0".parse().unwrap());
        b.keep_cookies(&h);
        assert_eq!(b.cookie_header(), "", "an empty value or Max-Age=0 deletes");
    }
}
