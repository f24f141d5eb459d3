//! The built-in bot: keyword intents and an FAQ read from a JSON file. It
//! needs no network, so a fresh install can chat at once.

use serde::Deserialize;

use super::{Bot, BotFuture, BotHandoff, BotReply, BotTurn, Understanding};

/// The default FAQ, used when no file is configured.
const DEFAULT_FAQ: &str = include_str!("faq.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaqFile {
    pub name: String,
    /// `{name}` is replaced by the customer's name.
    pub greeting: String,
    pub fallback: String,
    pub handoff: String,
    pub handoff_phrases: Vec<String>,
    pub entries: Vec<FaqEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FaqEntry {
    pub intent: String,
    pub keywords: Vec<String>,
    pub answer: String,
}

impl FaqFile {
    pub fn builtin() -> Result<FaqFile, serde_json::Error> {
        serde_json::from_str(DEFAULT_FAQ)
    }

    pub fn load(path: &str) -> Result<FaqFile, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))?;
        serde_json::from_str(&text).map_err(|error| format!("{path} is not a valid FAQ file: {error}"))
    }
}

pub struct RuleBot {
    faq: FaqFile,
    /// The handoff phrases and each entry's keywords, normalised once here
    /// rather than for every message.
    handoff_phrases: Vec<String>,
    keywords: Vec<Vec<String>>,
}

/// Lower-case words, punctuation dropped, padded with spaces so a phrase
/// matches only on word boundaries.
fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut normalised = String::with_capacity(lower.len() + 2);
    normalised.push(' ');
    for word in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|word| !word.is_empty()) {
        normalised.push_str(word);
        normalised.push(' ');
    }
    if normalised.len() == 1 {
        normalised.push(' ');
    }
    normalised
}

impl RuleBot {
    pub fn new(faq: FaqFile) -> Self {
        let handoff_phrases = faq.handoff_phrases.iter().map(|phrase| normalise(phrase)).collect();
        let keywords =
            faq.entries.iter().map(|entry| entry.keywords.iter().map(|keyword| normalise(keyword)).collect()).collect();
        RuleBot { faq, handoff_phrases, keywords }
    }

    pub fn faq(&self) -> &FaqFile {
        &self.faq
    }

    /// FAQ entries that mention words of `text`, best first.
    pub fn search(&self, text: &str) -> Vec<(&FaqEntry, usize)> {
        self.search_normalised(&normalise(text))
    }

    fn search_normalised(&self, normalised: &str) -> Vec<(&FaqEntry, usize)> {
        let mut found: Vec<(&FaqEntry, usize)> = self
            .faq
            .entries
            .iter()
            .zip(&self.keywords)
            .map(|(entry, keywords)| (entry, keywords.iter().filter(|keyword| normalised.contains(*keyword)).count()))
            .filter(|(_, hits)| *hits > 0)
            .collect();
        // Stable: among equals, the FAQ's own order.
        found.sort_by_key(|(_, hits)| std::cmp::Reverse(*hits));
        found
    }

    pub fn answer(&self, text: &str) -> BotReply {
        let normalised = normalise(text);
        if self.handoff_phrases.iter().any(|phrase| normalised.contains(phrase.as_str())) {
            return BotReply {
                content: self.faq.handoff.clone(),
                understanding: understanding("handoff", 1.0),
                understood: true,
                handoff: Some(BotHandoff::CustomerAsked),
                processing: None,
            };
        }
        match self.search_normalised(&normalised).first() {
            Some((entry, hits)) => BotReply {
                content: entry.answer.clone(),
                understanding: understanding(&entry.intent, (0.5 + 0.25 * *hits as f32).min(1.0)),
                understood: true,
                handoff: None,
                processing: None,
            },
            None => BotReply {
                content: self.faq.fallback.clone(),
                understanding: Understanding { confidence: Some(0.0), ..Understanding::default() },
                understood: false,
                handoff: None,
                processing: None,
            },
        }
    }
}

fn understanding(intent: &str, confidence: f32) -> Understanding {
    Understanding { intent: Some(intent.to_owned()), entities: None, confidence: Some(confidence) }
}

impl Bot for RuleBot {
    fn name(&self) -> &str {
        &self.faq.name
    }

    fn kind(&self) -> &'static str {
        "rules"
    }

    fn greeting(&self, customer_name: &str, _bot_context: Option<&str>) -> BotReply {
        BotReply {
            content: self.faq.greeting.replace("{name}", customer_name),
            understanding: understanding("greeting", 1.0),
            understood: true,
            handoff: None,
            processing: None,
        }
    }

    fn reply(&self, turn: BotTurn) -> BotFuture {
        let reply = self.answer(&turn.text);
        Box::pin(std::future::ready(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot() -> RuleBot {
        RuleBot::new(FaqFile::builtin().expect("the built-in FAQ parses"))
    }

    #[test]
    fn plain_words_asking_for_a_person_hand_off() {
        for text in ["I want to talk to a human", "AGENT please", "can I speak to a real person?", "talk to someone"] {
            assert_eq!(bot().answer(text).handoff, Some(BotHandoff::CustomerAsked), "{text}");
        }
        assert_eq!(bot().answer("where is my package").handoff, None);
    }

    #[test]
    fn faq_questions_get_their_answer_and_nonsense_is_not_understood() {
        let reply = bot().answer("How long does shipping take?");
        assert_eq!(reply.understanding.intent.as_deref(), Some("shipping"));
        assert!(reply.understood);
        let reply = bot().answer("qwerty zxcv");
        assert!(!reply.understood);
        // "ship" must not match inside "relationship".
        assert!(!bot().answer("relationship").understood);
    }

    #[test]
    fn words_are_compared_lower_case_without_punctuation_on_word_boundaries() {
        assert_eq!(normalise("Where's MY   order?!"), " where's my order ");
        assert_eq!(normalise("?!"), "  ");
        assert_eq!(normalise(""), "  ");
        assert_eq!(bot().answer("SHIPPING... how long?").understanding.intent.as_deref(), Some("shipping"));
    }
}
