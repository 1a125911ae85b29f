//! State-machine tests with mainnet-sized block counts: 2 s blocks, durations scaled by 60, so
//! initial credit 60 blocks, 24 credit blocks per 720, proof validity 21 s (~10 blocks).

use std::net::Ipv4Addr;
use std::time::Duration;

use ed25519_dalek::SigningKey;

use super::*;
use crate::config::{ChainConfig, OXEN};
use crate::proof::{Heartbeat, PeerReport};

const T0: u64 = 1_700_000_000;
const REQ: u64 = 100 * OXEN;

fn rules() -> Rules {
    rules_with_lock(None)
}

fn rules_with_lock(lock_blocks: Option<u64>) -> Rules {
    Rules::from_config(&ChainConfig {
        block_time: Duration::from_secs(2),
        time_scale: 60,
        staking_requirement: REQ,
        lock_blocks,
        ..ChainConfig::default()
    })
}

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn pk(i: u8) -> Ed25519Pub {
    Ed25519Pub::from_bytes(key(i).verifying_key().to_bytes())
}

fn addr(s: &str) -> Address {
    Address(s.to_owned())
}

struct Sim {
    state: ChainState,
    blocks: Vec<Block>,
}

impl Sim {
    fn new() -> Self {
        Self::with_rules(rules())
    }

    fn with_rules(rules: Rules) -> Self {
        let mut sim = Self {
            state: ChainState::new(rules),
            blocks: Vec::new(),
        };
        sim.step(vec![]);
        sim
    }

    fn now(&self) -> u64 {
        T0 + 2 * self.state.next_height()
    }

    fn step(&mut self, events: Vec<Event>) -> BlockOutcome {
        let block = self.state.next_block(self.now(), events);
        let outcome = self.state.apply_block(&block);
        self.blocks.push(block);
        outcome
    }

    fn steps(&mut self, n: u64) {
        for _ in 0..n {
            self.step(vec![]);
        }
    }

    fn node(&self, i: u8) -> &ServiceNode {
        self.state.node(&pk(i)).expect("node registered")
    }

    fn proof(&self, i: u8) -> Event {
        Event::UptimeProof {
            proof: heartbeat(i, self.now()).sign(&key(i)),
            received_at: self.now(),
        }
    }

    /// Registers node `i` with a full operator stake, active this block.
    fn register_full(&mut self, i: u8) {
        let out = self.step(vec![register(i, REQ, REQ)]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }
}

fn heartbeat(i: u8, t: u64) -> Heartbeat {
    Heartbeat {
        ip: Ipv4Addr::new(10, 0, 0, i),
        lv: [0, 9, 11],
        pke: pk(i),
        q: 1000,
        shp: 2000 + u16::from(i),
        sop: 3000 + u16::from(i),
        sv: [2, 8, 0],
        t,
        v: [10, 6, 0],
    }
}

fn register(i: u8, reserved: u64, amount: u64) -> Event {
    Event::Register {
        pubkey: pk(i),
        operator_fee_bp: 1000,
        reservations: vec![Reservation {
            address: addr("operator"),
            amount: reserved,
        }],
        operator_amount: amount,
    }
}

fn contribute(i: u8, who: &str, amount: u64) -> Event {
    Event::Contribute {
        pubkey: pk(i),
        address: addr(who),
        amount,
    }
}

#[test]
fn register_then_fund_makes_a_node_active_in_a_swarm() {
    let mut sim = Sim::new();
    let out = sim.step(vec![register(1, REQ / 4, REQ / 4)]);
    assert!(out.rejected.is_empty());
    let node = sim.node(1);
    assert_eq!(node.status, NodeStatus::Unfunded);
    assert_eq!(node.swarm_id, SwarmId::INVALID);
    assert_eq!(node.total_contributed(), REQ / 4);
    assert_eq!(sim.state.credit(node, 1), 60);

    let out = sim.step(vec![contribute(1, "alice", REQ / 2)]);
    assert!(out.rejected.is_empty());
    assert_eq!(sim.node(1).status, NodeStatus::Unfunded);
    let out = sim.step(vec![contribute(1, "bob", REQ / 4)]);
    assert!(out.rejected.is_empty());
    let node = sim.node(1);
    assert_eq!(node.status, NodeStatus::Active { since: 3 });
    assert_eq!(node.state_height, 3);
    assert_eq!(node.swarm_id, SwarmId(0));
    assert_eq!(sim.state.ledger().len(), 3);
    let changes: Vec<_> = out.history.iter().map(|h| h.change.clone()).collect();
    assert!(matches!(
        changes.as_slice(),
        [Change::Contributed { .. }, Change::Activated]
    ));
    // A funded node takes no more stakes.
    let out = sim.step(vec![contribute(1, "carol", OXEN)]);
    assert_eq!(out.rejected, vec![(0, EventError::AlreadyFunded)]);
}

#[test]
fn registration_rules() {
    let mut st = ChainState::new(rules());
    let mut reg = |fee: u16, spots: &[(&str, u64)], amount: u64| {
        let event = Event::Register {
            pubkey: pk(1),
            operator_fee_bp: fee,
            reservations: spots
                .iter()
                .map(|(a, v)| Reservation {
                    address: addr(a),
                    amount: *v,
                })
                .collect(),
            operator_amount: amount,
        };
        st.apply_event(0, T0, 0, &event)
    };
    assert_eq!(
        reg(0, &[("op", REQ / 4 - 1)], REQ),
        Err(EventError::ReservationTooSmall {
            index: 0,
            min: REQ / 4
        })
    );
    // Spot 1 needs (100 − 25) / 9 = 8.333 OXEN.
    assert_eq!(
        reg(0, &[("op", REQ / 4), ("a", 8 * OXEN)], REQ),
        Err(EventError::ReservationTooSmall {
            index: 1,
            min: 75 * OXEN / 9
        })
    );
    assert_eq!(
        reg(0, &[("op", REQ / 4), ("a", 80 * OXEN)], REQ),
        Err(EventError::ReservationTooLarge { index: 1 })
    );
    assert_eq!(
        reg(0, &[("op", REQ / 4), ("op", 10 * OXEN)], REQ),
        Err(EventError::DuplicateAddress)
    );
    assert_eq!(
        reg(10_001, &[("op", REQ)], REQ),
        Err(EventError::FeeTooHigh)
    );
    assert_eq!(
        reg(0, &[("op", REQ / 2)], REQ / 4),
        Err(EventError::OperatorStakeTooSmall { min: REQ / 2 })
    );
    let eleven: Vec<(String, u64)> = (0..11).map(|i| (format!("c{i}"), OXEN)).collect();
    let eleven: Vec<(&str, u64)> = eleven.iter().map(|(a, v)| (a.as_str(), *v)).collect();
    assert_eq!(reg(0, &eleven, REQ), Err(EventError::BadReservationCount));
    assert_eq!(
        reg(0, &[("op", REQ / 4), ("a", 10 * OXEN)], REQ / 4),
        Ok(())
    );
    assert_eq!(
        reg(0, &[("op", REQ)], REQ),
        Err(EventError::AlreadyRegistered)
    );
    assert_eq!(st.nodes().len(), 1);
}

#[test]
fn contribution_rules() {
    let mut st = ChainState::new(rules());
    let spots = vec![
        Reservation {
            address: addr("op"),
            amount: REQ / 4,
        },
        Reservation {
            address: addr("res"),
            amount: 20 * OXEN,
        },
    ];
    let event = Event::Register {
        pubkey: pk(1),
        operator_fee_bp: 0,
        reservations: spots,
        operator_amount: REQ / 4,
    };
    st.apply_event(0, T0, 0, &event).unwrap();
    let mut give = |who: &str, amount: u64| st.apply_event(1, T0, 0, &contribute(1, who, amount));
    // The reservation must be filled in one go.
    assert_eq!(
        give("res", 10 * OXEN),
        Err(EventError::ContributionTooSmall { min: 20 * OXEN })
    );
    // Unreserved: (100 − 45) / (10 − (1 locked + 1 open)) = 6.875 OXEN.
    assert_eq!(
        give("x", 6 * OXEN),
        Err(EventError::ContributionTooSmall { min: 55 * OXEN / 8 })
    );
    // Max: 101 % of the 55 OXEN of room.
    assert_eq!(
        give("x", 56 * OXEN),
        Err(EventError::ContributionTooLarge {
            max: 5555 * OXEN / 100
        })
    );
    assert_eq!(give("res", 20 * OXEN), Ok(()));
    assert_eq!(give("x", 10 * OXEN), Ok(()));
    // 55.5 OXEN offered with 45 of room: accepted, counted as 45; the node is funded.
    assert_eq!(give("y", 4545 * OXEN / 100), Ok(()));
    let node = st.node(&pk(1)).unwrap();
    assert_eq!(node.total_contributed(), REQ);
    assert!(node.active());
    assert_eq!(
        st.apply_event(2, T0, 0, &contribute(9, "x", OXEN)),
        Err(EventError::UnknownNode)
    );
}

#[test]
fn at_most_ten_locked_contributions() {
    let mut st = ChainState::new(rules());
    st.apply_event(0, T0, 0, &register(1, REQ / 4, REQ / 4))
        .unwrap();
    for i in 0..9 {
        let free = REQ - st.node(&pk(1)).unwrap().total_reserved();
        let min = free / (10 - (1 + i));
        // Leave room: the last one cannot fill, so contribute the minimum each time.
        assert_eq!(
            st.apply_event(1, T0, 0, &contribute(1, &format!("c{i}"), min)),
            Ok(())
        );
    }
    let node = st.node(&pk(1)).unwrap();
    assert_eq!(node.locked_contributions(), 10);
    assert_eq!(node.funded(), node.total_contributed() >= REQ);
    if !node.funded() {
        assert_eq!(
            st.apply_event(1, T0, 0, &contribute(1, "late", OXEN)),
            Err(EventError::NoRoom)
        );
    }
}

#[test]
fn missed_proofs_decommission_then_deregister_with_locked_stake() {
    let mut sim = Sim::new();
    sim.register_full(1);
    let active_at = 1;
    // Validity is 21 s = 10.5 blocks after activation: blocks 2..=11 are fine.
    sim.steps(10);
    assert!(sim.node(1).active());
    sim.step(vec![]);
    let node = sim.node(1);
    let at = 1 + 11;
    assert_eq!(
        node.status,
        NodeStatus::Decommissioned {
            active_from: active_at,
            at
        }
    );
    assert_eq!(node.last_decommission_reason, REASON_UPTIME);
    assert_eq!(node.decommission_count, 1);
    assert_eq!(node.swarm_id, SwarmId::INVALID);
    // 11 blocks up earn 11 × 24 / 720 = 0 extra: credit 60, drained one per block.
    assert_eq!(sim.state.credit(node, at), 60);
    sim.steps(60);
    assert_eq!(sim.state.credit(sim.node(1), at + 60), 0);
    let out = sim.step(vec![]);
    assert!(sim.state.node(&pk(1)).is_none());
    let dereg_height = at + 61;
    assert_eq!(
        out.history.last().map(|h| h.change.clone()),
        Some(Change::Deregistered {
            reasons: REASON_UPTIME,
            credit: -1
        })
    );
    let lock = LedgerKind::Slashed {
        unlock_height: dereg_height + 21_600,
    };
    assert_eq!(out.ledger.len(), 1);
    assert_eq!(out.ledger[0].kind, lock);
    assert_eq!(out.ledger[0].amount, REQ);
    assert_eq!(sim.state.locked_stakes(dereg_height + 21_599).count(), 1);
    assert_eq!(sim.state.locked_stakes(dereg_height + 21_600).count(), 0);
    // The key may register again as a new node.
    let out = sim.step(vec![register(1, REQ, REQ)]);
    assert!(out.rejected.is_empty());
    assert_eq!(sim.node(1).decommission_count, 0);
}

#[test]
fn recommission_reduces_credit_and_low_credit_failure_deregisters() {
    let mut sim = Sim::new();
    sim.register_full(1);
    // Stay up for 720 blocks (one scaled day) with proofs every 5 blocks: +24 credit.
    for _ in 0..144 {
        let proof = sim.proof(1);
        let out = sim.step(vec![proof]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        sim.steps(4);
    }
    let h = sim.state.height();
    assert_eq!(h, 721);
    assert_eq!(sim.state.credit(sim.node(1), h), 60 + 24);
    // Silence: the last proof was at height 717 (t = T0 + 1434); decommissioned at 728.
    sim.steps(7);
    let NodeStatus::Decommissioned { at, .. } = sim.node(1).status else {
        panic!("not decommissioned: {:?}", sim.node(1).status);
    };
    assert_eq!(at, 728);
    assert_eq!(sim.state.credit(sim.node(1), at), 84);
    sim.steps(19);
    // A fresh proof at height at + 20 recommissions: 84 − 2 × 20 = 44 credit.
    let proof = sim.proof(1);
    let out = sim.step(vec![proof]);
    assert_eq!(
        out.history.last().map(|e| e.change.clone()),
        Some(Change::Recommissioned { credit: 44 })
    );
    let node = sim.node(1);
    assert_eq!(node.status, NodeStatus::Active { since: at + 20 });
    assert_eq!(node.swarm_id, SwarmId(0));
    assert_eq!(sim.state.credit(node, at + 20), 44);
    // Failing again with 44 < 60 credit: straight to deregistration.
    sim.steps(11);
    assert!(sim.state.node(&pk(1)).is_none());
    assert!(matches!(
        sim.state.history().last().map(|e| &e.change),
        Some(Change::Deregistered {
            reasons: REASON_UPTIME,
            ..
        })
    ));
}

#[test]
fn voluntary_unlock_and_expiry() {
    // Lock 40 blocks → unlock after 20 (the 30-day small-contributor timer stays 21 600).
    let mut sim = Sim::with_rules(rules_with_lock(Some(40)));
    sim.step(vec![
        register(1, REQ / 4, REQ / 4),
        contribute(1, "small", 20 * OXEN),
    ]);
    sim.step(vec![contribute(1, "big", 55 * OXEN)]);
    assert!(sim.node(1).active());
    let unlock = |who: &str| Event::RequestUnlock {
        pubkey: pk(1),
        address: addr(who),
    };
    // Small contributors (< 24.99 %) wait 30 days (21 600 blocks) from registration.
    let out = sim.step(vec![
        unlock("small"),
        unlock("stranger"),
        unlock("operator"),
    ]);
    assert_eq!(
        out.rejected,
        vec![
            (0, EventError::SmallContributorLocked { until: 1 + 21_600 }),
            (1, EventError::NotContributor)
        ]
    );
    let unlock_height = 3 + 20;
    assert_eq!(sim.node(1).requested_unlock_height, unlock_height);
    let out = sim.step(vec![unlock("big")]);
    assert_eq!(out.rejected, vec![(0, EventError::UnlockAlreadyRequested)]);
    // It stays active (proofs keep coming) until the block after the unlock height.
    while sim.state.next_height() <= unlock_height {
        let proof = sim.proof(1);
        sim.step(vec![proof]);
        assert!(sim.node(1).active());
    }
    let out = sim.step(vec![]);
    assert_eq!(sim.state.height(), unlock_height + 1);
    assert!(sim.state.node(&pk(1)).is_none());
    assert_eq!(
        out.history.last().map(|e| e.change.clone()),
        Some(Change::Expired)
    );
    assert_eq!(out.ledger.len(), 3);
    assert!(out.ledger.iter().all(|e| e.kind == LedgerKind::Released));
    assert_eq!(sim.state.locked_stakes(out.ledger[0].height).count(), 0);
}

#[test]
fn forged_replayed_and_stale_proofs_are_rejected() {
    let mut sim = Sim::new();
    sim.register_full(1);
    let now = sim.now();
    let good = heartbeat(1, now).sign(&key(1));
    assert_eq!(
        sim.state.check_proof(&heartbeat(1, now).sign(&key(2)), now),
        Err(EventError::BadSignature)
    );
    assert_eq!(
        sim.state.check_proof(&heartbeat(9, now).sign(&key(9)), now),
        Err(EventError::UnknownNode)
    );
    assert_eq!(
        sim.state.check_proof(&good, now + 301),
        Err(EventError::Stale)
    );
    let out = sim.step(vec![Event::UptimeProof {
        proof: good.clone(),
        received_at: now,
    }]);
    assert!(out.rejected.is_empty());
    let node = sim.node(1);
    assert_eq!(node.last_proof_time, now);
    let out = sim.step(vec![Event::UptimeProof {
        proof: good,
        received_at: now + 2,
    }]);
    assert_eq!(out.rejected, vec![(0, EventError::Replayed)]);
}

#[test]
fn unreachable_reports_decommission_only_after_a_streak() {
    let mut sim = Sim::new();
    sim.register_full(1);
    sim.register_full(2);
    let report = |sim: &Sim, reporter: u8, target: u8, passed: bool| Event::PeerReport {
        report: PeerReport {
            kind: TestKind::Storage,
            pubkey: pk(target),
            passed,
            reporter: pk(reporter),
            t: sim.now(),
        }
        .sign(&key(reporter)),
        received_at: sim.now(),
    };
    // Non-members and self-reports are refused.
    let out = sim.step(vec![report(&sim, 3, 1, false), report(&sim, 1, 1, false)]);
    assert_eq!(
        out.rejected,
        vec![
            (0, EventError::ReporterNotActive),
            (1, EventError::SelfReport)
        ]
    );
    // Node 2 fails every block while both keep proving uptime; the streak must exceed 11 s.
    let start = sim.state.height() + 1;
    loop {
        let events = vec![report(&sim, 1, 2, false), sim.proof(1), sim.proof(2)];
        sim.step(events);
        if !sim.node(2).active() {
            break;
        }
        assert!(sim.state.height() < start + 10, "never decommissioned");
    }
    // First failure at `start`; failing once now − first > 11 s, i.e. 6 blocks later.
    assert_eq!(sim.node(2).state_height, start + 6);
    assert_eq!(sim.node(2).last_decommission_reason, REASON_STORAGE);
    assert!(sim.node(1).active());
    // A pass plus a fresh proof recommissions it next block.
    let events = vec![report(&sim, 1, 2, true), sim.proof(2)];
    sim.step(events);
    assert!(sim.node(2).active());
}

#[test]
fn state_is_a_function_of_the_blocks() {
    let mut sim = Sim::new();
    sim.register_full(1);
    sim.step(vec![register(2, REQ / 4, REQ / 4)]);
    sim.steps(15);
    let mut replay = ChainState::new(rules());
    for block in &sim.blocks {
        replay.apply_block(block);
    }
    let dump =
        |s: &ChainState| serde_json::to_string(&(s.nodes(), s.ledger(), s.history())).unwrap();
    assert_eq!(dump(&replay), dump(&sim.state));
    assert_eq!(replay.tip(), sim.state.tip());
}

#[test]
fn testers_are_ten_active_nodes_stable_within_an_epoch_and_reshuffled_after() {
    let mut sim = Sim::new();
    let out = sim.step((1..=14).map(|i| register(i, REQ, REQ)).collect());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let epoch_blocks = sim.state.assignment_epoch_blocks();
    // 2 s blocks, time scale 60: a scaled hour is 30 blocks.
    assert_eq!(epoch_blocks, 30);
    let epoch = sim.state.assignment_epoch();
    let testers = sim.state.assigned_testers(&pk(1), epoch);
    assert_eq!(testers.len(), TESTERS_PER_NODE);
    assert!(!testers.contains(&pk(1)));
    assert!(testers
        .iter()
        .all(|t| sim.state.node(t).is_some_and(ServiceNode::active)));
    // Every node is tested by 10 testers: the targets lists add up.
    let total: usize = (1..=14).map(|i| sim.state.test_targets(&pk(i)).len()).sum();
    assert_eq!(total, 14 * TESTERS_PER_NODE);
    // Same epoch → same testers; a replay of the blocks gives the same answer.
    let mut replay = ChainState::new(rules());
    for block in &sim.blocks {
        replay.apply_block(block);
    }
    assert_eq!(replay.assigned_testers(&pk(1), epoch), testers);
    // A report from a non-assigned (but active) node is refused; an assigned one's counts once.
    // (Epoch 0: there is no previous epoch whose testers would also count.)
    assert_eq!(sim.state.assignment_epoch(), 0);
    let assigned = testers.clone();
    let outsider = (2..=14).find(|&i| !assigned.contains(&pk(i))).unwrap();
    let insider = (2..=14).find(|&i| assigned.contains(&pk(i))).unwrap();
    let report = |reporter: u8, t: u64| {
        PeerReport {
            kind: TestKind::Storage,
            pubkey: pk(1),
            passed: false,
            reporter: pk(reporter),
            t,
        }
        .sign(&key(reporter))
    };
    let now = sim.now();
    assert_eq!(
        sim.state.check_report(&report(outsider, now), now),
        Err(EventError::NotAssignedTester)
    );
    let good = report(insider, now);
    let out = sim.step(vec![
        Event::PeerReport {
            report: good.clone(),
            received_at: now,
        },
        Event::PeerReport {
            report: good,
            received_at: now,
        },
    ]);
    assert_eq!(out.rejected, vec![(1, EventError::Replayed)]);
    // Later epochs draw from their own first block's hash: over a few epochs the set changes.
    let mut changed = false;
    for _ in 0..4 {
        for _ in 0..epoch_blocks {
            // Everyone keeps proving uptime, so all 14 stay active.
            let proofs = (1..=14).map(|i| sim.proof(i)).collect();
            sim.step(proofs);
        }
        let e = sim.state.assignment_epoch();
        changed |= sim.state.assigned_testers(&pk(1), e) != testers;
    }
    assert!(changed, "the assignment never changed across epochs");
}
