//! Settings read from the environment once, at start-up. A missing or
//! malformed value stops start-up with one line that names the variable.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use crate::bots::{AgentsFile, FallbackMode, LlmSettings, UpstreamSettings};

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// Everything the server needs to run; see the README's configuration table.
#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    pub database_pool_size: u32,
    pub database_connect_timeout: Duration,
    pub redis_url: Option<String>,
    /// This node's name among the nodes sharing `REDIS_URL`.
    pub node_id: String,
    /// How long a node's leases last unless renewed.
    pub cluster_lease: Duration,
    pub jwt: JwtKeys,
    pub static_dir: String,
    pub workers: Option<usize>,
    /// Threads the chats' actors are spread over.
    pub actor_threads: usize,
    pub shutdown_timeout: Duration,
    pub database_statement_timeout: Duration,
    pub writer_batch_size: usize,
    pub writer_flush_interval: Duration,
    pub writer_lanes: usize,
    pub writer_queue_limit: usize,
    pub abandon_after: Duration,
    pub abandon_sweep: Duration,
    pub agent_grace: Duration,
    /// A customer left this long without an answer by their agent goes back to the queue (`None`: never).
    pub agent_reply_timeout: Option<Duration>,
    /// A chat waiting this long with no agent online is offered the offline form (`None`: never).
    pub offline_after_no_agent: Option<Duration>,
    pub session_idle: Duration,
    pub outbound_backlog_limit: u64,
    pub bot_faq_file: Option<String>,
    pub bot_reply_delay: Duration,
    pub bot: BotChoice,
    pub bot_fallback: FallbackMode,
    pub messages_per_minute: u32,
    pub open_chats_per_customer: u32,
    pub sockets_per_account: usize,
    pub max_sockets: Option<u64>,
    pub login_attempts_per_minute: u32,
    pub login_failures_per_username: u32,
    pub allowances: crate::rate_limits::Allowances,
    pub trust_proxy_headers: bool,
    pub upload_limit_bytes: usize,
    pub upload_quota_per_customer: i64,
    pub upload_quota_per_session: i64,
    pub unclaimed_upload_ttl: Duration,
    pub receipt_write_interval: Duration,
    pub metrics_token: Option<String>,
    pub allowed_origins: Vec<String>,
    pub webhooks: crate::actors::webhooks::WebhookSettings,
    pub mail: crate::mail::MailSettings,
}

impl std::fmt::Debug for Settings {
    // Written by hand so neither the secret nor the database password reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database_pool_size", &self.database_pool_size)
            .field("redis", &self.redis_url.is_some())
            .field("node_id", &self.node_id)
            .field("cluster_lease", &self.cluster_lease)
            .field("static_dir", &self.static_dir)
            .field("workers", &self.workers)
            .field("actor_threads", &self.actor_threads)
            .field("writer_batch_size", &self.writer_batch_size)
            .field("writer_flush_interval", &self.writer_flush_interval)
            .field("abandon_after", &self.abandon_after)
            .field("agent_grace", &self.agent_grace)
            .field("agent_reply_timeout", &self.agent_reply_timeout)
            .finish_non_exhaustive()
    }
}

/// The smallest JWT secret we accept: HS256 wants at least 256 bits of key.
const MIN_JWT_SECRET_LEN: usize = 32;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let jwt = match env.optional("JWT_ALGORITHM").as_deref().unwrap_or("HS256") {
            "HS256" => {
                let secret = env.required("JWT_SECRET")?;
                if secret.len() < MIN_JWT_SECRET_LEN {
                    return Err(ConfigError {
                        var: "JWT_SECRET",
                        problem: format!("must be at least {MIN_JWT_SECRET_LEN} characters long"),
                    });
                }
                JwtKeys::Hs256 { secret }
            }
            "RS256" => JwtKeys::Rs256 {
                private_pem: env.file("JWT_PRIVATE_KEY_FILE")?,
                public_pem: env.file("JWT_PUBLIC_KEY_FILE")?,
            },
            other => {
                return Err(ConfigError {
                    var: "JWT_ALGORITHM",
                    problem: format!("must be HS256 or RS256, got `{other}`"),
                })
            }
        };
        Ok(Settings {
            bind: env.socket_addr("BIND", "0.0.0.0:8080")?,
            database_url: env.url("DATABASE_URL", &["postgres://", "postgresql://"])?,
            database_pool_size: env.parse_in("DATABASE_POOL_SIZE", 16, 1..=1000)?,
            database_connect_timeout: Duration::from_millis(env.parse_in(
                "DATABASE_CONNECT_TIMEOUT_MS",
                5_000,
                50..=600_000,
            )?),
            redis_url: env.optional_url("REDIS_URL", &["redis://", "rediss://", "unix://"])?,
            node_id: node_id(env.optional("NODE_ID"))?,
            cluster_lease: Duration::from_millis(env.parse_in("CLUSTER_LEASE_MS", 10_000, 500..=600_000)?),
            jwt,
            static_dir: env.optional("STATIC_DIR").unwrap_or_else(|| "static".to_owned()),
            workers: env.optional_parse_in("WORKERS", 1..=256)?,
            actor_threads: env.parse_in("ACTOR_THREADS", cores().min(256), 1..=256)?,
            shutdown_timeout: Duration::from_secs(env.parse_in("SHUTDOWN_TIMEOUT_SECS", 10, 0..=3600)?),
            database_statement_timeout: Duration::from_millis(env.parse_in(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                5_000,
                100..=3_600_000,
            )?),
            writer_batch_size: env.parse_in("WRITER_BATCH_SIZE", 256, 1..=10_000)?,
            // One per core, at most 4 (each holds a pooled connection while
            // it commits): more lanes make smaller batches that cost
            // PostgreSQL more CPU per message and lengthen the wait for a commit.
            writer_lanes: env.parse_in("WRITER_LANES", cores().min(4), 1..=64)?,
            writer_queue_limit: env.parse_in("WRITER_QUEUE_LIMIT", 10_000, 1..=10_000_000)?,
            writer_flush_interval: Duration::from_millis(env.parse_in("WRITER_FLUSH_MS", 2, 0..=10_000)?),
            abandon_after: Duration::from_secs(env.parse_in("ABANDON_AFTER_SECS", 1800, 1..=30 * 86_400)?),
            abandon_sweep: Duration::from_millis(env.parse_in("ABANDON_SWEEP_MS", 60_000, 100..=3_600_000)?),
            agent_grace: Duration::from_millis(env.parse_in("AGENT_GRACE_MS", 60_000, 0..=86_400_000)?),
            agent_reply_timeout: match env.parse_in("AGENT_REPLY_TIMEOUT_MS", 300_000, 0..=86_400_000)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            offline_after_no_agent: match env.parse_in("OFFLINE_AFTER_NO_AGENT_MS", 120_000, 0..=86_400_000)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            session_idle: Duration::from_secs(env.parse_in("SESSION_IDLE_SECS", 300, 1..=86_400)?),
            outbound_backlog_limit: env.parse_in(
                "OUTBOUND_BACKLOG_BYTES",
                4 * 1024 * 1024,
                1024..=1024 * 1024 * 1024,
            )?,
            bot_faq_file: env.optional("BOT_FAQ_FILE"),
            bot_reply_delay: Duration::from_millis(env.parse_in("BOT_REPLY_DELAY_MS", 0, 0..=600_000)?),
            bot: env.bot()?,
            bot_fallback: match env.optional("BOT_FALLBACK").as_deref().unwrap_or("rules") {
                "rules" => FallbackMode::Rules,
                "handoff" => FallbackMode::Handoff,
                other => {
                    return Err(ConfigError {
                        var: "BOT_FALLBACK",
                        problem: format!("must be rules or handoff, got `{other}`"),
                    })
                }
            },
            messages_per_minute: env.parse_in("RATE_LIMIT_MESSAGES_PER_MINUTE", 60, 1..=1_000_000)?,
            open_chats_per_customer: env.parse_in("OPEN_CHATS_PER_CUSTOMER", 3, 1..=100_000)?,
            sockets_per_account: env.parse_in("SOCKETS_PER_ACCOUNT", 10, 1..=100_000)?,
            max_sockets: env.optional_parse_in("MAX_SOCKETS", 1..=10_000_000)?,
            login_attempts_per_minute: env.parse_in("RATE_LIMIT_LOGINS_PER_MINUTE", 10, 1..=1_000_000)?,
            login_failures_per_username: env.parse_in(
                "RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME_PER_MINUTE",
                100,
                1..=1_000_000,
            )?,
            allowances: crate::rate_limits::Allowances {
                visitor_tokens_per_address: env.parse_in("RATE_LIMIT_VISITORS_PER_MINUTE", 20, 1..=1_000_000)?,
                chats_per_customer: env.parse_in("RATE_LIMIT_CHATS_PER_MINUTE", 6, 1..=1_000_000)?,
                messages_per_customer: env.parse_in("RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE", 120, 1..=10_000_000)?,
                uploads_per_customer: env.parse_in("RATE_LIMIT_UPLOADS_PER_MINUTE", 10, 1..=1_000_000)?,
                address_factor: env.parse_in("RATE_LIMIT_ADDRESS_FACTOR", 10, 1..=100_000)?,
            },
            trust_proxy_headers: env.flag("TRUST_PROXY_HEADERS")?,
            upload_limit_bytes: env.parse_in("UPLOAD_LIMIT_BYTES", 10 * 1024 * 1024, 1024..=1024 * 1024 * 1024)?,
            upload_quota_per_customer: env.parse_in(
                "UPLOAD_QUOTA_BYTES_PER_CUSTOMER",
                100 * 1024 * 1024,
                1024..=1024 * 1024 * 1024 * 1024,
            )?,
            upload_quota_per_session: env.parse_in(
                "UPLOAD_QUOTA_BYTES_PER_SESSION",
                50 * 1024 * 1024,
                1024..=1024 * 1024 * 1024 * 1024,
            )?,
            unclaimed_upload_ttl: Duration::from_secs(env.parse_in(
                "UPLOAD_UNCLAIMED_TTL_SECS",
                3600,
                1..=30 * 86_400,
            )?),
            receipt_write_interval: Duration::from_millis(env.parse_in(
                "RECEIPT_WRITE_INTERVAL_MS",
                2_000,
                0..=600_000,
            )?),
            metrics_token: env.optional("METRICS_TOKEN"),
            allowed_origins: env.origins("ALLOWED_ORIGINS")?,
            webhooks: crate::actors::webhooks::WebhookSettings {
                max_attempts: env.parse_in("WEBHOOK_MAX_ATTEMPTS", 6, 1..=100)?,
                retry_base: Duration::from_millis(env.parse_in("WEBHOOK_RETRY_BASE_MS", 1_000, 10..=3_600_000)?),
                timeout: Duration::from_millis(env.parse_in("WEBHOOK_TIMEOUT_MS", 5_000, 100..=60_000)?),
            },
            mail: env.mail()?,
        })
    }
}

/// Which bot answers first (`BOT`).
#[derive(Debug, Clone)]
pub enum BotChoice {
    /// Keywords and the FAQ file; needs no network.
    Rules,
    Llm(LlmSettings),
    /// Remote NLU and domain agents listed in a file.
    Remote {
        agents: AgentsFile,
        upstream: UpstreamSettings,
    },
}

/// How tokens are signed: a shared secret (HS256, the default) or an RSA key
/// pair in PEM files (RS256), so a host website can verify tokens without
/// being able to mint them.
#[derive(Clone)]
pub enum JwtKeys {
    Hs256 { secret: String },
    Rs256 { private_pem: Vec<u8>, public_pem: Vec<u8> },
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn optional(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError { var, problem: "is not set".to_owned() })
    }

    fn file(&self, var: &'static str) -> Result<Vec<u8>, ConfigError> {
        let path = self.required(var)?;
        std::fs::read(&path).map_err(|error| ConfigError { var, problem: format!("cannot read `{path}`: {error}") })
    }

    fn url(&self, var: &'static str, schemes: &[&str]) -> Result<String, ConfigError> {
        let value = self.required(var)?;
        check_scheme(var, &value, schemes)?;
        Ok(value)
    }

    fn optional_url(&self, var: &'static str, schemes: &[&str]) -> Result<Option<String>, ConfigError> {
        match self.optional(var) {
            None => Ok(None),
            Some(value) => check_scheme(var, &value, schemes).map(|()| Some(value)),
        }
    }

    /// A comma-separated list of origins (`https://shop.example`), or `*` for any.
    fn origins(&self, var: &'static str) -> Result<Vec<String>, ConfigError> {
        let Some(value) = self.optional(var) else { return Ok(vec!["*".to_owned()]) };
        let origins: Vec<String> =
            value.split(',').map(|origin| origin.trim().trim_end_matches('/').to_owned()).collect();
        for origin in &origins {
            let valid = origin == "*" || origin.starts_with("http://") || origin.starts_with("https://");
            if !valid || origin.is_empty() {
                return Err(ConfigError {
                    var,
                    problem: format!("must list origins like https://shop.example, got `{origin}`"),
                });
            }
        }
        Ok(origins)
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no`; unset is false.
    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.optional(var).map(|value| value.trim().to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError { var, problem: format!("must be true or false, got `{other}`") }),
        }
    }

    fn upstream(&self) -> Result<UpstreamSettings, ConfigError> {
        let ms = |var, default, range| self.parse_in(var, default, range).map(Duration::from_millis);
        Ok(UpstreamSettings {
            connect_timeout: ms("BOT_CONNECT_TIMEOUT_MS", 3_000, 10..=600_000)?,
            first_token_timeout: ms("BOT_FIRST_TOKEN_TIMEOUT_MS", 10_000, 10..=600_000)?,
            reply_timeout: ms("BOT_REPLY_TIMEOUT_MS", 30_000, 10..=3_600_000)?,
            retries: self.parse_in("BOT_RETRIES", 2, 0..=10)?,
            breaker_failures: self.parse_in("BOT_BREAKER_FAILURES", 5, 1..=10_000)?,
            breaker_cooldown: Duration::from_secs(self.parse_in("BOT_BREAKER_COOLDOWN_SECS", 30, 1..=86_400)?),
        })
    }

    fn bot(&self) -> Result<BotChoice, ConfigError> {
        match self.optional("BOT").as_deref().map(str::trim).unwrap_or("rules") {
            "rules" => Ok(BotChoice::Rules),
            "remote" => {
                let path = self.required("BOT_AGENTS_FILE")?;
                let agents =
                    AgentsFile::load(&path).map_err(|problem| ConfigError { var: "BOT_AGENTS_FILE", problem })?;
                Ok(BotChoice::Remote { agents, upstream: self.upstream()? })
            }
            "llm" => {
                let system_prompt = match self.optional("LLM_SYSTEM_PROMPT_FILE") {
                    Some(_) => String::from_utf8(self.file("LLM_SYSTEM_PROMPT_FILE")?).map_err(|_| ConfigError {
                        var: "LLM_SYSTEM_PROMPT_FILE",
                        problem: "is not UTF-8 text".to_owned(),
                    })?,
                    None => crate::bots::DEFAULT_SYSTEM_PROMPT.to_owned(),
                };
                Ok(BotChoice::Llm(LlmSettings {
                    base_url: self.url("LLM_BASE_URL", &["http://", "https://"])?,
                    api_key: self.optional("LLM_API_KEY"),
                    model: self.required("LLM_MODEL")?,
                    system_prompt,
                    temperature: self.parse_in("LLM_TEMPERATURE", 0.3, 0.0..=2.0)?,
                    max_tokens: self.parse_in("LLM_MAX_TOKENS", 400, 1..=100_000)?,
                    context_tokens: self.parse_in("LLM_CONTEXT_TOKENS", 3_000, 100..=1_000_000)?,
                    upstream: self.upstream()?,
                }))
            }
            other => Err(ConfigError { var: "BOT", problem: format!("must be rules, llm or remote, got `{other}`") }),
        }
    }

    fn mail(&self) -> Result<crate::mail::MailSettings, ConfigError> {
        let smtp_url = self.optional_url("SMTP_URL", &["smtp://", "smtps://"])?;
        let from = match self.optional("MAIL_FROM") {
            Some(from) => from,
            None if smtp_url.is_some() => {
                return Err(ConfigError { var: "MAIL_FROM", problem: "must be set with SMTP_URL".to_owned() })
            }
            None => crate::mail::DEFAULT_FROM.to_owned(),
        };
        let from = from.trim().parse().map_err(|error| ConfigError {
            var: "MAIL_FROM",
            problem: format!("must be an address like `Acme Support <support@acme.example>`: {error}"),
        })?;
        let ms = |var, default, range| self.parse_in(var, default, range).map(Duration::from_millis);
        Ok(crate::mail::MailSettings {
            smtp_url,
            from,
            max_attempts: self.parse_in("MAIL_MAX_ATTEMPTS", 8, 1..=100)?,
            retry_base: ms("MAIL_RETRY_BASE_MS", 30_000, 10..=86_400_000)?,
            poll_interval: ms("MAIL_POLL_MS", 10_000, 50..=3_600_000)?,
            smtp_timeout: ms("MAIL_SMTP_TIMEOUT_MS", 30_000, 100..=600_000)?,
            transcripts_per_session: self.parse_in("MAIL_TRANSCRIPTS_PER_CHAT", 5, 1..=1_000)?,
            transcripts_per_customer_hour: self.parse_in("MAIL_TRANSCRIPTS_PER_CUSTOMER_PER_HOUR", 10, 1..=100_000)?,
        })
    }

    fn socket_addr(&self, var: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let value = self.optional(var).unwrap_or_else(|| default.to_owned());
        value
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError { var, problem: format!("must be HOST:PORT, got `{value}`") })
    }

    fn optional_parse_in<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(value) = self.optional(var) else { return Ok(None) };
        match value.trim().parse::<T>() {
            Ok(number) if range.contains(&number) => Ok(Some(number)),
            _ => Err(ConfigError {
                var,
                problem: format!("must be a number from {} to {}, got `{value}`", range.start(), range.end()),
            }),
        }
    }

    fn parse_in<T>(&self, var: &'static str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        Ok(self.optional_parse_in(var, range)?.unwrap_or(default))
    }
}

fn check_scheme(var: &'static str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    if schemes.iter().any(|scheme| value.starts_with(scheme)) {
        Ok(())
    } else {
        Err(ConfigError { var, problem: format!("must start with one of {}", schemes.join(", ")) })
    }
}

/// A node's name: given, or made up for this run.
fn node_id(given: Option<String>) -> Result<String, ConfigError> {
    match given {
        None => Ok(format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])),
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') =>
        {
            Ok(name)
        }
        Some(_) => {
            Err(ConfigError { var: "NODE_ID", problem: "must be 1 to 64 letters, digits, '-', '_' or '.'".to_owned() })
        }
    }
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    const SECRET: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
    const DB: (&str, &str) = ("DATABASE_URL", "postgres://localhost/switchboard");

    #[test]
    fn defaults_apply_when_only_the_required_values_are_set() {
        let settings = settings(&[SECRET, DB]).expect("valid settings");
        assert_eq!(settings.bind.port(), 8080);
        assert!(settings.redis_url.is_none());
    }

    #[test]
    fn webhooks_retry_six_times_from_one_second_and_wait_five_seconds_for_an_answer() {
        let webhooks = settings(&[SECRET, DB]).expect("valid settings").webhooks;
        assert_eq!(webhooks.max_attempts, 6);
        assert_eq!(webhooks.retry_base, Duration::from_secs(1));
        assert_eq!(webhooks.timeout, Duration::from_secs(5));
        let none = settings(&[SECRET, DB, ("WEBHOOK_MAX_ATTEMPTS", "0")]).expect_err("no attempt").to_string();
        assert!(none.contains("WEBHOOK_MAX_ATTEMPTS"), "{none}");
    }

    #[test]
    fn a_missing_or_malformed_value_names_its_variable() {
        let missing = settings(&[SECRET]).expect_err("missing DATABASE_URL").to_string();
        assert!(missing.contains("DATABASE_URL"), "{missing}");
        let malformed = settings(&[SECRET, DB, ("BIND", "nope")]).expect_err("bad BIND").to_string();
        assert!(malformed.contains("BIND"), "{malformed}");
        let short = settings(&[("JWT_SECRET", "short"), DB]).expect_err("short secret").to_string();
        assert!(short.contains("JWT_SECRET"), "{short}");
        let pool = settings(&[SECRET, DB, ("DATABASE_POOL_SIZE", "0")]).expect_err("bad pool").to_string();
        assert!(pool.contains("DATABASE_POOL_SIZE"), "{pool}");
    }

    #[test]
    fn email_needs_a_sender_and_an_smtp_url_it_can_use() {
        let unsent = settings(&[SECRET, DB]).expect("no email settings at all");
        assert!(unsent.mail.smtp_url.is_none());
        let smtp = ("SMTP_URL", "smtp://127.0.0.1:2525");
        let no_sender = settings(&[SECRET, DB, smtp]).expect_err("SMTP_URL without MAIL_FROM").to_string();
        assert!(no_sender.contains("MAIL_FROM"), "{no_sender}");
        let bad_sender =
            settings(&[SECRET, DB, smtp, ("MAIL_FROM", "not an address")]).expect_err("bad MAIL_FROM").to_string();
        assert!(bad_sender.contains("MAIL_FROM"), "{bad_sender}");
        let bad_url = settings(&[SECRET, DB, ("SMTP_URL", "http://mail.example"), ("MAIL_FROM", "a@b.example")])
            .expect_err("not an SMTP URL")
            .to_string();
        assert!(bad_url.contains("SMTP_URL"), "{bad_url}");
        let mail = settings(&[SECRET, DB, smtp, ("MAIL_FROM", "Acme Support <support@acme.example>")])
            .expect("valid email settings")
            .mail;
        assert_eq!(mail.company(), "Acme Support");
        let bare = settings(&[SECRET, DB, smtp, ("MAIL_FROM", "support@acme.example")]).expect("a bare address").mail;
        assert_eq!(bare.company(), "acme.example");
    }
}
