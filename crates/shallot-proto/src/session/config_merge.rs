//! Concurrent versions of a user config, resolved by libsession's rules: which versions are
//! still current, and what the next version is built on. Two devices that change the profile
//! or contact list at the same time both push the same seqno; the next device to see both merges
//! them instead of letting one change silently win.
//!
//! With `n` the newest seqno among the versions seen:
//! - a version listed by another one in its `<` lagged diffs was absorbed by it: dropped;
//! - a version with seqno ≤ `n − LAG_WINDOW` is stale: dropped;
//! - if one version is left it is current, and the next version is its seqno + 1 on its data;
//! - if several are left (a conflict), the next version is `n + 1` and starts from the data of
//!   the greatest `(seqno, hash)`, then replays in `(seqno, hash)` order every current version's
//!   own diff plus the lagged diffs they carry with seqno ≥ `n + 1 − LAG_WINDOW`. A replayed
//!   "changed" marker takes its value from the data of the message that carried the diff.
//!
//! The result depends only on the set of versions, not on the order they arrived in, so every
//! device that sees the same conflict pushes byte-identical merges (deduplicated by the swarm).
//! Pure: no I/O.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};

use super::config_message::{
    prune, scalar_order, ConfigMessage, Dict, LaggedDiff, ParsedConfig, Value, LAG_WINDOW,
};

/// The versions still current among `versions` (absorbed, stale and repeated ones dropped),
/// sorted by `(seqno, hash)`. More than one means a conflict that the next push resolves.
pub fn current_versions(versions: impl IntoIterator<Item = ParsedConfig>) -> Vec<ParsedConfig> {
    let mut by_key: BTreeMap<(i64, [u8; 32]), ParsedConfig> = versions
        .into_iter()
        .map(|version| (version.seqno_hash(), version))
        .collect();
    let Some(newest) = by_key.keys().next_back().map(|key| key.0) else {
        return Vec::new();
    };
    let absorbed: HashSet<(i64, [u8; 32])> = by_key
        .values()
        .flat_map(|version| version.message.lagged.iter().map(LaggedDiff::key))
        .collect();
    let oldest_kept = newest.saturating_sub(LAG_WINDOW);
    by_key.retain(|key, _| key.0 > oldest_kept && !absorbed.contains(key));
    by_key.into_values().collect()
}

/// What the next version of a config is built on: its seqno, the (merged) data it starts from,
/// and the lagged diffs it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextBase {
    /// The next version's seqno: one above the newest current version (1 if none).
    pub seqno: i64,
    /// The data every device agrees on: the single current version's, or the merge.
    pub data: Dict,
    /// The lagged diffs for the next version's `<`.
    pub lagged: Vec<LaggedDiff>,
}

impl NextBase {
    /// The next version with `data` (the base's data plus this device's changes; equal to
    /// [`Self::data`] for a pure merge). Serialize it with `Some(&self.data)` as the previous
    /// data so that its `=` diff holds only this device's changes.
    pub fn message(&self, data: Dict) -> ConfigMessage {
        ConfigMessage {
            seqno: self.seqno,
            data,
            lagged: self.lagged.clone(),
        }
    }
}

/// The base for the next version on top of `current` (as returned by [`current_versions`]).
pub fn next_base(current: &[ParsedConfig]) -> NextBase {
    let Some(top) = current.iter().max_by_key(|version| version.seqno_hash()) else {
        return NextBase {
            seqno: 1,
            data: Dict::new(),
            lagged: Vec::new(),
        };
    };
    let seqno = top.message.seqno.saturating_add(1);
    let cutoff = seqno.saturating_sub(LAG_WINDOW);

    // Each replayed diff with the data its changed values are read from. Own diffs first; then
    // lagged ones from the highest-ranked message down, so that its copy wins a disagreement.
    let mut replay: BTreeMap<(i64, [u8; 32]), (&Dict, &Dict)> = current
        .iter()
        .map(|version| (version.seqno_hash(), (&version.diff, &version.message.data)))
        .collect();
    let mut ranked: Vec<&ParsedConfig> = current.iter().collect();
    ranked.sort_by_key(|version| Reverse(version.seqno_hash()));
    for version in ranked {
        for entry in &version.message.lagged {
            if entry.seqno >= cutoff {
                replay
                    .entry(entry.key())
                    .or_insert((&entry.diff, &version.message.data));
            }
        }
    }

    let mut data = top.message.data.clone();
    if current.len() > 1 {
        for (diff, source) in replay.values() {
            apply_diff(&mut data, diff, source);
        }
        data = prune(&data);
    }
    let lagged = replay
        .into_iter()
        .filter(|(key, _)| key.0 > cutoff)
        .map(|((seqno, hash), (diff, _))| LaggedDiff {
            seqno,
            hash,
            diff: diff.clone(),
        })
        .collect();
    NextBase {
        seqno,
        data,
        lagged,
    }
}

/// Applies a `=`-format diff to `data`: `""` takes the value from `source` (skipped if `source`
/// has no scalar there), `"-"` removes a scalar, nested dicts recurse and set diffs add and
/// remove elements. Dicts and sets left empty are removed, as libsession's pruning does.
pub fn apply_diff(data: &mut Dict, diff: &Dict, source: &Dict) {
    let no_source = Dict::new();
    for (key, marker) in diff {
        match marker {
            Value::Bytes(marker) if marker.is_empty() => {
                if let Some(value) = source.get(key).filter(|v| v.is_scalar()) {
                    data.insert(key.clone(), value.clone());
                }
            }
            Value::Bytes(_) => {
                if data.get(key).is_some_and(Value::is_scalar) {
                    data.remove(key);
                }
            }
            Value::Dict(sub_diff) => {
                let sub_source = match source.get(key) {
                    Some(Value::Dict(d)) => d,
                    _ => &no_source,
                };
                let slot = data
                    .entry(key.clone())
                    .or_insert_with(|| Value::Dict(Dict::new()));
                if !matches!(slot, Value::Dict(_)) {
                    *slot = Value::Dict(Dict::new());
                }
                let empty = match slot {
                    Value::Dict(inner) => {
                        apply_diff(inner, sub_diff, sub_source);
                        inner.is_empty()
                    }
                    _ => true,
                };
                if empty {
                    data.remove(key);
                }
            }
            Value::List(pair) => {
                let [Value::List(added), Value::List(removed)] = pair.as_slice() else {
                    continue;
                };
                let slot = data
                    .entry(key.clone())
                    .or_insert_with(|| Value::List(Vec::new()));
                if !matches!(slot, Value::List(_)) {
                    *slot = Value::List(Vec::new());
                }
                let empty = match slot {
                    Value::List(set) => {
                        set.extend(added.iter().filter(|v| v.is_scalar()).cloned());
                        set.retain(|v| !removed.contains(v));
                        set.sort_by(scalar_order);
                        set.dedup();
                        set.is_empty()
                    }
                    _ => true,
                };
                if empty {
                    data.remove(key);
                }
            }
            Value::Int(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::session::config_message::diff;

    fn dict(entries: &[(&str, Value)]) -> Dict {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect()
    }

    fn parsed(message: &ConfigMessage, previous: Option<&Dict>) -> ParsedConfig {
        ConfigMessage::parse_full(&message.serialize(previous)).unwrap()
    }

    /// The version a device pushes after changing `current`'s data with `change`.
    fn edit(current: &[ParsedConfig], change: impl FnOnce(&mut Dict)) -> ParsedConfig {
        let base = next_base(current);
        let mut data = base.data.clone();
        change(&mut data);
        parsed(&base.message(data), Some(&base.data))
    }

    fn set(items: &[Value]) -> Value {
        Value::List(items.to_vec())
    }

    /// The data of the design document's worked example before its conflict.
    fn start() -> ParsedConfig {
        let data = dict(&[
            (
                "dictB",
                Value::Dict(dict(&[("changed", 1.into()), ("foo", 123.into())])),
            ),
            (
                "good",
                set(&[99.into(), 123.into(), "Foo".into(), "bar".into()]),
            ),
            ("int1", 42.into()),
            ("int2", 2.into()),
            ("string2", "hello".into()),
        ]);
        parsed(&ConfigMessage::new(124, data), None)
    }

    #[test]
    fn a_linear_history_has_one_current_version_and_carries_lagged_diffs() {
        let mut current = vec![start()];
        let mut all = current.clone();
        for i in 0..7 {
            let next = edit(&current, |d| {
                d.insert(b"int1".to_vec(), Value::Int(i));
            });
            all.push(next.clone());
            current = current_versions(all.clone());
            assert_eq!(current, vec![next.clone()], "round {i}");
        }
        let top = &current[0];
        assert_eq!(top.message.seqno, 131);
        // Diffs of the last LAG_WINDOW - 1 versions before it: 127..=130.
        let seqnos: Vec<i64> = top.message.lagged.iter().map(|l| l.seqno).collect();
        assert_eq!(seqnos, vec![127, 128, 129, 130]);
        let int1 = dict(&[("int1", Value::Bytes(Vec::new()))]);
        assert!(top.message.lagged.iter().all(|l| l.diff == int1));
    }

    #[test]
    fn concurrent_edits_of_different_keys_are_both_kept_and_the_merge_is_order_independent() {
        let base = start();
        let a = edit(std::slice::from_ref(&base), |d| {
            d.insert(b"int1".to_vec(), Value::Int(5));
        });
        let b = edit(std::slice::from_ref(&base), |d| {
            if let Some(Value::Dict(dict_b)) = d.get_mut(b"dictB".as_slice()) {
                dict_b.remove(b"foo".as_slice());
            }
            d.insert(
                b"good".to_vec(),
                set(&[123.into(), "Foo".into(), "bar".into()]),
            );
        });
        assert_eq!(a.message.seqno, 125);
        assert_eq!(b.message.seqno, 125);

        let current = current_versions([base.clone(), a.clone(), b.clone()]);
        assert_eq!(
            current.len(),
            2,
            "the base is absorbed, the two edits compete"
        );
        let merged = next_base(&current);
        assert_eq!(merged.seqno, 126);
        assert_eq!(merged.data.get(b"int1".as_slice()), Some(&Value::Int(5)));
        assert_eq!(
            merged.data.get(b"dictB".as_slice()),
            Some(&Value::Dict(dict(&[("changed", 1.into())])))
        );
        assert_eq!(
            merged.data.get(b"good".as_slice()),
            Some(&set(&[123.into(), "Foo".into(), "bar".into()]))
        );
        let keys: Vec<(i64, [u8; 32])> = merged.lagged.iter().map(LaggedDiff::key).collect();
        let mut expected = vec![base.seqno_hash(), a.seqno_hash(), b.seqno_hash()];
        expected.sort_unstable();
        assert_eq!(keys, expected);

        // Any device, whatever order it saw them in, pushes the same bytes; the `=` is empty.
        let bytes = merged
            .message(merged.data.clone())
            .serialize(Some(&merged.data));
        let reversed = next_base(&current_versions([b.clone(), a.clone()]));
        assert_eq!(
            reversed
                .message(reversed.data.clone())
                .serialize(Some(&reversed.data)),
            bytes
        );
        let pushed = ConfigMessage::parse_full(&bytes).unwrap();
        assert!(pushed.diff.is_empty());
        // Once pushed, the merge absorbs both.
        assert_eq!(
            current_versions([a, b, pushed.clone()]),
            vec![pushed.clone()]
        );
    }

    #[test]
    fn the_same_key_changed_twice_goes_to_the_greater_hash() {
        let base = start();
        let a = edit(std::slice::from_ref(&base), |d| {
            d.insert(b"string2".to_vec(), "from a".into());
        });
        let b = edit(&[base], |d| {
            d.insert(b"string2".to_vec(), "from b".into());
        });
        let winner = if a.hash > b.hash { "from a" } else { "from b" };
        let merged = next_base(&current_versions([a, b]));
        assert_eq!(
            merged.data.get(b"string2".as_slice()),
            Some(&Value::from(winner))
        );
    }

    #[test]
    fn a_late_version_from_an_outdated_device_is_merged_within_the_window_and_dropped_after() {
        let base = start();
        // The outdated device edits 124 (→ 125) while the others went on to 128.
        let late = edit(std::slice::from_ref(&base), |d| {
            d.insert(b"late".to_vec(), 1.into());
        });
        let mut current = vec![base];
        for i in 0..4 {
            current = vec![edit(&current, |d| {
                d.insert(b"int2".to_vec(), Value::Int(100 + i));
            })];
        }
        assert_eq!(current[0].message.seqno, 128);
        let both = current_versions([current[0].clone(), late.clone()]);
        assert_eq!(both.len(), 2);
        let merged = next_base(&both);
        assert_eq!(merged.data.get(b"late".as_slice()), Some(&Value::Int(1)));
        assert_eq!(merged.data.get(b"int2".as_slice()), Some(&Value::Int(103)));

        // One more version on the main line and 125 is beyond the window.
        let newer = edit(&current, |_| {});
        let newer = edit(&[newer], |d| {
            d.insert(b"x".to_vec(), 1.into());
        });
        assert_eq!(newer.message.seqno, 130);
        assert_eq!(current_versions([newer.clone(), late]), vec![newer]);
    }

    #[test]
    fn replay_applies_set_and_nested_dict_diffs_and_prunes_what_empties() {
        let mut data = dict(&[
            ("s", set(&[1.into(), 2.into()])),
            ("d", Value::Dict(dict(&[("x", 1.into())]))),
            ("k", "v".into()),
        ]);
        let source = dict(&[
            ("d", Value::Dict(dict(&[("y", 7.into())]))),
            ("n", 3.into()),
        ]);
        let change = dict(&[
            ("s", set(&[set(&[3.into()]), set(&[1.into(), 2.into()])])),
            (
                "d",
                Value::Dict(dict(&[("x", "-".into()), ("y", "".into())])),
            ),
            ("k", "-".into()),
            ("n", "".into()),
            ("missing", "".into()),
        ]);
        apply_diff(&mut data, &change, &source);
        assert_eq!(
            data,
            dict(&[
                ("d", Value::Dict(dict(&[("y", 7.into())]))),
                ("n", 3.into()),
                ("s", set(&[3.into()])),
            ])
        );
        // Removing the last element and key empties both containers, which go.
        let clear = dict(&[
            ("s", set(&[set(&[]), set(&[3.into()])])),
            ("d", Value::Dict(dict(&[("y", "-".into())]))),
        ]);
        apply_diff(&mut data, &clear, &Dict::new());
        assert_eq!(data, dict(&[("n", 3.into())]));
        // A diff between two datas replays one onto the other.
        let (old, new) = (start().message.data, data);
        let mut replayed = old.clone();
        apply_diff(&mut replayed, &diff(&old, &new), &new);
        assert_eq!(replayed, new);
    }

    #[test]
    fn nothing_seen_means_seqno_one_on_empty_data() {
        assert!(current_versions(Vec::new()).is_empty());
        let base = next_base(&[]);
        assert_eq!((base.seqno, base.data.len(), base.lagged.len()), (1, 0, 0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn key() -> impl Strategy<Value = Vec<u8>> {
            prop::sample::select(vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"d".to_vec(),
            ])
        }

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::Int),
                "[a-z]{0,4}".prop_map(Value::from)
            ]
        }

        fn data() -> impl Strategy<Value = Dict> {
            prop::collection::btree_map(key(), scalar(), 0..4)
        }

        proptest! {
            /// Devices editing disjoint keys of the same version all see every edit after the
            /// merge, whatever order the versions arrive in.
            #[test]
            fn disjoint_concurrent_edits_all_survive(
                start in data(),
                edits in prop::collection::vec((key(), prop::option::of(scalar())), 1..4),
                rotate in 0usize..4,
            ) {
                let base = parsed(&ConfigMessage::new(10, start), None);
                let mut edits = edits;
                edits.sort_by(|x, y| x.0.cmp(&y.0));
                edits.dedup_by(|x, y| x.0 == y.0);
                let versions: Vec<ParsedConfig> = edits
                    .iter()
                    .map(|(k, v)| edit(std::slice::from_ref(&base), |d| match v {
                        Some(v) => { d.insert(k.clone(), v.clone()); }
                        None => { d.remove(k); }
                    }))
                    .collect();
                let mut arrived = versions.clone();
                arrived.push(base.clone());
                let n = arrived.len();
                arrived.rotate_left(rotate % n);
                let merged = next_base(&current_versions(arrived.clone()));
                arrived.reverse();
                prop_assert_eq!(&next_base(&current_versions(arrived)), &merged);
                for (k, v) in &edits {
                    prop_assert_eq!(merged.data.get(k), v.as_ref());
                }
                for (k, v) in &base.message.data {
                    if !edits.iter().any(|(e, _)| e == k) {
                        prop_assert_eq!(merged.data.get(k), Some(v));
                    }
                }
            }
        }
    }
}
