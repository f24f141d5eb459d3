//! Partner organisations, their accounts, and which chats they were invited into.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{NewUser, User};
use crate::db::schema::{chat_partners, chat_sessions, partner_orgs, users};
use crate::db::PgConn;
use crate::domain::{Role, SessionStatus};

/// Most partner organisations kept.
pub const MAX_PARTNER_ORGS: i64 = 1_000;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = partner_orgs, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct PartnerOrg {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An organisation invited into a chat and not removed: what its members may see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invited {
    pub partner_org_id: Uuid,
    pub name: String,
    /// Members see the messages after this seq (0: the whole history).
    pub visible_after_seq: i64,
}

pub async fn all(conn: &mut PgConn) -> QueryResult<Vec<PartnerOrg>> {
    partner_orgs::table.order(partner_orgs::name.asc()).select(PartnerOrg::as_select()).load(conn).await
}

/// One account of a partner organisation, as the admin page lists it.
#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberAccount {
    #[serde(skip)]
    pub partner_org_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    /// False once an admin has disabled the account: it can no longer sign in.
    pub active: bool,
}

/// Every partner account, by organisation then name (at most 1,000
/// organisations, each account a person an admin added by hand).
pub async fn all_members(conn: &mut PgConn) -> QueryResult<Vec<MemberAccount>> {
    users::table
        .filter(users::role.eq(Role::Partner))
        .filter(users::partner_org_id.is_not_null())
        .order((users::partner_org_id, users::display_name.asc()))
        .select((
            users::partner_org_id.assume_not_null(),
            users::id,
            users::username,
            users::display_name,
            diesel::dsl::not(users::disabled),
        ))
        .load(conn)
        .await
}

pub async fn count(conn: &mut PgConn) -> QueryResult<i64> {
    partner_orgs::table.count().get_result(conn).await
}

pub async fn insert(conn: &mut PgConn, name: &str) -> QueryResult<PartnerOrg> {
    diesel::insert_into(partner_orgs::table)
        .values(partner_orgs::name.eq(name))
        .returning(PartnerOrg::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<PartnerOrg>> {
    partner_orgs::table.find(id).select(PartnerOrg::as_select()).first(conn).await.optional()
}

/// A partner account, in organisation `org`.
pub async fn insert_member(conn: &mut PgConn, org: Uuid, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values((new_user, users::partner_org_id.eq(org)))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// The organisation of a partner account, with its name.
pub async fn org_of(conn: &mut PgConn, user_id: Uuid) -> QueryResult<Option<(Uuid, String)>> {
    users::table
        .inner_join(partner_orgs::table)
        .filter(users::id.eq(user_id))
        .select((partner_orgs::id, partner_orgs::name))
        .first(conn)
        .await
        .optional()
}

/// The organisations in a chat now, in the order they were invited.
pub async fn in_session(conn: &mut PgConn, session_id: Uuid) -> QueryResult<Vec<Invited>> {
    let rows: Vec<(Uuid, String, i64)> = chat_partners::table
        .inner_join(partner_orgs::table)
        .filter(chat_partners::session_id.eq(session_id))
        .filter(chat_partners::removed_at.is_null())
        .order(chat_partners::invited_at.asc())
        .select((partner_orgs::id, partner_orgs::name, chat_partners::visible_after_seq))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(partner_org_id, name, visible_after_seq)| Invited { partner_org_id, name, visible_after_seq })
        .collect())
}

/// Invites (or invites again) an organisation into a chat. Run it in a transaction.
pub async fn invite(
    conn: &mut PgConn,
    session_id: Uuid,
    org: Uuid,
    invited_by: Uuid,
    visible_after_seq: i64,
) -> QueryResult<()> {
    diesel::insert_into(chat_partners::table)
        .values((
            chat_partners::session_id.eq(session_id),
            chat_partners::partner_org_id.eq(org),
            chat_partners::invited_by.eq(invited_by),
            chat_partners::visible_after_seq.eq(visible_after_seq),
        ))
        .on_conflict((chat_partners::session_id, chat_partners::partner_org_id))
        .do_update()
        .set((
            chat_partners::invited_by.eq(invited_by),
            chat_partners::invited_at.eq(Utc::now()),
            chat_partners::visible_after_seq.eq(visible_after_seq),
            chat_partners::removed_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Ends an organisation's access to a chat; false if it had none.
pub async fn remove(conn: &mut PgConn, session_id: Uuid, org: Uuid) -> QueryResult<bool> {
    diesel::update(
        chat_partners::table
            .filter(chat_partners::session_id.eq(session_id))
            .filter(chat_partners::partner_org_id.eq(org))
            .filter(chat_partners::removed_at.is_null()),
    )
    .set(chat_partners::removed_at.eq(Utc::now()))
    .execute(conn)
    .await
    .map(|changed| changed > 0)
}

/// What an organisation may see of a chat: the seq its members see after,
/// if it is invited and not removed (and the chat is not deleted).
pub async fn access(conn: &mut PgConn, session_id: Uuid, org: Uuid) -> QueryResult<Option<i64>> {
    chat_partners::table
        .inner_join(chat_sessions::table)
        .filter(chat_partners::session_id.eq(session_id))
        .filter(chat_partners::partner_org_id.eq(org))
        .filter(chat_partners::removed_at.is_null())
        .filter(chat_sessions::deleted_at.is_null())
        .select(chat_partners::visible_after_seq)
        .first(conn)
        .await
        .optional()
}

/// One chat on a partner's list.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerChat {
    pub session_id: Uuid,
    pub status: SessionStatus,
    pub customer_name: String,
    pub title: Option<String>,
    pub invited_at: DateTime<Utc>,
    pub last_activity: DateTime<Utc>,
    /// Whether the invitation shares the messages before it.
    pub with_history: bool,
}

/// The chats an organisation is in, newest invitation first, at most `limit`.
pub async fn chats_of(conn: &mut PgConn, org: Uuid, limit: i64) -> QueryResult<Vec<PartnerChat>> {
    #[derive(Queryable)]
    struct Row {
        session_id: Uuid,
        status: SessionStatus,
        customer_name: String,
        title: Option<String>,
        invited_at: DateTime<Utc>,
        last_activity: DateTime<Utc>,
        visible_after_seq: i64,
    }
    let rows: Vec<Row> = chat_partners::table
        .inner_join(chat_sessions::table.inner_join(users::table.on(users::id.eq(chat_sessions::customer_id))))
        .filter(chat_partners::partner_org_id.eq(org))
        .filter(chat_partners::removed_at.is_null())
        .filter(chat_sessions::deleted_at.is_null())
        .order(chat_partners::invited_at.desc())
        .limit(limit)
        .select((
            chat_sessions::id,
            chat_sessions::status,
            users::display_name,
            chat_sessions::title,
            chat_partners::invited_at,
            chat_sessions::last_activity,
            chat_partners::visible_after_seq,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| PartnerChat {
            session_id: row.session_id,
            status: row.status,
            customer_name: row.customer_name,
            title: row.title,
            invited_at: row.invited_at,
            last_activity: row.last_activity,
            with_history: row.visible_after_seq == 0,
        })
        .collect())
}
