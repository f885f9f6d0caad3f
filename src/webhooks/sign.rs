//! `X-Fsdialer-Signature`, Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A receiver recomputes the HMAC over the timestamp and the raw body, compares in constant time, and refuses a
//! timestamp too far from its clock (replays). [`verify`] is that check, used by the tests' receiver and
//! available to Rust receivers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Fsdialer-Signature";
/// The header carrying the event type.
pub const EVENT_HEADER: &str = "X-Fsdialer-Event";
/// The header carrying the event's id, the same on every retry.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` signed at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(mac(secret, t, body).finalize().into_bytes())
    )
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed signature header (expected t=<unix>,v1=<hex>)")]
    Malformed,
    #[error("timestamp {t} is more than {tolerance_secs} s from now ({now})")]
    Stale {
        t: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks a header value against the raw body at `now` (unix seconds): the timestamp within `tolerance_secs`
/// and one `v1` matching (several may be given, as while a secret is rotated).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            Some(_) => {}
            None => return Err(VerifyError::Malformed),
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(VerifyError::Stale {
            t,
            now,
            tolerance_secs,
        });
    }
    // `verify_slice` compares in constant time.
    if sigs
        .iter()
        .any(|s| mac(secret, t, body).verify_slice(s).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_body() {
        // Reference value from Python: hmac.new(b"whsec_0123456789abcdef", b"1700000000.{\"a\":1}",
        // hashlib.sha256).hexdigest()
        let s = signature("whsec_0123456789abcdef", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
        );
        assert_eq!(
            verify(
                "whsec_0123456789abcdef",
                &s,
                br#"{"a":1}"#,
                1_700_000_100,
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_a_wrong_secret_an_old_timestamp_or_garbage_are_refused() {
        let s = signature("secret-secret-01", 1_700_000_000, b"body");
        let now = 1_700_000_000;
        assert_eq!(
            verify("secret-secret-01", &s, b"bodY", now, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("secret-secret-02", &s, b"body", now, 300),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify("secret-secret-01", &s, b"body", now + 301, 300),
            Err(VerifyError::Stale { .. })
        ));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "nonsense"] {
            assert_eq!(
                verify("secret-secret-01", bad, b"body", now, 300),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
    }
}
