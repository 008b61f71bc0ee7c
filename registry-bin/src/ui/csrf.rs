//! Tokens that tie a delete form to the user it was shown to.
//!
//! The page's login is HTTP basic auth, which a browser attaches to every
//! request to the origin, cross-site form posts included: a cookie's
//! `SameSite` does not protect it. So each delete form carries a token,
//! HMAC-SHA256 (RFC 2104) under a key made at start-up, over the user and
//! the repository; another site cannot compute it, and a token shown to
//! one user is worthless to another. Tokens live as long as the process.

use sha2::{Digest as _, Sha256};

const BLOCK: usize = 64;

/// The per-process key.
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// A fresh random key (two v4 UUIDs: 244 random bits from the OS).
    pub fn random() -> CsrfKey {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        CsrfKey(key)
    }

    /// The token for `user` (empty when anonymous) deleting in `repository`.
    pub fn token(&self, user: &str, repository: &str) -> String {
        let mut message = Vec::with_capacity(user.len() + repository.len() + 8);
        message.extend_from_slice(b"delete\0");
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(repository.as_bytes());
        hex_of(&hmac(&self.0, &message))
    }

    /// Whether `token` is the one for `user` and `repository`, compared in
    /// constant time.
    pub fn verify(&self, token: &str, user: &str, repository: &str) -> bool {
        let want = self.token(user, repository);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // A key shorter than the block is zero-padded, so "Jefe" padded to 32
        // bytes gives the RFC's answer.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex_of(&hmac(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_bind_user_and_repository() {
        let key = CsrfKey::random();
        let token = key.token("alice", "a/b");
        assert!(key.verify(&token, "alice", "a/b"));
        assert!(!key.verify(&token, "bob", "a/b"));
        assert!(!key.verify(&token, "alice", "a/c"));
        assert!(!key.verify("", "alice", "a/b"));
        assert!(!CsrfKey::random().verify(&token, "alice", "a/b"));
    }
}
