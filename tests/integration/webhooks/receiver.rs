//! A webhook receiver in the test process: a real HTTP server on 127.0.0.1 that records every
//! request (headers, body, arrival time) and answers from a script, then `200`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// Never answers (within two minutes).
    Hang,
    /// `302` to this URL.
    RedirectTo(String),
    /// `200` with a body that never ends.
    Flood,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

struct Inner {
    requests: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    /// Bytes of `Flood` bodies handed to the server so far.
    flooded: AtomicU64,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let inner = Arc::new(Inner {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            flooded: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.requests.lock().expect("lock").clone()
    }

    pub fn flooded_bytes(&self) -> u64 {
        self.inner.flooded.load(Ordering::Relaxed)
    }

    /// Waits until `n` requests arrived (panics after `timeout`); returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} webhook requests after {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.requests.lock().expect("lock").push(Received {
        at: Instant::now(),
        headers,
        body,
    });
    let answer = inner.script.lock().expect("lock").pop_front();
    match answer.unwrap_or(Answer::Status(200)) {
        Answer::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::OK.into_response()
        }
        Answer::RedirectTo(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Answer::Flood => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures::stream::repeat_with(move || {
                inner.flooded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok::<_, Infallible>(chunk.clone())
            });
            Body::from_stream(stream).into_response()
        }
    }
}

/// A test secret: `whsec_` and 32 bytes, and those bytes.
pub fn secret() -> (String, Vec<u8>) {
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
    (text, key)
}

/// Checks a request's Standard Webhooks signature the way a receiver would, with HMAC-SHA256
/// computed here (not by the crate under test), and that its timestamp is current.
pub fn assert_signed(request: &Received, key: &[u8]) {
    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    let signature = request.header("webhook-signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(signature, expected, "signature of {id}");
    let sent: i64 = timestamp.parse().expect("webhook-timestamp is Unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((now - sent).abs() < 300, "webhook-timestamp {sent}, now {now}");
}
