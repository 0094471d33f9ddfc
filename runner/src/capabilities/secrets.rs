//! Encryption at rest of a tenant's config values: AES-256-GCM under the runner's keyring.
//!
//! Every value is sealed with the ring's *active* key and a fresh random 96-bit nonce; the
//! associated data binds the ciphertext to its place, `"sandfire/config/v1" ‖ tenant_id (8
//! bytes, big-endian) ‖ name ‖ key_id (4 bytes, big-endian)`, so a ciphertext copied to another
//! tenant, another name or relabelled with another key id fails to decrypt. Any key of the ring
//! decrypts what it sealed, so rotation is: add a new key, make it active, re-encrypt
//! (`POST /v1/admin/config/reencrypt`), then drop the old key.
//!
//! Keys come from the environment (see [`Keyring::from_env_values`]). This module must never
//! print, log or `Debug`-format a key or a plaintext: its `Debug` shows key ids only, and its
//! errors name key ids and config names, never values.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

/// Names of the environment variables (also the flags' `env`).
pub const ENV_KEY: &str = "SANDFIRE_SECRETS_KEY";
pub const ENV_KEYS: &str = "SANDFIRE_SECRETS_KEYS";
pub const ENV_KEY_ID: &str = "SANDFIRE_SECRETS_KEY_ID";

/// Bytes of an AES-256 key.
pub const KEY_BYTES: usize = 32;

const AAD_LABEL: &[u8] = b"sandfire/config/v1";

/// The runner's keys by key id; the active one seals, any of them opens.
pub struct Keyring {
    keys: BTreeMap<i32, LessSafeKey>,
    active: i32,
    rng: SystemRandom,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Key material that cannot be used; says which setting and why, never the material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// Sealing or opening failed. Opening fails for a wrong key, tenant, name or key id alike
/// (GCM cannot tell them apart), and for a key id the ring does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key id {0} is not in this runner's keyring (set it in SANDFIRE_SECRETS_KEYS)")]
    UnknownKey(i32),
    #[error(
        "the value does not decrypt: it was altered, copied from another tenant or name, or sealed with another key under the same id"
    )]
    Open,
    #[error("encryption failed")]
    Seal,
}

/// A sealed value as stored: the key it was sealed under, its nonce, ciphertext with tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: i32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

fn aad(tenant_id: i64, name: &str, key_id: i32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 12 + name.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(&tenant_id.to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

impl Keyring {
    /// A ring of `(key id, 32-byte key)` with `active` sealing. Key ids are positive and
    /// distinct; `active` must be one of them.
    pub fn new(keys: Vec<(i32, [u8; KEY_BYTES])>, active: i32) -> Result<Keyring, KeyError> {
        let mut ring = BTreeMap::new();
        for (id, mut bytes) in keys {
            if id <= 0 {
                bytes.zeroize();
                return Err(KeyError(format!("key id {id} is not positive")));
            }
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| KeyError(format!("key {id} is not a valid AES-256 key")));
            bytes.zeroize();
            if ring.insert(id, LessSafeKey::new(key?)).is_some() {
                return Err(KeyError(format!("key id {id} is given twice")));
            }
        }
        if ring.is_empty() {
            return Err(KeyError("the keyring has no key".into()));
        }
        if !ring.contains_key(&active) {
            return Err(KeyError(format!(
                "the active key id {active} ({ENV_KEY_ID}) is not among the keys ({:?})",
                ring.keys().collect::<Vec<_>>()
            )));
        }
        Ok(Keyring {
            keys: ring,
            active,
            rng: SystemRandom::new(),
        })
    }

    /// The keyring from the values of the three settings (flags or environment):
    /// - `key` (`SANDFIRE_SECRETS_KEY`): base64 of 32 bytes, key id 1;
    /// - `keys` (`SANDFIRE_SECRETS_KEYS`): `"1:<base64>,2:<base64>"`, for rotation (may be
    ///   combined with `key` when it does not repeat id 1);
    /// - `active` (`SANDFIRE_SECRETS_KEY_ID`): the key id that seals; default the highest.
    ///
    /// `Ok(None)` when no key is set (config and secrets are then unavailable). Empty values
    /// count as unset.
    pub fn from_env_values(
        key: Option<&str>,
        keys: Option<&str>,
        active: Option<&str>,
    ) -> Result<Option<Keyring>, KeyError> {
        let key = key.map(str::trim).filter(|k| !k.is_empty());
        let keys = keys.map(str::trim).filter(|k| !k.is_empty());
        let active = active.map(str::trim).filter(|k| !k.is_empty());
        let mut ring: Vec<(i32, [u8; KEY_BYTES])> = Vec::new();
        if let Some(key) = key {
            ring.push((1, decode_key(key, ENV_KEY)?));
        }
        if let Some(keys) = keys {
            for (i, entry) in keys.split(',').map(str::trim).enumerate() {
                let Some((id, material)) = entry.split_once(':') else {
                    return Err(KeyError(format!(
                        "{ENV_KEYS}: entry {} is not <key id>:<base64 key> (e.g. 2:$(openssl rand -base64 32))",
                        i + 1
                    )));
                };
                let id: i32 = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                    KeyError(format!(
                        "{ENV_KEYS}: entry {} has key id {:?}: use a positive number",
                        i + 1,
                        id.trim()
                    ))
                })?;
                if ring.iter().any(|(have, _)| *have == id) {
                    return Err(KeyError(format!(
                        "{ENV_KEYS}: key id {id} is given twice{}",
                        if id == 1 && key.is_some() {
                            format!(" ({ENV_KEY} is key id 1)")
                        } else {
                            String::new()
                        }
                    )));
                }
                ring.push((id, decode_key(material, &format!("{ENV_KEYS} key {id}"))?));
            }
        }
        if ring.is_empty() {
            if active.is_some() {
                return Err(KeyError(format!(
                    "{ENV_KEY_ID} is set but no key is: set {ENV_KEY} or {ENV_KEYS}"
                )));
            }
            return Ok(None);
        }
        let active = match active {
            Some(text) => text.parse::<i32>().map_err(|_| {
                KeyError(format!("{ENV_KEY_ID} is {text:?}: use a key id (a number)"))
            })?,
            None => ring.iter().map(|(id, _)| *id).max().unwrap_or(1),
        };
        Keyring::new(ring, active).map(Some)
    }

    /// The key id that seals new values.
    pub fn active_key_id(&self) -> i32 {
        self.active
    }

    /// Every key id the ring holds, ascending.
    pub fn key_ids(&self) -> Vec<i32> {
        self.keys.keys().copied().collect()
    }

    /// Seals `plaintext` as tenant `tenant_id`'s config `name` under the active key.
    pub fn seal(
        &self,
        tenant_id: i64,
        name: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let key = &self.keys[&self.active];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Seal)?;
        let mut buffer = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(tenant_id, name, self.active)),
            &mut buffer,
        )
        .map_err(|_| {
            buffer.zeroize();
            CryptoError::Seal
        })?;
        Ok(Sealed {
            key_id: self.active,
            nonce: nonce.to_vec(),
            ciphertext: buffer,
        })
    }

    /// Opens a value sealed for tenant `tenant_id`'s config `name`.
    pub fn open(
        &self,
        tenant_id: i64,
        name: &str,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or(CryptoError::UnknownKey(sealed.key_id))?;
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| CryptoError::Open)?;
        let mut buffer = sealed.ciphertext.clone();
        let len = match key.open_in_place(
            nonce,
            Aad::from(aad(tenant_id, name, sealed.key_id)),
            &mut buffer,
        ) {
            Ok(plain) => plain.len(),
            Err(_) => return Err(CryptoError::Open),
        };
        buffer.truncate(len);
        Ok(buffer)
    }

    /// [`Keyring::open`] as UTF-8 text (values are stored from JSON strings).
    pub fn open_string(
        &self,
        tenant_id: i64,
        name: &str,
        sealed: &Sealed,
    ) -> Result<String, CryptoError> {
        String::from_utf8(self.open(tenant_id, name, sealed)?).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            CryptoError::Open
        })
    }
}

/// Decodes one base64 key; the error names the setting, never the material.
fn decode_key(text: &str, setting: &str) -> Result<[u8; KEY_BYTES], KeyError> {
    let hint = "use 32 random bytes in base64, e.g. `openssl rand -base64 32`";
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError(format!("{setting} is not valid base64: {hint}")))?;
    if bytes.len() != KEY_BYTES {
        let n = bytes.len();
        bytes.zeroize();
        return Err(KeyError(format!(
            "{setting} decodes to {n} bytes, not {KEY_BYTES}: {hint}"
        )));
    }
    let mut key = [0u8; KEY_BYTES];
    key.copy_from_slice(&bytes);
    bytes.zeroize();
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn ring(keys: &[(i32, u8)], active: i32) -> Keyring {
        Keyring::new(keys.iter().map(|(id, b)| (*id, [*b; 32])).collect(), active).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let ring = ring(&[(1, 7)], 1);
        let a = ring.seal(5, "api_token", b"hunter2-hunter2").unwrap();
        let b = ring.seal(5, "api_token", b"hunter2-hunter2").unwrap();
        assert_eq!(a.key_id, 1);
        assert_eq!(a.nonce.len(), 12);
        assert_ne!(a.nonce, b.nonce, "every seal draws a new nonce");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(
            !a.ciphertext
                .windows(b"hunter2".len())
                .any(|w| w == b"hunter2")
        );
        assert_eq!(
            ring.open_string(5, "api_token", &a).unwrap(),
            "hunter2-hunter2"
        );
        let empty = ring.seal(5, "empty", b"").unwrap();
        assert_eq!(ring.open(5, "empty", &empty).unwrap(), b"");
    }

    #[test]
    fn a_value_opens_only_in_its_place() {
        let ring = ring(&[(1, 7), (2, 9)], 1);
        let sealed = ring.seal(5, "api_token", b"value-of-five").unwrap();
        assert_eq!(ring.open(6, "api_token", &sealed), Err(CryptoError::Open));
        assert_eq!(ring.open(5, "api_tokem", &sealed), Err(CryptoError::Open));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(ring.open(5, "api_token", &tampered), Err(CryptoError::Open));
        let mut tag = sealed.clone();
        *tag.ciphertext.last_mut().unwrap() ^= 0x80;
        assert_eq!(ring.open(5, "api_token", &tag), Err(CryptoError::Open));
        let mut nonce = sealed.clone();
        nonce.nonce[3] ^= 1;
        assert_eq!(ring.open(5, "api_token", &nonce), Err(CryptoError::Open));
        let mut relabelled = sealed.clone();
        relabelled.key_id = 2;
        assert_eq!(
            ring.open(5, "api_token", &relabelled),
            Err(CryptoError::Open)
        );
        let mut unknown = sealed.clone();
        unknown.key_id = 3;
        assert_eq!(
            ring.open(5, "api_token", &unknown),
            Err(CryptoError::UnknownKey(3))
        );
        let mut short = sealed;
        short.nonce.pop();
        assert_eq!(ring.open(5, "api_token", &short), Err(CryptoError::Open));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = ring(&[(1, 7)], 1);
        let sealed = old.seal(5, "name", b"under key one").unwrap();
        let rotated = ring(&[(1, 7), (2, 9)], 2);
        assert_eq!(rotated.open(5, "name", &sealed).unwrap(), b"under key one");
        let resealed = rotated.seal(5, "name", b"under key one").unwrap();
        assert_eq!(resealed.key_id, 2);
        // Once key 1 is dropped, only the re-sealed value opens.
        let new_only = ring(&[(2, 9)], 2);
        assert_eq!(
            new_only.open(5, "name", &sealed),
            Err(CryptoError::UnknownKey(1))
        );
        assert_eq!(
            new_only.open(5, "name", &resealed).unwrap(),
            b"under key one"
        );
    }

    #[test]
    fn keys_from_the_environment() {
        let k1 = b64(&[1; 32]);
        let k2 = b64(&[2; 32]);
        assert!(
            Keyring::from_env_values(None, None, None)
                .unwrap()
                .is_none()
        );
        assert!(
            Keyring::from_env_values(Some(" "), Some(""), None)
                .unwrap()
                .is_none()
        );
        let one = Keyring::from_env_values(Some(k1.as_str()), None, None)
            .unwrap()
            .unwrap();
        assert_eq!((one.key_ids(), one.active_key_id()), (vec![1], 1));
        let keys = format!("1:{k1}, 2:{k2}");
        let two = Keyring::from_env_values(None, Some(keys.as_str()), None)
            .unwrap()
            .unwrap();
        assert_eq!((two.key_ids(), two.active_key_id()), (vec![1, 2], 2));
        let pinned = Keyring::from_env_values(None, Some(keys.as_str()), Some("1"))
            .unwrap()
            .unwrap();
        assert_eq!(pinned.active_key_id(), 1);
        let merged = Keyring::from_env_values(
            Some(k1.as_str()),
            Some(format!("2:{k2}").as_str()),
            Some("2"),
        )
        .unwrap()
        .unwrap();
        assert_eq!((merged.key_ids(), merged.active_key_id()), (vec![1, 2], 2));
        // The Debug form shows ids only.
        let shown = format!("{merged:?}");
        assert!(
            shown.contains("key_ids: [1, 2]") && !shown.contains(&k1),
            "{shown}"
        );
    }

    #[test]
    fn bad_key_material_is_a_clear_error_without_the_material() {
        let short = b64(&[3; 16]);
        let good = b64(&[4; 32]);
        // (SANDFIRE_SECRETS_KEY, SANDFIRE_SECRETS_KEYS, SANDFIRE_SECRETS_KEY_ID, the error says)
        type Case<'a> = (Option<&'a str>, Option<String>, Option<&'a str>, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                Some("not base64!"),
                None,
                None,
                "SANDFIRE_SECRETS_KEY is not valid base64",
            ),
            (
                Some(short.as_str()),
                None,
                None,
                "decodes to 16 bytes, not 32",
            ),
            (
                None,
                Some(good.clone()),
                None,
                "is not <key id>:<base64 key>",
            ),
            (
                None,
                Some(format!("x:{good}")),
                None,
                "use a positive number",
            ),
            (
                None,
                Some(format!("0:{good}")),
                None,
                "use a positive number",
            ),
            (
                None,
                Some(format!("2:{short}")),
                None,
                "SANDFIRE_SECRETS_KEYS key 2 decodes to 16",
            ),
            (
                None,
                Some(format!("2:{good},2:{good}")),
                None,
                "key id 2 is given twice",
            ),
            (
                Some(good.as_str()),
                Some(format!("1:{good}")),
                None,
                "SANDFIRE_SECRETS_KEY is key id 1",
            ),
            (Some(good.as_str()), None, Some("2"), "active key id 2"),
            (
                Some(good.as_str()),
                None,
                Some("two"),
                "SANDFIRE_SECRETS_KEY_ID is \"two\"",
            ),
            (None, None, Some("1"), "no key is"),
        ];
        for (key, keys, active, says) in cases {
            let err = Keyring::from_env_values(key, keys.as_deref(), active).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(says), "expected {says:?} in {text:?}");
            assert!(!text.contains(&good) && !text.contains(&short), "{text}");
        }
    }
}
