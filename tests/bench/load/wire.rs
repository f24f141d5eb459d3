//! The client's side of the wire: tokens over HTTP, sockets, and reading
//! only the few fields of a server frame the generator acts on.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long one setup request (sign-in, start, join) may take before the
/// client counts as failed; a run must not hang on one lost reply.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A server frame, borrowed from its text. Nested objects (a session, a
/// queue board) are skipped, not built.
#[derive(Deserialize)]
pub struct Frame<'a> {
    pub event: &'a str,
    #[serde(rename = "ref", default)]
    pub reference: Option<&'a str>,
    #[serde(borrow, default)]
    pub data: Data<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Data<'a> {
    #[serde(default)]
    pub session_id: Option<&'a str>,
    #[serde(default)]
    pub sender: Option<&'a str>,
    #[serde(default)]
    pub status: Option<&'a str>,
    #[serde(default)]
    pub code: Option<&'a str>,
    /// The send time the generator wrote into a message's content, if any.
    #[serde(default)]
    pub content: Stamp,
}

/// Messages carry their send time as `#<side><microseconds>` at the end of
/// the content, so the receiving socket can tell the delivery time without
/// a shared table between tasks.
#[derive(Default, Clone, Copy)]
pub struct Stamp(pub Option<u64>);

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StampVisitor;
        impl Visitor<'_> for StampVisitor {
            type Value = Stamp;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a message's content")
            }
            fn visit_str<E: de::Error>(self, content: &str) -> Result<Stamp, E> {
                let stamp =
                    content.rfind('#').and_then(|at| content.get(at + 2..)).and_then(|digits| digits.parse().ok());
                Ok(Stamp(stamp))
            }
        }
        deserializer.deserialize_str(StampVisitor)
    }
}

pub fn parse(text: &str) -> Option<Frame<'_>> {
    serde_json::from_str(text).ok()
}

/// Small read buffers: the idle workload holds many thousands of sockets,
/// and tungstenite's default (128 KiB each) would make the generator the
/// biggest process on the machine.
fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

/// Opens `/ws/{side}` on `base` (http://…).
pub async fn connect(base: &str, side: &str, token: &str) -> Result<Socket, String> {
    let url = format!("{}/ws/{side}?token={token}", base.replacen("http://", "ws://", 1));
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config()), true);
    match tokio::time::timeout(SETUP_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(error)) => Err(format!("connect {side}: {error}")),
        Err(_) => Err(format!("connect {side}: timed out")),
    }
}

pub async fn send(socket: &mut Socket, frame: String) -> Result<(), String> {
    socket.send(Message::text(frame)).await.map_err(|error| format!("send: {error}"))
}

/// Sends a request and reads frames until its reply; every other frame goes
/// to `on_push`. Returns the reply's text.
pub async fn request(
    socket: &mut Socket,
    frame: String,
    reference: &str,
    mut on_push: impl FnMut(&Frame),
) -> Result<String, String> {
    send(socket, frame).await?;
    let reading = async {
        loop {
            if let Some(text) = text(socket.next().await)? {
                match parse(&text) {
                    Some(reply) if reply.reference == Some(reference) => return Ok(text.as_str().to_owned()),
                    Some(push) => on_push(&push),
                    None => {}
                }
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, reading).await.map_err(|_| format!("no reply to {reference}"))?
}

/// Reads frames until `done` says so, passing each to it.
pub async fn read_until(socket: &mut Socket, mut done: impl FnMut(&Frame) -> bool) -> Result<(), String> {
    let reading = async {
        loop {
            if let Some(text) = text(socket.next().await)? {
                if parse(&text).is_some_and(|frame| done(&frame)) {
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, reading).await.map_err(|_| "timed out waiting".to_owned())?
}

/// What one read from a socket gave: a text frame, nothing the generator
/// reads (a ping, a binary frame), or the end of the socket and why.
pub fn text(
    read: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<tokio_tungstenite::tungstenite::Utf8Bytes>, String> {
    match read {
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Close(close))) => Err(format!("closed by the server: {close:?}")),
        Some(Ok(_)) => Ok(None),
        Some(Err(error)) => Err(format!("read: {error}")),
        None => Err("closed".to_owned()),
    }
}

/// The JSON of a request frame. Setup frames only: the hot paths write their
/// frames with `format!` directly.
pub fn frame(event: &str, reference: &str, data: serde_json::Value) -> String {
    serde_json::json!({ "event": event, "ref": reference, "data": data }).to_string()
}

/// The `data.sessionId` of a reply, after checking its event.
pub fn reply_session(text: &str, event: &str) -> Result<String, String> {
    match parse(text) {
        Some(frame) if frame.event == event => {
            frame.data.session_id.map(str::to_owned).ok_or_else(|| format!("no sessionId in {event}"))
        }
        _ => Err(format!("expected {event}, got {}", cut(text))),
    }
}

/// A frame cut short for an error line.
pub fn cut(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

async fn token(response: Result<reqwest::Response, reqwest::Error>, what: &str) -> Result<String, String> {
    let response = response.map_err(|error| format!("{what}: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{what}: HTTP {status} {}", cut(&body)));
    }
    response.json::<Token>().await.map(|body| body.token).map_err(|error| format!("{what}: {error}"))
}

/// A new visitor's customer token.
pub async fn visitor(http: &reqwest::Client, base: &str, name: &str) -> Result<String, String> {
    let sent = http.post(format!("{base}/api/auth/visitor")).json(&serde_json::json!({ "name": name })).send().await;
    token(sent, "visitor token").await
}

/// A staff member's token.
pub async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> Result<String, String> {
    let body = serde_json::json!({ "username": username, "password": password });
    let sent = http.post(format!("{base}/auth/login")).json(&body).send().await;
    token(sent, "sign-in").await
}
