//! Admission tokens (`marquee_parsers::admission`): any text presented as a token is refused
//! or accepted without panicking (signature, algorithm, kid, times, possession); a token we
//! signed and then changed in any byte is refused; a JWKS document of any shape is read or
//! refused without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use marquee_parsers::admission::{AUDIENCE, AdmissionClaims, Confirmation, Keyring};

/// A fixed key, so every run of the target is the same target.
const PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHnfXOndiP4TzZnNqW7b8gk4SnxzxBGcNWYHthwwnq9X
-----END PRIVATE KEY-----
";

struct Fixture {
    ring: Keyring,
    token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut ring = Keyring::default();
        ring.add_private_pem("k1", PEM)
            .expect("the fixed key loads");
        let now = 1_767_225_600; // 2026-01-01
        let claims = AdmissionClaims {
            iss: "marquee".into(),
            aud: AUDIENCE.into(),
            sub: "visitor".into(),
            evt: "event".into(),
            iat: now,
            nbf: now,
            exp: now + 100 * 365 * 86_400,
            jti: "j".into(),
            cnf: Some(Confirmation {
                vkh: marquee_parsers::admission::visitor_key_hash("secret"),
            }),
        };
        let token = ring.sign(&claims).expect("signs");
        assert!(
            ring.verify(&token, "marquee", "event", Some("secret"))
                .is_ok()
        );
        Fixture { ring, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let text = String::from_utf8_lossy(data);

    // Anything presented: judged without panicking, and never for an event it does not name.
    if let Ok(claims) = f.ring.verify(&text, "marquee", "event", Some(&text)) {
        assert_eq!(claims.evt, "event");
    }
    let _ = f.ring.verify_typed::<serde_json::Value>(&text, "ticket");
    let _ = marquee_parsers::admission::token_kid(&text);
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = Keyring::from_jwks(&doc);
    }

    // Our token with one byte changed never passes.
    if let Some((&at, flip)) = data.split_last() {
        let mut changed = f.token.clone().into_bytes();
        let i = usize::from(at) * changed.len() / 256;
        changed[i] ^= flip.first().copied().unwrap_or(1).max(1);
        if let Ok(changed) = String::from_utf8(changed) {
            assert!(
                f.ring
                    .verify(&changed, "marquee", "event", Some("secret"))
                    .is_err(),
                "{changed}"
            );
        }
    }
});
