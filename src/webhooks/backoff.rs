//! Back-off between tries of one delivery: exponential from the webhook's `retry_min_ms` (doubling per failure)
//! up to `retry_max_ms`, with "equal jitter" (half fixed, half random) so that receivers coming back after an
//! outage are not hit by every waiting event in the same instant, while no wait drops below half its step.

use crate::campaign::webhook::WebhookConfig;
use std::time::Duration;

/// The wait after the `failures`-th failed try (1 = the first), with `random` in `[0, 1)`.
pub fn retry_delay(hook: &WebhookConfig, failures: u32, random: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(40);
    let step = hook
        .retry_min_ms
        .saturating_mul(1u64 << doublings)
        .min(hook.retry_max_ms);
    let half = step / 2;
    let jitter = (half as f64 * random.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(step - half + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::webhook::WebhookEvent;

    #[test]
    fn waits_double_up_to_the_cap_and_jitter_stays_within_half_a_step() {
        let hook = WebhookConfig {
            url: "http://h/".into(),
            events: vec![WebhookEvent::AttemptEnd],
            secret: "0123456789abcdef".into(),
            timeout_ms: 1000,
            max_attempts: 10,
            retry_min_ms: 1000,
            retry_max_ms: 60_000,
        };
        let ms = |f, r| retry_delay(&hook, f, r).as_millis() as u64;
        assert_eq!((ms(1, 0.0), ms(1, 0.999_999)), (500, 999));
        assert_eq!((ms(2, 0.0), ms(3, 0.0), ms(4, 0.0)), (1000, 2000, 4000));
        assert_eq!(ms(7, 0.0), 30_000, "capped at retry_max_ms");
        assert_eq!(ms(100, 1.0), 60_000, "no overflow far out");
    }
}
