//! The one retry policy of every registry request: which failures are worth another
//! attempt (connection errors, 408, 429, 5xx), how many attempts a request gets, and
//! how long to wait between them (`Retry-After`, else exponential backoff).

use std::time::{Duration, SystemTime};

use ureq::http::Response;
use ureq::Body;

use super::challenge::header;
use super::challenge::retry_after;
use super::RegistryOptions;
use crate::error::Result;

/// Longest wait between two attempts, whatever a `Retry-After` asks.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How many times a failed request is tried again, and the base of its backoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    retries: u32,
    backoff: Duration,
}

/// One HTTP exchange's outcome: an answer, or a failure to get one.
pub(crate) type Exchange = std::result::Result<Response<Body>, ureq::Error>;

impl RetryPolicy {
    /// The policy `--retry-times` and `--retry-delay` ask for.
    pub(crate) fn new(options: &RegistryOptions) -> RetryPolicy {
        RetryPolicy {
            retries: options.retry_times,
            backoff: options.retry_delay,
        }
    }

    /// The same backoff without retries: for a request whose repetition the caller
    /// decides (an upload chunk).
    pub(crate) fn without_retries(self) -> RetryPolicy {
        RetryPolicy { retries: 0, ..self }
    }

    /// How many times a transient failure is retried.
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }

    /// How long to wait before attempt `attempt + 1`: what `retry_after` (a
    /// `Retry-After` value) asks for, else exponential backoff; never over
    /// [`MAX_BACKOFF`].
    pub(crate) fn delay(&self, attempt: u32, retry_after_value: Option<&str>) -> Duration {
        let asked = retry_after_value.and_then(|v| retry_after(v, SystemTime::now(), MAX_BACKOFF));
        asked.unwrap_or_else(|| {
            self.backoff
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_BACKOFF)
        })
    }

    /// The sum of the backoffs between all the attempts of one request.
    pub(crate) fn total_backoff(&self) -> Duration {
        (0..self.retries.min(64))
            .map(|attempt| self.delay(attempt, None))
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// A fresh count of failures, for one request (or one blob read that resumes).
    pub(crate) fn attempts(&self) -> Attempts {
        Attempts {
            policy: *self,
            failures: 0,
        }
    }

    /// Run the exchange `once` builds until its outcome is not a transient failure,
    /// retrying with backoff while the policy allows; the last outcome, whatever it is.
    pub(crate) fn run(&self, mut once: impl FnMut() -> Result<Exchange>) -> Result<Exchange> {
        let mut attempts = self.attempts();
        loop {
            let outcome = once()?;
            let asked = match &outcome {
                Ok(response) if retryable(response.status().as_u16()) => {
                    header(response, "retry-after")
                }
                Err(e) if transient(e) => None,
                _ => return Ok(outcome),
            };
            if !attempts.wait_for_another(asked) {
                return Ok(outcome);
            }
        }
    }
}

/// The failures of one request so far, against its policy's retries.
#[derive(Debug)]
pub(crate) struct Attempts {
    policy: RetryPolicy,
    failures: u32,
}

impl Attempts {
    /// After a failed attempt: `false` when the retries are spent; else wait the
    /// delay (what `retry_after_value` asks for, else backoff) and count the failure.
    pub(crate) fn wait_for_another(&mut self, retry_after_value: Option<&str>) -> bool {
        if self.failures >= self.policy.retries {
            return false;
        }
        std::thread::sleep(self.policy.delay(self.failures, retry_after_value));
        self.failures += 1;
        true
    }
}

/// Answers worth another attempt.
pub(crate) fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Failures of the connection rather than of the request.
pub(crate) fn transient(e: &ureq::Error) -> bool {
    // A TLS failure (a certificate refused, plain HTTP where TLS was expected) is the
    // same on every attempt.
    if super::trust::rustls_error(e).is_some() {
        return false;
    }
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, backoff_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_millis(backoff_ms),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(3, 100);
        let delays: Vec<u128> = (0..4).map(|a| p.delay(a, None).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800]);
        assert_eq!(policy(3, 1000).delay(30, None), MAX_BACKOFF);
        assert_eq!(p.total_backoff(), Duration::from_millis(700));
    }

    #[test]
    fn retry_after_overrides_the_backoff_within_the_cap() {
        let p = policy(3, 100);
        assert_eq!(p.delay(0, Some("2")), Duration::from_secs(2));
        assert_eq!(p.delay(0, Some("3600")), MAX_BACKOFF);
        // Unreadable: the backoff.
        assert_eq!(p.delay(1, Some("soon")), Duration::from_millis(200));
    }

    #[test]
    fn attempts_are_counted_per_request() {
        let p = policy(2, 0);
        let mut first = p.attempts();
        assert!(first.wait_for_another(None));
        assert!(first.wait_for_another(None));
        assert!(!first.wait_for_another(None));
        // Another request starts with all its retries.
        assert!(p.attempts().wait_for_another(None));
        assert!(!p.without_retries().attempts().wait_for_another(None));
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 500, 502, 503, 599] {
            assert!(retryable(status), "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 416, 600] {
            assert!(!retryable(status), "{status}");
        }
    }
}
