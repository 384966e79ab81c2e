//! The `Stripe-Signature` header (`marquee_parsers::stripe_signature`): any header and body
//! are judged without panicking; a header that signs the body with the secret inside the
//! tolerance passes, with any other `v1` entries beside it; with another secret it never does.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use marquee_parsers::stripe_signature::{SignatureError, verify};
use sha2::Sha256;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_767_225_600;

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

fuzz_target!(|data: &[u8]| {
    // The first line is the header, the rest the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    let judged = verify(&header, body, SECRET, NOW, 300);

    // A forged header passes only if it carries the real signature (which the fuzzer cannot
    // make): so a pass means one of its v1 entries is exactly ours for some timestamp in it.
    if judged.is_ok() {
        assert!(header.contains("v1="));
    }

    // Signed as Stripe signs, beside whatever else the header says: passes.
    let t = NOW - i64::from(data.first().copied().unwrap_or(0));
    let good = sign(SECRET, t, body);
    let others: String = header
        .split(',')
        .filter(|p| p.trim().starts_with("v1="))
        .map(|p| format!(",{}", p.trim()))
        .collect();
    assert_eq!(
        verify(&format!("t={t}{others},v1={good}"), body, SECRET, NOW, 300),
        Ok(())
    );
    // The same with another secret: never.
    assert_eq!(
        verify(&format!("t={t},v1={good}"), body, "whsec_other", NOW, 300),
        Err(SignatureError::Mismatch)
    );
});
