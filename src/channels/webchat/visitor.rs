//! Visitor tokens: `vt_` + 40 base62 characters. The stored identity is a SHA-256 of the token.

use rand::{distributions::Alphanumeric, Rng};
use sha2::{Digest, Sha256};

/// A fresh token.
pub fn new_token() -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("vt_{body}")
}

/// Whether a presented token has the shape we issue (anything else gets a new token).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43
        && token.starts_with("vt_")
        && token[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The identity address stored for a token.
pub fn address_of(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_well_formed_and_malformed_ones_are_not() {
        let token = new_token();
        assert!(is_well_formed(&token));
        assert!(!is_well_formed("vt_short"));
        assert!(!is_well_formed(&format!("xx{}", &token[2..])));
        assert!(!is_well_formed(&format!("{}!", &token[..42])));
    }

    #[test]
    fn addresses_are_stable_hashes() {
        assert_eq!(address_of("vt_a"), address_of("vt_a"));
        assert_eq!(address_of("vt_a").len(), 64);
    }
}
