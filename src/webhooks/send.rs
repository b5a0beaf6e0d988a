//! One delivery attempt over HTTP: check the URL, sign, POST with a total timeout, no redirects,
//! and read at most [`MAX_RESPONSE_BYTES`] of the answer. Everything here is async I/O on the
//! runtime; nothing holds a worker thread, so a receiver that hangs, trickles or floods costs
//! one task until the timeout.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::Url;

use super::address::{self, GuardedResolver, Refused};
use super::signing::Signer;

/// The longest URL accepted, for `callback_url` and `WEBHOOK_URL` alike.
pub const MAX_URL_BYTES: usize = 2048;

/// How much of a receiver's answer is read (then the connection is dropped): the status is
/// what counts, and a receiver sending gigabytes must not cost more than this.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Checks a webhook destination: an absolute `http` or `https` URL with a host, at most
/// [`MAX_URL_BYTES`]. Returns it parsed; the message says what is wrong otherwise.
pub fn check_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("longer than {MAX_URL_BYTES} bytes"));
    }
    // The URL parser forgives a lot (`http:/host`, surrounding spaces, tabs and newlines dropped
    // anywhere): what is stored and shown must be what the client meant, so the text itself
    // must already look like an http(s) URL. These are also exactly the strings the OpenAPI
    // pattern `^[Hh][Tt][Tt][Pp][Ss]?://\S+$` leaves out.
    let scheme_ok = ["http://", "https://"].iter().any(|p| {
        text.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    });
    if !scheme_ok {
        return Err(
            "the scheme must be http or https (an absolute URL such as https://example.com/hook)".to_owned(),
        );
    }
    if text.chars().any(|c| c.is_control() || is_space(c)) {
        return Err("whitespace and control characters are not allowed".to_owned());
    }
    let url = Url::parse(text).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // They would travel in every delivery's Authorization header and sit in the database.
        return Err("credentials in the URL are not accepted".to_owned());
    }
    Ok(url)
}

/// Whitespace as a JSON Schema (ECMAScript) `\s` sees it, which is Unicode's list plus U+FEFF.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Sent {
    /// The receiver answered; 2xx is delivered, anything else is retried.
    Answered { status: u16 },
    /// No answer: timeout, connection refused, TLS, DNS failure. Retried.
    Error(String),
    /// The destination is not allowed (or the URL is unusable). Not retried.
    Refused(String),
}

/// Sends webhook requests. One per delivery loop: the client pools connections.
pub struct Sender {
    client: reqwest::Client,
    signer: Option<Signer>,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    pub fn new(signer: Option<Signer>, allow_private: bool, timeout: Duration) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            // Connect only to addresses that passed the check (see `address`).
            .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
            // A proxy would resolve the name itself, past the check; HTTP(S)_PROXY is ignored.
            .no_proxy()
            // A redirect is an answer like any other non-2xx: following it would let a
            // receiver point us anywhere, including where the resolver check cannot see.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Sender {
            client,
            signer,
            allow_private,
            timeout,
        })
    }

    /// POSTs `body` to `url` as attempt of event `webhook_id`, signed when a secret is set.
    pub async fn send(&self, url: &str, webhook_id: &str, body: &[u8]) -> Sent {
        let url = match check_url(url) {
            Ok(url) => url,
            Err(e) => return Sent::Refused(format!("unusable URL: {e}")),
        };
        // An IP literal is never resolved, so the resolver does not see it: check it here.
        if let Some(ip) = literal_ip(&url) {
            if !self.allow_private && !address::is_public(ip) {
                return Sent::Refused(Refused::new(&ip.to_string(), &[ip]).to_string());
            }
        }
        let headers = match self.headers(webhook_id, body) {
            Ok(h) => h,
            Err(e) => return Sent::Refused(e),
        };
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return self.classify(&e),
        };
        let status = response.status().as_u16();
        // Read a little (so a small answer leaves the connection reusable), then drop it. The
        // client's total timeout bounds a trickle; the byte count bounds a flood.
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        Sent::Answered { status }
    }

    fn headers(&self, webhook_id: &str, body: &[u8]) -> Result<HeaderMap, String> {
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers = HeaderMap::new();
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| format!("header value: {e}"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("image-processor-webhooks/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert("webhook-id", value(webhook_id)?);
        headers.insert("webhook-timestamp", value(&timestamp.to_string())?);
        if let Some(signer) = &self.signer {
            headers.insert(
                "webhook-signature",
                value(&signer.sign(webhook_id, timestamp, body))?,
            );
        }
        Ok(headers)
    }

    /// A refusal from our resolver (anywhere in the error's chain), or a plain failure.
    fn classify(&self, e: &reqwest::Error) -> Sent {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<Refused>() {
                return Sent::Refused(refused.to_string());
            }
            source = err.source();
        }
        if e.is_timeout() {
            return Sent::Error(format!("no answer within {} s", self.timeout.as_secs()));
        }
        Sent::Error(error_chain(e))
    }
}

/// The host of `url` when it is an IP address.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    // `host_str` writes an IPv6 literal in brackets; the URL parser has already normalised
    // IPv4 forms such as `0x7f.1` or `2130706433` to dotted decimal.
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// "outer: inner: innermost", for the attempt log (reqwest's own message names no cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_a_host_and_a_bounded_length() {
        assert!(check_url("https://example.com/hooks?x=1").is_ok());
        assert!(check_url("HTTPS://Example.com:8443/a/b#frag").is_ok());
        assert!(
            check_url("http://10.0.0.1:8080/").is_ok(),
            "addresses are checked when sending"
        );
        for (bad, why) in [
            ("ftp://example.com/", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("/relative", "scheme"),
            ("http:/example.com/", "scheme"),
            (" http://example.com/", "scheme"),
            ("http://example.com/a b", "whitespace"),
            ("http://example.com/\n", "control"),
            ("http://", "absolute"),
            ("http://1.2.3.4.5/", "absolute"),
            ("https://user:pw@example.com/", "credentials"),
        ] {
            let err = check_url(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(check_url(&long).expect_err("long").contains("2048"));
    }

    #[test]
    fn webhook_url_is_checked_when_the_configuration_is_read() {
        let parse = |url: &str| crate::config::Config::from_args(["image-processor", "--webhook-url", url]);
        let err = parse("ftp://example.com/").expect_err("bad scheme");
        assert!(err.to_string().contains("http or https"), "{err}");
        let config = parse("https://hooks.example.com/images").expect("good URL");
        assert_eq!(config.webhook_url(), Some("https://hooks.example.com/images"));
        assert_eq!(parse("").expect("empty is unset").webhook_url(), None);
    }

    #[tokio::test]
    async fn ip_literals_are_checked_before_any_connection() {
        let sender = Sender::new(None, false, Duration::from_secs(1)).expect("client");
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/latest",
        ] {
            match sender.send(url, "msg_1", b"{}").await {
                Sent::Refused(why) => assert!(why.contains("WEBHOOK_ALLOW_PRIVATE"), "{why}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
