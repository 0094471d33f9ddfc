//! API keys and the admin token: generation, hashing and constant-time comparison.
//!
//! A key is shown once, at creation; only its SHA-256 is stored. Keys carry 192 random bits, so
//! a fast hash is enough (there is nothing to brute-force).

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::{ApiKeyCreateParams, KeyRole};

/// Every API key starts with this, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "sfk_";

/// A freshly generated key: the secret (shown once) and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

impl NewKey {
    /// How this key is stored for `tenant` with `role` (the secret itself never is).
    pub fn stored_as(&self, tenant: &str, role: KeyRole) -> ApiKeyCreateParams {
        ApiKeyCreateParams {
            tenant: tenant.to_string(),
            prefix: self.prefix.clone(),
            hash: self.hash.clone(),
            role,
        }
    }
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

/// The shortest admin token `sandfire serve` accepts.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// Compares two secrets by their SHA-256 digests in constant time: neither where they first
/// differ nor their lengths leak through timing.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
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
        assert!(same_secret("same", "same"));
        assert!(!same_secret("same", "sane"));
        assert!(!same_secret("same", "same+"));
        assert!(!same_secret("", "same"));
    }
}
