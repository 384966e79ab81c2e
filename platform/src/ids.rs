//! The shapes of the ids Marquee hands out and accepts, checked before anything is looked up.

/// An event id: `[a-z0-9-]{1,64}` (it appears in Redis keys and URLs).
pub fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An opaque id we issued (show, reservation, PaymentIntent): a short ASCII token. Anything
/// else cannot exist, so it is a 404 or 422 without a database read.
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_event_id("opening-night-2"));
        assert!(
            !valid_event_id("Opening") && !valid_event_id("") && !valid_event_id(&"a".repeat(65))
        );
        assert!(plausible_id("r_AbC-9") && plausible_id("s_x"));
        assert!(!plausible_id("a b") && !plausible_id("x'--") && !plausible_id(""));
    }
}
