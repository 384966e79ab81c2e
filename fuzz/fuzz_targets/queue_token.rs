//! Queue tokens (`marquee_parsers::queue_token`): whatever a client presents, `verify` answers
//! without panicking; what it accepts signs back to itself; a token we signed and then changed
//! in any byte is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marquee_parsers::queue_token::{QueueClaims, QueueSigner};

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";
const PREVIOUS: &str = "fuzz-previous-0123456789abcdef012345678";

fuzz_target!(|data: &[u8]| {
    let signer = QueueSigner::rotating(SECRET, PREVIOUS);
    let text = String::from_utf8_lossy(data);

    // Anything at all: no panic; accepted means it is a token of ours, claims intact.
    if let Some(claims) = signer.verify(&text) {
        assert_eq!(signer.verify(&signer.sign(&claims)), Some(claims));
    }
    let _ = signer.csrf_matches("visitor", &text);

    // Claims made of the input round-trip; any change to their token is refused.
    let (v, e) = data.split_at(data.len() / 2);
    let claims = QueueClaims {
        v: String::from_utf8_lossy(v).into_owned(),
        e: String::from_utf8_lossy(e).into_owned(),
        p: data.first().map(|b| u64::from(*b) * 1_000_003),
        k: (data.len() % 3 == 0).then(|| "k".repeat(data.len() % 50)),
        t: i64::from(data.len() as u32),
        l: data.len() % 2 == 1,
    };
    let token = signer.sign(&claims);
    assert_eq!(signer.verify(&token), Some(claims));
    if let Some((&at, flip)) = data.split_last() {
        let mut changed = token.clone().into_bytes();
        let i = usize::from(at) * changed.len() / 256;
        let flip = flip.first().copied().unwrap_or(1).max(1);
        changed[i] ^= flip;
        if let Ok(changed) = String::from_utf8(changed) {
            assert_eq!(
                signer.verify(&changed),
                None,
                "{token} changed to {changed}"
            );
        }
    }
});
