use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{ChatMessage, NewChatMessage};
use crate::db::schema::chat_messages;
use crate::db::PgConn;
use crate::domain::SenderType;
use crate::error::{AppError, ErrorCode};

/// What became of one message of a batch.
#[derive(Debug, Clone)]
pub struct Persisted {
    pub message: ChatMessage,
    /// True when the sender had sent this `client_msg_id` before: the stored
    /// message is the first one, and nothing new was written.
    pub resent: bool,
}

#[derive(Insertable)]
#[diesel(table_name = chat_messages)]
struct MessageRow<'a> {
    id: Uuid,
    session_id: Uuid,
    seq: i64,
    client_msg_id: Option<&'a str>,
    sender_type: SenderType,
    sender_id: Option<Uuid>,
    content: &'a str,
    message_type: &'a str,
    intent: Option<&'a str>,
    entities: Option<&'a serde_json::Value>,
    confidence: Option<f32>,
    processing: Option<&'a serde_json::Value>,
}

/// What became of one message of a batch: an answer for its sender, or
/// nothing yet because another transaction holds its session's row.
#[derive(Debug)]
// Nearly every outcome is `Done`: boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Done(Result<Persisted, AppError>),
    Locked,
}

/// Rows per INSERT statement, well under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_INSERT: usize = 1_000;

enum Plan {
    Stored(Box<ChatMessage>),
    /// Index into the rows to insert.
    Insert(usize),
    /// The same message earlier in this batch.
    SameAs(usize),
    Rejected(AppError),
    Locked,
}

/// Stores a batch of messages and answers for each one, in order.
///
/// Sequence numbers come from `chat_sessions.last_seq`, bumped once per
/// session in this same transaction: numbers are gap-free and in send order,
/// and a rolled-back batch hands out none. A message whose `client_msg_id`
/// was already stored (or appears earlier in the batch) is answered with the
/// first copy and not stored again.
pub async fn insert_batch(conn: &mut PgConn, batch: &[NewChatMessage]) -> QueryResult<Vec<Outcome>> {
    let mut stored = find_resent(conn, batch).await?;
    let mut first_in_batch: HashMap<(Uuid, Option<Uuid>, &str), usize> = HashMap::new();
    let mut per_session: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    let mut plans = Vec::with_capacity(batch.len());
    for (index, message) in batch.iter().enumerate() {
        let plan = match message.resend_key() {
            Some(key) => match stored.remove(&key) {
                Some(earlier) => {
                    first_in_batch.insert(key, index);
                    Plan::Stored(Box::new(earlier))
                }
                None => match first_in_batch.get(&key) {
                    Some(&first) => Plan::SameAs(first),
                    None => {
                        first_in_batch.insert(key, index);
                        Plan::Insert(index)
                    }
                },
            },
            None => Plan::Insert(index),
        };
        if let Plan::Insert(index) = plan {
            per_session.entry(message.session_id).or_default().push(index);
        }
        plans.push(plan);
    }

    let counts: Vec<(Uuid, i64, i64)> = per_session
        .iter()
        .map(|(session_id, indexes)| (*session_id, indexes.len() as i64, batch[indexes[0]].owner_epoch))
        .collect();
    let last_seqs = reserve_seqs(conn, &counts).await?;
    let unreserved: Vec<Uuid> =
        per_session.keys().filter(|session_id| !last_seqs.contains_key(session_id)).copied().collect();
    let unreserved: Vec<(Uuid, i64)> = counts
        .iter()
        .filter(|(session_id, _, _)| unreserved.contains(session_id))
        .map(|(session_id, _, epoch)| (*session_id, *epoch))
        .collect();
    let (locked, moved) = existing(conn, &unreserved).await?;
    let mut seqs: HashMap<usize, i64> = HashMap::new();
    for (session_id, indexes) in &per_session {
        let count = indexes.len() as i64;
        match last_seqs.get(session_id).copied() {
            Some(last) => {
                for (offset, index) in indexes.iter().enumerate() {
                    seqs.insert(*index, last - count + 1 + offset as i64);
                }
            }
            None if locked.contains(session_id) => {
                for index in indexes {
                    plans[*index] = Plan::Locked;
                }
            }
            None if moved.contains(session_id) => {
                for index in indexes {
                    plans[*index] = Plan::Rejected(AppError::new(
                        ErrorCode::SessionMoved,
                        "another server runs this chat now: reconnect and send it again",
                    ));
                }
            }
            None => {
                for index in indexes {
                    plans[*index] =
                        Plan::Rejected(AppError::new(ErrorCode::SessionNotFound, "that chat session does not exist"));
                }
            }
        }
    }

    let rows: Vec<MessageRow> = batch
        .iter()
        .enumerate()
        .filter_map(|(index, message)| {
            seqs.get(&index).map(|&seq| MessageRow {
                id: Uuid::new_v4(),
                session_id: message.session_id,
                seq,
                client_msg_id: message.client_msg_id.as_deref(),
                sender_type: message.sender_type,
                sender_id: message.sender_id,
                content: &message.content,
                message_type: &message.message_type,
                intent: message.intent.as_deref(),
                entities: message.entities.as_ref(),
                confidence: message.confidence,
                processing: message.processing.as_ref(),
            })
        })
        .collect();
    let mut inserted: HashMap<(Uuid, i64), ChatMessage> = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let returned: Vec<ChatMessage> = diesel::insert_into(chat_messages::table)
            .values(chunk)
            .returning(ChatMessage::as_returning())
            .get_results(conn)
            .await?;
        inserted.extend(returned.into_iter().map(|message| ((message.session_id, message.seq), message)));
    }

    let mut answers: Vec<Outcome> = Vec::with_capacity(batch.len());
    for (index, plan) in plans.into_iter().enumerate() {
        let answer = match plan {
            Plan::Locked => {
                answers.push(Outcome::Locked);
                continue;
            }
            Plan::Stored(message) => Ok(Persisted { message: *message, resent: true }),
            Plan::Insert(_) => {
                let key = (batch[index].session_id, seqs.get(&index).copied().unwrap_or_default());
                inserted
                    .get(&key)
                    .cloned()
                    .map(|message| Persisted { message, resent: false })
                    .ok_or_else(|| AppError::internal(diesel::result::Error::NotFound))
            }
            Plan::SameAs(first) => match &answers[first] {
                Outcome::Done(answer) => answer.clone().map(|persisted| Persisted { resent: true, ..persisted }),
                // The first copy waits for its session's row; this one waits with it.
                Outcome::Locked => {
                    answers.push(Outcome::Locked);
                    continue;
                }
            },
            Plan::Rejected(error) => Err(error),
        };
        answers.push(Outcome::Done(answer));
    }
    Ok(answers)
}

/// Earlier copies of messages in the batch that carry a `client_msg_id`,
/// looked up by the whole key of `chat_messages_client_msg_key`, so each is
/// one probe of that index however many messages the session has.
async fn find_resent<'b>(
    conn: &mut PgConn,
    batch: &'b [NewChatMessage],
) -> QueryResult<HashMap<(Uuid, Option<Uuid>, &'b str), ChatMessage>> {
    use diesel::sql_types::{Array, Bool, Text, Uuid as SqlUuid};
    // A message without a sender (bot, system) has no client id to resend.
    let keyed: Vec<_> =
        batch.iter().filter_map(NewChatMessage::resend_key).filter(|(_, sender, _)| sender.is_some()).collect();
    if keyed.is_empty() {
        return Ok(HashMap::new());
    }
    let session_ids: Vec<Uuid> = keyed.iter().map(|(session, _, _)| *session).collect();
    let sender_ids: Vec<Uuid> = keyed.iter().filter_map(|(_, sender, _)| *sender).collect();
    let client_ids: Vec<&str> = keyed.iter().map(|(_, _, id)| *id).collect();
    let candidates: Vec<ChatMessage> = chat_messages::table
        .filter(
            diesel::dsl::sql::<Bool>(
                "(chat_messages.session_id, chat_messages.sender_id, chat_messages.client_msg_id) IN \
                 (SELECT * FROM unnest(",
            )
            .bind::<Array<SqlUuid>, _>(&session_ids)
            .sql(", ")
            .bind::<Array<SqlUuid>, _>(&sender_ids)
            .sql(", ")
            .bind::<Array<Text>, _>(&client_ids)
            .sql("))"),
        )
        .select(ChatMessage::as_select())
        .load(conn)
        .await?;
    let mut found = HashMap::new();
    for candidate in candidates {
        if let Some(key) = keyed.iter().find(|(session, sender, id)| {
            *session == candidate.session_id
                && *sender == candidate.sender_id
                && Some(*id) == candidate.client_msg_id.as_deref()
        }) {
            found.insert(*key, candidate);
        }
    }
    Ok(found)
}

#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_seq: i64,
}

/// Hands out sequence numbers for every session of a batch in one
/// statement, `count` for each, and returns each session's last one.
/// Sessions that do not exist, sessions another node has taken over (their
/// `owner_epoch` is not the sender's), and sessions whose row another
/// transaction holds for update, are left out: a locked row is skipped, never waited
/// for. (`NO KEY UPDATE`, the lock the update itself takes, leaves rows that
/// others only reference, a receipt or a queue entry being written, alone.) The rows
/// are locked in id order, so two concurrent writers never deadlock.
/// `last_activity` is indexed, so it moves at most once a minute: the other
/// updates change no indexed column and stay on their page (HOT).
async fn reserve_seqs(conn: &mut PgConn, counts: &[(Uuid, i64, i64)]) -> QueryResult<HashMap<Uuid, i64>> {
    if counts.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = counts.iter().map(|(id, _, _)| *id).collect();
    let numbers: Vec<i64> = counts.iter().map(|(_, count, _)| *count).collect();
    let epochs: Vec<i64> = counts.iter().map(|(_, _, epoch)| *epoch).collect();
    let reserved: Vec<Reserved> = diesel::sql_query(
        "WITH locked AS (
             SELECT id FROM chat_sessions WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id
             FOR NO KEY UPDATE SKIP LOCKED
         )
         UPDATE chat_sessions s
         SET last_seq = s.last_seq + wanted.count,
             message_count = s.message_count + wanted.count::integer,
             last_activity = CASE WHEN s.last_activity < now() - interval '1 minute'
                                  THEN now() ELSE s.last_activity END,
             updated_at = now()
         FROM unnest($1, $2, $3) AS wanted(id, count, epoch), locked
         WHERE s.id = wanted.id AND locked.id = s.id AND s.owner_epoch = wanted.epoch
         RETURNING s.id, s.last_seq",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&numbers)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&epochs)
    .load(conn)
    .await?;
    Ok(reserved.into_iter().map(|row| (row.id, row.last_seq)).collect())
}

/// Of the sessions (with their sender's fencing number) that got no
/// numbers: those whose row exists and is locked by someone else, and
/// those another owner took over (read without locking).
async fn existing(
    conn: &mut PgConn,
    sessions: &[(Uuid, i64)],
) -> QueryResult<(std::collections::HashSet<Uuid>, std::collections::HashSet<Uuid>)> {
    use crate::db::schema::chat_sessions;
    if sessions.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<Uuid> = sessions.iter().map(|(id, _)| *id).collect();
    let found: Vec<(Uuid, i64)> = chat_sessions::table
        .filter(chat_sessions::id.eq_any(&ids))
        .filter(chat_sessions::deleted_at.is_null())
        .select((chat_sessions::id, chat_sessions::owner_epoch))
        .load(conn)
        .await?;
    let sent_with: HashMap<Uuid, i64> = sessions.iter().copied().collect();
    let (moved, locked): (Vec<_>, Vec<_>) =
        found.into_iter().partition(|(id, epoch)| sent_with.get(id).is_some_and(|sent| sent != epoch));
    Ok((locked.into_iter().map(|(id, _)| id).collect(), moved.into_iter().map(|(id, _)| id).collect()))
}

/// A stored message with what it takes to show it: its sender's name and its files.
#[derive(Debug, Clone)]
pub struct Shown {
    pub message: ChatMessage,
    pub sender_name: Option<String>,
    pub attachments: Vec<crate::db::models::AttachmentMeta>,
}

/// Which messages of a session to show.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// Every message with a greater seq, oldest first.
    After(i64),
    /// The oldest `limit` messages with a greater seq.
    AfterLimited { seq: i64, limit: i64 },
    /// The newest `limit` messages with a smaller seq, returned oldest first.
    Before { seq: i64, limit: i64 },
    /// A page, oldest first.
    Page { offset: i64, limit: i64 },
}

/// Who reads a history: customers never see the staff's private notes;
/// partners neither, and only the messages after their invitation's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Customer,
    Staff,
    /// A member of an invited partner organisation: messages after `after` (0: the whole history).
    Partner {
        after: i64,
    },
}

impl Audience {
    /// The audience of a role. A partner's depends on their invitation, which
    /// the role alone does not tell: this one sees nothing (use `Audience::Partner`).
    pub fn of(role: crate::domain::Role) -> Self {
        match role {
            crate::domain::Role::Customer => Audience::Customer,
            crate::domain::Role::Agent | crate::domain::Role::Admin => Audience::Staff,
            crate::domain::Role::Partner => Audience::Partner { after: i64::MAX },
        }
    }

    pub fn sees(self, message: &ChatMessage) -> bool {
        match self {
            Audience::Staff => true,
            Audience::Customer => message.sender_type != SenderType::Note,
            Audience::Partner { after } => message.sender_type != SenderType::Note && message.seq > after,
        }
    }
}

/// The name a message's sender is shown by: a partner's with their
/// organisation's, "Ana (Pizza Roma)", so every party sees who wrote it.
fn sender_name() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Text>> {
    diesel::dsl::sql(
        "CASE WHEN users.partner_org_id IS NULL THEN users.display_name \
         ELSE users.display_name || ' (' || \
              (SELECT partner_orgs.name FROM partner_orgs WHERE partner_orgs.id = users.partner_org_id) || ')' END",
    )
}

/// Messages of a session with their senders' names and files.
pub async fn shown(conn: &mut PgConn, session_id: Uuid, window: Window, audience: Audience) -> QueryResult<Vec<Shown>> {
    use crate::db::schema::users;
    let mut query = chat_messages::table
        .left_join(users::table.on(users::id.nullable().eq(chat_messages::sender_id)))
        .filter(chat_messages::session_id.eq(session_id))
        .filter(chat_messages::deleted_at.is_null())
        .select((ChatMessage::as_select(), sender_name()))
        .into_boxed();
    if audience != Audience::Staff {
        query = query.filter(chat_messages::sender_type.ne(SenderType::Note));
    }
    if let Audience::Partner { after } = audience {
        query = query.filter(chat_messages::seq.gt(after));
    }
    let mut rows: Vec<(ChatMessage, Option<String>)> = match window {
        Window::After(seq) => {
            query.filter(chat_messages::seq.gt(seq)).order(chat_messages::seq.asc()).load(conn).await?
        }
        Window::AfterLimited { seq, limit } => {
            query.filter(chat_messages::seq.gt(seq)).order(chat_messages::seq.asc()).limit(limit).load(conn).await?
        }
        Window::Before { seq, limit } => {
            let mut newest_first: Vec<(ChatMessage, Option<String>)> = query
                .filter(chat_messages::seq.lt(seq))
                .order(chat_messages::seq.desc())
                .limit(limit)
                .load(conn)
                .await?;
            newest_first.reverse();
            newest_first
        }
        Window::Page { offset, limit } => {
            query.order(chat_messages::seq.asc()).offset(offset).limit(limit).load(conn).await?
        }
    };
    with_files(conn, std::mem::take(&mut rows)).await
}

/// For each (session, seq) pair, the session's messages after that seq, with
/// their senders' names and files, oldest first: one query for all sessions,
/// one range of the (session, seq) key each. A session asked for twice is read
/// from the lower seq.
pub async fn shown_after_each(conn: &mut PgConn, windows: &[(Uuid, i64)]) -> QueryResult<HashMap<Uuid, Vec<Shown>>> {
    use crate::db::schema::users;
    use diesel::sql_types::{Array, BigInt, Bool, Uuid as SqlUuid};
    let mut lowest: HashMap<Uuid, i64> = HashMap::with_capacity(windows.len());
    for &(session, after) in windows {
        lowest.entry(session).and_modify(|seq| *seq = (*seq).min(after)).or_insert(after);
    }
    if lowest.is_empty() {
        return Ok(HashMap::new());
    }
    let (sessions, afters): (Vec<Uuid>, Vec<i64>) = lowest.into_iter().unzip();
    let rows: Vec<(ChatMessage, Option<String>)> = chat_messages::table
        .left_join(users::table.on(users::id.nullable().eq(chat_messages::sender_id)))
        .filter(chat_messages::session_id.eq_any(&sessions))
        .filter(
            diesel::dsl::sql::<Bool>("chat_messages.seq > (SELECT w.after FROM unnest(")
                .bind::<Array<SqlUuid>, _>(&sessions)
                .sql(", ")
                .bind::<Array<BigInt>, _>(&afters)
                .sql(") AS w(session_id, after) WHERE w.session_id = chat_messages.session_id)"),
        )
        .filter(chat_messages::deleted_at.is_null())
        .order((chat_messages::session_id.asc(), chat_messages::seq.asc()))
        .select((ChatMessage::as_select(), sender_name()))
        .load(conn)
        .await?;
    let mut by_session: HashMap<Uuid, Vec<Shown>> = HashMap::new();
    for shown in with_files(conn, rows).await? {
        by_session.entry(shown.message.session_id).or_default().push(shown);
    }
    Ok(by_session)
}

/// The messages at these (session, seq) keys, with their senders' names and
/// files, ordered by session and seq: one probe of the (session, seq) key
/// per message, and one query in all.
pub async fn shown_by_keys(conn: &mut PgConn, keys: &[(Uuid, i64)]) -> QueryResult<Vec<Shown>> {
    use crate::db::schema::users;
    use diesel::sql_types::{Array, BigInt, Bool, Uuid as SqlUuid};
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sessions: Vec<Uuid> = keys.iter().map(|(session, _)| *session).collect();
    let seqs: Vec<i64> = keys.iter().map(|(_, seq)| *seq).collect();
    let rows: Vec<(ChatMessage, Option<String>)> = chat_messages::table
        .left_join(users::table.on(users::id.nullable().eq(chat_messages::sender_id)))
        .filter(
            diesel::dsl::sql::<Bool>("(chat_messages.session_id, chat_messages.seq) IN (SELECT * FROM unnest(")
                .bind::<Array<SqlUuid>, _>(&sessions)
                .sql(", ")
                .bind::<Array<BigInt>, _>(&seqs)
                .sql("))"),
        )
        .filter(chat_messages::deleted_at.is_null())
        .order((chat_messages::session_id.asc(), chat_messages::seq.asc()))
        .select((ChatMessage::as_select(), sender_name()))
        .load(conn)
        .await?;
    with_files(conn, rows).await
}

/// Messages with the files attached to them, in one query for all.
async fn with_files(conn: &mut PgConn, mut rows: Vec<(ChatMessage, Option<String>)>) -> QueryResult<Vec<Shown>> {
    let ids: Vec<Uuid> = rows.iter().map(|(message, _)| message.id).collect();
    let mut files: HashMap<Uuid, Vec<crate::db::models::AttachmentMeta>> = HashMap::new();
    for file in super::attachments::of_messages(conn, &ids).await? {
        if let Some(message_id) = file.message_id {
            files.entry(message_id).or_default().push(file);
        }
    }
    Ok(rows
        .drain(..)
        .map(|(message, sender_name)| {
            let attachments = files.remove(&message.id).unwrap_or_default();
            Shown { message, sender_name, attachments }
        })
        .collect())
}

/// The message a sender stored in a session under `client_msg_id`, if any.
pub async fn by_client_msg_id(
    conn: &mut PgConn,
    session_id: Uuid,
    sender_id: Uuid,
    client_msg_id: &str,
) -> QueryResult<Option<ChatMessage>> {
    chat_messages::table
        .filter(chat_messages::session_id.eq(session_id))
        .filter(chat_messages::sender_id.eq(sender_id))
        .filter(chat_messages::client_msg_id.eq(client_msg_id))
        .select(ChatMessage::as_select())
        .first(conn)
        .await
        .optional()
}

/// How many visible messages a session has.
pub async fn count(conn: &mut PgConn, session_id: Uuid, audience: Audience) -> QueryResult<i64> {
    let mut query = chat_messages::table
        .filter(chat_messages::session_id.eq(session_id))
        .filter(chat_messages::deleted_at.is_null())
        .into_boxed();
    if audience != Audience::Staff {
        query = query.filter(chat_messages::sender_type.ne(SenderType::Note));
    }
    if let Audience::Partner { after } = audience {
        query = query.filter(chat_messages::seq.gt(after));
    }
    query.count().get_result(conn).await
}

/// Hides every message of a session (they stay in the database), removes
/// its files and sets its count of visible messages to zero. Run it in a
/// transaction.
pub async fn clear(conn: &mut PgConn, session_id: Uuid) -> QueryResult<usize> {
    use crate::db::schema::chat_sessions;
    let hidden = diesel::update(
        chat_messages::table
            .filter(chat_messages::session_id.eq(session_id))
            .filter(chat_messages::deleted_at.is_null()),
    )
    .set(chat_messages::deleted_at.eq(chrono::Utc::now()))
    .execute(conn)
    .await?;
    diesel::update(chat_sessions::table.find(session_id)).set(chat_sessions::message_count.eq(0)).execute(conn).await?;
    super::attachments::remove_of_session(conn, session_id).await?;
    Ok(hidden)
}
