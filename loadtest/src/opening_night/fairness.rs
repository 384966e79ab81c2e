//! Was the queue fair? Kendall's tau between the order fans arrived in and the order the
//! server admitted them, over pairs admitted at different times: two fans admitted in the
//! same tick count neither way (the share of such tied pairs is reported beside it), so a
//! perfectly fair queue scores 1.0. O(n log n) (a merge sort counting inversions), so it runs
//! over a hundred thousand fans.

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Fairness {
    /// (concordant − discordant) / (concordant + discordant); 1.0 when no pair is strict.
    pub kendall_tau: f64,
    /// Share of all pairs admitted in the same tick.
    pub tied_share: f64,
    pub fans: usize,
    pub discordant_pairs: u64,
}

/// `fans`: (arrival sequence, admission time) of each fan; arrival sequences are distinct.
pub fn measure(fans: &[(u64, i64)]) -> Fairness {
    let mut by_arrival = fans.to_vec();
    by_arrival.sort_unstable_by_key(|(arrival, _)| *arrival);
    let mut admitted: Vec<i64> = by_arrival.iter().map(|(_, at)| *at).collect();
    let discordant = inversions(&mut admitted);
    // `admitted` is sorted now: count the pairs within each run of equal times.
    let mut tied = 0u64;
    let mut run = 1u64;
    for w in admitted.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            tied += run * (run - 1) / 2;
            run = 1;
        }
    }
    tied += run * run.saturating_sub(1) / 2;
    let n = fans.len() as u64;
    let total = n * n.saturating_sub(1) / 2;
    let concordant = total - tied - discordant;
    let strict = concordant + discordant;
    Fairness {
        kendall_tau: if strict == 0 {
            1.0
        } else {
            (concordant as f64 - discordant as f64) / strict as f64
        },
        tied_share: if total == 0 {
            0.0
        } else {
            tied as f64 / total as f64
        },
        fans: fans.len(),
        discordant_pairs: discordant,
    }
}

/// Pairs i < j with v[i] > v[j] (equal values are not inversions); sorts `v`.
fn inversions(v: &mut [i64]) -> u64 {
    if v.len() < 2 {
        return 0;
    }
    let mid = v.len() / 2;
    let mut count = inversions(&mut v[..mid]) + inversions(&mut v[mid..]);
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if v[i] <= v[j] {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            count += (mid - i) as u64;
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(fans: &[(u64, i64)]) -> (u64, u64, u64) {
        let (mut c, mut d, mut t) = (0, 0, 0);
        for (i, a) in fans.iter().enumerate() {
            for b in &fans[i + 1..] {
                let (first, second) = if a.0 < b.0 { (a, b) } else { (b, a) };
                match first.1.cmp(&second.1) {
                    std::cmp::Ordering::Less => c += 1,
                    std::cmp::Ordering::Greater => d += 1,
                    std::cmp::Ordering::Equal => t += 1,
                }
            }
        }
        (c, d, t)
    }

    #[test]
    fn a_fair_queue_with_ticks_scores_one() {
        // Admitted five to a tick, in arrival order.
        let fans: Vec<(u64, i64)> = (0..100).map(|i| (i, (i / 5) as i64 * 250)).collect();
        let f = measure(&fans);
        assert_eq!(f.kendall_tau, 1.0);
        assert!(f.tied_share > 0.0);
        assert_eq!(f.discordant_pairs, 0);
    }

    #[test]
    fn agrees_with_counting_every_pair() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let fans: Vec<(u64, i64)> = (0..300)
            .map(|i| (i * 3 + 1, (next() % 40) as i64))
            .collect();
        let (c, d, t) = brute(&fans);
        let f = measure(&fans);
        assert_eq!(f.discordant_pairs, d);
        assert!((f.kendall_tau - (c as f64 - d as f64) / (c + d) as f64).abs() < 1e-12);
        assert!((f.tied_share - t as f64 / (c + d + t) as f64).abs() < 1e-12);
    }

    #[test]
    fn a_reversed_queue_scores_minus_one() {
        let fans: Vec<(u64, i64)> = (0..50).map(|i| (i, 1000 - i as i64)).collect();
        assert_eq!(measure(&fans).kendall_tau, -1.0);
    }
}
