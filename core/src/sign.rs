//! Signed orders: only a ground controller's keys change forwarding.
//!
//! A schedule (`crate::schedule`) is signed with Ed25519 (RFC 8032) over a
//! canonical message that binds everything a forged or replayed order
//! could change: the node it is for, its serial, and for every entry the
//! activation instant, the FIB version and a SHA-256 digest of the entry's
//! full FIB in the canonical binary encoding (`crate::fib::binary`; a delta
//! is expanded first, so a full and a delta-encoded schedule of the same
//! FIBs carry the same signature).
//!
//! ```text
//! "orbitmesh-schedule-v1" 0x00
//! u32 len(node) | node | u64 serial | u32 entries
//! per entry: u64 at_ns | u64 version | [32] sha256(binary FIB)
//! ```
//! (integers big-endian).
//!
//! A dataplane that lists trusted keys ([`Trust`]) takes only schedules
//! signed by one of them, while the key is valid (each key may carry a
//! validity period, which is how keys are rotated: the new key is trusted
//! from a date, the old one until a later date) and not revoked; the serial
//! must be above the last one accepted, which the dataplane keeps in its
//! state directory, so a replay is refused after a restart too. Every
//! refusal has a [`Refusal`] kind, logged and counted.

use crate::fib::spec::FibSpec;
use crate::schedule::{Schedule, ScheduleError};
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"orbitmesh-schedule-v1\0";

/// An Ed25519 public key; written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature; written as 128 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

/// A secret signing key (the controller's); written as 64 hex digits in a
/// file only its owner reads.
pub struct SecretKey(ed25519_dalek::SigningKey);

/// The signature that travels with a schedule: which key, and the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub key: PublicKey,
    pub signature: SignatureBytes,
}

/// A key a dataplane trusts, with its validity period (ns since the Unix
/// epoch; open-ended when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// A name for logs ("ground-1-2026").
    pub name: String,
    pub key: PublicKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_ns: Option<u64>,
}

/// What a dataplane accepts orders from. With no keys, orders need no
/// signature (a lab; the control socket's owner check still applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pub keys: Vec<TrustedKey>,
    pub revoked: Vec<PublicKey>,
}

/// Why a signed order was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsigned: this dataplane takes only orders signed by a trusted key")]
    Unsigned,
    #[error("signed by a key this dataplane does not trust")]
    UnknownKey,
    #[error("signed by a revoked key")]
    Revoked,
    #[error("signed by a key not valid at this time (expired or not yet valid)")]
    Expired,
    #[error("the signature does not match the order (forged or altered)")]
    BadSignature,
    #[error("the order is for another node")]
    OtherNode,
    #[error("replayed or older: the serial is not above the last one accepted")]
    Replayed,
}

impl Refusal {
    /// Every kind, in a fixed order (counters).
    pub const ALL: [Refusal; 7] = [
        Refusal::Unsigned,
        Refusal::UnknownKey,
        Refusal::Revoked,
        Refusal::Expired,
        Refusal::BadSignature,
        Refusal::OtherNode,
        Refusal::Replayed,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Unsigned => "order_unsigned",
            Refusal::UnknownKey => "order_unknown_key",
            Refusal::Revoked => "order_revoked_key",
            Refusal::Expired => "order_expired_key",
            Refusal::BadSignature => "order_bad_signature",
            Refusal::OtherNode => "order_other_node",
            Refusal::Replayed => "order_replayed",
        }
    }
}

/// The canonical message a schedule's signature covers (module docs).
pub fn schedule_message(s: &Schedule) -> Result<Vec<u8>, ScheduleError> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 16 + s.node.len() + s.entries.len() * 48);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(&(s.node.len() as u32).to_be_bytes());
    m.extend_from_slice(s.node.as_bytes());
    m.extend_from_slice(&s.serial.to_be_bytes());
    m.extend_from_slice(&(s.entries.len() as u32).to_be_bytes());
    s.walk(|i, at, fib| {
        m.extend_from_slice(&at.to_be_bytes());
        m.extend_from_slice(&fib.version.to_be_bytes());
        m.extend_from_slice(
            &fib_digest(fib).map_err(|problem| ScheduleError::BadEntry { entry: i, problem })?,
        );
        Ok(())
    })?;
    Ok(m)
}

/// The message a schedule clear's signature covers: the node and the
/// order's serial (above the last one accepted, like a schedule's).
pub fn clear_message(node: &str, serial: u64) -> Vec<u8> {
    let mut m = b"orbitmesh-clear-v1\0".to_vec();
    m.extend_from_slice(&(node.len() as u32).to_be_bytes());
    m.extend_from_slice(node.as_bytes());
    m.extend_from_slice(&serial.to_be_bytes());
    m
}

/// SHA-256 of a FIB's canonical binary encoding.
pub fn fib_digest(fib: &FibSpec) -> Result<[u8; 32], String> {
    let bin = fib.to_binary().map_err(|e| e.to_string())?;
    Ok(Sha256::digest(&bin).into())
}

impl SecretKey {
    /// A new key from 32 random bytes (the caller reads them from the
    /// system's random source).
    pub fn from_bytes(seed: [u8; 32]) -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The 64 hex digits a key file holds.
    pub fn to_hex(&self) -> String {
        hex(&self.0.to_bytes())
    }

    pub fn from_hex(s: &str) -> Result<SecretKey, String> {
        Ok(SecretKey::from_bytes(unhex(s.trim())?))
    }

    /// Signs a message (see [`schedule_message`], [`clear_message`]).
    pub fn sign(&self, m: &[u8]) -> Signed {
        Signed {
            key: self.public(),
            signature: SignatureBytes(self.0.sign(m).to_bytes()),
        }
    }

    /// Signs a schedule.
    pub fn sign_schedule(&self, s: &Schedule) -> Result<Signed, ScheduleError> {
        Ok(self.sign(&schedule_message(s)?))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

impl Trust {
    /// True when orders must be signed.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks `signed` over the message `m`, from a key trusted at `now_ns`;
    /// returns the key's name.
    pub fn verify(&self, m: &[u8], signed: Option<&Signed>, now_ns: u64) -> Result<&str, Refusal> {
        let s = signed.ok_or(Refusal::Unsigned)?;
        if self.revoked.contains(&s.key) {
            return Err(Refusal::Revoked);
        }
        let k = self
            .keys
            .iter()
            .find(|k| k.key == s.key)
            .ok_or(Refusal::UnknownKey)?;
        if k.not_before_ns.is_some_and(|t| now_ns < t) || k.not_after_ns.is_some_and(|t| now_ns > t)
        {
            return Err(Refusal::Expired);
        }
        let vk =
            ed25519_dalek::VerifyingKey::from_bytes(&s.key.0).map_err(|_| Refusal::BadSignature)?;
        let sig = ed25519_dalek::Signature::from_bytes(&s.signature.0);
        vk.verify_strict(m, &sig)
            .map_err(|_| Refusal::BadSignature)?;
        Ok(&k.name)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    if s.len() != 2 * N || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("expected {} hex digits, got {:?}", 2 * N, cut(s)));
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

macro_rules! hex_type {
    ($t:ident, $n:expr, $what:expr) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($t), self)
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                unhex::<$n>(s.trim())
                    .map($t)
                    .map_err(|e| format!("{}: {e}", $what))
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_type!(PublicKey, 32, "an Ed25519 public key");
hex_type!(SignatureBytes, 64, "an Ed25519 signature");

#[cfg(test)]
mod tests {
    use super::*;

    fn fib(v: u64) -> FibSpec {
        FibSpec::parse(&format!(
            "version = {v}\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = {}\naction = \"pop\"\n",
            16000 + v
        ))
        .unwrap()
    }

    fn sched(node: &str, serial: u64) -> Schedule {
        Schedule::delta_encoded(node, serial, &[(1_000, fib(1)), (2_000, fib(2))])
    }

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    fn trust(k: &SecretKey) -> Trust {
        Trust {
            keys: vec![TrustedKey {
                name: "ground".into(),
                key: k.public(),
                not_before_ns: Some(100),
                not_after_ns: Some(10_000),
            }],
            revoked: vec![],
        }
    }

    #[test]
    fn a_signed_schedule_verifies_and_every_change_breaks_it() {
        let k = key(7);
        let t = trust(&k);
        let s = sched("n0", 3);
        let signed = k.sign_schedule(&s).unwrap();
        let m = schedule_message(&s).unwrap();
        assert_eq!(t.verify(&m, Some(&signed), 500), Ok("ground"));
        // Full and delta encodings of the same FIBs sign the same message.
        let mut full = s.clone();
        full.entries[1].fib = crate::schedule::EntryFib::Full(fib(2));
        assert_eq!(schedule_message(&full).unwrap(), m);
        // Tampering with any part: node, serial, instant, a FIB.
        let mut other = s.clone();
        other.node = "n1".into();
        let mut later = s.clone();
        later.serial = 4;
        let mut moved = s.clone();
        moved.entries[1].at_ns += 1;
        let mut changed = s.clone();
        if let crate::schedule::EntryFib::Delta(d) = &mut changed.entries[1].fib {
            d.labels[0].label += 1;
        }
        for (what, bad) in [
            ("node", other),
            ("serial", later),
            ("instant", moved),
            ("fib", changed),
        ] {
            let m = schedule_message(&bad).unwrap();
            assert_eq!(
                t.verify(&m, Some(&signed), 500),
                Err(Refusal::BadSignature),
                "{what}"
            );
        }
        assert_eq!(t.verify(&m, None, 500), Err(Refusal::Unsigned));
        let forged = key(8).sign_schedule(&s).unwrap();
        assert_eq!(t.verify(&m, Some(&forged), 500), Err(Refusal::UnknownKey));
        let stolen_name = Signed {
            key: k.public(),
            signature: forged.signature,
        };
        assert_eq!(
            t.verify(&m, Some(&stolen_name), 500),
            Err(Refusal::BadSignature)
        );
        assert_eq!(t.verify(&m, Some(&signed), 50), Err(Refusal::Expired));
        assert_eq!(t.verify(&m, Some(&signed), 10_001), Err(Refusal::Expired));
        let mut revoked = t.clone();
        revoked.revoked.push(k.public());
        assert_eq!(
            revoked.verify(&m, Some(&signed), 500),
            Err(Refusal::Revoked)
        );
    }

    #[test]
    fn keys_and_signatures_read_back_as_written() {
        let k = key(9);
        assert_eq!(
            SecretKey::from_hex(&k.to_hex()).unwrap().public(),
            k.public()
        );
        let signed = k.sign_schedule(&sched("n0", 1)).unwrap();
        let j = serde_json::to_string(&signed).unwrap();
        assert_eq!(serde_json::from_str::<Signed>(&j).unwrap(), signed);
        assert!("zz"
            .parse::<PublicKey>()
            .unwrap_err()
            .contains("64 hex digits"));
        assert!(SecretKey::from_hex("00").is_err());
    }
}
