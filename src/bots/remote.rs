//! Remote agents (`BOT=remote`): an NLU agent says what the customer wants
//! (`{intent, entities, confidence}`), and the domain agents that serve that
//! intent answer, in their order, then the fallback chain; the first good
//! answer wins. Each agent is plain JSON over HTTP (docs/BOTS.md), so a
//! company writes its own in any language.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::upstream::{client, Failure, Upstream, UpstreamSettings};
use super::{clip, decided_handoff, Bot, BotFuture, BotHandoff, BotReply, BotTurn, Fallback, Understanding};
use crate::telemetry::Metrics;

/// Entities bigger than this, written out, are not kept.
const MAX_ENTITIES_BYTES: usize = 4096;

/// The agents file (`BOT_AGENTS_FILE`), JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentsFile {
    pub nlu: Option<AgentEntry>,
    pub agents: Vec<AgentEntry>,
    /// Names of agents asked, in order, when none for the intent answered.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Below this confidence an answer counts as not understood.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
}

fn default_min_confidence() -> f32 {
    0.3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentEntry {
    pub name: String,
    pub url: String,
    /// Intents this agent serves; `*` for any.
    #[serde(default)]
    pub intents: Vec<String>,
    pub timeout_ms: Option<u64>,
    /// Lower goes first among agents for the same intent.
    #[serde(default)]
    pub order: i32,
}

impl AgentsFile {
    pub fn load(path: &str) -> Result<AgentsFile, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))?;
        let file: AgentsFile =
            serde_json::from_str(&text).map_err(|error| format!("{path} is not a valid agents file: {error}"))?;
        file.check().map_err(|problem| format!("{path}: {problem}"))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.agents.is_empty() {
            return Err("lists no agents".to_owned());
        }
        for entry in self.nlu.iter().chain(&self.agents) {
            if !(entry.url.starts_with("http://") || entry.url.starts_with("https://")) {
                return Err(format!("agent {}: url must start with http:// or https://", entry.name));
            }
        }
        for name in &self.fallback {
            if !self.agents.iter().any(|agent| &agent.name == name) {
                return Err(format!("fallback names an unknown agent `{name}`"));
            }
        }
        Ok(())
    }
}

struct Agent {
    entry: AgentEntry,
    upstream: Upstream,
    timeout: Duration,
}

/// What a domain agent answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentAnswer {
    #[serde(default)]
    reply: String,
    confidence: Option<f32>,
    #[serde(default)]
    handoff: Option<AgentHandoff>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AgentHandoff {
    Yes(bool),
    Why { reason: Option<String>, priority: Option<String> },
}

pub struct RemoteBot {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    nlu: Option<Agent>,
    /// Sorted by order.
    agents: Vec<Agent>,
    fallback_chain: Vec<String>,
    min_confidence: f32,
    /// The whole turn, every agent asked included.
    turn_timeout: Duration,
    fallback: Fallback,
}

impl RemoteBot {
    pub fn new(
        file: AgentsFile,
        settings: &UpstreamSettings,
        fallback: Fallback,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let agent = |entry: AgentEntry| Agent {
            upstream: Upstream::new(&entry.name, &entry.url, settings, metrics.clone()),
            timeout: entry.timeout_ms.map(Duration::from_millis).unwrap_or(settings.first_token_timeout),
            entry,
        };
        let mut agents: Vec<Agent> = file.agents.into_iter().map(agent).collect();
        agents.sort_by_key(|agent| agent.entry.order);
        Ok(RemoteBot {
            inner: Arc::new(Inner {
                client: client(settings)?,
                nlu: file.nlu.map(agent),
                agents,
                fallback_chain: file.fallback,
                min_confidence: file.min_confidence,
                turn_timeout: settings.reply_timeout,
                fallback,
            }),
        })
    }
}

impl Bot for RemoteBot {
    fn name(&self) -> &str {
        self.inner.fallback.rules.name()
    }

    fn kind(&self) -> &'static str {
        "remote"
    }

    fn reads_history(&self) -> bool {
        true
    }

    fn degraded(&self) -> bool {
        self.inner.nlu.iter().chain(&self.inner.agents).any(|agent| agent.upstream.is_open())
    }

    fn greeting(&self, customer_name: &str, bot_context: Option<&str>) -> BotReply {
        self.inner.fallback.rules.greeting(customer_name, bot_context)
    }

    fn reply(&self, turn: BotTurn) -> BotFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let started = Instant::now();
            match tokio::time::timeout(inner.turn_timeout, inner.reply(&turn)).await {
                Ok(reply) => reply,
                Err(_) => inner.fallback.reply("remote", &turn.text, "timeout", processing(Vec::new(), started)),
            }
        })
    }
}

impl Inner {
    async fn reply(&self, turn: &BotTurn) -> BotReply {
        let started = Instant::now();
        let mut steps = Vec::new();
        let mut body = json!({
            "sessionId": turn.session_id,
            "text": turn.text,
            "customerName": turn.customer_name,
            "botContext": turn.bot_context,
            "history": turn.history.iter().map(|line| json!({
                "role": line.sender.as_str(),
                "content": line.content,
            })).collect::<Vec<_>>(),
        });
        let understanding = match &self.nlu {
            Some(nlu) => self.ask(nlu, &body, &mut steps, read_understanding).await.unwrap_or_default(),
            None => Understanding::default(),
        };
        body["intent"] = json!(understanding.intent);
        body["entities"] = understanding.entities.clone().unwrap_or_else(|| json!({}));
        body["confidence"] = json!(understanding.confidence);
        for agent in self.candidates(understanding.intent.as_deref()) {
            let Some(answer) = self.ask(agent, &body, &mut steps, read_answer).await else { continue };
            let handoff = answer.handoff.and_then(read_handoff);
            if answer.reply.trim().is_empty() && handoff.is_none() {
                if let Some(step) = steps.last_mut() {
                    step["outcome"] = "empty".into();
                }
                continue;
            }
            let confidence = answer.confidence.filter(|value| value.is_finite()).map(|value| value.clamp(0.0, 1.0));
            let confidence = confidence.or(understanding.confidence);
            let mut record = processing(steps, started);
            record.insert("answeredBy".to_owned(), agent.entry.name.clone().into());
            let content = self.fallback.words_or_handoff(&answer.reply);
            return BotReply {
                content,
                understood: handoff.is_some() || confidence.unwrap_or(1.0) >= self.min_confidence,
                understanding: Understanding { confidence, ..understanding },
                handoff,
                processing: Some(Value::Object(record)),
            };
        }
        let failure = if steps.is_empty() { "no_agent" } else { "agents_failed" };
        let mut reply = self.fallback.reply("remote", &turn.text, failure, processing(steps, started));
        if reply.understanding.intent.is_none() {
            reply.understanding = Understanding { confidence: reply.understanding.confidence, ..understanding };
        }
        reply
    }

    /// The agents for `intent` in their order, then the fallback chain.
    fn candidates(&self, intent: Option<&str>) -> Vec<&Agent> {
        let mut chosen: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|agent| agent.entry.intents.iter().any(|served| Some(served.as_str()) == intent || served == "*"))
            .collect();
        for name in &self.fallback_chain {
            if let Some(agent) = self.agents.iter().find(|agent| &agent.entry.name == name) {
                if !chosen.iter().any(|already| std::ptr::eq(*already, agent)) {
                    chosen.push(agent);
                }
            }
        }
        chosen
    }

    /// One agent's answer as `read` makes it out, or `None`; either way a
    /// step of the record. An answer `read` refuses is the agent's failure.
    async fn ask<T>(
        &self,
        agent: &Agent,
        body: &Value,
        steps: &mut Vec<Value>,
        read: fn(Value) -> Result<T, Failure>,
    ) -> Option<T> {
        let started = Instant::now();
        // Not tried again: the next agent in line is the retry.
        let outcome = agent
            .upstream
            .call(0, || async { read(agent.upstream.post_json(&self.client, body, agent.timeout).await?) })
            .await;
        let (outcome_code, answer) = match outcome {
            Ok(answer) => ("ok".to_owned(), Some(answer)),
            Err(failure) => (failure.code(), None),
        };
        steps.push(json!({
            "agent": agent.entry.name,
            "ms": started.elapsed().as_millis() as u64,
            "outcome": outcome_code,
        }));
        answer
    }
}

fn processing(steps: Vec<Value>, started: Instant) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert("bot".to_owned(), "remote".into());
    record.insert("agents".to_owned(), Value::Array(steps));
    record.insert("ms".to_owned(), (started.elapsed().as_millis() as u64).into());
    record
}

/// A domain agent's answer, if it has the shape of one.
fn read_answer(answer: Value) -> Result<AgentAnswer, Failure> {
    serde_json::from_value(answer).map_err(|error| Failure::BadResponse(error.to_string()))
}

/// The NLU agent's `{intent, entities, confidence}`, whatever of it is well formed.
fn read_understanding(answer: Value) -> Result<Understanding, Failure> {
    if !answer.is_object() {
        return Err(Failure::BadResponse("not an object".to_owned()));
    }
    let intent = answer
        .get("intent")
        .and_then(Value::as_str)
        .map(|intent| clip(intent.trim(), 100))
        .filter(|intent| !intent.is_empty());
    let entities = answer
        .get("entities")
        .filter(|entities| entities.is_object() && entities.to_string().len() <= MAX_ENTITIES_BYTES)
        .cloned();
    let confidence = answer.get("confidence").and_then(Value::as_f64).map(|value| value.clamp(0.0, 1.0) as f32);
    Ok(Understanding { intent, entities, confidence })
}

fn read_handoff(handoff: AgentHandoff) -> Option<BotHandoff> {
    match handoff {
        AgentHandoff::Yes(false) => None,
        AgentHandoff::Yes(true) => Some(decided_handoff(None, None, "agent_transferred")),
        AgentHandoff::Why { reason, priority } => {
            Some(decided_handoff(reason.as_deref(), priority.as_deref(), "agent_transferred"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_file_names_only_agents_it_lists_and_http_urls() {
        let file =
            |text: &str| serde_json::from_str::<AgentsFile>(text).map_err(|e| e.to_string()).and_then(|f| f.check());
        assert!(file(r#"{"agents":[{"name":"a","url":"http://x/a","intents":["*"]}],"fallback":["a"]}"#).is_ok());
        assert!(file(r#"{"agents":[{"name":"a","url":"http://x/a"}],"fallback":["b"]}"#).is_err());
        assert!(file(r#"{"agents":[{"name":"a","url":"ftp://x/a"}]}"#).is_err());
        assert!(file(r#"{"agents":[]}"#).is_err());
        assert!(
            file(r#"{"agents":[{"name":"a","url":"http://x","timeout":3}]}"#).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn understanding_takes_what_is_well_formed() {
        let understood =
            read_understanding(json!({ "intent": "card_lost", "entities": { "card": "debit" }, "confidence": 1.7 }))
                .expect("an object");
        assert_eq!(understood.intent.as_deref(), Some("card_lost"));
        assert_eq!(understood.confidence, Some(1.0));
        let understood =
            read_understanding(json!({ "intent": 3, "entities": [1], "confidence": "high" })).expect("an object");
        assert_eq!(understood, Understanding::default());
        assert!(read_understanding(json!("card_lost")).is_err());
    }
}
