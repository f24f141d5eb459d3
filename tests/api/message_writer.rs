//! The batched message writer against a real database: an acknowledgement
//! means the message is committed, and a failed commit is never acknowledged.

use std::time::Duration;

use actix::{Actor, Addr};
use futures_util::future::join_all;
use switchboard::actors::persistence::{MessageWriter, PersistMessage, WriterSettings};
use switchboard::db::models::{NewChatMessage, NewChatSession, NewUser};
use switchboard::db::queries::{self, messages::Persisted};
use switchboard::domain::{Priority, Role, SenderType};
use switchboard::error::{AppError, ErrorCode};
use uuid::Uuid;

use crate::helpers::TestDb;

struct Chat {
    db: TestDb,
    writer: Addr<MessageWriter>,
    session_id: Uuid,
    customer_id: Uuid,
}

async fn chat() -> Chat {
    let db = TestDb::migrated().await;
    let pool = switchboard::db::pool(&db.url, 4, Duration::from_secs(1), Duration::from_secs(5));
    let mut conn = pool.get().await.expect("connection");
    let customer = queries::users::insert(
        &mut conn,
        &NewUser {
            username: "visitor-1",
            display_name: "Visitor",
            email: None,
            role: Role::Customer,
            password_hash: None,
            max_concurrent_chats: 1,
        },
    )
    .await
    .expect("insert customer");
    let session = queries::sessions::insert(
        &mut conn,
        &NewChatSession {
            id: Uuid::new_v4(),
            customer_id: customer.id,
            priority: Priority::Normal,
            bot_context: None,
            metadata: serde_json::json!({}),
            owner_node: None,
            team_id: None,
        },
    )
    .await
    .expect("insert session");
    drop(conn);
    let writer = MessageWriter::new(pool, WriterSettings::new(64, Duration::from_millis(2))).start();
    Chat { db, writer, session_id: session.id, customer_id: customer.id }
}

impl Chat {
    fn message(&self, content: &str) -> NewChatMessage {
        NewChatMessage::text(self.session_id, SenderType::Customer, Some(self.customer_id), content)
    }

    async fn send(&self, message: NewChatMessage) -> Result<Persisted, AppError> {
        self.writer.send(PersistMessage(message)).await.expect("the writer is running")
    }

    async fn stored_contents(&self) -> Vec<(i64, String)> {
        let client = self.db.client().await;
        client
            .query("SELECT seq, content FROM chat_messages WHERE session_id = $1 ORDER BY seq", &[&self.session_id])
            .await
            .expect("read messages")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

#[actix_web::test]
async fn a_message_is_committed_by_the_time_its_acknowledgement_arrives() {
    let chat = chat().await;
    let persisted = chat.send(chat.message("hello")).await.expect("acknowledged");
    // A separate connection sees it at once: the transaction has committed.
    let client = chat.db.client().await;
    let row = client
        .query_one("SELECT seq, content, sender_type FROM chat_messages WHERE id = $1", &[&persisted.message.id])
        .await
        .expect("the acknowledged message is stored");
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, String>(1), "hello");
    assert_eq!(row.get::<_, String>(2), "customer");
    assert_eq!(persisted.message.seq, 1);
    assert!(!persisted.resent);
}

#[actix_web::test]
async fn concurrent_messages_get_gap_free_sequence_numbers_in_send_order() {
    let chat = chat().await;
    let sends = (1..=100).map(|n| chat.send(chat.message(&format!("message {n}"))));
    let answers: Vec<Persisted> =
        join_all(sends).await.into_iter().map(|answer| answer.expect("acknowledged")).collect();
    let seqs: Vec<i64> = answers.iter().map(|persisted| persisted.message.seq).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<i64>>(), "sequence follows send order");

    let stored = chat.stored_contents().await;
    assert_eq!(stored.len(), 100);
    assert!(stored.iter().all(|(seq, content)| content == &format!("message {seq}")));
    let client = chat.db.client().await;
    let row = client
        .query_one("SELECT last_seq, message_count FROM chat_sessions WHERE id = $1", &[&chat.session_id])
        .await
        .expect("session");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i32>(1)), (100, 100));
}

#[actix_web::test]
async fn a_resent_client_msg_id_is_stored_once_and_answered_alike() {
    let chat = chat().await;
    let first = chat.send(chat.message("once").with_client_msg_id("c-1")).await.expect("first");
    let again = chat.send(chat.message("once").with_client_msg_id("c-1")).await.expect("again");
    assert_eq!(again.message, first.message);
    assert!(again.resent);

    // Twice inside one batch, too.
    let (a, b) = futures_util::join!(
        chat.send(chat.message("twin").with_client_msg_id("c-2")),
        chat.send(chat.message("twin").with_client_msg_id("c-2")),
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.message, b.message);
    assert!(!a.resent && b.resent);

    assert_eq!(chat.stored_contents().await, vec![(1, "once".to_owned()), (2, "twin".to_owned())]);
}

#[actix_web::test]
async fn with_the_database_unreachable_the_writer_answers_with_an_error_not_an_acknowledgement() {
    let chat = chat().await;
    chat.send(chat.message("before")).await.expect("stored while the database is up");

    chat.db.set_reachable(false).await;
    let refused = chat.send(chat.message("during")).await;
    let error = refused.expect_err("no acknowledgement without a commit");
    assert_eq!(error.code, ErrorCode::DatabaseUnavailable);

    chat.db.set_reachable(true).await;
    let after = chat.send(chat.message("after")).await.expect("stored once the database is back");
    assert_eq!(after.message.seq, 2, "the failed write used no sequence number");
    assert_eq!(chat.stored_contents().await, vec![(1, "before".to_owned()), (2, "after".to_owned())]);
}

#[actix_web::test]
async fn a_message_for_a_missing_session_is_refused_without_failing_its_batch() {
    let chat = chat().await;
    let stray = NewChatMessage::text(Uuid::new_v4(), SenderType::Customer, Some(chat.customer_id), "lost");
    let (good, bad) = futures_util::join!(chat.send(chat.message("kept")), chat.send(stray));
    assert_eq!(good.expect("kept").message.seq, 1);
    assert_eq!(bad.expect_err("refused").code, ErrorCode::SessionNotFound);
    assert_eq!(chat.stored_contents().await, vec![(1, "kept".to_owned())]);
}

/// Fencing: once another owner took the session (the next `owner_epoch`),
/// what the old owner sends is refused and stores nothing; the new owner's
/// messages continue the seqs with no gap.
#[actix_web::test]
async fn a_message_from_a_sessions_former_owner_is_refused_and_stores_nothing() {
    let chat = chat().await;
    let first = chat.send(chat.message("from the first owner")).await.expect("stored");
    assert_eq!(first.message.seq, 1);
    let client = chat.db.client().await;
    let taken: i64 = client
        .query_one(
            "UPDATE chat_sessions SET owner_epoch = owner_epoch + 1, owner_node = 'node-b' WHERE id = $1 RETURNING owner_epoch",
            &[&chat.session_id],
        )
        .await
        .expect("another node takes the session")
        .get(0);
    assert_eq!(taken, 1);

    let stale = chat.send(NewChatMessage { owner_epoch: 0, ..chat.message("from the paused old owner") }).await;
    let refusal = stale.expect_err("an old owner's message is refused");
    assert_eq!(refusal.code, ErrorCode::SessionMoved);
    let current = chat.send(NewChatMessage { owner_epoch: taken, ..chat.message("from the new owner") }).await;
    assert_eq!(current.expect("the new owner's message is stored").message.seq, 2);
    assert_eq!(
        chat.stored_contents().await,
        [(1, "from the first owner".to_owned()), (2, "from the new owner".to_owned())]
    );
}
