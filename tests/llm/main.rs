//! The LLM layer against a local fake OpenAI-compatible server speaking the real wire format:
//! the client (retries, timeouts, streaming, circuit breaker) and the red-team guard tests.

#[path = "../common/fake_openai.rs"]
mod fake_openai;

mod client;
mod redteam;
