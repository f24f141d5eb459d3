//! The WebSocket wire protocol: what clients send (`client`) and what the
//! server emits (`server`). docs/PROTOCOL.md describes the same thing for
//! people; the two must agree.

pub mod client;
pub mod server;

/// The longest message a customer or agent may send, in characters.
pub const MAX_CONTENT_CHARS: usize = 4_000;
/// The longest `clientMsgId`, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 100;
/// The longest `ref`, in characters.
pub const MAX_REF_CHARS: usize = 128;
