//! Plain data types of the LLM layer: what callers put in ([`ChatRequest`]) and what they get
//! back ([`ChatResult`], [`StreamEvent`]).
//!
//! Invariants: these types carry no behaviour beyond small constructors; role separation is a
//! property of the fields (the customer's text lives only in [`ChatRequest::user`] and in
//! [`TurnRole::User`] history turns), and [`crate::llm::wire`] maps each field to its own role.

use serde::{Deserialize, Serialize};

/// Who said a past turn of the conversation. There is deliberately no `System` variant:
/// history can never smuggle operator-level text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    /// The customer.
    User,
    /// The assistant (a previous model or flow reply).
    Assistant,
}

/// One past turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    /// Who said it.
    pub role: TurnRole,
    /// What was said.
    pub content: String,
}

impl ChatTurn {
    /// A past customer turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: TurnRole::User,
            content: content.into(),
        }
    }

    /// A past assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: TurnRole::Assistant,
            content: content.into(),
        }
    }
}

/// A tool the model may propose to call. `parameters` is a JSON-schema subset, see
/// [`crate::llm::tools`] for the keywords the guard understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Function name (`[A-Za-z0-9_-]{1,64}`).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON schema of the arguments (must be `"type": "object"`).
    pub parameters: serde_json::Value,
}

/// A tool call proposed by the model. Nothing about it is trusted until it passed
/// [`crate::llm::tools::ToolGuard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned call id (synthesised when the provider sends none).
    pub id: String,
    /// Name of the tool the model wants.
    pub name: String,
    /// Parsed arguments. When the model sent text that is not valid JSON, this is
    /// `Value::String(raw_text)` so the guard can reject it with a clear reason.
    pub arguments: serde_json::Value,
}

/// Token counts reported by the provider (zero when it reports none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total(&self) -> u64 {
        u64::from(self.prompt_tokens) + u64::from(self.completion_tokens)
    }
}

/// One chat completion call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Operator instructions (the state's prompt); sent as the first `system` message.
    pub system: String,
    /// Data the server trusts (tool results, business facts); each item is its own `system`
    /// message, never mixed into customer text.
    pub context: Vec<String>,
    /// Past turns, oldest first.
    pub history: Vec<ChatTurn>,
    /// The customer's latest message; always its own `user` message.
    pub user: String,
    /// Tools the model may propose (also the allow-list for the guard).
    pub tools: Vec<ToolSpec>,
    /// Ask the provider to force a tool call (`tool_choice: "required"`).
    pub require_tool: bool,
    /// Completion token limit; 0 leaves it to the provider.
    pub max_tokens: u32,
    /// Sampling temperature, 0.0 ..= 2.0.
    pub temperature: f32,
}

impl Default for ChatRequest {
    /// Empty texts, no tools, `max_tokens` 256, `temperature` 0.2.
    fn default() -> Self {
        Self {
            system: String::new(),
            context: Vec::new(),
            history: Vec::new(),
            user: String::new(),
            tools: Vec::new(),
            require_tool: false,
            max_tokens: 256,
            temperature: 0.2,
        }
    }
}

/// The outcome of a completed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResult {
    /// Assistant text, if any (empty text is reported as `None`).
    pub text: Option<String>,
    /// Proposed tool calls, in the order the provider listed them. Unvalidated.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage.
    pub usage: Usage,
    /// Model name the provider reported (or the configured one).
    pub model: String,
    /// HTTP attempts made (1 = no retry).
    pub attempts: u32,
}

/// An item of [`crate::llm::LlmClient::chat_stream`].
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A text fragment, in arrival order.
    Delta(String),
    /// The end of the stream: full text and assembled tool calls.
    Done(ChatResult),
}
