// @generated automatically by Diesel CLI.

diesel::table! {
    business_hours (id) {
        id -> Uuid,
        team_id -> Nullable<Uuid>,
        time_zone -> Text,
        weekly -> Jsonb,
        holidays -> Array<Date>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> Uuid,
        session_id -> Uuid,
        seq -> Int8,
        client_msg_id -> Nullable<Text>,
        sender_type -> Text,
        sender_id -> Nullable<Uuid>,
        content -> Text,
        message_type -> Text,
        intent -> Nullable<Text>,
        entities -> Nullable<Jsonb>,
        confidence -> Nullable<Float4>,
        processing -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Uuid,
        customer_id -> Uuid,
        status -> Text,
        priority -> Text,
        assigned_agent_id -> Nullable<Uuid>,
        is_active -> Bool,
        is_resolved -> Bool,
        title -> Nullable<Text>,
        category -> Nullable<Text>,
        bot_context -> Nullable<Text>,
        conversation_context -> Jsonb,
        metadata -> Jsonb,
        message_count -> Int4,
        last_seq -> Int8,
        last_activity -> Timestamptz,
        resolution_notes -> Nullable<Text>,
        ended_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        owner_epoch -> Int8,
        owner_node -> Nullable<Text>,
        team_id -> Nullable<Uuid>,
        offline_email -> Nullable<Text>,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Uuid,
        kind -> Text,
        session_id -> Nullable<Uuid>,
        to_address -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    message_attachments (id) {
        id -> Uuid,
        session_id -> Uuid,
        message_id -> Nullable<Uuid>,
        uploader_id -> Nullable<Uuid>,
        file_name -> Text,
        content_type -> Text,
        size_bytes -> Int8,
        data -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    queue_entries (id) {
        id -> Uuid,
        session_id -> Uuid,
        priority -> Text,
        reason -> Nullable<Text>,
        requested_at -> Timestamptz,
        assigned_at -> Nullable<Timestamptz>,
        assigned_agent_id -> Nullable<Uuid>,
        is_active -> Bool,
    }
}

diesel::table! {
    read_receipts (session_id, participant_id) {
        session_id -> Uuid,
        participant_id -> Uuid,
        role -> Text,
        last_read_seq -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    session_analytics (session_id) {
        session_id -> Uuid,
        customer_messages -> Int4,
        bot_messages -> Int4,
        agent_messages -> Int4,
        system_messages -> Int4,
        was_transferred -> Bool,
        transfer_count -> Int4,
        handoff_requested_at -> Nullable<Timestamptz>,
        first_assigned_at -> Nullable<Timestamptz>,
        first_response_at -> Nullable<Timestamptz>,
        first_response_ms -> Nullable<Int8>,
        wait_ms -> Nullable<Int8>,
        duration_ms -> Nullable<Int8>,
        resolved_by_bot -> Bool,
        rating -> Nullable<Int2>,
        rating_comment -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        role -> Text,
        password_hash -> Nullable<Text>,
        max_concurrent_chats -> Int4,
        status -> Text,
        disabled -> Bool,
        created_at -> Timestamptz,
        last_seen_at -> Nullable<Timestamptz>,
        partner_org_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    partner_orgs (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    chat_partners (session_id, partner_org_id) {
        session_id -> Uuid,
        partner_org_id -> Uuid,
        invited_by -> Nullable<Uuid>,
        invited_at -> Timestamptz,
        visible_after_seq -> Int8,
        removed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    canned_replies (id) {
        id -> Uuid,
        shortcut -> Text,
        title -> Text,
        content -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    labels (id) {
        id -> Uuid,
        name -> Text,
        color -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    session_labels (session_id, label_id) {
        session_id -> Uuid,
        label_id -> Uuid,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> Uuid,
        user_id -> Uuid,
    }
}

diesel::table! {
    teams (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        last_status_code -> Nullable<Int4>,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        events -> Array<Text>,
        secret -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(chat_messages -> chat_sessions (session_id));
diesel::joinable!(chat_messages -> users (sender_id));
diesel::joinable!(email_outbox -> chat_sessions (session_id));
diesel::joinable!(message_attachments -> chat_messages (message_id));
diesel::joinable!(message_attachments -> chat_sessions (session_id));
diesel::joinable!(message_attachments -> users (uploader_id));
diesel::joinable!(queue_entries -> chat_sessions (session_id));
diesel::joinable!(queue_entries -> users (assigned_agent_id));
diesel::joinable!(read_receipts -> chat_sessions (session_id));
diesel::joinable!(read_receipts -> users (participant_id));
diesel::joinable!(session_analytics -> chat_sessions (session_id));
diesel::joinable!(session_labels -> chat_sessions (session_id));
diesel::joinable!(session_labels -> labels (label_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(chat_sessions -> teams (team_id));
diesel::joinable!(users -> partner_orgs (partner_org_id));
diesel::joinable!(chat_partners -> chat_sessions (session_id));
diesel::joinable!(chat_partners -> partner_orgs (partner_org_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(business_hours -> teams (team_id));

diesel::allow_tables_to_appear_in_same_query!(
    business_hours,
    canned_replies,
    chat_messages,
    chat_partners,
    chat_sessions,
    email_outbox,
    labels,
    message_attachments,
    partner_orgs,
    queue_entries,
    read_receipts,
    session_analytics,
    session_labels,
    team_members,
    teams,
    users,
    webhook_deliveries,
    webhooks,
);
