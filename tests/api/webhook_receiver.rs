//! A real HTTP endpoint for webhook deliveries: an actix-web server on a
//! local port, on a thread of its own, that records each request's headers
//! and body. It can answer 500 to the first N requests, or never answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub json: serde_json::Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str).unwrap_or_default()
    }

    pub fn event(&self) -> &str {
        self.header("x-switchboard-event")
    }

    pub fn delivery_id(&self) -> &str {
        self.header("x-switchboard-delivery")
    }

    /// Checks `X-Switchboard-Signature` as a receiver would: the hex
    /// HMAC-SHA256 of `"<X-Switchboard-Timestamp>.<body>"` keyed with the secret.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(given) = self.header("x-switchboard-signature").strip_prefix("sha256=") else { return false };
        let Ok(given) = hex::decode(given) else { return false };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(self.header("x-switchboard-timestamp").as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&given).is_ok()
    }
}

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 200, except 500 to the first `failures` requests.
    Answer { failures: usize },
    /// Never answers (holds each request for ten minutes).
    Hang,
}

#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
    served: AtomicUsize,
}

pub struct WebhookReceiver {
    port: u16,
    log: Arc<Log>,
    server: actix_web::dev::ServerHandle,
}

impl WebhookReceiver {
    /// Answers every delivery with 200.
    pub async fn start() -> WebhookReceiver {
        WebhookReceiver::with(Behaviour::Answer { failures: 0 })
    }

    /// Answers the first `failures` requests with 500, then 200.
    pub async fn failing_first(failures: usize) -> WebhookReceiver {
        WebhookReceiver::with(Behaviour::Answer { failures })
    }

    /// Records each request and never answers it.
    pub async fn hanging() -> WebhookReceiver {
        WebhookReceiver::with(Behaviour::Hang)
    }

    fn with(behaviour: Behaviour) -> WebhookReceiver {
        let log = Arc::new(Log::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("local address").port();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let server_log = log.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::from(server_log.clone()))
                        .app_data(web::Data::new(behaviour))
                        .default_service(web::to(receive))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)
                .expect("listen")
                .run();
                let _ = handle_tx.send(server.handle());
                let _ = server.await;
            });
        });
        let server = handle_rx.recv_timeout(Duration::from_secs(10)).expect("the receiver starts");
        WebhookReceiver { port, log, server }
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/switchboard", self.port)
    }

    /// Every request so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.log.received.lock().expect("log").clone()
    }

    /// Waits until a request matches, and returns it.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Received) -> bool) -> Received {
        self.wait_until(what, |all| all.iter().find(|request| matches(request)).cloned()).await
    }

    /// Waits until `ready` finds what it looks for among every request so far.
    pub async fn wait_until<T>(&self, what: &str, ready: impl Fn(&[Received]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = ready(&self.received()) {
                return found;
            }
            assert!(Instant::now() < deadline, "the receiver never got {what}; it got {:#?}", self.summary());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The requests with the given event.
    pub fn of_event(&self, event: &str) -> Vec<Received> {
        self.received().into_iter().filter(|request| request.event() == event).collect()
    }

    fn summary(&self) -> Vec<(String, serde_json::Value)> {
        self.received().into_iter().map(|request| (request.event().to_owned(), request.json["data"].clone())).collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        // Sent at once; the server's thread ends when it has stopped.
        drop(self.server.stop(false));
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    log: web::Data<Log>,
    behaviour: web::Data<Behaviour>,
) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    log.received.lock().expect("log").push(Received { headers, body: body.to_vec(), json });
    let served = log.served.fetch_add(1, Ordering::SeqCst);
    match **behaviour {
        Behaviour::Hang => {
            actix_web::rt::time::sleep(Duration::from_secs(600)).await;
            HttpResponse::Ok().finish()
        }
        Behaviour::Answer { failures } if served < failures => HttpResponse::InternalServerError().body("try later"),
        Behaviour::Answer { .. } => HttpResponse::Ok().body("thanks"),
    }
}
