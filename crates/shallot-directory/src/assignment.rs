//! oxend's swarm assignment (directory spec §2), ported bit for bit: which swarm each active
//! service node joins when nodes arrive, leave or come back, and the ids of new swarms.
//!
//! Everything is a pure function of the active node set, the previous swarms and the block hash,
//! so every node of a (simulated) chain computes the same swarms. Ties in the size sort break by
//! ascending swarm id (spec §2.5, §7.4): exactly oxend for ≤ 16 swarms, rule-equivalent above.

use std::collections::BTreeMap;

use rand_mt::Mt64;
use shallot_proto::swarm::SwarmId;

/// A swarm with fewer members is starving: it is topped up, or else dissolved.
pub const MIN_SWARM_SIZE: usize = 5;
/// Surplus each existing swarm keeps before the surplus can found a new swarm.
pub const IDEAL_SWARM_MARGIN: usize = 2;
/// Target swarm size.
pub const IDEAL_SWARM_SIZE: usize = 7;
/// Size of a swarm created from surplus nodes.
pub const NEW_SWARM_SIZE: usize = IDEAL_SWARM_SIZE;
/// A swarm's excess is its size above this base.
pub const EXCESS_BASE: usize = MIN_SWARM_SIZE;
/// New nodes go to a random swarm among the smallest 25 %.
pub const FILL_SWARM_LOWER_PERCENTILE: usize = 25;
/// Members of a dissolved swarm go to the smallest swarms.
pub const DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE: usize = 0;
/// Starving swarms steal from swarms above the 75th size percentile.
pub const STEALING_SWARM_UPPER_PERCENTILE: usize = 75;
/// Marker swarm id of nodes that need a swarm (oxend's `UNASSIGNED_SWARM_ID`).
pub const UNASSIGNED_SWARM_ID: SwarmId = SwarmId::INVALID;
/// Largest assignable swarm id; the ring wraps from here to 0.
pub const MAX_ID: u64 = u64::MAX - 1;
/// Declared by oxend but never enforced: nothing caps a swarm's size.
pub const MAX_SWARM_SIZE: usize = 10;
/// Declared by oxend but unused.
pub const SWARM_BUFFER: usize = 5;

/// Service-node primary pubkey, as listed in a swarm.
type Member = [u8; 32];
/// Swarm id → members, iterated by ascending id like oxend's `std::map`.
type SwarmMap = BTreeMap<SwarmId, Vec<Member>>;

/// Seed for swarm changes at a block: the first 8 bytes of the block hash, little-endian.
pub fn swarm_seed(block_hash: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&block_hash[..8]);
    u64::from_le_bytes(first)
}

/// oxend's `uniform_distribution_portable`: a value in `[0, n)` by rejection sampling, identical on
/// every platform (unlike `std::uniform_int_distribution`). `n` must be non-zero.
fn uniform(rng: &mut Mt64, n: u64) -> u64 {
    debug_assert!(n > 0, "uniform over an empty range");
    let secure_max = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < secure_max {
            return x / (secure_max / n);
        }
    }
}

/// [`uniform`] for a non-empty in-memory length.
fn uniform_index(rng: &mut Mt64, len: usize) -> usize {
    let draw = uniform(rng, len as u64);
    // The draw is below `len`, so it fits.
    usize::try_from(draw).unwrap_or(usize::MAX)
}

/// get_new_swarm_id (§2.3).
///
/// Bisects the largest free arc of the id ring (first maximal gap in ascending order, the wrap gap
/// only if strictly larger); 0 when there are no swarms. `existing` may be in any order; the
/// unassigned marker is not a swarm and is ignored.
pub fn get_new_swarm_id(existing: &[SwarmId]) -> SwarmId {
    let mut ids: Vec<u64> = existing
        .iter()
        .map(|id| id.0)
        .filter(|&id| id != UNASSIGNED_SWARM_ID.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    SwarmId(new_id_among_sorted(&ids))
}

/// [`get_new_swarm_id`] over ids already ascending, distinct and ≤ [`MAX_ID`].
fn new_id_among_sorted(ids: &[u64]) -> u64 {
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return 0;
    };
    let mut max_dist = 0u64;
    let mut best = first;
    for pair in ids.windows(2) {
        let dist = pair[1] - pair[0];
        if dist > max_dist {
            max_dist = dist;
            best = pair[0];
        }
    }
    // 0 and MAX_ID are one apart on the ring; at most MAX_ID + 1 = u64::MAX, so no overflow.
    let wrap_dist = MAX_ID - last + first + 1;
    if wrap_dist > max_dist {
        max_dist = wrap_dist;
        best = last;
    }

    let half = max_dist / 2;
    let to_max = MAX_ID - best;
    if half > to_max {
        half - to_max - 1
    } else {
        best + half
    }
}

/// Σ max(0, size − 5) over all swarms.
fn calc_excess(swarms: &SwarmMap) -> usize {
    swarms
        .values()
        .map(|members| members.len().saturating_sub(EXCESS_BASE))
        .sum()
}

/// Excess needed to found a new swarm and still leave the margin in every existing one.
fn calc_threshold(swarms: &SwarmMap) -> usize {
    NEW_SWARM_SIZE + swarms.len() * IDEAL_SWARM_MARGIN
}

/// (swarm id, size) sorted by size; the stable sort over ascending ids breaks ties by id.
fn sorted_sizes(swarms: &SwarmMap) -> Vec<(SwarmId, usize)> {
    let mut sizes: Vec<(SwarmId, usize)> = swarms
        .iter()
        .map(|(&id, members)| (id, members.len()))
        .collect();
    sizes.sort_by_key(|&(_, size)| size);
    sizes
}

/// oxend's excess pool for `threshold`: (pool length, pool excess counter). The pool is every
/// member of every swarm larger than the threshold, swarm by swarm in id order.
fn excess_pool(swarms: &SwarmMap, threshold: usize) -> (usize, usize) {
    if threshold < MIN_SWARM_SIZE {
        return (0, 0);
    }
    swarms
        .values()
        .filter(|members| members.len() > threshold)
        .fold((0, 0), |(len, excess), members| {
            (len + members.len(), excess + members.len() - MIN_SWARM_SIZE)
        })
}

/// Draws one node uniformly from the excess pool for `threshold` and removes it from its swarm
/// (other members keep their order). `None` only when the pool is empty.
fn take_from_excess_pool(
    swarms: &mut SwarmMap,
    threshold: usize,
    rng: &mut Mt64,
) -> Option<Member> {
    let (pool_len, _) = excess_pool(swarms, threshold);
    if pool_len == 0 {
        return None;
    }
    let mut idx = uniform_index(rng, pool_len);
    for members in swarms.values_mut().filter(|m| m.len() > threshold) {
        if idx < members.len() {
            let picked = members[idx];
            // oxend erases by value (`std::remove`), which is the same for distinct keys.
            members.retain(|m| *m != picked);
            return Some(picked);
        }
        idx -= members.len();
    }
    None
}

/// Forms new swarms of 7 from random surplus nodes while the excess reaches the threshold; does
/// nothing while any swarm is starving.
fn create_new_swarm_from_excess(swarms: &mut SwarmMap, rng: &mut Mt64) {
    if swarms.values().any(|m| m.len() < MIN_SWARM_SIZE) {
        return;
    }
    while calc_excess(swarms) >= calc_threshold(swarms) {
        let mut new_members = Vec::with_capacity(NEW_SWARM_SIZE);
        while new_members.len() < NEW_SWARM_SIZE {
            // Excess ≥ 7 + 2·swarms and each pick lowers it by one, so the pool never runs dry
            // here; if it did, keep the partial swarm rather than lose nodes as oxend would.
            match take_from_excess_pool(swarms, EXCESS_BASE, rng) {
                Some(member) => new_members.push(member),
                None => break,
            }
        }
        // Map keys are ascending and distinct, and the unassigned bucket is out of the map.
        let ids: Vec<u64> = swarms.keys().map(|id| id.0).collect();
        let id = SwarmId(new_id_among_sorted(&ids));
        // The midpoint of a gap ≥ 2 is never an existing id; append rather than drop on a clash.
        swarms.entry(id).or_default().extend(new_members);
    }
}

/// Appends each node to a random swarm among the smallest `percentile` % (extended to all swarms
/// tied with the percentile size), then runs new-swarm creation. `swarms` must not be empty.
fn assign_nodes(nodes: Vec<Member>, swarms: &mut SwarmMap, rng: &mut Mt64, percentile: usize) {
    for node in nodes {
        let sizes = sorted_sizes(swarms);
        let Some(last) = sizes.len().checked_sub(1) else {
            return;
        };
        let k = percentile * last / 100;
        let value = sizes[k].1;
        let upper = sizes[k..]
            .iter()
            .position(|&(_, size)| size > value)
            .map_or(last, |offset| k + offset - 1);
        let (target, _) = sizes[uniform_index(rng, upper + 1)];
        if let Some(members) = swarms.get_mut(&target) {
            members.push(node);
        }
        create_new_swarm_from_excess(swarms, rng);
    }
}

/// Robin Hood round: each starving swarm (smallest first, by a single snapshot) steals random
/// nodes from the swarms above the 75th size percentile; stops at the first one it cannot save.
fn rob_the_rich(swarms: &mut SwarmMap, rng: &mut Mt64) {
    let snapshot = sorted_sizes(swarms);
    let Some(last) = snapshot.len().checked_sub(1) else {
        return;
    };
    // oxend takes `size - 1` on a size_t (wrapping at 0) and uses the stale snapshot on purpose.
    let k = STEALING_SWARM_UPPER_PERCENTILE * last / 100;
    let threshold = snapshot[k].1.wrapping_sub(1).max(MIN_SWARM_SIZE);
    for &(poor, snapshot_size) in &snapshot {
        if snapshot_size >= MIN_SWARM_SIZE {
            break;
        }
        loop {
            let poor_len = swarms.get(&poor).map_or(0, Vec::len);
            let (_, excess) = excess_pool(swarms, threshold);
            if excess < MIN_SWARM_SIZE.saturating_sub(poor_len) {
                return;
            }
            let Some(member) = take_from_excess_pool(swarms, threshold, rng) else {
                return;
            };
            let Some(poor_members) = swarms.get_mut(&poor) else {
                return;
            };
            poor_members.push(member);
            if poor_members.len() >= MIN_SWARM_SIZE {
                break;
            }
        }
    }
}

/// oxend's calc_swarm_changes: `swarms` maps swarm id → member service-node pubkeys (32 bytes);
/// the key SwarmId::INVALID (u64::MAX) holds unassigned nodes (new or recommissioned) that are to be
/// placed. Decommissioned/deregistered nodes must already be removed by the caller. On return every
/// node is in a real swarm and the INVALID key is gone: as in oxend, even a lone node founds swarm 0.
///
/// oxend rebuilds its input from the active-node list each block, so every list is sorted by
/// pubkey and no list is empty: this normalises the caller's map the same way first (member order
/// in the output is the algorithm's, not sorted). If a mass departure would dissolve the last
/// swarm (a crash in oxend, §2.5), that last, starving swarm is kept instead.
pub fn calc_swarm_changes(swarms: &mut BTreeMap<SwarmId, Vec<[u8; 32]>>, seed: u64) {
    swarms.retain(|_, members| !members.is_empty());
    if swarms.is_empty() {
        return;
    }
    for members in swarms.values_mut() {
        members.sort_unstable();
    }
    let mut rng = Mt64::new(seed);

    // 0. Take out the unassigned nodes; there is always at least one swarm.
    let unassigned = swarms.remove(&UNASSIGNED_SWARM_ID).unwrap_or_default();
    if swarms.is_empty() {
        swarms.insert(get_new_swarm_id(&[]), Vec::new());
    }

    // 1. Place new and recommissioned nodes in the smallest quarter.
    assign_nodes(unassigned, swarms, &mut rng, FILL_SWARM_LOWER_PERCENTILE);

    // 2. Top up starving swarms from the largest ones.
    rob_the_rich(swarms, &mut rng);

    // 3. Found new swarms from the surplus.
    create_new_swarm_from_excess(swarms, &mut rng);

    // 4. Dissolve starving swarms, lowest id first, into the smallest swarms.
    if swarms.len() > 1 {
        while let Some(starving) = swarms
            .iter()
            .find(|(_, m)| m.len() < MIN_SWARM_SIZE)
            .map(|(&id, _)| id)
        {
            if swarms.len() == 1 {
                // Guard of §2.5: dissolving the only swarm would leave nowhere to put its nodes.
                break;
            }
            let members = swarms.remove(&starving).unwrap_or_default();
            assign_nodes(
                members,
                swarms,
                &mut rng,
                DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Test key `i`: first byte scrambled so pubkey order differs from index order.
    fn key(i: usize) -> Member {
        let mut k = [0u8; 32];
        k[0] = u8::try_from(i * 151 % 256).unwrap();
        k[1] = u8::try_from(i % 256).unwrap();
        k[2] = u8::try_from(i / 256).unwrap();
        k
    }

    fn index(k: &Member) -> usize {
        usize::from(k[1]) + 256 * usize::from(k[2])
    }

    /// Block hash of test block `h` (arbitrary but fixed bytes).
    fn block_hash(h: usize) -> [u8; 32] {
        std::array::from_fn(|j| u8::try_from((h * 29 + 7 * j + 3) % 256).unwrap())
    }

    fn ids(list: &[u64]) -> Vec<SwarmId> {
        list.iter().copied().map(SwarmId).collect()
    }

    /// The map as (id, member indices) for comparison with reference output.
    fn as_indices(swarms: &SwarmMap) -> Vec<(u64, Vec<usize>)> {
        swarms
            .iter()
            .map(|(id, m)| (id.0, m.iter().map(index).collect()))
            .collect()
    }

    /// One simulated block: drop the given nodes, queue the new ones, recompute.
    fn block(swarms: &mut SwarmMap, h: usize, add: &[usize], drop: &BTreeSet<usize>) {
        for members in swarms.values_mut() {
            members.retain(|k| !drop.contains(&index(k)));
        }
        if !add.is_empty() {
            swarms.insert(UNASSIGNED_SWARM_ID, add.iter().map(|&i| key(i)).collect());
        }
        calc_swarm_changes(swarms, swarm_seed(&block_hash(h)));
    }

    fn total(swarms: &SwarmMap) -> usize {
        swarms.values().map(Vec::len).sum()
    }

    #[test]
    fn mt19937_64_matches_the_reference_outputs() {
        let mut mt = Mt64::new(5489);
        assert_eq!(mt.next_u64(), 14_514_284_786_278_117_030);
        for _ in 1..9999 {
            mt.next_u64();
        }
        // C++ [rand.predef]: the 10000th output of a default-constructed mt19937_64.
        assert_eq!(mt.next_u64(), 9_981_545_732_273_789_042);
    }

    #[test]
    fn seed_is_the_first_eight_hash_bytes_little_endian() {
        let hash: [u8; 32] = std::array::from_fn(|i| u8::try_from(i + 1).unwrap());
        assert_eq!(swarm_seed(&hash), 0x0807_0605_0403_0201);
        assert_eq!(swarm_seed(&block_hash(1)), 5_857_568_191_218_067_232);
    }

    #[test]
    fn portable_uniform_draws_exact_values() {
        let mut mt = Mt64::new(5489);
        let draws: Vec<u64> = (0..5).map(|_| uniform(&mut mt, 10)).collect();
        assert_eq!(draws, [7, 2, 7, 9, 0]);
        let mut mt = Mt64::new(42);
        let draws: Vec<u64> = (0..8).map(|_| uniform(&mut mt, 7)).collect();
        assert_eq!(draws, [5, 4, 5, 0, 6, 0, 4, 2]);
        // n = u64::MAX accepts every draw below it and returns it unchanged.
        let mut mt = Mt64::new(5489);
        assert_eq!(uniform(&mut mt, u64::MAX), 14_514_284_786_278_117_030);
        assert_eq!(uniform(&mut Mt64::new(5489), 1), 0);
        // n = 2^63 + 1 rejects draws ≥ n: the 1st, 3rd and 4th raw outputs are skipped.
        let mut mt = Mt64::new(5489);
        let n = (1u64 << 63) + 1;
        let draws: Vec<u64> = (0..3).map(|_| uniform(&mut mt, n)).collect();
        assert_eq!(
            draws,
            [
                4_620_546_740_167_642_908,
                355_488_278_567_739_596,
                7_469_126_240_319_926_998
            ]
        );
    }

    #[test]
    fn new_swarm_ids_bisect_the_largest_gap() {
        let mut existing = Vec::new();
        for expected in [0, MAX_ID / 2, MAX_ID / 2 + MAX_ID / 4 + 1, MAX_ID / 4] {
            let id = get_new_swarm_id(&existing);
            assert_eq!(id, SwarmId(expected));
            existing.push(id);
        }
        assert_eq!(MAX_ID / 2, 9_223_372_036_854_775_807);
        assert_eq!(MAX_ID / 2 + MAX_ID / 4 + 1, 13_835_058_055_282_163_711);
        assert_eq!(MAX_ID / 4, 4_611_686_018_427_387_903);
        assert_eq!(get_new_swarm_id(&ids(&[MAX_ID / 2])), SwarmId(MAX_ID));
        assert_eq!(
            get_new_swarm_id(&ids(&[MAX_ID / 4])),
            SwarmId(MAX_ID / 2 + MAX_ID / 4)
        );
        let single = 12_345_678_901_234_567_890;
        assert_eq!(
            get_new_swarm_id(&ids(&[single])),
            SwarmId(single - MAX_ID / 2 - 1)
        );
        // Gaps straddling the midpoint put the new id at the wrap-around point.
        let mid = MAX_ID / 2;
        assert_eq!(
            get_new_swarm_id(&ids(&[mid - 100, mid + 100])),
            SwarmId(MAX_ID)
        );
        assert_eq!(get_new_swarm_id(&ids(&[mid - 100, mid + 101])), SwarmId(0));
        assert_eq!(
            get_new_swarm_id(&ids(&[mid - 101, mid + 101])),
            SwarmId(MAX_ID)
        );
        assert_eq!(get_new_swarm_id(&ids(&[mid - 101, mid + 102])), SwarmId(0));
        // Input order and the unassigned marker do not matter.
        assert_eq!(
            get_new_swarm_id(&ids(&[mid + 101, u64::MAX, mid - 101])),
            SwarmId(MAX_ID)
        );
    }

    #[test]
    fn new_swarm_ids_match_the_oxen_core_stress_vector() {
        let mut rng = Mt64::new(12_345);
        // Kept sorted; the wrapper's normalisation is checked on every 500th round.
        let mut existing: Vec<u64> = Vec::new();
        for round in 0..10_000 {
            let n = rng.next_u64();
            if n < 1 << 62 {
                let at = usize::try_from(n % existing.len() as u64).unwrap();
                existing.remove(at);
            } else {
                let id = new_id_among_sorted(&existing);
                if round % 500 == 0 {
                    let mut shuffled = ids(&existing);
                    shuffled.reverse();
                    assert_eq!(get_new_swarm_id(&shuffled), SwarmId(id));
                }
                let Err(at) = existing.binary_search(&id) else {
                    panic!("collision at {id}");
                };
                existing.insert(at, id);
            }
        }
        let got = existing;
        assert_eq!(got.len(), 5048);
        for (i, want) in [
            (0, 1_548_112_371_908_607),
            (1, 4_398_046_511_103_999),
            (2, 7_247_980_650_299_391),
            (3, 10_097_914_789_494_783),
            (4, 12_947_848_928_690_175),
            (25, 72_796_465_851_793_407),
            (29, 84_196_202_408_574_975),
            (42, 121_245_346_218_115_071),
            (99, 283_691_592_152_252_415),
            (404, 1_203_745_330_089_164_798),
            (888, 2_829_738_309_616_402_430),
            (999, 3_243_154_681_660_178_430),
            (2000, 6_581_905_302_285_713_406),
            (3000, 10_403_878_089_179_267_070),
            (3333, 11_669_248_846_982_021_118),
            (4567, 16_860_997_617_805_426_686),
            (5000, 18_311_495_347_400_081_406),
            (5045, 18_439_742_383_663_874_046),
            (5046, 18_442_592_317_803_069_438),
            (5047, 18_445_442_251_942_264_830_u64),
        ] {
            assert_eq!(got[i], want, "ids[{i}]");
        }
    }

    /// Worked example, checked against an independent port of oxen-core's C++ (see report):
    /// growth to 30 nodes, a Robin Hood rescue, a recommission, then a dissolution.
    #[test]
    fn worked_example_matches_the_reference_port() {
        let none = BTreeSet::new();
        let (a, b, c, d) = (0, MAX_ID / 4, MAX_ID / 2, MAX_ID / 2 + MAX_ID / 4 + 1);
        let mut swarms = SwarmMap::new();

        block(&mut swarms, 1, &(0..21).collect::<Vec<_>>(), &none);
        let want: Vec<(u64, Vec<usize>)> = vec![
            (a, vec![0, 12, 2, 9, 16, 18, 15]),
            (c, vec![14, 1, 17, 11, 4, 13, 3]),
            (d, vec![6, 7, 5, 10, 19, 8, 20]),
        ];
        assert_eq!(as_indices(&swarms), want);

        block(&mut swarms, 2, &(21..30).collect::<Vec<_>>(), &none);
        let want: Vec<(u64, Vec<usize>)> = vec![
            (a, vec![2, 16, 18, 15, 24, 21, 25, 27]),
            (b, vec![26, 12, 5, 9, 13, 0, 29]),
            (c, vec![17, 14, 4, 11, 1, 3, 23, 22]),
            (d, vec![7, 19, 6, 8, 20, 10, 28]),
        ];
        assert_eq!(as_indices(&swarms), want);

        // Swarm b drops to 4 and steals node 25 from swarm a.
        block(&mut swarms, 3, &[], &BTreeSet::from([0, 3, 5, 7, 11, 13]));
        let want: Vec<(u64, Vec<usize>)> = vec![
            (a, vec![24, 2, 21, 16, 18, 15, 27]),
            (b, vec![12, 29, 9, 26, 25]),
            (c, vec![17, 14, 4, 23, 1, 22]),
            (d, vec![19, 28, 6, 8, 20, 10]),
        ];
        assert_eq!(as_indices(&swarms), want);

        // Node 3 is recommissioned together with four new nodes.
        block(&mut swarms, 4, &[30, 31, 32, 33, 3], &none);
        let want: Vec<(u64, Vec<usize>)> = vec![
            (a, vec![24, 2, 21, 16, 18, 15, 27, 32]),
            (b, vec![12, 29, 9, 26, 25, 31, 33]),
            (c, vec![17, 14, 4, 23, 1, 22, 3]),
            (d, vec![19, 28, 6, 8, 20, 10, 30]),
        ];
        assert_eq!(as_indices(&swarms), want);

        // Mass departure: c vanishes, a (3 left) cannot be rescued and is dissolved into d.
        block(&mut swarms, 5, &[], &(0..24).collect());
        let want: Vec<(u64, Vec<usize>)> =
            vec![(b, vec![29, 31, 26, 33, 25]), (d, vec![28, 30, 24, 32, 27])];
        assert_eq!(as_indices(&swarms), want);
    }

    /// 80 blocks of joins, departures and recommissions driven by MT19937-64(777); the FNV-1a
    /// digest of every block's map matches the independent reference port.
    #[test]
    fn churn_digest_matches_the_reference_port() {
        let mut driver = Mt64::new(777);
        let mut swarms = SwarmMap::new();
        let mut next = 0usize;
        let mut dropped: Vec<usize> = Vec::new();
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        let mix = |digest: &mut u64, bytes: &[u8]| {
            for &byte in bytes {
                *digest = (*digest ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        };
        for h in 1..=80 {
            let mut add: Vec<usize> = Vec::new();
            for _ in 0..driver.next_u64() % 9 {
                add.push(next);
                next += 1;
            }
            let mut active: Vec<usize> = swarms.values().flatten().map(index).collect();
            active.sort_unstable();
            let mut drop = BTreeSet::new();
            for i in active {
                if driver.next_u64() % 61 == 0 {
                    drop.insert(i);
                    dropped.push(i);
                }
            }
            if driver.next_u64() % 3 == 0 && !dropped.is_empty() {
                add.push(dropped.remove(0));
            }
            block(&mut swarms, h, &add, &drop);
            for (id, members) in &swarms {
                mix(&mut digest, &id.0.to_le_bytes());
                for k in members {
                    mix(&mut digest, &u16::try_from(index(k)).unwrap().to_le_bytes());
                }
            }
        }
        assert_eq!(total(&swarms), 185);
        assert_eq!(swarms.len(), 26);
        assert_eq!(next, 320);
        assert_eq!(digest, 15_544_955_505_531_511_276);
    }

    /// Swarms 0..=10 of exactly [`MIN_SWARM_SIZE`] nodes (keys 0..55).
    fn eleven_minimal_swarms() -> SwarmMap {
        (0..11u64)
            .zip((0..55).collect::<Vec<_>>().chunks(MIN_SWARM_SIZE))
            .map(|(id, chunk)| (SwarmId(id), chunk.iter().copied().map(key).collect()))
            .collect()
    }

    #[test]
    fn excess_and_threshold_follow_oxend() {
        let mut swarms = eleven_minimal_swarms();
        assert_eq!(calc_excess(&swarms), 0);
        assert_eq!(calc_threshold(&swarms), 7 + 11 * 2);
        for (i, id) in (0..52).zip((0..11u64).cycle()) {
            swarms.get_mut(&SwarmId(id)).unwrap().push(key(100 + i));
        }
        assert_eq!(calc_excess(&swarms), 52);
        assert_eq!(excess_pool(&swarms, EXCESS_BASE), (52 + 11 * 5, 52));
        assert_eq!(excess_pool(&swarms, 4), (0, 0));
    }

    #[test]
    fn new_swarm_forms_exactly_at_the_threshold() {
        let mut swarms = eleven_minimal_swarms();
        let mut rng = Mt64::new(42);
        let needed = 11 * IDEAL_SWARM_MARGIN + NEW_SWARM_SIZE;
        for i in 0..needed - 1 {
            let id = SwarmId((i % 11) as u64);
            swarms.get_mut(&id).unwrap().push(key(100 + i));
        }
        create_new_swarm_from_excess(&mut swarms, &mut rng);
        assert_eq!(swarms.len(), 11);
        swarms.get_mut(&SwarmId(1)).unwrap().push(key(200));
        create_new_swarm_from_excess(&mut swarms, &mut rng);
        assert_eq!(swarms.len(), 12);
        // The wrap gap (10 → MAX_ID → 0) is the largest; the new swarm sits at its midpoint.
        let new_id = SwarmId(10 + (MAX_ID - 9) / 2);
        assert_eq!(swarms[&new_id].len(), NEW_SWARM_SIZE);
        // The 7 surplus nodes moved, and the new swarm itself holds 2 above the base.
        assert_eq!(calc_excess(&swarms), needed - NEW_SWARM_SIZE + 2);
    }

    #[test]
    fn new_nodes_fill_the_lowest_quartile() {
        let sizes = [3, 1, 5, 2];
        let mut next = 0;
        let mut swarms = SwarmMap::new();
        for (id, size) in sizes.iter().enumerate() {
            let members = (next..next + size).map(key).collect();
            next += size;
            swarms.insert(SwarmId(id as u64), members);
        }
        let mut rng = Mt64::new(42);
        assign_nodes(
            vec![key(50)],
            &mut swarms,
            &mut rng,
            FILL_SWARM_LOWER_PERCENTILE,
        );
        assert_eq!(swarms[&SwarmId(1)].len(), 2);
        assign_nodes(
            vec![key(51), key(52)],
            &mut swarms,
            &mut rng,
            FILL_SWARM_LOWER_PERCENTILE,
        );
        assert_eq!(swarms[&SwarmId(1)].len(), 3);
        assert_eq!(swarms[&SwarmId(3)].len(), 3);
    }

    /// 70 nodes in one block make 10 swarms (sizes 5 to 9, 20 surplus in all).
    fn ten_swarms() -> SwarmMap {
        let mut swarms = SwarmMap::new();
        block(
            &mut swarms,
            1,
            &(0..70).collect::<Vec<_>>(),
            &BTreeSet::new(),
        );
        assert_eq!(swarms.len(), 10);
        assert_eq!(calc_excess(&swarms), 20);
        swarms
    }

    #[test]
    fn a_starving_swarm_steals_one_node_from_one_rich_swarm() {
        let mut swarms = ten_swarms();
        let before = swarms.clone();
        let victim = *swarms.keys().next().unwrap();
        swarms.get_mut(&victim).unwrap().truncate(4);
        calc_swarm_changes(&mut swarms, 70);
        assert_eq!(swarms[&victim].len(), 5);
        let robbed: Vec<_> = swarms
            .iter()
            .filter(|(id, m)| **id != victim && m.len() < before[*id].len())
            .collect();
        assert_eq!(robbed.len(), 1);
        assert_eq!(robbed[0].1.len(), before[robbed[0].0].len() - 1);
        assert!(robbed[0].1.len() >= MIN_SWARM_SIZE);
    }

    #[test]
    fn shrinking_to_the_minimum_leaves_other_swarms_alone() {
        let mut swarms = ten_swarms();
        let first = *swarms.keys().next().unwrap();
        let mut seed = 70;
        while swarms[&first].len() > MIN_SWARM_SIZE {
            let before = swarms.clone();
            swarms.get_mut(&first).unwrap().pop();
            calc_swarm_changes(&mut swarms, seed);
            seed += 1;
            assert_eq!(swarms.len(), before.len());
            for (id, members) in &swarms {
                if *id != first {
                    // Lists come back sorted (the input normalisation), so compare as sets.
                    let mut was = before[id].clone();
                    was.sort_unstable();
                    let mut now = members.clone();
                    now.sort_unstable();
                    assert_eq!(now, was);
                }
            }
        }
    }

    #[test]
    fn an_unrescuable_swarm_is_dissolved() {
        let mut swarms = ten_swarms();
        for members in swarms.values_mut() {
            members.truncate(MIN_SWARM_SIZE);
        }
        let first = *swarms.keys().next().unwrap();
        swarms.get_mut(&first).unwrap().pop();
        calc_swarm_changes(&mut swarms, 70);
        assert_eq!(swarms.len(), 9);
        assert!(!swarms.contains_key(&first));
        assert_eq!(total(&swarms), 49);
        assert!(swarms.values().all(|m| m.len() >= MIN_SWARM_SIZE));
    }

    #[test]
    fn bulk_registrations_keep_swarms_at_n_over_7() {
        let mut swarms = SwarmMap::new();
        let mut n = 0;
        for (h, batch) in [1, 3, 19, 4, 8, 13, 1, 22, 1, 7, 2, 1, 11, 18, 6, 10]
            .into_iter()
            .enumerate()
        {
            block(
                &mut swarms,
                h,
                &(n..n + batch).collect::<Vec<_>>(),
                &BTreeSet::new(),
            );
            n += batch;
            assert_eq!(swarms.len(), (n / IDEAL_SWARM_SIZE).max(1), "n = {n}");
        }
    }

    #[test]
    fn degenerate_inputs() {
        let mut swarms = SwarmMap::new();
        calc_swarm_changes(&mut swarms, 1);
        assert!(swarms.is_empty());
        swarms.insert(UNASSIGNED_SWARM_ID, Vec::new());
        swarms.insert(SwarmId(5), Vec::new());
        calc_swarm_changes(&mut swarms, 1);
        assert!(swarms.is_empty());
        // A lone node founds swarm 0, as in oxend.
        swarms.insert(UNASSIGNED_SWARM_ID, vec![key(1)]);
        calc_swarm_changes(&mut swarms, 1);
        assert_eq!(as_indices(&swarms), vec![(0, vec![1])]);
    }

    #[test]
    fn dissolving_the_last_swarm_is_guarded() {
        // Two starving swarms, 4 nodes in all: oxend would dissolve both and crash.
        let mut swarms = SwarmMap::new();
        swarms.insert(SwarmId(0), vec![key(1), key(2)]);
        swarms.insert(SwarmId(MAX_ID / 2), vec![key(3), key(4)]);
        calc_swarm_changes(&mut swarms, 1);
        assert_eq!(swarms.len(), 1);
        let members = &swarms[&SwarmId(MAX_ID / 2)];
        let got: BTreeSet<usize> = members.iter().map(index).collect();
        assert_eq!(got, BTreeSet::from([1, 2, 3, 4]));
    }

    #[test]
    fn member_order_of_the_input_does_not_matter() {
        let mut sorted = ten_swarms();
        let mut shuffled = sorted.clone();
        for members in shuffled.values_mut() {
            members.reverse();
        }
        let leaving: Vec<Member> = sorted.values().next().unwrap()[3..].to_vec();
        for swarms in [&mut sorted, &mut shuffled] {
            for members in swarms.values_mut() {
                members.retain(|k| !leaving.contains(k));
            }
            swarms.insert(UNASSIGNED_SWARM_ID, vec![key(90), key(80), key(85)]);
            calc_swarm_changes(swarms, 99);
        }
        assert_eq!(sorted, shuffled);
    }

    /// Every node appears exactly once and nothing is left unassigned.
    fn assert_placed_once(swarms: &SwarmMap, expected: &BTreeSet<usize>) {
        assert!(!swarms.contains_key(&UNASSIGNED_SWARM_ID));
        let all: Vec<usize> = swarms.values().flatten().map(index).collect();
        assert_eq!(all.len(), expected.len());
        assert_eq!(&all.into_iter().collect::<BTreeSet<_>>(), expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Pure growth: ⌊N/7⌋ swarms, oxend's excess formula, and no swarm above
        /// MAX_SWARM_SIZE once there are two swarms (an emergent bound: oxend never enforces it).
        #[test]
        fn pure_growth(batches in prop::collection::vec(1usize..40, 1..30), seed in any::<u64>()) {
            let mut swarms = SwarmMap::new();
            let mut n = 0;
            for (h, batch) in batches.into_iter().enumerate() {
                if n >= 300 {
                    break;
                }
                swarms.insert(UNASSIGNED_SWARM_ID, (n..n + batch).map(key).collect());
                n += batch;
                calc_swarm_changes(&mut swarms, seed.wrapping_add(h as u64));
                let s = swarms.len();
                prop_assert_eq!(s, (n / IDEAL_SWARM_SIZE).max(1));
                if n >= IDEAL_SWARM_SIZE {
                    prop_assert_eq!(calc_excess(&swarms), 2 * s + n % IDEAL_SWARM_SIZE);
                }
                let largest = swarms.values().map(Vec::len).max().unwrap_or(0);
                let cap = if s > 1 { MAX_SWARM_SIZE } else { 2 * IDEAL_SWARM_SIZE - 1 };
                prop_assert!(largest <= cap, "size {} with {} swarms", largest, s);
                assert_placed_once(&swarms, &(0..n).collect());
            }
        }

        /// Joins, departures and recommissions: every node placed once, no empty or (with enough
        /// nodes) starving swarm, no unclaimed surplus, and the same input + seed → same output.
        #[test]
        fn churn(
            start in 0usize..120,
            steps in prop::collection::vec((0usize..15, prop::collection::vec(any::<bool>(), 0..12), any::<u64>()), 1..12),
        ) {
            let mut swarms = SwarmMap::new();
            let mut active: BTreeSet<usize> = BTreeSet::new();
            let mut next = start;
            if start > 0 {
                swarms.insert(UNASSIGNED_SWARM_ID, (0..start).map(key).collect());
                active.extend(0..start);
                calc_swarm_changes(&mut swarms, 7);
            }
            for (joins, leaves, seed) in steps {
                // Each flag decides whether the node at that step through the active set leaves.
                let stride = (active.len() / leaves.len().max(1)).max(1);
                let gone: BTreeSet<usize> = active
                    .iter()
                    .step_by(stride)
                    .zip(&leaves)
                    .filter(|(_, leave)| **leave)
                    .map(|(i, _)| *i)
                    .collect();
                for members in swarms.values_mut() {
                    members.retain(|k| !gone.contains(&index(k)));
                }
                active.retain(|i| !gone.contains(i));
                // A departed node comes back (recommission) along with the new ones.
                let mut new: Vec<usize> = (next..next + joins).collect();
                new.extend(gone.iter().next().copied());
                next += joins;
                active.extend(&new);
                swarms.insert(UNASSIGNED_SWARM_ID, new.into_iter().map(key).collect());

                let mut again = swarms.clone();
                calc_swarm_changes(&mut swarms, seed);
                calc_swarm_changes(&mut again, seed);
                prop_assert_eq!(&swarms, &again);

                assert_placed_once(&swarms, &active);
                prop_assert!(swarms.values().all(|m| !m.is_empty()));
                if active.len() >= MIN_SWARM_SIZE {
                    prop_assert!(swarms.values().all(|m| m.len() >= MIN_SWARM_SIZE));
                    prop_assert!(calc_excess(&swarms) < calc_threshold(&swarms));
                } else {
                    prop_assert!(swarms.len() <= 1);
                }
            }
        }
    }
}
