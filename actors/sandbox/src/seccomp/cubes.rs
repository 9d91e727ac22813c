//! `not_in`: "allow unless the argument is one of these values", as masked equalities.
//!
//! libseccomp has no masked not-equal, and an allow rule plus deny rules for the same call
//! does not work (it keeps the unconditional allow and drops the rest). So the complement
//! of the excluded set is written as a union of masked equalities: walk the bits of the
//! mask from the top; wherever a prefix is shared by no excluded value, one comparison
//! `(arg & prefix_mask) == prefix` covers every value below it. The result is exact, has
//! at most (bits in mask) × (excluded values) comparisons, and its pieces are disjoint.

use std::collections::BTreeSet;

/// One masked equality: `(arg & mask) == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Masked {
    pub(crate) mask: u32,
    pub(crate) value: u32,
}

/// The masked equalities that together hold exactly when `arg & mask` is not in `excluded`.
///
/// Every excluded value must lie within `mask`, and `excluded` must not be empty (callers
/// validate both; an empty set would yield the always-true comparison `mask = 0`).
pub(crate) fn complement(mask: u32, excluded: &BTreeSet<u32>) -> Vec<Masked> {
    // The bits of the mask, highest first.
    let bits: Vec<u32> = (0..32)
        .rev()
        .map(|b| 1u32 << b)
        .filter(|bit| mask & bit != 0)
        .collect();
    let mut out = Vec::new();
    let start: Vec<u32> = excluded.iter().copied().collect();
    walk(&bits, 0, 0, &start, &mut out);
    out
}

/// Visit the prefix (`prefix_mask`, `prefix`) whose excluded values are `under`.
fn walk(bits: &[u32], prefix_mask: u32, prefix: u32, under: &[u32], out: &mut Vec<Masked>) {
    if under.is_empty() {
        out.push(Masked {
            mask: prefix_mask,
            value: prefix,
        });
        return;
    }
    let Some((&bit, rest)) = bits.split_first() else {
        // Every bit fixed and an excluded value has exactly this pattern: leave it out.
        return;
    };
    let (ones, zeros): (Vec<u32>, Vec<u32>) = under.iter().partition(|v| *v & bit != 0);
    walk(rest, prefix_mask | bit, prefix, &zeros, out);
    walk(rest, prefix_mask | bit, prefix | bit, &ones, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(pieces: &[Masked], arg: u32) -> bool {
        pieces.iter().any(|m| arg & m.mask == m.value)
    }

    fn check(mask: u32, excluded: &[u32]) {
        let set: BTreeSet<u32> = excluded.iter().copied().collect();
        let pieces = complement(mask, &set);
        // Disjoint pieces whose sizes add up to everything but the excluded patterns
        // prove the union is exactly the complement (given none contains an excluded one).
        let size = |m: &Masked| 1u64 << (mask.count_ones() - m.mask.count_ones());
        let total: u64 = pieces.iter().map(size).sum();
        assert_eq!(total, (1u64 << mask.count_ones()) - set.len() as u64);
        for (i, a) in pieces.iter().enumerate() {
            assert_eq!(a.value & !a.mask, 0);
            for b in &pieces[i + 1..] {
                let common = a.mask & b.mask;
                assert_ne!(a.value & common, b.value & common, "{a:?} overlaps {b:?}");
            }
        }
        for &v in &set {
            assert!(!allowed(&pieces, v), "{v:#x} excluded but allowed");
            // Bits outside the mask do not matter to the comparison.
            assert!(
                !allowed(&pieces, v | !mask),
                "{v:#x} with outside bits allowed"
            );
            for bit in 0..32 {
                let near = v ^ (1 << bit);
                let expect = !set.contains(&(near & mask));
                assert_eq!(allowed(&pieces, near), expect, "{near:#x}");
            }
        }
    }

    #[test]
    fn terminal_ioctls_are_cut_out_of_the_full_range() {
        check(u32::MAX, &[0x5412, 0x541c]);
        let set = BTreeSet::from([0x5412, 0x541c]);
        assert!(complement(u32::MAX, &set).len() <= 64);
    }

    #[test]
    fn single_values_edges_and_partial_masks() {
        check(u32::MAX, &[0]);
        check(u32::MAX, &[u32::MAX]);
        check(u32::MAX, &[0, 1, 2, 3, 0x8000_0000]);
        check(0xf, &[3]);
        check(0xf0f0, &[0x1010, 0x2020, 0xf0f0]);
    }

    #[test]
    fn excluding_every_pattern_leaves_nothing() {
        let all: Vec<u32> = (0..4).collect();
        assert!(complement(0b11, &all.into_iter().collect()).is_empty());
    }
}
