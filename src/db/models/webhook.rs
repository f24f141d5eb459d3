use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::db::schema::{webhook_deliveries, webhooks};
use crate::domain::DeliveryStatus;

/// An endpoint an admin registered, with the events it wants and the secret
/// that signs what it is sent.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// `WebhookEvent` names.
    pub events: Vec<String>,
    pub secret: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an admin changes of a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// One event on its way to one webhook, as the admin page lists it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = webhook_deliveries)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// Also the body's `id` and the `X-Switchboard-Delivery` header.
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    /// The body that is posted.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// Why the latest attempt failed (`HTTP 500`, a timeout, a refused connection).
    pub last_error: Option<String>,
    /// The endpoint's HTTP status in the latest attempt, when it answered.
    pub last_status_code: Option<i32>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A delivery to record; `next_attempt_at` in the future means this node
/// has claimed it and sends it now.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub payload: serde_json::Value,
    pub next_attempt_at: DateTime<Utc>,
}
