use crate::helpers::{binary, TestDb};

/// Every column, constraint and index of the public schema, as sorted text,
/// leaving out diesel's own bookkeeping table.
async fn schema_snapshot(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    let mut snapshot = Vec::new();
    let columns = client
        .query(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("read columns");
    for row in columns {
        let parts: Vec<String> = (0..5).map(|i| row.get::<_, String>(i)).collect();
        snapshot.push(format!("column {}", parts.join(" ")));
    }
    let constraints = client
        .query(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
             FROM pg_constraint
             WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("read constraints");
    for row in constraints {
        snapshot.push(format!(
            "constraint {} {} {}",
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ));
    }
    let indexes = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .expect("read indexes");
    for row in indexes {
        snapshot.push(format!("index {}", row.get::<_, String>(0)));
    }
    snapshot.sort();
    snapshot
}

async fn run_migrate(db: &TestDb, args: &[&str]) -> String {
    let output = binary()
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "off")
        .output()
        .await
        .expect("run switchboard migrate");
    assert!(output.status.success(), "migrate {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn every_migration_goes_up_down_and_up_again_to_the_same_schema() {
    let db = TestDb::create().await;

    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("the migrations folder")
        .filter(|entry| entry.as_ref().is_ok_and(|entry| entry.path().is_dir()))
        .count();
    let applied = run_migrate(&db, &[]).await;
    assert!(applied.starts_with(&format!("applied {migrations} migration(s)")), "{applied}");
    let first = schema_snapshot(&db).await;
    for table in [
        "users",
        "chat_sessions",
        "chat_messages",
        "queue_entries",
        "message_attachments",
        "read_receipts",
        "session_analytics",
    ] {
        assert!(
            first.iter().any(|line| line.starts_with(&format!("column {table} id "))
                || line.starts_with(&format!("column {table} session_id "))),
            "table {table} missing"
        );
    }

    let reverted = run_migrate(&db, &["--revert-all"]).await;
    assert!(reverted.starts_with(&format!("reverted {migrations} migration(s)")), "{reverted}");
    assert_eq!(schema_snapshot(&db).await, Vec::<String>::new(), "down.sql left something behind");

    run_migrate(&db, &[]).await;
    assert_eq!(schema_snapshot(&db).await, first);

    assert!(run_migrate(&db, &[]).await.starts_with("applied 0 migration(s)"), "migrations run twice");
}
