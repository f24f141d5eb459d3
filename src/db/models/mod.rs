//! Row types: for each table, what is read and what is written, side by side.

mod attachment;
mod catalog;
mod message;
pub mod outbox;
mod session;
mod user;

pub use attachment::{AttachmentMeta, NewAttachment};
pub use catalog::{CannedReply, CannedReplyFields, Label};
pub use message::{ChatMessage, NewChatMessage};
pub use session::{ChatSession, NewChatSession};
pub use user::{NewUser, User};
