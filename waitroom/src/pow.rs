//! What solves a join's proof-of-work challenge: SHA-256 of `challenge:nonce` starting with
//! the event's `pow_bits` zero bits. The gateway checks it (`queue_gateway::queue::pow`), the
//! waiting-room page and the load generator solve it.

use sha2::{Digest, Sha256};

/// Leading zero bits of `digest`.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Does `nonce` solve `challenge` at `bits`?
pub fn solves(challenge: &str, nonce: &str, bits: u8) -> bool {
    leading_zero_bits(&Sha256::digest(format!("{challenge}:{nonce}"))) >= u32::from(bits)
}

/// The first nonce (counting up from 0) that solves `challenge` at `bits`.
pub fn solve(challenge: &str, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| solves(challenge, nonce, bits))
        .expect("a nonce exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
        assert_eq!(leading_zero_bits(&[0x01, 0x00]), 7);
    }

    #[test]
    fn a_solved_challenge_has_the_zero_bits_asked_for() {
        let nonce = solve("ev.1.abc.tag", 12);
        let digest = Sha256::digest(format!("ev.1.abc.tag:{nonce}"));
        assert_eq!(
            leading_zero_bits(&digest) >= 12,
            solves("ev.1.abc.tag", &nonce, 12)
        );
        assert!(solves("ev.1.abc.tag", &nonce, 12));
        assert!(solves("anything", "0", 0));
    }
}
