//! Allowances per person, not per chat: what one customer account, and one
//! client address, may do in a minute, whatever number of chats, sockets or
//! visitor tokens they spread it over; and how many wrong passwords a
//! username takes before sign-ins for it wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::Clock;
use uuid::Uuid;

use crate::actors::messages::Caller;
use crate::actors::MinuteWindow;
use crate::error::AppError;

/// What a customer does that costs the service: each has its own allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A new visitor account (`POST /api/auth/visitor`); counted per address only.
    VisitorToken,
    StartChat,
    /// A customer's message, in any of their chats.
    CustomerMessage,
    Upload,
}

impl Action {
    const ALL: [Action; 4] = [Action::VisitorToken, Action::StartChat, Action::CustomerMessage, Action::Upload];

    fn refusal(self) -> &'static str {
        match self {
            Action::VisitorToken => "too many new visitors from your address; wait and try again",
            Action::StartChat => "too many new chats; wait before starting another",
            Action::CustomerMessage => "too many messages; slow down",
            Action::Upload => "too many uploads; wait before sending another file",
        }
    }
}

/// Allowances per minute; see the README's configuration table.
#[derive(Debug, Clone)]
pub struct Allowances {
    pub visitor_tokens_per_address: u32,
    pub chats_per_customer: u32,
    pub messages_per_customer: u32,
    pub uploads_per_customer: u32,
    /// An address may do this many times what one customer may (people
    /// behind one office or mobile-carrier address share it).
    pub address_factor: u32,
}

type Keyed<K> = governor::DefaultKeyedRateLimiter<K>;

struct Limiter {
    per_account: Option<Keyed<Uuid>>,
    per_address: Keyed<IpAddr>,
}

/// The per-account and per-address allowances of every [`Action`]; shared
/// by the HTTP routes and the actors, so a limit holds whichever way a
/// client comes in. With several nodes, what each node admitted is also
/// counted in Redis (`exchange`), so a limit holds whichever node a client
/// comes in through.
pub struct RateLimits {
    limiters: Vec<Limiter>,
    /// Per action: the allowance per account (if any) and per address.
    allowed: Vec<(Option<u32>, u32)>,
    sharing: std::sync::atomic::AtomicBool,
    shared: Mutex<Shared>,
}

/// Whose allowance: an account's, or an address's (its network, see `network_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Account(Uuid),
    Address(IpAddr),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Account(id) => write!(f, "account:{id}"),
            Who::Address(address) => write!(f, "address:{address}"),
        }
    }
}

/// Counts exchanged with the other nodes.
#[derive(Default)]
struct Shared {
    /// Admitted here this minute: how many since the last exchange, and the
    /// total on every node as last read.
    admitted: HashMap<(Action, Who), (u32, u64)>,
    /// The minute `admitted` is about.
    window: u64,
    /// At the allowance counted on every node: refused here until then.
    over: HashMap<(Action, Who), std::time::Instant>,
}

fn allowance(allowed: &[(Option<u32>, u32)], action: Action, who: &Who) -> u32 {
    let (per_account, per_address) = allowed[action as usize];
    match who {
        Who::Account(_) => per_account.unwrap_or(u32::MAX),
        Who::Address(_) => per_address,
    }
}

/// Redis keys of the minute windows, and how long they are kept.
const SHARED_PREFIX: &str = "switchboard:allowance:";
const SHARED_WINDOW_SECS: u64 = 60;

fn per_minute(allowed: u32) -> governor::Quota {
    governor::Quota::per_minute(NonZeroU32::new(allowed).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    pub fn new(allowances: &Allowances) -> Self {
        let factor = allowances.address_factor.max(1);
        let mut allowed = Vec::new();
        let limiters = Action::ALL
            .into_iter()
            .map(|action| {
                let (account, address) = match action {
                    Action::VisitorToken => (None, allowances.visitor_tokens_per_address),
                    Action::StartChat => (Some(allowances.chats_per_customer), allowances.chats_per_customer),
                    Action::CustomerMessage => {
                        (Some(allowances.messages_per_customer), allowances.messages_per_customer)
                    }
                    Action::Upload => (Some(allowances.uploads_per_customer), allowances.uploads_per_customer),
                };
                let address = if account.is_some() { address.saturating_mul(factor) } else { address };
                allowed.push((account, address));
                Limiter {
                    per_account: account.map(|allowed| Keyed::keyed(per_minute(allowed))),
                    per_address: Keyed::keyed(per_minute(address)),
                }
            })
            .collect();
        RateLimits {
            limiters,
            allowed,
            sharing: std::sync::atomic::AtomicBool::new(false),
            shared: Mutex::new(Shared::default()),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts over every node from now on: `exchange` must then run often.
    pub fn share(&self) {
        self.sharing.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds what this node admitted since the last exchange to the minute's
    /// counts in Redis, and refuses here, until the minute ends, whoever has
    /// used up their allowance counted on every node.
    pub async fn exchange(&self, redis: &crate::startup::RedisPool) -> Result<(), String> {
        use bb8_redis::redis;
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let window = since_epoch.as_secs() / SHARED_WINDOW_SECS;
        let window_ends = std::time::Instant::now()
            + Duration::from_secs(SHARED_WINDOW_SECS - since_epoch.as_secs() % SHARED_WINDOW_SECS);
        // Whoever is past half their allowance is looked at again even with
        // nothing new here: other nodes may have used up the rest since.
        let admitted: Vec<((Action, Who), u32)> = {
            let mut shared = self.shared();
            if shared.window != window {
                shared.window = window;
                shared.admitted.retain(|_, (count, _)| *count > 0);
            }
            let allowed = &self.allowed;
            shared
                .admitted
                .iter_mut()
                .filter(|((action, who), (count, total))| {
                    *count > 0 || total.saturating_mul(2) >= u64::from(allowance(allowed, *action, who))
                })
                .map(|(key, (count, _))| (*key, std::mem::take(count)))
                .collect()
        };
        if admitted.is_empty() {
            return Ok(());
        }
        // A sliding minute: this minute's count and the part of the last
        // one's that still falls within the past sixty seconds.
        let still_counted = 1.0 - (since_epoch.as_secs_f64() % SHARED_WINDOW_SECS as f64) / SHARED_WINDOW_SECS as f64;
        let mut pipe = redis::pipe();
        for ((action, who), count) in &admitted {
            let key = format!("{SHARED_PREFIX}{action:?}:{who}:{window}");
            pipe.cmd("INCRBY").arg(&key).arg(*count).cmd("EXPIRE").arg(&key).arg(2 * SHARED_WINDOW_SECS).ignore();
            pipe.cmd("GET").arg(format!("{SHARED_PREFIX}{action:?}:{who}:{}", window.saturating_sub(1)));
        }
        let sent = async {
            let mut conn = redis.get().await.map_err(|error| error.to_string())?;
            pipe.query_async::<Vec<Option<u64>>>(&mut *conn).await.map_err(|error| error.to_string())
        };
        let counts = match sent.await {
            Ok(counts) => counts,
            Err(error) => {
                // Counted again at the next exchange.
                let mut shared = self.shared();
                for (key, count) in admitted {
                    shared.admitted.entry(key).or_default().0 += count;
                }
                return Err(error);
            }
        };
        let now = std::time::Instant::now();
        let mut shared = self.shared();
        shared.over.retain(|_, until| *until > now);
        for (((action, who), _), counts) in admitted.into_iter().zip(counts.chunks(2)) {
            let this_minute = counts.first().copied().flatten().unwrap_or(0);
            let last_minute = counts.get(1).copied().flatten().unwrap_or(0);
            let total = this_minute + (last_minute as f64 * still_counted).ceil() as u64;
            if let Some(entry) = shared.admitted.get_mut(&(action, who)) {
                entry.1 = total;
            }
            if total >= u64::from(allowance(&self.allowed, action, &who)) {
                shared.over.insert((action, who), window_ends);
            }
        }
        Ok(())
    }

    fn limiter(&self, action: Action) -> &Limiter {
        // Built in the order of Action::ALL, which lists the variants in declaration order.
        &self.limiters[action as usize]
    }

    /// Counts `action` for `caller`, or refuses it with `rate_limited` and
    /// how long to wait. Staff are not limited here; customers and partners
    /// (people from outside) are.
    pub fn admit(&self, action: Action, caller: &Caller) -> Result<(), AppError> {
        if !matches!(caller.role, crate::domain::Role::Customer | crate::domain::Role::Partner) {
            return Ok(());
        }
        self.admit_from(action, Some(caller.user_id), caller.address)
    }

    /// Counts `action` for an account and an address, either of which may be unknown.
    pub fn admit_from(&self, action: Action, account: Option<Uuid>, address: Option<IpAddr>) -> Result<(), AppError> {
        let limiter = self.limiter(action);
        // The limiter's own clock: making a new one probes the CPU (CPUID and
        // all), which cost more than the rest of a message's work together.
        let now = limiter.per_address.clock().now();
        let refused = |not_until: governor::NotUntil<_>| {
            let mut error = AppError::rate_limited(not_until.wait_time_from(now));
            error.message = action.refusal().to_owned();
            error
        };
        let sharing = self.sharing.load(std::sync::atomic::Ordering::Relaxed);
        let account = account.filter(|_| limiter.per_account.is_some());
        let whose = [account.map(Who::Account), address.map(|address| Who::Address(network_of(address)))];
        if sharing {
            let shared = self.shared();
            let over = whose.iter().flatten().filter_map(|who| shared.over.get(&(action, *who))).max();
            if let Some(until) = over.filter(|until| **until > std::time::Instant::now()) {
                let mut error = AppError::rate_limited(until.saturating_duration_since(std::time::Instant::now()));
                error.message = action.refusal().to_owned();
                return Err(error);
            }
        }
        if let (Some(limits), Some(account)) = (&limiter.per_account, account) {
            limits.check_key(&account).map_err(refused)?;
        }
        if let Some(address) = address {
            limiter.per_address.check_key(&network_of(address)).map_err(refused)?;
        }
        if sharing {
            let mut shared = self.shared();
            for who in whose.into_iter().flatten() {
                shared.admitted.entry((action, who)).or_default().0 += 1;
            }
        }
        Ok(())
    }

    /// Forgets the accounts and addresses whose allowance is full again, so
    /// memory follows the recently active clients, not every client ever.
    pub fn forget_idle(&self) {
        for limiter in &self.limiters {
            if let Some(limits) = &limiter.per_account {
                limits.retain_recent();
                limits.shrink_to_fit();
            }
            limiter.per_address.retain_recent();
            limiter.per_address.shrink_to_fit();
        }
    }
}

/// Wrong passwords, counted per (username, address) and per username with a
/// much higher ceiling: one address cannot lock a person out from their own
/// address, and many addresses together still cannot guess without end.
/// Only failures count, so a person who signs in often is never held back.
pub struct LoginFailures {
    per_username_and_address: u32,
    per_username: u32,
    recent: Mutex<HashMap<String, MinuteWindow>>,
}

/// Usernames and addresses remembered at most; past it the quiet ones are forgotten.
const LOGIN_FAILURE_KEYS: usize = 100_000;

impl LoginFailures {
    pub fn new(per_username_and_address: u32, per_username: u32) -> Self {
        LoginFailures { per_username_and_address, per_username, recent: Mutex::new(HashMap::new()) }
    }

    fn keys(username: &str, address: Option<IpAddr>) -> [String; 2] {
        let username = username.to_lowercase();
        let address = address.map(|address| network_of(address).to_string()).unwrap_or_default();
        [format!("{username}\n{address}"), username]
    }

    /// Before the password is checked: has this username had its share of
    /// wrong passwords, from this address or from everywhere?
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), AppError> {
        let Ok(mut recent) = self.recent.lock() else { return Ok(()) };
        for key in Self::keys(username, address) {
            if let Some(wait) = recent.get_mut(&key).and_then(MinuteWindow::wait) {
                let mut error = AppError::rate_limited(wait);
                error.message = "too many wrong passwords; wait and try again".to_owned();
                return Err(error);
            }
        }
        Ok(())
    }

    /// After a wrong password.
    pub fn failed(&self, username: &str, address: Option<IpAddr>) {
        let Ok(mut recent) = self.recent.lock() else { return };
        if recent.len() >= LOGIN_FAILURE_KEYS {
            recent.retain(|_, window| window.wait().is_some());
        }
        let [pair, username] = Self::keys(username, address);
        let allowances = [(pair, self.per_username_and_address), (username, self.per_username)];
        for (key, allowed) in allowances {
            recent.entry(key).or_insert_with(|| MinuteWindow::new(allowed)).record();
        }
    }

    pub fn forget_idle(&self) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.retain(|_, window| window.is_active());
            recent.shrink_to_fit();
        }
    }
}

/// Where a request comes from: the peer's address, or with
/// `TRUST_PROXY_HEADERS` the address the proxy in front of us saw, which it
/// appends last to `X-Forwarded-For` (earlier entries are the client's to write).
pub fn client_address(req: &HttpRequest, trust_proxy_headers: bool) -> Option<IpAddr> {
    if trust_proxy_headers {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .last();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|peer| peer.ip())
}

/// The unit an allowance per address counts: an IPv4 address, or an IPv6
/// /64, since one subscriber is given a whole /64 and can use any address in it.
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

/// How often allowances that are full again are forgotten.
pub const FORGET_INTERVAL: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use std::sync::Arc;

    fn allowances() -> Allowances {
        Allowances {
            visitor_tokens_per_address: 2,
            chats_per_customer: 2,
            messages_per_customer: 3,
            uploads_per_customer: 1,
            address_factor: 2,
        }
    }

    fn customer(address: &str) -> Caller {
        Caller {
            user_id: Uuid::new_v4(),
            role: Role::Customer,
            name: Arc::from("c"),
            priority: None,
            team: None,
            address: address.parse().ok(),
            partner_org_id: None,
        }
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_one_address() {
        let limits = RateLimits::new(&allowances());
        for n in 0..2 {
            assert!(limits.admit_from(Action::VisitorToken, None, format!("2001:db8::{n}").parse().ok()).is_ok());
        }
        assert!(limits.admit_from(Action::VisitorToken, None, "2001:db8::ffff:1".parse().ok()).is_err());
        assert!(limits.admit_from(Action::VisitorToken, None, "2001:db8:0:1::1".parse().ok()).is_ok());
    }

    #[test]
    fn each_action_finds_its_own_limiter() {
        for (index, action) in Action::ALL.into_iter().enumerate() {
            assert_eq!(action as usize, index, "{action:?}");
        }
    }

    #[test]
    fn an_account_has_its_allowance_and_an_address_a_larger_one() {
        let limits = RateLimits::new(&allowances());
        let (first, second, third) = (customer("10.0.0.1"), customer("10.0.0.1"), customer("10.0.0.1"));
        for _ in 0..3 {
            assert!(limits.admit(Action::CustomerMessage, &first).is_ok());
        }
        let refused = limits.admit(Action::CustomerMessage, &first).expect_err("the fourth");
        assert_eq!(refused.code.as_str(), "rate_limited");
        assert!(refused.retry_after.is_some_and(|seconds| seconds >= 1));
        // Other accounts from the same address share the address's six.
        for _ in 0..3 {
            assert!(limits.admit(Action::CustomerMessage, &second).is_ok());
        }
        assert!(limits.admit(Action::CustomerMessage, &third).is_err(), "the address's seventh");
        assert!(limits.admit(Action::CustomerMessage, &customer("10.0.0.2")).is_ok(), "another address");
        let staff = Caller { role: Role::Agent, ..first };
        assert!(limits.admit(Action::CustomerMessage, &staff).is_ok(), "staff are not limited here");
    }

    #[test]
    fn wrong_passwords_from_one_address_do_not_lock_the_name_elsewhere() {
        let failures = LoginFailures::new(3, 5);
        let attacker = "10.0.0.9".parse().ok();
        for _ in 0..3 {
            assert!(failures.check("Bob", attacker).is_ok());
            failures.failed("Bob", attacker);
        }
        assert!(failures.check("bob", attacker).is_err(), "names are compared without case");
        assert!(failures.check("bob", "10.0.0.1".parse().ok()).is_ok(), "bob's own address");
        for _ in 0..2 {
            failures.failed("bob", "10.0.0.7".parse().ok());
        }
        assert!(failures.check("bob", "10.0.0.1".parse().ok()).is_err(), "the ceiling for the name");
    }
}
