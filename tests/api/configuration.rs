use crate::helpers::{binary, JWT_SECRET};

async fn start_with(env: &[(&str, &str)]) -> (bool, String) {
    let mut command = binary();
    command.arg("serve").env("BIND", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.expect("run the binary");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).trim().to_owned())
}

#[tokio::test]
async fn a_missing_database_url_stops_start_up_with_one_line_naming_it() {
    let (succeeded, stderr) = start_with(&[("JWT_SECRET", JWT_SECRET), ("RUST_LOG", "off")]).await;
    assert!(!succeeded);
    assert_eq!(stderr, "switchboard: configuration error: DATABASE_URL is not set");
}

#[tokio::test]
async fn a_malformed_value_stops_start_up_naming_the_variable() {
    let cases = [
        ("BIND", "not-an-address", "BIND"),
        ("DATABASE_URL", "mysql://localhost/x", "DATABASE_URL"),
        ("REDIS_URL", "http://localhost", "REDIS_URL"),
        ("WRITER_BATCH_SIZE", "lots", "WRITER_BATCH_SIZE"),
        ("JWT_SECRET", "short", "JWT_SECRET"),
    ];
    for (var, value, named) in cases {
        let mut env =
            vec![("JWT_SECRET", JWT_SECRET), ("DATABASE_URL", "postgres://127.0.0.1:1/none"), ("RUST_LOG", "off")];
        env.retain(|(key, _)| *key != var);
        env.push((var, value));
        let (succeeded, stderr) = start_with(&env).await;
        assert!(!succeeded, "{var}={value} was accepted");
        assert_eq!(stderr.lines().count(), 1, "one line for {var}: {stderr}");
        assert!(stderr.contains(named), "{var}: {stderr}");
    }
}
