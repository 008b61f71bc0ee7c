//! Throttling failed logins, per client address and per user name.
//!
//! Password guessing and bcrypt CPU exhaustion both need many failed
//! attempts. Each address and each user name gets `failures` failed
//! attempts per `window`; past that, requests carrying credentials for them
//! are answered 429 with `Retry-After` until the window ends, before any
//! bcrypt runs. A success clears the user's count.
//!
//! Memory is bounded: expired windows are dropped when the table grows, and
//! past `MAX_KEYS` new keys are not tracked (they are throttled by address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed-login counters.
#[derive(Debug)]
pub struct Throttle {
    failures: u32,
    window: Duration,
    table: Mutex<HashMap<Key, Window>>,
}

impl Throttle {
    /// Allows `failures` failed attempts per `window`, per address and per user.
    pub fn new(failures: u32, window: Duration) -> Throttle {
        Throttle {
            failures,
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn keys(addr: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = Key> {
        addr.map(Key::Addr)
            .into_iter()
            .chain(user.map(|u| Key::User(u.to_owned())))
    }

    /// `Err(retry_after)` when the address or the user is over the limit.
    pub fn check(
        &self,
        now: Instant,
        addr: Option<IpAddr>,
        user: Option<&str>,
    ) -> Result<(), Duration> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let wait = Self::keys(addr, user)
            .filter_map(|key| table.get(&key).copied())
            .filter(|w| w.failures >= self.failures)
            .filter_map(|w| (w.started + self.window).checked_duration_since(now))
            .max();
        match wait {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt against the address and the user.
    pub fn failed(&self, now: Instant, addr: Option<IpAddr>, user: Option<&str>) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_KEYS {
            let window = self.window;
            table.retain(|_, w| now.duration_since(w.started) < window);
        }
        for key in Self::keys(addr, user) {
            if table.len() >= MAX_KEYS && !table.contains_key(&key) {
                continue;
            }
            let entry = table.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(entry.started) >= self.window {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// Clears the user's count after a successful login.
    pub fn succeeded(&self, user: &str) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.remove(&Key::User(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check(start, ip("10.0.0.1"), Some("bob")).is_ok());
            t.failed(start, ip("10.0.0.1"), Some("bob"));
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            t.check(later, ip("10.0.0.1"), Some("alice")),
            Err(Duration::from_secs(40))
        );
        assert_eq!(
            t.check(later, ip("10.0.0.2"), Some("bob")),
            Err(Duration::from_secs(40))
        );
        assert!(t.check(later, ip("10.0.0.2"), Some("alice")).is_ok());
        assert!(t
            .check(start + Duration::from_secs(60), ip("10.0.0.1"), Some("bob"))
            .is_ok());
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.failed(now, ip("10.0.0.1"), Some("bob"));
        t.failed(now, ip("10.0.0.1"), Some("bob"));
        t.succeeded("bob");
        assert!(t.check(now, ip("10.0.0.9"), Some("bob")).is_ok());
        assert!(t.check(now, ip("10.0.0.1"), Some("carol")).is_err());
    }

    #[test]
    fn a_new_window_starts_fresh() {
        let t = Throttle::new(1, Duration::from_secs(10));
        let now = Instant::now();
        t.failed(now, None, Some("bob"));
        assert!(t.check(now, None, Some("bob")).is_err());
        let later = now + Duration::from_secs(11);
        t.failed(later, None, Some("bob"));
        assert_eq!(
            t.check(later, None, Some("bob")),
            Err(Duration::from_secs(10))
        );
    }
}
