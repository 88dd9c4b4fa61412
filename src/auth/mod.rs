//! Authentication: API keys (hashed at rest, shown once) and agent passwords (argon2id).
//! The HTTP extractors that use them live in `http::extract`.

pub mod agents;
pub mod api_keys;
pub mod passwords;
