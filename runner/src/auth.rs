//! API keys and the admin token: generation, hashing and constant-time comparison.
//!
//! A key is shown once, at creation; only its SHA-256 is stored. Keys carry 192 random bits, so
//! a fast hash is enough (there is nothing to brute-force).

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API key starts with this, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "sfk_";

/// A freshly generated key: the secret (shown once) and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn generate_key() -> NewKey {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    NewKey {
        prefix: secret[..KEY_PREFIX.len() + 8].to_string(),
        hash: hash_key(&secret),
        secret,
    }
}

pub fn hash_key(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two secrets without leaking where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hash_to_what_is_stored() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(hash_key(&a.secret), a.hash);
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same+"));
    }
}
