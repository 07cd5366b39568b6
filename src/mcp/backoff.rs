//! Spacing out attempts to reach a server that went away.
//!
//! Pure state with the clock passed in: after each failed attempt the next
//! one is allowed only after a delay that doubles up to a cap, so a dead
//! server costs one quick error per caller, never a tight reconnect loop.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    next_try: Option<Instant>,
    reason: String,
}

impl Backoff {
    /// `Err((wait, reason))` while the last failure's delay has not passed.
    pub fn check(&self, now: Instant) -> Result<(), (Duration, String)> {
        match self.next_try {
            Some(at) if at > now => Err((at - now, self.reason.clone())),
            _ => Ok(()),
        }
    }

    pub fn failed(&mut self, policy: Policy, now: Instant, reason: &str) {
        let doublings = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let delay = policy
            .first_delay
            .saturating_mul(1 << doublings)
            .min(policy.max_delay);
        self.next_try = Some(now + delay);
        reason.clone_into(&mut self.reason);
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.next_try = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_on_success() {
        let policy = Policy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        let start = Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.check(start).is_ok());
        let mut waits = Vec::new();
        for _ in 0..5 {
            backoff.failed(policy, start, "connection refused");
            let (wait, reason) = backoff.check(start).expect_err("inside the delay");
            assert_eq!(reason, "connection refused");
            waits.push(wait.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert!(backoff.check(start + Duration::from_secs(5)).is_ok());
        backoff.succeeded();
        assert!(backoff.check(start).is_ok());
    }
}
