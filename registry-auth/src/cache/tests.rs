use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::htpasswd::{Htpasswd, HtpasswdAuthenticator};

/// Accepts alice:right; counts every verification; optionally slow.
#[derive(Debug, Default)]
struct Counting {
    calls: AtomicUsize,
    delay: Duration,
}

impl Authenticator for Counting {
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        match credentials {
            Some(c) if c.username == "alice" && c.password == "right" => {
                Ok(Identity::User("alice".into()))
            }
            Some(_) => Err(Refusal::InvalidCredentials(Challenge::basic("r"))),
            None => Err(Refusal::MissingCredentials(Challenge::basic("r"))),
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        Some(Challenge::basic("r"))
    }
}

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: password.into(),
    }
}

fn calls(c: &CachingAuthenticator<Counting>) -> usize {
    c.inner().calls.load(Ordering::SeqCst)
}

#[test]
fn a_verified_credential_is_verified_once() {
    let cache = CachingAuthenticator::new(Counting::default());
    let now = Instant::now();
    let alice = creds("alice", "right");
    assert_eq!(cache.authenticate_cached(Some(&alice)), None);
    for _ in 0..3 {
        assert_eq!(
            cache.authenticate_at(Some(&alice), now),
            Ok(Identity::User("alice".into()))
        );
    }
    assert_eq!(calls(&cache), 1);
    assert_eq!(
        cache.authenticate_cached(Some(&alice)),
        Some(Ok(Identity::User("alice".into())))
    );
}

#[test]
fn failures_are_never_cached() {
    let cache = CachingAuthenticator::new(Counting::default());
    let now = Instant::now();
    let wrong = creds("alice", "wrong");
    for _ in 0..3 {
        assert!(cache.authenticate_at(Some(&wrong), now).is_err());
    }
    assert_eq!(calls(&cache), 3);
    assert!(cache.is_empty());
    // A success for the right password does not let another password in.
    assert!(cache
        .authenticate_at(Some(&creds("alice", "right")), now)
        .is_ok());
    assert!(cache.authenticate_at(Some(&wrong), now).is_err());
    assert_eq!(cache.authenticate_cached(Some(&wrong)), None);
    assert_eq!(calls(&cache), 5);
}

#[test]
fn missing_credentials_are_refused_without_blocking_when_the_inner_says_so() {
    let users = Htpasswd::parse("").unwrap();
    let cache = CachingAuthenticator::new(HtpasswdAuthenticator::new(users, "r"));
    assert!(matches!(
        cache.authenticate_cached(None),
        Some(Err(Refusal::MissingCredentials(_)))
    ));
    assert!(matches!(
        cache.authenticate(None),
        Err(Refusal::MissingCredentials(_))
    ));
}

#[test]
fn entries_expire_after_the_ttl() {
    let cache = CachingAuthenticator::new(Counting::default()).with_ttl(Duration::from_secs(10));
    let now = Instant::now();
    let alice = creds("alice", "right");
    cache.authenticate_at(Some(&alice), now).unwrap();
    assert!(cache
        .cached_at(&alice, now + Duration::from_secs(9))
        .is_some());
    assert!(cache
        .cached_at(&alice, now + Duration::from_secs(10))
        .is_none());
    cache
        .authenticate_at(Some(&alice), now + Duration::from_secs(11))
        .unwrap();
    assert_eq!(calls(&cache), 2);
}

#[test]
fn a_zero_ttl_disables_caching() {
    let cache = CachingAuthenticator::new(Counting::default()).with_ttl(Duration::ZERO);
    let now = Instant::now();
    for _ in 0..2 {
        cache
            .authenticate_at(Some(&creds("alice", "right")), now)
            .unwrap();
    }
    assert_eq!(calls(&cache), 2);
}

#[test]
fn invalidate_drops_everything_and_stale_verifications() {
    let cache = CachingAuthenticator::new(Counting::default());
    let now = Instant::now();
    let alice = creds("alice", "right");
    cache.authenticate_at(Some(&alice), now).unwrap();
    cache.invalidate();
    assert!(cache.is_empty());
    assert!(cache.cached_at(&alice, now).is_none());
    // A verification that began before the invalidation must not be cached.
    let before = lock(&cache.state).generation;
    cache.invalidate();
    cache.insert(
        cache.key(&alice),
        Identity::User("alice".into()),
        now,
        before,
    );
    assert!(cache.is_empty());
}

#[test]
fn the_cache_is_bounded_and_evicts_the_oldest() {
    let cache = CachingAuthenticator::new(Counting::default()).with_capacity(2);
    let t0 = Instant::now();
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        let key = cache.key(&creds(user, "p"));
        cache.insert(
            key,
            Identity::User((*user).into()),
            t0 + Duration::from_secs(i as u64),
            0,
        );
    }
    assert_eq!(cache.len(), 2);
    let later = t0 + Duration::from_secs(3);
    assert!(cache.cached_at(&creds("a", "p"), later).is_none());
    assert!(cache.cached_at(&creds("c", "p"), later).is_some());
}

#[test]
fn keys_are_salted_per_instance_and_hold_no_plaintext() {
    let one = CachingAuthenticator::new(Counting::default());
    let two = CachingAuthenticator::new(Counting::default());
    let alice = creds("alice", "right");
    assert_ne!(one.key(&alice), two.key(&alice));
    assert_ne!(one.key(&alice), one.key(&creds("alice", "righ")));
    // user "a:b" with password "c" and user "a" with password "b:c" cannot both
    // exist (user names have no ':'), so the joined form is unambiguous.
    one.authenticate_at(Some(&alice), Instant::now()).unwrap();
    let shown = format!("{one:?}");
    assert!(
        !shown.contains("right") && !shown.contains("alice"),
        "{shown}"
    );
}

#[test]
fn concurrent_misses_verify_once() {
    let cache = Arc::new(CachingAuthenticator::new(Counting {
        delay: Duration::from_millis(50),
        ..Counting::default()
    }));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || cache.authenticate(Some(&creds("alice", "right"))))
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().is_ok());
    }
    assert_eq!(calls(&cache), 1);
    assert!(lock(&cache.in_flight).is_empty());
}

#[test]
fn wraps_a_real_htpasswd() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let users = Htpasswd::parse(&format!("bob:{hash}\n")).unwrap();
    let cache = CachingAuthenticator::new(HtpasswdAuthenticator::new(users, "realm"));
    let bob = creds("bob", "pw");
    assert_eq!(
        cache.authenticate(Some(&bob)),
        Ok(Identity::User("bob".into()))
    );
    assert_eq!(
        cache.authenticate_cached(Some(&bob)),
        Some(Ok(Identity::User("bob".into())))
    );
    assert!(cache.authenticate(Some(&creds("bob", "nope"))).is_err());
    assert_eq!(cache.challenge(), Some(Challenge::basic("realm")));
}
