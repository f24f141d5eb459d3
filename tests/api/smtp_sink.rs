//! A real SMTP server on a local port that keeps every email it accepts,
//! for tests of the server's email: `SmtpSink::start().await`, give the
//! server `SMTP_URL=sink.url()`, then `sink.wait_for(|mail| …, timeout)`.
//! The SMTP conversation is `mailin`'s state machine over a tokio socket;
//! what arrives is read with `mail-parser`.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One email as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    pub subject: String,
    /// The whole message as sent, headers and MIME parts.
    pub raw: String,
    /// The decoded plain-text part.
    pub text: String,
    /// The decoded HTML part.
    pub html: String,
}

/// How the sink answers the end of a message it refuses.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// 451: try again later.
    Transient,
    /// 554: never try again.
    Permanent,
}

#[derive(Default)]
struct Shared {
    received: Vec<ReceivedMail>,
    refuse: Vec<Refusal>,
    refused: usize,
}

pub struct SmtpSink {
    address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1 until dropped.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port for the SMTP sink");
        let address = listener.local_addr().expect("the sink's address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accepting = tokio::spawn(accept(listener, shared.clone()));
        SmtpSink { address, shared, accepting }
    }

    /// The value for the server's `SMTP_URL`: plain SMTP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Refuses the next `count` messages at the end of their data.
    pub fn refuse_next(&self, count: usize, refusal: Refusal) {
        self.lock().refuse.extend(std::iter::repeat_n(refusal, count));
    }

    /// Messages refused so far.
    pub fn refused(&self) -> usize {
        self.lock().refused
    }

    /// Every email accepted so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.lock().received.clone()
    }

    /// The first email accepted that `matches`, waiting up to `timeout` for it.
    pub async fn wait_for(&self, matches: impl Fn(&ReceivedMail) -> bool, timeout: Duration) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(mail) = self.lock().received.iter().find(|mail| matches(mail)) {
                return mail.clone();
            }
            if tokio::time::Instant::now() >= deadline {
                let subjects: Vec<String> = self.received().into_iter().map(|mail| mail.subject).collect();
                panic!("no matching email within {timeout:?}; received: {subjects:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn accept(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    while let Ok((stream, peer)) = listener.accept().await {
        tokio::spawn(converse(stream, peer.ip(), shared.clone()));
    }
}

/// One SMTP connection: lines in, `mailin`'s answers out.
async fn converse(stream: TcpStream, peer: IpAddr, shared: Arc<Mutex<Shared>>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut session = SessionBuilder::new("smtp-sink.test").build(peer, Collector::new(shared));
    if write(&mut writer, &session.greeting()).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = session.process(&line);
        // mailin stays in its DATA state after a refused message, taking
        // what follows as more data; hanging up after the refusal is what
        // a client must cope with anyway.
        let refused_message = line == b".\r\n" && response.is_error;
        if refused_message {
            let _ = write(&mut writer, &response).await;
            return;
        }
        match response.action {
            Action::NoReply => {}
            Action::Reply => {
                if write(&mut writer, &response).await.is_err() {
                    return;
                }
            }
            Action::Close | Action::UpgradeTls => {
                let _ = write(&mut writer, &response).await;
                return;
            }
        }
    }
}

async fn write(writer: &mut tokio::net::tcp::OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    writer.write_all(&response.buffer()?).await
}

/// Keeps one connection's current message and decides its fate at its end.
struct Collector {
    shared: Arc<Mutex<Shared>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Collector {
    fn new(shared: Arc<Mutex<Shared>>) -> Self {
        Collector { shared, from: String::new(), to: Vec::new(), data: Vec::new() }
    }
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut shared = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !shared.refuse.is_empty() {
            shared.refused += 1;
            return match shared.refuse.remove(0) {
                Refusal::Transient => mailin::response::INTERNAL_ERROR,
                Refusal::Permanent => mailin::response::TRANSACTION_FAILED,
            };
        }
        let raw = std::mem::take(&mut self.data);
        let parsed = mail_parser::MessageParser::default().parse(&raw[..]);
        let part = |text: Option<std::borrow::Cow<'_, str>>| text.map(|text| text.into_owned()).unwrap_or_default();
        let mail = ReceivedMail {
            from: self.from.clone(),
            to: self.to.clone(),
            subject: parsed.as_ref().and_then(|message| message.subject()).unwrap_or_default().to_owned(),
            text: part(parsed.as_ref().and_then(|message| message.body_text(0))),
            html: part(parsed.as_ref().and_then(|message| message.body_html(0))),
            raw: String::from_utf8_lossy(&raw).into_owned(),
        };
        shared.received.push(mail);
        mailin::response::OK
    }
}
