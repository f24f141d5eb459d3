//! Row types: for each table, what is read and what is written, side by side.

mod attachment;
mod business_hours;
mod catalog;
mod message;
pub mod outbox;
mod session;
mod user;
mod webhook;

pub use attachment::{AttachmentMeta, NewAttachment};
pub use business_hours::{BusinessHoursRow, NewBusinessHours};
pub use catalog::{CannedReply, CannedReplyFields, Label};
pub use message::{ChatMessage, NewChatMessage};
pub use session::{ChatSession, NewChatSession};
pub use user::{NewUser, User};
pub use webhook::{NewDelivery, Webhook, WebhookChanges, WebhookDelivery};
