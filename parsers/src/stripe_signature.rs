//! Verifying `Stripe-Signature` exactly as Stripe signs: `t=<unix seconds>` and one or more
//! `v1=<hex HMAC-SHA256 of "<t>.<raw body>">`; any matching `v1` passes (Stripe sends several
//! while a secret rolls), compared in constant time, within a tolerance of the timestamp.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("Stripe-Signature header missing or malformed")]
    Malformed,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

pub fn verify(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_s {
        return Err(SignatureError::Stale);
    }
    for sig in signatures {
        let Some(bytes) = decode_hex(sig) else {
            continue;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        if mac.verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn accepts_any_matching_v1_and_refuses_the_rest() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_a", 1000, body);
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), body, "whsec_a", 1010, 300),
            Ok(())
        );
        assert_eq!(
            verify(
                &format!("t=1000,v1=00ff,v1={good}"),
                body,
                "whsec_a",
                1010,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), body, "whsec_b", 1010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), b"{}", "whsec_a", 1010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), body, "whsec_a", 1400, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("v1=abcd", body, "whsec_a", 1000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("t=1000", body, "whsec_a", 1000, 300),
            Err(SignatureError::Malformed)
        );
        // v0 (test-mode legacy) signatures do not count.
        assert_eq!(
            verify(&format!("t=1000,v0={good}"), body, "whsec_a", 1000, 300),
            Err(SignatureError::Malformed)
        );
    }
}
