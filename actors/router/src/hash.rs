//! Tool name → shard, by rendezvous (highest-random-weight) hashing.
//!
//! Every shard scores every name and the highest score wins. Adding shard K to shards
//! 0..K changes no score of the old shards, so a name moves only if the new shard
//! outscores its old owner: about 1/(K+1) of the names move, all of them onto the new
//! shard. A ring with virtual nodes gives the same property but needs its node count
//! tuned for balance and a sorted ring to search; rendezvous is a dozen lines, perfectly
//! minimal in what it moves, and its O(K) lookup is a few nanoseconds for the handful of
//! shards a node runs.
//!
//! The hash is written here (FNV-1a, then the splitmix64 finalizer) rather than taken from
//! `std`, whose `DefaultHasher` may change between Rust releases: the mapping is the same
//! on every build.

/// The shard (in `0..shards`) that owns `name`; `0` when there are no shards.
pub fn shard_of(name: &str, shards: usize) -> usize {
    let key = fnv1a(name.as_bytes());
    (0..shards)
        .max_by_key(|&shard| (score(key, shard), shard))
        .unwrap_or(0)
}

fn score(key: u64, shard: usize) -> u64 {
    mix(key ^ mix(shard as u64 + 1))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finalizer: a bijection that spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
