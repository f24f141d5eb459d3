//! Small value types shared by the database, the actors and the wire protocol.
//! Each is stored as TEXT (with a CHECK constraint) and sent as the same
//! lowercase string, so one spelling holds everywhere.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};

/// A string that named none of an enum's variants.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident as $kind:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression, FromSqlRow, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        #[diesel(sql_type = Text)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownVariant { kind: $kind, value: other.to_owned() }),
                }
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                Ok(text.parse()?)
            }
        }
    };
}

text_enum!(
    /// Who a user is; decides which socket and which REST calls they may use.
    /// A `partner` belongs to a partner organisation (a restaurant, a merchant,
    /// a courier company) and sees only the chats that organisation is invited into.
    Role as "role" { Customer => "customer", Agent => "agent", Admin => "admin", Partner => "partner" }
);

text_enum!(
    /// An agent's presence.
    Presence as "presence" { Online => "online", Away => "away", Offline => "offline" }
);

text_enum!(
    /// Where a chat session is in its life: with the bot, waiting in the queue,
    /// with a human agent, or over; or an offline request: the customer found
    /// nobody there and left a message and an email address to answer.
    SessionStatus as "session status" {
        Bot => "bot", Waiting => "waiting", Assigned => "assigned", Closed => "closed", Offline => "offline"
    }
);

text_enum!(
    /// Queue priority; higher priorities are served first.
    Priority as "priority" { High => "high", Normal => "normal", Low => "low" }
);

text_enum!(
    /// Who wrote a message. A `note` is a private note between staff, written
    /// by an agent or admin and never shown to the customer (nor to a partner).
    /// A `partner` message comes from a member of an invited partner organisation.
    SenderType as "sender type" {
        Customer => "customer", Bot => "bot", Agent => "agent", System => "system", Note => "note",
        Partner => "partner"
    }
);

text_enum!(
    /// Why a chat session ended.
    CloseReason as "close reason" {
        Resolved => "resolved",
        ClosedByAgent => "closed_by_agent",
        CustomerEnded => "customer_ended",
        Abandoned => "abandoned",
        Deleted => "deleted",
    }
);

text_enum!(
    /// Where a webhook delivery is: waiting for its next attempt, received
    /// by the endpoint (a 2xx answer), or given up after the last attempt.
    DeliveryStatus as "delivery status" { Pending => "pending", Delivered => "delivered", Failed => "failed" }
);

/// What a webhook can be told about. Named `area.what_happened`, the names
/// other systems subscribe to and receive in `X-Switchboard-Event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    /// A customer started a chat.
    #[serde(rename = "session.started")]
    SessionStarted,
    /// The chat went to the queue for a person.
    #[serde(rename = "session.handed_over")]
    SessionHandedOver,
    /// An agent got the chat.
    #[serde(rename = "session.assigned")]
    SessionAssigned,
    /// The customer left a message for later: the chat is an offline request.
    #[serde(rename = "session.offline_request")]
    SessionOfflineRequest,
    /// A customer's, agent's or bot's message was stored (never a private note).
    #[serde(rename = "message.created")]
    MessageCreated,
    /// The chat ended.
    #[serde(rename = "session.closed")]
    SessionClosed,
    /// The customer rated the chat.
    #[serde(rename = "session.rated")]
    SessionRated,
}

impl WebhookEvent {
    pub const ALL: &'static [WebhookEvent] = &[
        WebhookEvent::SessionStarted,
        WebhookEvent::SessionHandedOver,
        WebhookEvent::SessionAssigned,
        WebhookEvent::SessionOfflineRequest,
        WebhookEvent::MessageCreated,
        WebhookEvent::SessionClosed,
        WebhookEvent::SessionRated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::SessionStarted => "session.started",
            WebhookEvent::SessionHandedOver => "session.handed_over",
            WebhookEvent::SessionAssigned => "session.assigned",
            WebhookEvent::SessionOfflineRequest => "session.offline_request",
            WebhookEvent::MessageCreated => "message.created",
            WebhookEvent::SessionClosed => "session.closed",
            WebhookEvent::SessionRated => "session.rated",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEvent {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookEvent::ALL
            .iter()
            .copied()
            .find(|event| event.as_str() == s)
            .ok_or_else(|| UnknownVariant { kind: "webhook event", value: s.to_owned() })
    }
}

text_enum!(
    /// Where an email in the outbox is: waiting (for its first try or a
    /// retry), handed to the SMTP server, or given up on.
    EmailStatus as "email status" { Queued => "queued", Sent => "sent", Failed => "failed" }
);

impl Priority {
    /// Lower rank is served first.
    pub fn rank(self) -> u8 {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}

/// Characters that change how text around them is shown without showing
/// themselves: bidi overrides, embeddings, isolates and marks, the zero-width
/// space, word joiner and invisible operators, fillers, the soft hyphen and
/// the byte-order mark. In a name or a file name they let one thing pose as
/// another (`invoice\u{202e}fdp.hta` shows as `invoiceath.pdf`). The
/// zero-width joiners (U+200C, U+200D) and variation selectors stay: Persian
/// names and emoji need them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// Not fit for a name: control characters and the invisible ones above.
pub fn is_unprintable(c: char) -> bool {
    c.is_control() || is_invisible(c)
}
