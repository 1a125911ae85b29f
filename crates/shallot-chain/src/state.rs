//! The service-node state machine (spec §4 with the §7 simplifications). Pure: no I/O, no
//! clock — heights and times come from blocks and events, so the state is a function of the
//! event log (§7.8).
//!
//! Per block, in order (§2.2): expire nodes whose unlock height passed; apply the block's events
//! (registrations, contributions, unlock requests, uptime proofs, reachability reports); judge
//! every funded node with the §4.6 tests and the §4.8 decision table (the directory is the only
//! validator, §7.6 option a); recompute swarms if membership changed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use serde::{Deserialize, Serialize};
use shallot_proto::swarm::SwarmId;
use shallot_proto::Ed25519Pub;

use crate::config::Rules;
use crate::proof::{SignedHeartbeat, SignedReport, TestKind};

/// Hard fork the simulated chain reports (§7.1: ≥ 19 with revision ≥ 4).
pub const HARDFORK: u8 = 19;
/// Snode revision within [`HARDFORK`].
pub const SNODE_REVISION: u8 = 4;
/// At most this many contributions (locked stakes) per node, operator included (§4.2/§4.3).
pub const MAX_CONTRIBUTORS: usize = 10;
/// Operator fee denominator (basis points).
pub const FEE_BASIS: u16 = 10_000;
/// Decommission reason bit: uptime proof missing (§4.8).
pub const REASON_UPTIME: u16 = 0x01;
/// Decommission reason bit: storage server unreachable.
pub const REASON_STORAGE: u16 = 0x08;
/// Decommission reason bit: lokinet unreachable.
pub const REASON_LOKINET: u16 = 0x40;
/// How many testers are assigned to each node in an assignment epoch (oxend's obligations
/// quorum has 10 validators, §4.6). Only their reachability reports about it count.
pub const TESTERS_PER_NODE: usize = 10;
/// Domain tag of the tester-assignment hash.
const ASSIGNMENT_TAG: &[u8] = b"shallot-reachability-assignment-v1";

/// A wallet address, opaque to the devnet (stakes are `(address, amount)` records, §7.3).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(pub String);

/// A reserved contribution spot in a registration (spot 0 is the operator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Contributor address.
    pub address: Address,
    /// Reserved amount, atomic units.
    pub amount: u64,
}

/// An input to the chain; blocks carry ordered lists of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A registration with reservations; the operator stakes `operator_amount` at once.
    Register {
        /// The node's key (Ed25519 = primary key).
        pubkey: Ed25519Pub,
        /// Operator fee in basis points (≤ 10 000).
        operator_fee_bp: u16,
        /// Reserved spots, operator first.
        reservations: Vec<Reservation>,
        /// The operator's stake (≥ its reservation).
        operator_amount: u64,
    },
    /// A further stake from `address`.
    Contribute {
        /// The node.
        pubkey: Ed25519Pub,
        /// Contributor.
        address: Address,
        /// Amount, atomic units.
        amount: u64,
    },
    /// A contributor asks for the node's stakes to unlock (§4.4).
    RequestUnlock {
        /// The node.
        pubkey: Ed25519Pub,
        /// The requesting contributor.
        address: Address,
    },
    /// An uptime proof, with the directory's clock when it arrived.
    UptimeProof {
        /// The signed proof.
        proof: SignedHeartbeat,
        /// Directory time of receipt (unix s).
        received_at: u64,
    },
    /// A reachability report, with the directory's clock when it arrived.
    PeerReport {
        /// The signed report.
        report: SignedReport,
        /// Directory time of receipt (unix s).
        received_at: u64,
    },
}

/// Why an event was rejected (it then changes nothing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The node is not registered.
    #[error("Pubkey not found")]
    UnknownNode,
    /// The key is not a valid Ed25519 point.
    #[error("invalid service node key")]
    InvalidKey,
    /// The node is already registered.
    #[error("service node already registered")]
    AlreadyRegistered,
    /// Registration needs 1–10 reservations.
    #[error("a registration needs 1 to {MAX_CONTRIBUTORS} reserved spots")]
    BadReservationCount,
    /// Operator fee above 100 %.
    #[error("operator fee above {FEE_BASIS} basis points")]
    FeeTooHigh,
    /// The same address appears twice.
    #[error("duplicate contributor address")]
    DuplicateAddress,
    /// A reserved spot is below its minimum (spot 0: 25 % of the requirement).
    #[error("reserved spot {index} below the minimum {min}")]
    ReservationTooSmall {
        /// Spot index.
        index: usize,
        /// Minimum for that spot.
        min: u64,
    },
    /// A reserved spot exceeds what is left of the requirement.
    #[error("reserved spot {index} exceeds the remaining requirement")]
    ReservationTooLarge {
        /// Spot index.
        index: usize,
    },
    /// The operator staked less than its reservation.
    #[error("operator stake below its reservation {min}")]
    OperatorStakeTooSmall {
        /// The reservation.
        min: u64,
    },
    /// Contributions to a funded node are not accepted.
    #[error("service node is already fully funded")]
    AlreadyFunded,
    /// No contribution slot or stake room left.
    #[error("no room left for contributions")]
    NoRoom,
    /// Below the minimum contribution (§4.3).
    #[error("contribution below the minimum {min}")]
    ContributionTooSmall {
        /// Minimum.
        min: u64,
    },
    /// Above 101 % of the room (§4.3).
    #[error("contribution above the maximum {max}")]
    ContributionTooLarge {
        /// Maximum.
        max: u64,
    },
    /// The address has no stake in the node.
    #[error("address is not a contributor of this node")]
    NotContributor,
    /// Unlocks need a funded node.
    #[error("service node is not funded")]
    NotFunded,
    /// Only one unlock per node.
    #[error("unlock already requested")]
    UnlockAlreadyRequested,
    /// Small contributors wait 30 days after registration (§4.4).
    #[error("small contributors cannot unlock before height {until}")]
    SmallContributorLocked {
        /// First height an unlock is allowed.
        until: u64,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// Timestamp too far from the directory's clock.
    #[error("timestamp outside the clock tolerance")]
    Stale,
    /// Not newer than the last accepted proof.
    #[error("proof is not newer than the last accepted one (replay)")]
    Replayed,
    /// Proofs need a usable IP.
    #[error("proof has an unspecified IP")]
    BadIp,
    /// Reports must come from active member nodes about other nodes.
    #[error("reporter is not an active service node")]
    ReporterNotActive,
    /// A node cannot report about itself.
    #[error("a node cannot report on itself")]
    SelfReport,
    /// The reporter is not one of the node's assigned testers in this or the previous epoch.
    #[error("reporter is not an assigned tester of this node")]
    NotAssignedTester,
}

/// Where a node is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeStatus {
    /// Registered, waiting for stakes.
    Unfunded,
    /// Funded and serving since `since`.
    Active {
        /// Activation or recommission height.
        since: u64,
    },
    /// Funded but decommissioned at `at`, after being active from `active_from`.
    Decommissioned {
        /// Height it was active from before.
        active_from: u64,
        /// Decommission height.
        at: u64,
    },
}

/// One contributor's stakes in a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    /// Wallet address.
    pub address: Address,
    /// Reserved amount (0 if none).
    pub reserved: u64,
    /// Each locked contribution's counted amount.
    pub contributions: Vec<u64>,
}

impl Contributor {
    /// Total staked.
    pub fn amount(&self) -> u64 {
        self.contributions.iter().sum()
    }
}

/// Local reachability record for one test kind (§4.6), unix seconds, 0 = never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// Start of the current failure streak.
    pub first_unreachable: u64,
    /// Last failed report.
    pub last_unreachable: u64,
    /// Last passed report.
    pub last_reachable: u64,
}

impl Reachability {
    fn record(&mut self, passed: bool, now: u64) {
        if passed {
            self.last_reachable = now;
            self.first_unreachable = 0;
        } else {
            if self.first_unreachable == 0 {
                self.first_unreachable = now;
            }
            self.last_unreachable = now;
        }
    }

    /// Failing: a recent failure whose streak (with no pass since) is older than the threshold.
    pub fn failing(&self, now: u64, rules: &Rules) -> bool {
        self.first_unreachable != 0
            && self.last_unreachable > self.last_reachable
            && now.saturating_sub(self.last_unreachable) <= rules.failure_validity_secs
            && now.saturating_sub(self.first_unreachable) > rules.unreachable_after_secs
    }
}

/// A registered service node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNode {
    /// Primary (= Ed25519) key.
    pub pubkey: Ed25519Pub,
    /// Registration block.
    pub registration_height: u64,
    /// Stake needed, fixed at registration.
    pub staking_requirement: u64,
    /// Operator fee, basis points.
    pub operator_fee_bp: u16,
    /// Contributors, operator first.
    pub contributors: Vec<Contributor>,
    /// Life-cycle state.
    pub status: NodeStatus,
    /// 0, or the height after which the node expires (§4.4).
    pub requested_unlock_height: u64,
    /// Reward-queue position (reset on activation/recommission).
    pub last_reward_block_height: u64,
    /// Tie-breaker inside that block.
    pub last_reward_transaction_index: u32,
    /// See §1.3 `state_height`.
    pub state_height: u64,
    /// Times decommissioned.
    pub decommission_count: u32,
    /// Reasons of the last decommission (single validator: `all` = `any`).
    pub last_decommission_reason: u16,
    /// Credit carried over from the last recommission (§4.7).
    pub recommission_credit: i64,
    /// Swarm, or [`SwarmId::INVALID`].
    pub swarm_id: SwarmId,
    /// Last accepted uptime proof.
    pub proof: Option<SignedHeartbeat>,
    /// When the last proof was accepted (unix s; zeroed on decommission).
    pub last_proof_time: u64,
    /// Uptime is judged from max(last proof, this): set on activation and recommission.
    pub effective_proof_time: u64,
    /// Storage-server reachability.
    pub storage: Reachability,
    /// Lokinet reachability.
    pub lokinet: Reachability,
    /// `t` of the last accepted report per reporter, `[storage, lokinet]`: a report must be
    /// newer than the reporter's previous one about this node (replays are refused). Bounded by
    /// the number of assigned testers over time; pruned of nodes no longer registered.
    #[serde(default)]
    pub report_times: BTreeMap<Ed25519Pub, [u64; 2]>,
}

impl ServiceNode {
    /// Σ contributed.
    pub fn total_contributed(&self) -> u64 {
        self.contributors.iter().map(Contributor::amount).sum()
    }

    /// Σ max(contributed, reserved).
    pub fn total_reserved(&self) -> u64 {
        self.contributors
            .iter()
            .map(|c| c.amount().max(c.reserved))
            .sum()
    }

    /// Fully funded.
    pub fn funded(&self) -> bool {
        !matches!(self.status, NodeStatus::Unfunded)
    }

    /// Funded and not decommissioned.
    pub fn active(&self) -> bool {
        matches!(self.status, NodeStatus::Active { .. })
    }

    fn locked_contributions(&self) -> usize {
        self.contributors
            .iter()
            .map(|c| c.contributions.len())
            .sum()
    }
}

/// What a ledger entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerKind {
    /// A stake was locked into a node.
    Staked,
    /// A stake was released (node expired after an unlock request, §4.4).
    Released,
    /// Deregistration "slash": the stake is frozen until `unlock_height` (§4.9).
    Slashed {
        /// First height at which it is spendable again.
        unlock_height: u64,
    },
}

/// One stake movement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Block height.
    pub height: u64,
    /// The node.
    pub pubkey: Ed25519Pub,
    /// Contributor.
    pub address: Address,
    /// Amount.
    pub amount: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: LedgerKind,
}

/// A change in a node's life, for the history view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Registered with the operator's stake.
    Registered {
        /// Operator address.
        operator: Address,
        /// Operator stake.
        amount: u64,
    },
    /// A stake added.
    Contributed {
        /// Contributor.
        address: Address,
        /// Counted amount.
        amount: u64,
    },
    /// Fully funded → active.
    Activated,
    /// An unlock was requested.
    UnlockRequested {
        /// Requesting contributor.
        address: Address,
        /// Expiry height.
        unlock_height: u64,
    },
    /// Decommissioned.
    Decommissioned {
        /// Reason bits.
        reasons: u16,
        /// Credit at the time.
        credit: i64,
    },
    /// Recommissioned with reduced credit.
    Recommissioned {
        /// New recommission credit.
        credit: i64,
    },
    /// Deregistered; stakes locked.
    Deregistered {
        /// Reason bits.
        reasons: u16,
        /// Credit at the time.
        credit: i64,
    },
    /// Removed after its unlock height.
    Expired,
}

/// One history entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Block height.
    pub height: u64,
    /// The node.
    pub pubkey: Ed25519Pub,
    /// What happened.
    #[serde(flatten)]
    pub change: Change,
}

/// A block: height, hash chain, time and ordered events (§7.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height (genesis = 0).
    pub height: u64,
    /// Previous block's hash (zeros for genesis).
    pub prev_hash: [u8; 32],
    /// BLAKE2b-256(prev ‖ height LE ‖ timestamp LE ‖ events JSON).
    pub hash: [u8; 32],
    /// Unix seconds.
    pub timestamp: u64,
    /// Events, applied in order.
    pub events: Vec<Event>,
}

impl Block {
    /// Builds a block and its hash.
    pub fn new(prev_hash: [u8; 32], height: u64, timestamp: u64, events: Vec<Event>) -> Self {
        let hash = Self::compute_hash(&prev_hash, height, timestamp, &events);
        Self {
            height,
            prev_hash,
            hash,
            timestamp,
            events,
        }
    }

    /// The hash of a block with these contents.
    pub fn compute_hash(
        prev: &[u8; 32],
        height: u64,
        timestamp: u64,
        events: &[Event],
    ) -> [u8; 32] {
        let mut h = Blake2b::<U32>::new();
        h.update(prev);
        h.update(height.to_le_bytes());
        h.update(timestamp.to_le_bytes());
        // Serializing plain data with string keys cannot fail.
        h.update(serde_json::to_vec(events).unwrap_or_default());
        h.finalize().into()
    }
}

/// What applying a block did besides changing state: rejected events and new ledger/history.
#[derive(Clone, Debug, Default)]
pub struct BlockOutcome {
    /// Events skipped (index, reason); they stay in the log but change nothing.
    pub rejected: Vec<(usize, EventError)>,
    /// Ledger entries added by this block.
    pub ledger: Vec<LedgerEntry>,
    /// History entries added by this block.
    pub history: Vec<HistoryEntry>,
}

/// Top of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Height of the top block.
    pub height: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// Its timestamp.
    pub timestamp: u64,
}

/// The whole chain-derived state.
#[derive(Clone, Debug)]
pub struct ChainState {
    rules: Rules,
    tip: Option<Tip>,
    nodes: BTreeMap<Ed25519Pub, ServiceNode>,
    ledger: Vec<LedgerEntry>,
    history: Vec<HistoryEntry>,
    block_hashes: Vec<[u8; 32]>,
    swarms_dirty: bool,
}

impl ChainState {
    /// An empty chain (no genesis yet).
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            tip: None,
            nodes: BTreeMap::new(),
            ledger: Vec::new(),
            history: Vec::new(),
            block_hashes: Vec::new(),
            swarms_dirty: false,
        }
    }

    /// The rule table.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Top block, if any.
    pub fn tip(&self) -> Option<Tip> {
        self.tip
    }

    /// Height the next block will have.
    pub fn next_height(&self) -> u64 {
        self.tip.map_or(0, |t| t.height + 1)
    }

    /// Top height (0 before genesis).
    pub fn height(&self) -> u64 {
        self.tip.map_or(0, |t| t.height)
    }

    /// Registered nodes by key.
    pub fn nodes(&self) -> &BTreeMap<Ed25519Pub, ServiceNode> {
        &self.nodes
    }

    /// A node.
    pub fn node(&self, key: &Ed25519Pub) -> Option<&ServiceNode> {
        self.nodes.get(key)
    }

    /// All stake movements so far.
    pub fn ledger(&self) -> &[LedgerEntry] {
        &self.ledger
    }

    /// All life-cycle changes so far.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Hash of the block at height `h`.
    pub fn block_hash(&self, h: u64) -> Option<[u8; 32]> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.block_hashes.get(i))
            .copied()
    }

    /// A block on top of this state with the given events (hash computed).
    pub fn next_block(&self, timestamp: u64, events: Vec<Event>) -> Block {
        let prev = self.tip.map_or([0; 32], |t| t.hash);
        Block::new(prev, self.next_height(), timestamp, events)
    }

    /// Earned downtime at height `h` (§4.7): blocks of credit if active, blocks left before
    /// deregistration if decommissioned.
    pub fn credit(&self, node: &ServiceNode, h: u64) -> i64 {
        let base = self.credit_base(node, h);
        match node.status {
            NodeStatus::Decommissioned { at, .. } => base - as_i64(h.saturating_sub(at)),
            _ => base,
        }
    }

    /// Credit before the decommission drain: recommission credit + accrual, capped.
    fn credit_base(&self, node: &ServiceNode, h: u64) -> i64 {
        let blocks_up = match node.status {
            NodeStatus::Unfunded => 0,
            NodeStatus::Active { since } => h.saturating_sub(since),
            NodeStatus::Decommissioned { active_from, at } => at.saturating_sub(active_from),
        };
        let mut c = node.recommission_credit;
        if blocks_up > 0 {
            c += as_i64(blocks_up) * self.rules.credit_per_day / self.rules.blocks_per_day.max(1);
        }
        c.min(self.rules.max_credit)
    }

    /// §4.6 tests at time `now`: the reason bits of every failed test (0 = pass).
    pub fn failures(&self, node: &ServiceNode, now: u64) -> u16 {
        let mut reasons = 0;
        let last = node.last_proof_time.max(node.effective_proof_time);
        if now.saturating_sub(last) > self.rules.proof_validity_secs {
            reasons |= REASON_UPTIME;
        }
        if node.storage.failing(now, &self.rules) {
            reasons |= REASON_STORAGE;
        }
        if node.lokinet.failing(now, &self.rules) {
            reasons |= REASON_LOKINET;
        }
        reasons
    }

    /// Applies a whole block. The block must follow the tip (the caller checks linkage).
    pub fn apply_block(&mut self, block: &Block) -> BlockOutcome {
        let ledger_start = self.ledger.len();
        let history_start = self.history.len();
        let h = block.height;
        self.swarms_dirty = false;
        self.expire_unlocked(h);
        let mut rejected = Vec::new();
        for (index, event) in block.events.iter().enumerate() {
            let index32 = u32::try_from(index).unwrap_or(u32::MAX);
            if let Err(err) = self.apply_event(h, block.timestamp, index32, event) {
                rejected.push((index, err));
            }
        }
        self.judge(h, block.timestamp);
        if self.swarms_dirty {
            self.recompute_swarms(&block.hash);
        }
        self.block_hashes.push(block.hash);
        self.tip = Some(Tip {
            height: h,
            hash: block.hash,
            timestamp: block.timestamp,
        });
        BlockOutcome {
            rejected,
            ledger: self.ledger[ledger_start..].to_vec(),
            history: self.history[history_start..].to_vec(),
        }
    }

    /// Removes nodes whose requested unlock height has passed, releasing their stakes.
    fn expire_unlocked(&mut self, h: u64) {
        let expired: Vec<Ed25519Pub> = self
            .nodes
            .values()
            .filter(|n| n.requested_unlock_height != 0 && h > n.requested_unlock_height)
            .map(|n| n.pubkey)
            .collect();
        for key in expired {
            let Some(node) = self.nodes.remove(&key) else {
                continue;
            };
            self.swarms_dirty |= node.active();
            self.record_stakes(h, &node, LedgerKind::Released);
            self.push_history(h, key, Change::Expired);
        }
    }

    fn record_stakes(&mut self, h: u64, node: &ServiceNode, kind: LedgerKind) {
        for c in &node.contributors {
            for &amount in &c.contributions {
                self.ledger.push(LedgerEntry {
                    height: h,
                    pubkey: node.pubkey,
                    address: c.address.clone(),
                    amount,
                    kind,
                });
            }
        }
    }

    fn push_history(&mut self, height: u64, pubkey: Ed25519Pub, change: Change) {
        self.history.push(HistoryEntry {
            height,
            pubkey,
            change,
        });
    }

    /// Validates and applies one event at height `h`, block time `now`. On error nothing changed.
    pub fn apply_event(
        &mut self,
        h: u64,
        now: u64,
        index: u32,
        event: &Event,
    ) -> Result<(), EventError> {
        match event {
            Event::Register {
                pubkey,
                operator_fee_bp,
                reservations,
                operator_amount,
            } => self.register(
                h,
                now,
                index,
                *pubkey,
                *operator_fee_bp,
                reservations,
                *operator_amount,
            ),
            Event::Contribute {
                pubkey,
                address,
                amount,
            } => self.contribute(h, now, index, pubkey, address, *amount),
            Event::RequestUnlock { pubkey, address } => self.request_unlock(h, pubkey, address),
            Event::UptimeProof { proof, received_at } => self.accept_proof(proof, *received_at),
            Event::PeerReport {
                report,
                received_at,
            } => self.accept_report(report, *received_at),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        h: u64,
        now: u64,
        index: u32,
        pubkey: Ed25519Pub,
        fee_bp: u16,
        reservations: &[Reservation],
        operator_amount: u64,
    ) -> Result<(), EventError> {
        if self.nodes.contains_key(&pubkey) {
            return Err(EventError::AlreadyRegistered);
        }
        pubkey.to_x25519().map_err(|_| EventError::InvalidKey)?;
        if reservations.is_empty() || reservations.len() > MAX_CONTRIBUTORS {
            return Err(EventError::BadReservationCount);
        }
        if fee_bp > FEE_BASIS {
            return Err(EventError::FeeTooHigh);
        }
        let requirement = self.rules.staking_requirement;
        let mut reserved = 0u64;
        for (index, r) in reservations.iter().enumerate() {
            if reservations[..index].iter().any(|o| o.address == r.address) {
                return Err(EventError::DuplicateAddress);
            }
            let min = if index == 0 {
                requirement / 4
            } else {
                (requirement - reserved) / (MAX_CONTRIBUTORS - index) as u64
            };
            if r.amount < min {
                return Err(EventError::ReservationTooSmall { index, min });
            }
            if r.amount > requirement - reserved {
                return Err(EventError::ReservationTooLarge { index });
            }
            reserved += r.amount;
        }
        let operator = &reservations[0];
        if operator_amount < operator.amount {
            return Err(EventError::OperatorStakeTooSmall {
                min: operator.amount,
            });
        }
        // Anything above the operator's spot only counts up to the unreserved room.
        let counted = operator_amount.min(operator.amount + (requirement - reserved));
        let mut contributors: Vec<Contributor> = reservations
            .iter()
            .map(|r| Contributor {
                address: r.address.clone(),
                reserved: r.amount,
                contributions: Vec::new(),
            })
            .collect();
        contributors[0].contributions.push(counted);
        let node = ServiceNode {
            pubkey,
            registration_height: h,
            staking_requirement: requirement,
            operator_fee_bp: fee_bp,
            contributors,
            status: NodeStatus::Unfunded,
            requested_unlock_height: 0,
            last_reward_block_height: h,
            last_reward_transaction_index: index,
            state_height: h,
            decommission_count: 0,
            last_decommission_reason: 0,
            recommission_credit: self.rules.initial_credit,
            swarm_id: SwarmId::INVALID,
            proof: None,
            last_proof_time: 0,
            effective_proof_time: 0,
            storage: Reachability::default(),
            lokinet: Reachability::default(),
            report_times: BTreeMap::new(),
        };
        self.nodes.insert(pubkey, node);
        self.ledger.push(LedgerEntry {
            height: h,
            pubkey,
            address: operator.address.clone(),
            amount: counted,
            kind: LedgerKind::Staked,
        });
        self.push_history(
            h,
            pubkey,
            Change::Registered {
                operator: operator.address.clone(),
                amount: counted,
            },
        );
        self.maybe_activate(h, now, index, pubkey);
        Ok(())
    }

    fn contribute(
        &mut self,
        h: u64,
        now: u64,
        index: u32,
        pubkey: &Ed25519Pub,
        address: &Address,
        amount: u64,
    ) -> Result<(), EventError> {
        let node = self.nodes.get(pubkey).ok_or(EventError::UnknownNode)?;
        if node.funded() {
            return Err(EventError::AlreadyFunded);
        }
        let locked = node.locked_contributions();
        if locked >= MAX_CONTRIBUTORS {
            return Err(EventError::NoRoom);
        }
        let free = node.staking_requirement - node.total_reserved().min(node.staking_requirement);
        let existing = node.contributors.iter().position(|c| &c.address == address);
        let open_reservation = existing
            .map(|i| &node.contributors[i])
            .filter(|c| c.reserved > 0 && c.contributions.is_empty());
        let (min, room) = if let Some(c) = open_reservation {
            // A reservation must be filled in one go.
            (c.reserved, c.reserved + free)
        } else {
            let other_open = node
                .contributors
                .iter()
                .filter(|c| c.reserved > 0 && c.contributions.is_empty())
                .count();
            let slots = MAX_CONTRIBUTORS.saturating_sub(locked + other_open);
            if slots == 0 || free == 0 {
                return Err(EventError::NoRoom);
            }
            ((free / slots as u64).max(1), free)
        };
        if amount < min {
            return Err(EventError::ContributionTooSmall { min });
        }
        let max = u64::try_from(u128::from(room) * 101 / 100).unwrap_or(u64::MAX);
        if amount > max {
            return Err(EventError::ContributionTooLarge { max });
        }
        let counted = amount.min(room);
        let Some(node) = self.nodes.get_mut(pubkey) else {
            return Err(EventError::UnknownNode);
        };
        match existing {
            Some(i) => node.contributors[i].contributions.push(counted),
            None => node.contributors.push(Contributor {
                address: address.clone(),
                reserved: 0,
                contributions: vec![counted],
            }),
        }
        node.state_height = h;
        self.ledger.push(LedgerEntry {
            height: h,
            pubkey: *pubkey,
            address: address.clone(),
            amount: counted,
            kind: LedgerKind::Staked,
        });
        self.push_history(
            h,
            *pubkey,
            Change::Contributed {
                address: address.clone(),
                amount: counted,
            },
        );
        self.maybe_activate(h, now, index, *pubkey);
        Ok(())
    }

    /// Activates a node once fully funded (§4.3): swarm assigned at the end of the block.
    fn maybe_activate(&mut self, h: u64, now: u64, index: u32, pubkey: Ed25519Pub) {
        let Some(node) = self.nodes.get_mut(&pubkey) else {
            return;
        };
        if node.funded() || node.total_contributed() < node.staking_requirement {
            return;
        }
        node.status = NodeStatus::Active { since: h };
        node.state_height = h;
        node.last_reward_block_height = h;
        node.last_reward_transaction_index = index;
        node.effective_proof_time = now;
        node.swarm_id = SwarmId::INVALID;
        self.swarms_dirty = true;
        self.push_history(h, pubkey, Change::Activated);
    }

    fn request_unlock(
        &mut self,
        h: u64,
        pubkey: &Ed25519Pub,
        address: &Address,
    ) -> Result<(), EventError> {
        let rules = &self.rules;
        let node = self.nodes.get_mut(pubkey).ok_or(EventError::UnknownNode)?;
        if !node.funded() {
            return Err(EventError::NotFunded);
        }
        if node.requested_unlock_height != 0 {
            return Err(EventError::UnlockAlreadyRequested);
        }
        let stake = node
            .contributors
            .iter()
            .find(|c| &c.address == address)
            .map(Contributor::amount)
            .filter(|&a| a > 0)
            .ok_or(EventError::NotContributor)?;
        let small = u128::from(stake) * 10_000 < u128::from(node.staking_requirement) * 2_499;
        let until = node.registration_height + rules.small_contributor_unlock_blocks;
        if small && h < until {
            return Err(EventError::SmallContributorLocked { until });
        }
        let unlock_height = h + rules.unlock_blocks;
        node.requested_unlock_height = unlock_height;
        self.push_history(
            h,
            *pubkey,
            Change::UnlockRequested {
                address: address.clone(),
                unlock_height,
            },
        );
        Ok(())
    }

    /// Checks a proof without applying it: signature, registration, key, IP, clock, replay.
    pub fn check_proof(&self, proof: &SignedHeartbeat, received_at: u64) -> Result<(), EventError> {
        let hb = &proof.heartbeat;
        let node = self.nodes.get(&hb.pke).ok_or(EventError::UnknownNode)?;
        if !proof.verify() {
            return Err(EventError::BadSignature);
        }
        hb.pke.to_x25519().map_err(|_| EventError::InvalidKey)?;
        if hb.ip == Ipv4Addr::UNSPECIFIED {
            return Err(EventError::BadIp);
        }
        if hb.t.abs_diff(received_at) > self.rules.clock_tolerance_secs {
            return Err(EventError::Stale);
        }
        if node.proof.as_ref().is_some_and(|p| hb.t <= p.heartbeat.t) {
            return Err(EventError::Replayed);
        }
        Ok(())
    }

    fn accept_proof(
        &mut self,
        proof: &SignedHeartbeat,
        received_at: u64,
    ) -> Result<(), EventError> {
        self.check_proof(proof, received_at)?;
        let Some(node) = self.nodes.get_mut(&proof.heartbeat.pke) else {
            return Err(EventError::UnknownNode);
        };
        node.proof = Some(proof.clone());
        node.last_proof_time = received_at;
        Ok(())
    }

    /// Checks a reachability report without applying it.
    pub fn check_report(&self, report: &SignedReport, received_at: u64) -> Result<(), EventError> {
        let r = &report.report;
        if !self.nodes.contains_key(&r.pubkey) {
            return Err(EventError::UnknownNode);
        }
        if !self.nodes.get(&r.reporter).is_some_and(ServiceNode::active) {
            return Err(EventError::ReporterNotActive);
        }
        if r.reporter == r.pubkey {
            return Err(EventError::SelfReport);
        }
        if !report.verify() {
            return Err(EventError::BadSignature);
        }
        if r.t.abs_diff(received_at) > self.rules.clock_tolerance_secs {
            return Err(EventError::Stale);
        }
        let epoch = self.assignment_epoch();
        let assigned = |e: u64| self.assigned_testers(&r.pubkey, e).contains(&r.reporter);
        if !(assigned(epoch) || (epoch > 0 && assigned(epoch - 1))) {
            return Err(EventError::NotAssignedTester);
        }
        let last = self
            .nodes
            .get(&r.pubkey)
            .and_then(|n| n.report_times.get(&r.reporter))
            .map_or(0, |times| times[kind_index(r.kind)]);
        if r.t <= last {
            return Err(EventError::Replayed);
        }
        Ok(())
    }

    fn accept_report(&mut self, report: &SignedReport, received_at: u64) -> Result<(), EventError> {
        self.check_report(report, received_at)?;
        let r = &report.report;
        let registered = &self.nodes;
        let stale: Vec<Ed25519Pub> = registered
            .get(&r.pubkey)
            .map(|n| {
                n.report_times
                    .keys()
                    .filter(|k| !registered.contains_key(k))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let Some(node) = self.nodes.get_mut(&r.pubkey) else {
            return Err(EventError::UnknownNode);
        };
        for gone in stale {
            node.report_times.remove(&gone);
        }
        node.report_times.entry(r.reporter).or_default()[kind_index(r.kind)] = r.t;
        match r.kind {
            TestKind::Storage => node.storage.record(r.passed, received_at),
            TestKind::Lokinet => node.lokinet.record(r.passed, received_at),
        }
        Ok(())
    }

    /// Blocks per tester-assignment epoch: one (scaled) hour, as the chain's day / 24.
    pub fn assignment_epoch_blocks(&self) -> u64 {
        u64::try_from(self.rules.blocks_per_day / 24)
            .unwrap_or(1)
            .max(1)
    }

    /// The current tester-assignment epoch: the top block's height / epoch length. (While a
    /// block is applied its own hash is not known yet, so the top is the previous block, as it
    /// was when its events were submitted.)
    pub fn assignment_epoch(&self) -> u64 {
        self.height() / self.assignment_epoch_blocks()
    }

    /// The testers assigned to `target` in `epoch` (rule of this devnet; oxend samples a
    /// random obligations quorum per block instead, §4.6): of the active nodes other than the
    /// target, the [`TESTERS_PER_NODE`] with the smallest
    /// BLAKE2b-256(tag ‖ seed ‖ target ‖ tester), where seed is the hash of the epoch's first
    /// block. The seed is unknown before that block exists, so no one can grind keys to be
    /// assigned to a chosen node in advance; the assignment is stable for a whole epoch, so
    /// testers can retest a failing node.
    pub fn assigned_testers(&self, target: &Ed25519Pub, epoch: u64) -> Vec<Ed25519Pub> {
        let Some(seed) = self.block_hash(epoch.saturating_mul(self.assignment_epoch_blocks()))
        else {
            return Vec::new();
        };
        let mut scored: Vec<([u8; 32], Ed25519Pub)> = self
            .nodes
            .values()
            .filter(|n| n.active() && &n.pubkey != target)
            .map(|n| {
                let mut h = Blake2b::<U32>::new();
                h.update(ASSIGNMENT_TAG);
                h.update(seed);
                h.update(target.as_bytes());
                h.update(n.pubkey.as_bytes());
                (h.finalize().into(), n.pubkey)
            })
            .collect();
        scored.sort_unstable();
        scored.truncate(TESTERS_PER_NODE);
        scored.into_iter().map(|(_, key)| key).collect()
    }

    /// The funded nodes `tester` is assigned to test in the current epoch.
    pub fn test_targets(&self, tester: &Ed25519Pub) -> Vec<Ed25519Pub> {
        let epoch = self.assignment_epoch();
        self.nodes
            .values()
            .filter(|n| n.funded() && &n.pubkey != tester)
            .filter(|n| self.assigned_testers(&n.pubkey, epoch).contains(tester))
            .map(|n| n.pubkey)
            .collect()
    }

    /// Applies the §4.8 decision table to every funded node at height `h`, time `now`.
    fn judge(&mut self, h: u64, now: u64) {
        enum Decision {
            Decommission(u16, i64),
            Recommission(i64),
            Deregister(u16, i64),
        }
        let mut decisions = Vec::new();
        for node in self.nodes.values() {
            let reasons = self.failures(node, now);
            let credit = self.credit(node, h);
            let decision = match node.status {
                NodeStatus::Active { since } if since < h && reasons != 0 => {
                    if credit >= self.rules.decommission_minimum {
                        Some(Decision::Decommission(reasons, credit))
                    } else {
                        Some(Decision::Deregister(reasons, credit))
                    }
                }
                NodeStatus::Decommissioned { at, .. } if at < h => {
                    if reasons == 0 {
                        let blocks_down = as_i64(h - at);
                        let base = self.credit_base(node, h);
                        Some(Decision::Recommission((base - 2 * blocks_down).max(0)))
                    } else if credit < 0 {
                        Some(Decision::Deregister(reasons, credit))
                    } else {
                        None
                    }
                }
                NodeStatus::Unfunded
                | NodeStatus::Active { .. }
                | NodeStatus::Decommissioned { .. } => None,
            };
            if let Some(d) = decision {
                decisions.push((node.pubkey, d));
            }
        }
        for (key, decision) in decisions {
            match decision {
                Decision::Decommission(reasons, credit) => {
                    let Some(node) = self.nodes.get_mut(&key) else {
                        continue;
                    };
                    let NodeStatus::Active { since } = node.status else {
                        continue;
                    };
                    node.status = NodeStatus::Decommissioned {
                        active_from: since,
                        at: h,
                    };
                    node.state_height = h;
                    node.decommission_count += 1;
                    node.last_decommission_reason = reasons;
                    node.swarm_id = SwarmId::INVALID;
                    node.last_proof_time = 0;
                    self.swarms_dirty = true;
                    self.push_history(h, key, Change::Decommissioned { reasons, credit });
                }
                Decision::Recommission(credit) => {
                    let Some(node) = self.nodes.get_mut(&key) else {
                        continue;
                    };
                    node.status = NodeStatus::Active { since: h };
                    node.recommission_credit = credit;
                    node.state_height = h;
                    node.last_reward_block_height = h;
                    node.last_reward_transaction_index = 0;
                    node.effective_proof_time = now;
                    node.swarm_id = SwarmId::INVALID;
                    self.swarms_dirty = true;
                    self.push_history(h, key, Change::Recommissioned { credit });
                }
                Decision::Deregister(reasons, credit) => {
                    let Some(node) = self.nodes.remove(&key) else {
                        continue;
                    };
                    self.swarms_dirty |= node.active();
                    let unlock_height = h + self.rules.lock_blocks;
                    self.record_stakes(h, &node, LedgerKind::Slashed { unlock_height });
                    self.push_history(h, key, Change::Deregistered { reasons, credit });
                }
            }
        }
    }

    /// Rebuilds the swarm map from the active nodes (pubkey order, newcomers unassigned) and
    /// runs the shared assignment with this block's hash as seed (§2.2).
    fn recompute_swarms(&mut self, block_hash: &[u8; 32]) {
        let mut swarms: BTreeMap<SwarmId, Vec<[u8; 32]>> = BTreeMap::new();
        for node in self.nodes.values().filter(|n| n.active()) {
            swarms
                .entry(node.swarm_id)
                .or_default()
                .push(*node.pubkey.as_bytes());
        }
        crate::swarms::assign_swarms(&mut swarms, block_hash);
        for (swarm, members) in swarms {
            for key in members {
                if let Some(node) = self.nodes.get_mut(&Ed25519Pub::from_bytes(key)) {
                    node.swarm_id = swarm;
                }
            }
        }
    }

    /// Slashed stakes still locked at height `h` (the key-image blacklist of §4.9).
    pub fn locked_stakes(&self, h: u64) -> impl Iterator<Item = &LedgerEntry> + '_ {
        self.ledger.iter().filter(move |e| match e.kind {
            LedgerKind::Slashed { unlock_height } => h < unlock_height,
            _ => false,
        })
    }
}

fn kind_index(kind: TestKind) -> usize {
    match kind {
        TestKind::Storage => 0,
        TestKind::Lokinet => 1,
    }
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Hex of a 32-byte hash.
pub fn hash_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

#[cfg(test)]
mod tests;
