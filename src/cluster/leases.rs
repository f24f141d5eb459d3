//! Leases in Redis: which node runs a session's actor, which node leads
//! the queue, which nodes are alive.
//!
//! A lease names its node and expires unless renewed. A node that asks for
//! a lease gets it when nobody holds it, or when its holder is no longer
//! alive (its `alive` key expired: it was killed or cut off), so a dead
//! node's sessions move on within one lease period. Two nodes can still
//! both believe they hold a session for a moment (a node paused past its
//! lease); PostgreSQL settles it: each owner takes a new fencing number
//! (`chat_sessions.owner_epoch`) when its actor starts, and the message
//! writer stores nothing for an owner whose number is no longer the
//! session's.

use std::time::Duration;

use bb8_redis::redis;
use uuid::Uuid;

use super::NodeId;
use crate::startup::RedisPool;

const ALIVE_PREFIX: &str = "switchboard:alive:";
const NODES: &str = "switchboard:nodes";
const LEADER: &str = "switchboard:leader";
const SOCKETS_PREFIX: &str = "switchboard:sockets:";

fn session_key(session_id: Uuid) -> String {
    format!("switchboard:session:{session_id}")
}

/// Takes the lease if it is free, ours, or held by a node that is not alive;
/// answers who holds it now. With ARGV[4] = "look", only answers. A free
/// lease whose last holder (ARGV[5], from PostgreSQL) is alive stays free
/// for that node: Redis lost the lease, not the node its session.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return owner
end
if owner and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
if ARGV[4] == 'look' then
  return false
end
if not owner and ARGV[5] ~= '' and ARGV[5] ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. ARGV[5]) == 1 then
  return ARGV[5]
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
";

/// Renews the leases that are still ours, and takes back any that lapsed and
/// nobody took; answers 1 for each kept, 2 for each taken back (another
/// node may have run the session meanwhile), 0 for each another node holds.
const RENEW: &str = r"
local kept = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[i] = 1
  elseif not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    kept[i] = 2
  else
    kept[i] = 0
  end
end
return kept
";

/// Gives up a lease if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Sockets an account has open on every live node, after adding ARGV[2]
/// on this node when that keeps it within ARGV[3]. Answers the count
/// before, and 1 if the socket was admitted.
const ADMIT_SOCKET: &str = r"
local total = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[4] .. node) == 1 then
    total = total + tonumber(redis.call('HGET', ARGV[5] .. node, ARGV[1]) or '0')
  end
end
if total >= tonumber(ARGV[3]) then
  return {total, 0}
end
redis.call('HINCRBY', ARGV[5] .. ARGV[2], ARGV[1], 1)
return {total, 1}
";

/// The leases one node holds and asks for.
#[derive(Clone)]
pub struct Leases {
    redis: RedisPool,
    node: NodeId,
    lease_ms: u64,
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Us,
    Node(NodeId),
    Nobody,
}

impl Leases {
    pub fn new(redis: RedisPool, node: NodeId, lease: Duration) -> Self {
        Leases { redis, node, lease_ms: lease.as_millis().max(1) as u64 }
    }

    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<T, String> {
        let mut conn = self.redis.get().await.map_err(|error| error.to_string())?;
        let mut command = redis::cmd("EVAL");
        command.arg(script).arg(keys.len()).arg(keys).arg(args);
        command.query_async::<T>(&mut *conn).await.map_err(|error| error.to_string())
    }

    async fn holder(&self, key: String, take: bool, last_holder: Option<&str>) -> Result<Holder, String> {
        let mode = if take { "take" } else { "look" };
        let args = [
            self.node.to_string(),
            self.lease_ms.to_string(),
            ALIVE_PREFIX.to_owned(),
            mode.to_owned(),
            last_holder.unwrap_or_default().to_owned(),
        ];
        let owner: Option<String> = self.eval(CLAIM, &[key], &args).await?;
        Ok(match owner {
            Some(owner) if *owner == *self.node => Holder::Us,
            Some(owner) => Holder::Node(owner.into()),
            None => Holder::Nobody,
        })
    }

    /// Takes a session's lease if nobody alive holds it (nor its
    /// `last_holder`, if it is alive and the lease lapsed); says who does.
    pub async fn claim_session(&self, session_id: Uuid, last_holder: Option<&str>) -> Result<Holder, String> {
        self.holder(session_key(session_id), true, last_holder).await
    }

    /// Who holds a session's lease, without taking it.
    pub async fn session_holder(&self, session_id: Uuid) -> Result<Holder, String> {
        self.holder(session_key(session_id), false, None).await
    }

    /// Renews this node's session leases; answers the sessions lost to
    /// another node, and those whose lease had lapsed and was taken back.
    pub async fn renew_sessions(&self, sessions: &[Uuid]) -> Result<(Vec<Uuid>, Vec<Uuid>), String> {
        let (mut lost, mut lapsed) = (Vec::new(), Vec::new());
        for chunk in sessions.chunks(1_000) {
            let keys: Vec<String> = chunk.iter().map(|id| session_key(*id)).collect();
            let kept: Vec<i64> = self.eval(RENEW, &keys, &[self.node.to_string(), self.lease_ms.to_string()]).await?;
            for (id, kept) in chunk.iter().zip(kept) {
                match kept {
                    0 => lost.push(*id),
                    2 => lapsed.push(*id),
                    _ => {}
                }
            }
        }
        Ok((lost, lapsed))
    }

    pub async fn release_session(&self, session_id: Uuid) -> Result<(), String> {
        self.eval::<i64>(RELEASE, &[session_key(session_id)], &[self.node.to_string()]).await.map(|_| ())
    }

    /// Takes or keeps the queue's leadership if nobody alive holds it; says who does.
    pub async fn claim_leader(&self) -> Result<Holder, String> {
        self.holder(LEADER.to_owned(), true, None).await
    }

    /// Says this node is alive for one more lease period.
    pub async fn heartbeat(&self) -> Result<(), String> {
        let mut conn = self.redis.get().await.map_err(|error| error.to_string())?;
        redis::pipe()
            .cmd("SET")
            .arg(format!("{ALIVE_PREFIX}{}", self.node))
            .arg(1)
            .arg("PX")
            .arg(self.lease_ms)
            .ignore()
            .cmd("SADD")
            .arg(NODES)
            .arg(self.node.as_ref())
            .ignore()
            .cmd("PEXPIRE")
            .arg(format!("{SOCKETS_PREFIX}{}", self.node))
            .arg(self.lease_ms)
            .ignore()
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|error| error.to_string())
    }

    /// A node starting afresh: what an earlier run under its name left is void.
    pub async fn forget_earlier_run(&self) -> Result<(), String> {
        let mut conn = self.redis.get().await.map_err(|error| error.to_string())?;
        redis::cmd("DEL")
            .arg(format!("{SOCKETS_PREFIX}{}", self.node))
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|error| error.to_string())
    }

    /// Nodes that were members and are no longer alive; they are forgotten.
    pub async fn dead_nodes(&self) -> Result<Vec<NodeId>, String> {
        let mut conn = self.redis.get().await.map_err(|error| error.to_string())?;
        let members: Vec<String> =
            redis::cmd("SMEMBERS").arg(NODES).query_async(&mut *conn).await.map_err(|error| error.to_string())?;
        let mut dead = Vec::new();
        for member in members {
            let alive: bool = redis::cmd("EXISTS")
                .arg(format!("{ALIVE_PREFIX}{member}"))
                .query_async(&mut *conn)
                .await
                .map_err(|error| error.to_string())?;
            if !alive {
                let _: () = redis::pipe()
                    .cmd("SREM")
                    .arg(NODES)
                    .arg(&member)
                    .ignore()
                    .cmd("DEL")
                    .arg(format!("{SOCKETS_PREFIX}{member}"))
                    .ignore()
                    .query_async(&mut *conn)
                    .await
                    .map_err(|error| error.to_string())?;
                dead.push(member.into());
            }
        }
        Ok(dead)
    }

    /// Counts one more socket for `user_id` if the account has fewer than
    /// `limit` open on all live nodes together; answers how many it had.
    pub async fn admit_socket(&self, user_id: Uuid, limit: usize) -> Result<(usize, bool), String> {
        let args = [
            user_id.to_string(),
            self.node.to_string(),
            limit.to_string(),
            ALIVE_PREFIX.to_owned(),
            SOCKETS_PREFIX.to_owned(),
        ];
        let (open, admitted): (i64, i64) = self.eval(ADMIT_SOCKET, &[NODES.to_owned()], &args).await?;
        Ok((open.max(0) as usize, admitted == 1))
    }

    pub async fn release_socket(&self, user_id: Uuid) -> Result<(), String> {
        let mut conn = self.redis.get().await.map_err(|error| error.to_string())?;
        let key = format!("{SOCKETS_PREFIX}{}", self.node);
        let left: i64 = redis::cmd("HINCRBY")
            .arg(&key)
            .arg(user_id.to_string())
            .arg(-1)
            .query_async(&mut *conn)
            .await
            .map_err(|error| error.to_string())?;
        if left <= 0 {
            let _: i64 =
                redis::cmd("HDEL").arg(&key).arg(user_id.to_string()).query_async(&mut *conn).await.unwrap_or(0);
        }
        Ok(())
    }
}
