use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::schema::read_receipts;
use crate::db::PgConn;
use crate::domain::Role;

/// Records that `participant` has read up to `seq`; a receipt never moves back.
pub async fn mark_read(
    conn: &mut PgConn,
    session_id: Uuid,
    participant: Uuid,
    role: Role,
    seq: i64,
) -> QueryResult<i64> {
    diesel::insert_into(read_receipts::table)
        .values((
            read_receipts::session_id.eq(session_id),
            read_receipts::participant_id.eq(participant),
            read_receipts::role.eq(role),
            read_receipts::last_read_seq.eq(seq),
        ))
        .on_conflict((read_receipts::session_id, read_receipts::participant_id))
        .do_update()
        .set((
            read_receipts::last_read_seq.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "GREATEST(read_receipts.last_read_seq, excluded.last_read_seq)",
            )),
            read_receipts::updated_at.eq(excluded(read_receipts::updated_at)),
        ))
        .returning(read_receipts::last_read_seq)
        .get_result(conn)
        .await
}
