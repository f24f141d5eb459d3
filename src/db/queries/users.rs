use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::models::{NewUser, User};
use crate::db::schema::users;
use crate::db::PgConn;

pub async fn insert(conn: &mut PgConn, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table).values(new_user).returning(User::as_returning()).get_result(conn).await
}

pub async fn find(conn: &mut PgConn, id: Uuid) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).await.optional()
}

pub async fn find_by_username(conn: &mut PgConn, username: &str) -> QueryResult<Option<User>> {
    users::table.filter(users::username.eq(username)).select(User::as_select()).first(conn).await.optional()
}

pub async fn set_presence(conn: &mut PgConn, id: Uuid, presence: crate::domain::Presence) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::status.eq(presence), users::last_seen_at.eq(chrono::Utc::now())))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_max_concurrent(conn: &mut PgConn, id: Uuid, max: i32) -> QueryResult<()> {
    diesel::update(users::table.find(id)).set(users::max_concurrent_chats.eq(max)).execute(conn).await.map(|_| ())
}

/// Inserts a user whose id another system chose (a host website's customer).
pub async fn insert_with_id(conn: &mut PgConn, id: Uuid, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values((users::id.eq(id), new_user))
        .on_conflict(users::id)
        .do_update()
        .set(users::last_seen_at.eq(chrono::Utc::now()))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Changes an agent's or admin's settings; `None` leaves a field alone.
/// The roles the staff routes manage; customers and partners have their own.
const STAFF: [crate::domain::Role; 2] = [crate::domain::Role::Agent, crate::domain::Role::Admin];

pub async fn update_staff(
    conn: &mut PgConn,
    id: Uuid,
    display_name: Option<&str>,
    max_concurrent_chats: Option<i32>,
    disabled: Option<bool>,
) -> QueryResult<usize> {
    #[derive(AsChangeset)]
    #[diesel(table_name = users)]
    struct Changes<'a> {
        display_name: Option<&'a str>,
        max_concurrent_chats: Option<i32>,
        disabled: Option<bool>,
    }
    if display_name.is_none() && max_concurrent_chats.is_none() && disabled.is_none() {
        return users::table
            .find(id)
            .filter(users::role.eq_any(STAFF))
            .count()
            .get_result::<i64>(conn)
            .await
            .map(|n| n as usize);
    }
    diesel::update(users::table.find(id).filter(users::role.eq_any(STAFF)))
        .set(Changes { display_name, max_concurrent_chats, disabled })
        .execute(conn)
        .await
}

/// Whether any admin account exists, disabled ones included: an install
/// whose admins are all disabled is not a fresh install.
pub async fn admin_exists(conn: &mut PgConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(users::role.eq(crate::domain::Role::Admin))))
        .get_result(conn)
        .await
}

/// Creates `new_admin` only if no admin exists yet, and returns `None` if
/// one does. Run it in a transaction: the advisory lock it takes lasts until
/// the transaction ends, so of two requests racing on a fresh install the
/// second waits, then finds the first one's admin.
pub async fn insert_first_admin(conn: &mut PgConn, new_admin: &NewUser<'_>) -> QueryResult<Option<User>> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('switchboard:first-admin', 0))")
        .execute(conn)
        .await?;
    if admin_exists(conn).await? {
        return Ok(None);
    }
    insert(conn, new_admin).await.map(Some)
}
