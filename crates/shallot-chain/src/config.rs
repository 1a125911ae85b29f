//! Configuration and the rule table derived from it: every §4 duration is defined as a wall
//! duration (as oxen-core `dev` does) and converted to blocks or seconds once (spec §7.2, §7.6).

use std::path::PathBuf;
use std::time::Duration;

/// One OXEN in atomic units.
pub const OXEN: u64 = 1_000_000_000;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Settings of the devnet directory.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Interval between blocks (oxen localdev: 5 s).
    pub block_time: Duration,
    /// Every §4 duration is divided by this before conversion, so tests run fast (1 = real).
    pub time_scale: u32,
    /// Stake needed to fund a node, atomic units (testnet/devnet: 100 OXEN).
    pub staking_requirement: u64,
    /// Blocks a deregistered node's stakes stay locked; `None` = 30 days converted.
    /// A voluntary unlock takes half of it (§4.4).
    pub lock_blocks: Option<u64>,
    /// How often nodes are expected to send uptime proofs (testnet: 10 min); validity is
    /// 2 × this + 1 min (testnet's 21 min), divided by `time_scale` like every §4 duration.
    /// Ignored when [`ChainConfig::proof_interval`] is set.
    pub proof_frequency: Duration,
    /// The expected interval between a node's uptime proofs in wall time, *not* divided by
    /// `time_scale` (`None`: proof times come from `proof_frequency` / `time_scale`).
    ///
    /// With it, proof expiry follows the nodes' real heartbeat (devnet nodes send one every
    /// 5 s) while `time_scale` still shrinks credit and locks, so a devnet can expire proofs in
    /// seconds yet keep minutes of decommission credit. Derived as the spec's table does
    /// (§4.5: validity = 2 × frequency + a small margin, unreachable after validity − frequency):
    /// validity = 2 × interval + max(interval / 10, 1 s) — testnet's margin is a tenth of its
    /// frequency (21 min for 10 min); the 1 s floor is the chain clock's resolution — rounded up
    /// to whole seconds; unreachable after = validity − interval, rounded up. A 5 s interval
    /// gives 11 s and 6 s.
    pub proof_interval: Option<Duration>,
    /// Where the SQLite database lives; `None` keeps the chain in memory only.
    pub data_dir: Option<PathBuf>,
    /// Serve the `devnet_*` admin methods (register, contribute, unlock, proof, ledger, history).
    pub admin_methods: bool,
    /// Omit proof-derived fields of nodes without a proof (v11) instead of emitting v10 defaults.
    pub omit_missing_proof_fields: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            block_time: Duration::from_secs(5),
            time_scale: 1,
            staking_requirement: 100 * OXEN,
            lock_blocks: None,
            proof_frequency: Duration::from_secs(600),
            proof_interval: None,
            data_dir: None,
            admin_methods: true,
            omit_missing_proof_fields: false,
        }
    }
}

/// The §4 constants of this chain, in blocks (heights) or seconds (proof/test times).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    /// Stake needed to fund a node.
    pub staking_requirement: u64,
    /// Deregistration stake lock (§4.9).
    pub lock_blocks: u64,
    /// Voluntary unlock delay = lock/2 (§4.4).
    pub unlock_blocks: u64,
    /// Small contributors cannot unlock this soon after registration (30 days, §4.4).
    pub small_contributor_unlock_blocks: u64,
    /// `DECOMMISSION_INITIAL_CREDIT` (2 h).
    pub initial_credit: i64,
    /// `DECOMMISSION_MAX_CREDIT` (48 h).
    pub max_credit: i64,
    /// Credit earned per day up (24 h / 30 = 48 min), over `blocks_per_day`.
    pub credit_per_day: i64,
    /// Blocks in a day.
    pub blocks_per_day: i64,
    /// `DECOMMISSION_MINIMUM` (2 h): less credit than this → deregister instead of decommission.
    pub decommission_minimum: i64,
    /// `UPTIME_PROOF_VALIDITY` in seconds.
    pub proof_validity_secs: u64,
    /// Failure streak length before a node counts as unreachable (validity − frequency).
    pub unreachable_after_secs: u64,
    /// `REACHABLE_MAX_FAILURE_VALIDITY` (5 min): older failures are stale.
    pub failure_validity_secs: u64,
    /// `UPTIME_PROOF_TOLERANCE` (5 min, not scaled: it is about clock skew).
    pub clock_tolerance_secs: u64,
}

impl Rules {
    /// Derives the rule table from a config.
    pub fn from_config(config: &ChainConfig) -> Self {
        let scale = u64::from(config.time_scale.max(1));
        let block_ms = u64::try_from(config.block_time.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        // Scaled wall seconds → whole blocks (at least one).
        let blocks = |secs: u64| (secs.saturating_mul(1000) / scale / block_ms).max(1);
        let blocks_i = |secs: u64| i64::try_from(blocks(secs)).unwrap_or(i64::MAX);
        let scaled = |secs: u64| (secs / scale).max(1);
        let (proof_validity_secs, unreachable_after_secs) =
            if let Some(interval) = config.proof_interval {
                // Unscaled wall time (see `ChainConfig::proof_interval`).
                let interval_ms = u64::try_from(interval.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let validity_ms = interval_ms
                    .saturating_mul(2)
                    .saturating_add((interval_ms / 10).max(1000));
                let secs = |ms: u64| ms.div_ceil(1000).max(1);
                (secs(validity_ms), secs(validity_ms - interval_ms))
            } else {
                let freq = config.proof_frequency.as_secs().max(1);
                let validity = 2 * freq + 60;
                (scaled(validity), scaled(validity - freq))
            };
        let lock_blocks = config.lock_blocks.unwrap_or_else(|| blocks(30 * DAY));
        Self {
            staking_requirement: config.staking_requirement,
            lock_blocks,
            unlock_blocks: lock_blocks / 2,
            small_contributor_unlock_blocks: blocks(30 * DAY),
            initial_credit: blocks_i(2 * HOUR),
            max_credit: blocks_i(48 * HOUR),
            credit_per_day: blocks_i(DAY / 30),
            blocks_per_day: blocks_i(DAY),
            decommission_minimum: blocks_i(2 * HOUR),
            proof_validity_secs,
            unreachable_after_secs,
            failure_validity_secs: scaled(5 * 60),
            clock_tolerance_secs: 5 * 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_second_blocks_scaled_by_60_give_mainnet_block_counts() {
        let rules = Rules::from_config(&ChainConfig {
            block_time: Duration::from_secs(2),
            time_scale: 60,
            ..ChainConfig::default()
        });
        assert_eq!(rules.initial_credit, 60);
        assert_eq!(rules.max_credit, 1440);
        assert_eq!(rules.credit_per_day, 24);
        assert_eq!(rules.blocks_per_day, 720);
        assert_eq!(rules.lock_blocks, 21_600);
        assert_eq!(rules.unlock_blocks, 10_800);
        assert_eq!(rules.proof_validity_secs, 21);
        assert_eq!(rules.unreachable_after_secs, 11);
        assert_eq!(rules.failure_validity_secs, 5);
    }

    #[test]
    fn an_unscaled_proof_interval_sets_proof_times_and_leaves_the_rest_scaled() {
        let scaled_only = ChainConfig {
            block_time: Duration::from_millis(200),
            time_scale: 30,
            ..ChainConfig::default()
        };
        let base = Rules::from_config(&scaled_only);
        let rules = Rules::from_config(&ChainConfig {
            proof_interval: Some(Duration::from_secs(5)),
            ..scaled_only.clone()
        });
        // 2 × 5 s + 1 s margin; unreachable after validity − interval. Not divided by 30.
        assert_eq!(rules.proof_validity_secs, 11);
        assert_eq!(rules.unreachable_after_secs, 6);
        // Credit, locks and report staleness still follow the time scale: 2 h / 30 = 4 min of
        // 200 ms blocks.
        assert_eq!(rules.initial_credit, 1200);
        assert_eq!(rules.decommission_minimum, 1200);
        assert_eq!(rules.failure_validity_secs, 10);
        assert_eq!(
            Rules {
                proof_validity_secs: base.proof_validity_secs,
                unreachable_after_secs: base.unreachable_after_secs,
                ..rules.clone()
            },
            base
        );
        // Without the setting: (2 × 10 min + 1 min) / 30, (21 − 10 min) / 30, as before.
        assert_eq!(base.proof_validity_secs, 42);
        assert_eq!(base.unreachable_after_secs, 22);

        // The margin is a tenth of the interval (testnet's ratio) once that exceeds 1 s, and
        // sub-second parts round up to the chain clock's whole seconds.
        let at = |ms: u64| {
            let r = Rules::from_config(&ChainConfig {
                proof_interval: Some(Duration::from_millis(ms)),
                ..ChainConfig::default()
            });
            (r.proof_validity_secs, r.unreachable_after_secs)
        };
        assert_eq!(at(600_000), (1260, 660), "testnet: 21 min and 11 min");
        assert_eq!(at(20_000), (42, 22));
        assert_eq!(at(2_500), (6, 4), "5 s + 1 s; 6 s − 2.5 s rounds up to 4 s");
        assert_eq!(at(0), (2, 2), "never zero");
    }
}
