//! When to try an S3 request again, and how long to wait first.
//!
//! Every operation of the client is idempotent (a repeated PUT writes the same bytes, a
//! repeated DELETE finds nothing, a repeated CompleteMultipartUpload finds the upload
//! completed), so connection errors, timeouts, 5xx answers and throttling are retried.

use std::time::Duration;

/// Attempts per request, the first included: the waits add up to 6.3 to 9.5 s, enough
/// to ride out a gateway restarting (radosgw comes back in 2 to 3 s here) instead of
/// answering 503 to a push that a client may not retry.
pub(crate) const ATTEMPTS: u32 = 7;

/// The wait before the first retry; it doubles at each attempt.
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// True for answers worth a retry: server errors (503 SlowDown included) and 429.
pub(crate) fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// The wait after failed attempt `attempt` (0-based): 100 ms doubling, plus up to half
/// of it again at random so that clients that failed together do not retry together.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = FIRST_DELAY.saturating_mul(1 << attempt.min(10));
    let half_ms = u64::try_from(base.as_millis() / 2)
        .unwrap_or(u64::MAX)
        .max(1);
    // Random bits from the v4 UUID generator the crate already uses for upload ids.
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    base + Duration::from_millis(random % half_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for attempt in 0..ATTEMPTS {
            let base = FIRST_DELAY * (1 << attempt);
            let wait = backoff(attempt);
            assert!(
                wait >= base && wait < base + base / 2,
                "{attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retries_server_errors_and_throttling_only() {
        assert!(retryable(reqwest::StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(reqwest::StatusCode::INTERNAL_SERVER_ERROR));
        assert!(retryable(reqwest::StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(reqwest::StatusCode::NOT_FOUND));
        assert!(!retryable(reqwest::StatusCode::PRECONDITION_FAILED));
        assert!(!retryable(reqwest::StatusCode::FORBIDDEN));
    }
}
