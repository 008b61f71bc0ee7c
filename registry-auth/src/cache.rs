//! [`CachingAuthenticator`]: bcrypt once per credential, not once per request.
//!
//! Docker, containerd and kubelets send `Authorization: Basic` with every
//! request, and bcrypt is slow on purpose (1.6 ms at cost 5, 50 ms at 10).
//! Verifying every request caps a registry at a few hundred requests per
//! second per core, so this wrapper remembers credentials that verified:
//!
//! - The key is SHA-256(salt ‖ user ‖ `:` ‖ password) with 32 random bytes
//!   of salt drawn per process. The plaintext is never stored, and a key
//!   means nothing outside this process.
//! - Only successes are cached. A wrong password costs bcrypt every time,
//!   as without the cache, so guessing gets no faster.
//! - Entries live for a short TTL and the cache holds a bounded number of
//!   them (expired ones go first, then the oldest).
//! - [`CachingAuthenticator::invalidate`] drops everything at once, for an
//!   htpasswd reload; a verification that was running across it is not
//!   cached (a generation counter tells).
//! - Concurrent misses on one credential run bcrypt once; the others wait
//!   for it on their (blocking) threads, then find the entry.
//!
//! The wrapper answers hits through [`Authenticator::authenticate_cached`],
//! which never blocks, so the server only hops to its blocking pool for a
//! miss. Time is a parameter of the inner methods (`*_at`), so tests drive
//! expiry without sleeping.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::credentials::Credentials;
use crate::scope::{Challenge, Identity, Refusal};
use crate::traits::Authenticator;

/// How long a verified credential is trusted without bcrypt, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// How many credentials are remembered at most, by default.
pub const DEFAULT_CAPACITY: usize = 4096;

type Key = [u8; 32];

/// Wraps an [`Authenticator`] and caches its successes; see the module docs.
pub struct CachingAuthenticator<A> {
    inner: A,
    salt: [u8; 32],
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
    /// One lock per credential being verified (single flight).
    in_flight: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Bumped by `invalidate`; a verification only caches into the
    /// generation it started in.
    generation: u64,
}

struct Entry {
    identity: Identity,
    expires: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent under any panic (plain inserts/removes).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<A: Authenticator> CachingAuthenticator<A> {
    /// Caches `inner` with [`DEFAULT_TTL`] and [`DEFAULT_CAPACITY`].
    pub fn new(inner: A) -> Self {
        CachingAuthenticator {
            inner,
            salt: process_salt(),
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
            state: Mutex::new(State::default()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// How long a verified credential is trusted (zero disables the cache).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How many credentials are remembered at most.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The wrapped authenticator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Forgets every cached credential (call it when the user list changes).
    pub fn invalidate(&self) {
        let mut state = lock(&self.state);
        state.entries.clear();
        state.generation += 1;
    }

    /// Number of credentials currently cached (expired ones included until
    /// they are evicted).
    pub fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, credentials: &Credentials) -> Key {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(credentials.username.as_bytes());
        h.update(b":");
        h.update(credentials.password.as_bytes());
        h.finalize().into()
    }

    fn lookup(&self, key: &Key, now: Instant) -> Option<Identity> {
        let state = lock(&self.state);
        let entry = state.entries.get(key)?;
        (now < entry.expires).then(|| entry.identity.clone())
    }

    /// The cached identity for `credentials` at `now`, without blocking.
    pub fn cached_at(&self, credentials: &Credentials, now: Instant) -> Option<Identity> {
        self.lookup(&self.key(credentials), now)
    }

    /// Authenticates at `now`: from the cache, or by the inner authenticator
    /// (at most one verification per credential at a time), caching success.
    pub fn authenticate_at(
        &self,
        credentials: Option<&Credentials>,
        now: Instant,
    ) -> Result<Identity, Refusal> {
        let Some(credentials) = credentials else {
            return self.inner.authenticate(None);
        };
        let key = self.key(credentials);
        if let Some(identity) = self.lookup(&key, now) {
            return Ok(identity);
        }
        let flight = Arc::clone(lock(&self.in_flight).entry(key).or_default());
        let result = {
            let _turn = lock(&flight);
            // Someone may have verified this credential while we waited.
            match self.lookup(&key, now) {
                Some(identity) => Ok(identity),
                None => {
                    let generation = lock(&self.state).generation;
                    let result = self.inner.authenticate(Some(credentials));
                    if let Ok(identity) = &result {
                        self.insert(key, identity.clone(), now, generation);
                    }
                    result
                }
            }
        };
        let mut flights = lock(&self.in_flight);
        // Ours and the map's: nobody else is waiting on this credential.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(&key);
        }
        result
    }

    fn insert(&self, key: Key, identity: Identity, now: Instant, generation: u64) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut state = lock(&self.state);
        if state.generation != generation {
            return; // invalidated while verifying: the answer may be stale
        }
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            state.entries.retain(|_, e| e.expires > now);
            if state.entries.len() >= self.capacity {
                let oldest = state
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    state.entries.remove(&oldest);
                }
            }
        }
        state.entries.insert(
            key,
            Entry {
                identity,
                expires: now + self.ttl,
            },
        );
    }
}

/// 32 random bytes for this process. Should the OS refuse randomness, the
/// salt falls back to std's randomly keyed hasher, still unknown outside.
fn process_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    if getrandom::fill(&mut salt).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let state = std::collections::hash_map::RandomState::new();
        for (i, chunk) in salt.chunks_mut(8).enumerate() {
            let mut h = state.build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    salt
}

impl<A: Authenticator> Authenticator for CachingAuthenticator<A> {
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        self.authenticate_at(credentials, Instant::now())
    }

    /// A hit, or whatever the inner authenticator answers without blocking
    /// (a missing credential); `None` on a miss.
    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        match credentials {
            Some(c) => self.cached_at(c, Instant::now()).map(Ok),
            None => self.inner.authenticate_cached(None),
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        self.inner.challenge()
    }
}

impl<A: fmt::Debug> fmt::Debug for CachingAuthenticator<A> {
    /// Never shows keys or identities; only sizes and settings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingAuthenticator")
            .field("inner", &self.inner)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("cached", &lock(&self.state).entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
