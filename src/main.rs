use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use switchboard::auth::{passwords, staff};
use switchboard::config::{ConfigError, Settings};
use switchboard::db::{self, models::NewUser, queries, MigrationDirection};
use switchboard::domain::Role;
use switchboard::startup::Application;
use switchboard::telemetry;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Realtime customer-support chat server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations, or revert them all.
    Migrate {
        #[arg(long)]
        revert_all: bool,
    },
    /// Manage agents and admins.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an agent or admin. The password is read from standard input
    /// (--password-stdin) or from SWITCHBOARD_PASSWORD, never from the command line.
    Add {
        username: String,
        #[arg(long, value_enum)]
        role: StaffRole,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=100))]
        max_chats: i32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StaffRole {
    Agent,
    Admin,
}

#[actix_web::main]
async fn main() -> ExitCode {
    telemetry::init_logging();
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate { revert_all } => migrate(revert_all).await,
        Command::User { command: UserCommand::Add { username, role, password_stdin, display_name, max_chats } } => {
            add_user(&username, role, password_stdin, display_name.as_deref(), max_chats).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|error| error.to_string())?;
    log::info!("starting with {settings:?}");
    let application = Application::build(settings).await.map_err(|error| error.to_string())?;
    // Printed on stdout, alone on its line: scripts and tests read the port from it.
    println!("switchboard listening on http://{}", application.address());
    application.run_until_stopped().await.map_err(|error| error.to_string())
}

fn database_url() -> Result<String, String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Err(ConfigError { var: "DATABASE_URL", problem: "is not set".to_owned() }.to_string()),
    }
}

async fn migrate(revert_all: bool) -> Result<(), String> {
    let direction = if revert_all { MigrationDirection::DownAll } else { MigrationDirection::Up };
    let versions = db::migrate(&database_url()?, direction).await.map_err(|error| error.to_string())?;
    let verb = if revert_all { "reverted" } else { "applied" };
    println!(
        "{verb} {} migration(s){}",
        versions.len(),
        if versions.is_empty() { String::new() } else { format!(": {}", versions.join(", ")) }
    );
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let password = if from_stdin {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|error| format!("cannot read the password from stdin: {error}"))?;
        input.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var("SWITCHBOARD_PASSWORD")
            .map_err(|_| "give the password on stdin with --password-stdin, or in SWITCHBOARD_PASSWORD".to_owned())?
    };
    staff::check_password(&password).map_err(|error| error.message)?;
    Ok(password)
}

async fn add_user(
    username: &str,
    role: StaffRole,
    password_stdin: bool,
    display_name: Option<&str>,
    max_chats: i32,
) -> Result<(), String> {
    let username = staff::username(username).map_err(|error| error.message)?;
    let username = username.as_str();
    let password = read_password(password_stdin)?;
    let password_hash = passwords::hash(&password).map_err(|error| error.to_string())?;
    let url = database_url()?;
    db::migrate(&url, MigrationDirection::Up).await.map_err(|error| error.to_string())?;
    let pool = db::pool(&url, 1, std::time::Duration::from_secs(10), std::time::Duration::from_secs(30));
    let mut conn = pool.get().await.map_err(|error| format!("cannot connect to the database: {error}"))?;
    let new_user = NewUser {
        username,
        display_name: display_name.unwrap_or(username),
        email: None,
        role: match role {
            StaffRole::Agent => Role::Agent,
            StaffRole::Admin => Role::Admin,
        },
        password_hash: Some(&password_hash),
        max_concurrent_chats: max_chats,
    };
    match queries::users::insert(&mut conn, &new_user).await {
        Ok(user) => {
            println!("created {} {} ({})", user.role, user.username, user.id);
            Ok(())
        }
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Err(format!("a user named {username} already exists"))
        }
        Err(error) => Err(format!("cannot create the user: {error}")),
    }
}
