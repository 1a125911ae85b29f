//! Libsession's config data rules: the validity checks for the `&` data and `=` diff dicts, the
//! pruning that normalizes data, and the diff between two versions (the `=` format).

use std::cmp::Ordering;

use crate::bencode::{Dict, Value};
use crate::session::config_message::ConfigError;

/// An empty byte string: the diff marker "set from the data".
fn changed_marker() -> Value {
    Value::Bytes(Vec::new())
}

/// The diff marker "removed".
fn removed_marker() -> Value {
    Value::Bytes(b"-".to_vec())
}

/// Libsession's order for set members: integers (by value) before strings (by bytes).
pub(crate) fn scalar_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Int(_), _) => Ordering::Less,
        (_, Value::Int(_)) => Ordering::Greater,
        (Value::Bytes(_), _) => Ordering::Less,
        (_, Value::Bytes(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Checks a list of scalars in strictly ascending [`scalar_order`].
fn check_sorted_scalars(items: &[Value]) -> Result<(), &'static str> {
    if !items.iter().all(Value::is_scalar) {
        return Err("a set holds something other than integers and strings");
    }
    if items
        .windows(2)
        .any(|pair| scalar_order(&pair[0], &pair[1]) != Ordering::Less)
    {
        return Err("a set is unsorted or has duplicates");
    }
    Ok(())
}

/// Libsession's rules for the `&` dict: no empty nested dicts, sets non-empty and sorted.
pub(crate) fn validate_data(dict: &Dict, top_level: bool) -> Result<(), ConfigError> {
    if !top_level && dict.is_empty() {
        return Err(ConfigError::InvalidData("empty nested dict"));
    }
    for value in dict.values() {
        match value {
            Value::Int(_) | Value::Bytes(_) => {}
            Value::Dict(sub) => validate_data(sub, false)?,
            Value::List(set) => {
                if set.is_empty() {
                    return Err(ConfigError::InvalidData("empty set"));
                }
                check_sorted_scalars(set).map_err(ConfigError::InvalidData)?;
            }
        }
    }
    Ok(())
}

/// The `=` dict may hold only `""`, `"-"`, nested diffs and `[added, removed]` set diffs.
pub(crate) fn validate_diff(dict: &Dict) -> Result<(), ConfigError> {
    for value in dict.values() {
        match value {
            Value::Bytes(marker) if marker.is_empty() || marker == b"-" => {}
            Value::Bytes(_) => {
                return Err(ConfigError::InvalidDiff(
                    "scalar marker is neither \"\" nor \"-\"",
                ))
            }
            Value::Int(_) => return Err(ConfigError::InvalidDiff("integer in a diff")),
            Value::Dict(sub) => validate_diff(sub)?,
            Value::List(pair) => {
                let [Value::List(added), Value::List(removed)] = pair.as_slice() else {
                    return Err(ConfigError::InvalidDiff(
                        "set diff is not a pair of lists [added, removed]",
                    ));
                };
                check_sorted_scalars(added).map_err(ConfigError::InvalidDiff)?;
                check_sorted_scalars(removed).map_err(ConfigError::InvalidDiff)?;
            }
        }
    }
    Ok(())
}

/// Libsession's pruning: empty nested dicts and sets go; sets become sorted unique scalars.
pub(crate) fn normalized(dict: &Dict) -> Dict {
    dict.iter()
        .filter_map(|(key, value)| Some((key.clone(), normalized_value(value)?)))
        .collect()
}

fn normalized_value(value: &Value) -> Option<Value> {
    match value {
        Value::Int(_) | Value::Bytes(_) => Some(value.clone()),
        Value::Dict(dict) => {
            let dict = normalized(dict);
            (!dict.is_empty()).then_some(Value::Dict(dict))
        }
        Value::List(items) => {
            let mut set: Vec<Value> = items.iter().filter(|v| v.is_scalar()).cloned().collect();
            set.sort_by(scalar_order);
            set.dedup();
            (!set.is_empty()).then_some(Value::List(set))
        }
    }
}

/// The diff from `old` to `new`, as libsession's `diff_impl` computes it (both normalized).
pub(crate) fn diff_dicts(old: &Dict, new: &Dict) -> Dict {
    let mut diff = Dict::new();
    for (key, old_value) in old {
        if !new.contains_key(key) {
            if let Some(marker) = removal(old_value) {
                diff.insert(key.clone(), marker);
            }
        }
    }
    for (key, new_value) in new {
        let marker = match (old.get(key), new_value) {
            (Some(Value::Dict(o)), Value::Dict(n)) => {
                let sub = diff_dicts(o, n);
                (!sub.is_empty()).then_some(Value::Dict(sub))
            }
            (Some(Value::List(o)), Value::List(n)) => set_diff(o, n),
            (Some(o), n) if o.is_scalar() && n.is_scalar() => (o != n).then(changed_marker),
            // New key, or its kind (scalar, dict, set) changed: both count as added.
            _ => addition(new_value),
        };
        if let Some(marker) = marker {
            diff.insert(key.clone(), marker);
        }
    }
    diff
}

/// The diff marking a whole value as removed.
fn removal(value: &Value) -> Option<Value> {
    match value {
        Value::Dict(d) => {
            let sub = diff_dicts(d, &Dict::new());
            (!sub.is_empty()).then_some(Value::Dict(sub))
        }
        Value::List(set) => set_diff(set, &[]),
        Value::Int(_) | Value::Bytes(_) => Some(removed_marker()),
    }
}

/// The diff marking a whole value as added.
fn addition(value: &Value) -> Option<Value> {
    match value {
        Value::Dict(d) => {
            let sub = diff_dicts(&Dict::new(), d);
            (!sub.is_empty()).then_some(Value::Dict(sub))
        }
        Value::List(set) => set_diff(&[], set),
        Value::Int(_) | Value::Bytes(_) => Some(changed_marker()),
    }
}

/// `[added, removed]` between two sorted sets, or `None` if they are equal.
fn set_diff(old: &[Value], new: &[Value]) -> Option<Value> {
    let missing_from =
        |set: &[Value], v: &Value| set.binary_search_by(|x| scalar_order(x, v)).is_err();
    let added: Vec<Value> = new
        .iter()
        .filter(|v| missing_from(old, v))
        .cloned()
        .collect();
    let removed: Vec<Value> = old
        .iter()
        .filter(|v| missing_from(new, v))
        .cloned()
        .collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    Some(Value::List(vec![Value::List(added), Value::List(removed)]))
}

/// The diff from `old` to `new` (both pruned first), in the `=` format: what a message built on
/// `old` with data `new` records as its own change.
pub fn diff(old: &Dict, new: &Dict) -> Dict {
    diff_dicts(&normalized(old), &normalized(new))
}

/// Libsession's pruning of config data: empty nested dicts and sets are dropped and lists
/// become sorted sets of unique integers and strings.
pub fn prune(data: &Dict) -> Dict {
    normalized(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::encode_dict;
    use crate::bencode::test_dict as dict;

    #[test]
    fn diff_markers() {
        let old = dict([
            ("a", 1.into()),
            ("b", "keep".into()),
            ("c", "gone".into()),
            ("d", Value::Dict(dict([("x", 1.into()), ("y", 2.into())]))),
            ("e", Value::Dict(dict([("z", 1.into())]))),
            ("s", Value::List(vec![1.into(), "a".into()])),
        ]);
        let new = dict([
            ("a", 2.into()),
            ("b", "keep".into()),
            ("d", Value::Dict(dict([("x", 1.into()), ("y", 3.into())]))),
            ("e", "now a string".into()),
            ("f", Value::Dict(dict([("g", "new".into())]))),
            ("s", Value::List(vec![2.into(), "a".into()])),
        ]);
        let diff = diff_dicts(&old, &new);
        assert_eq!(
            encode_dict(&diff),
            b"d1:a0:1:c1:-1:dd1:y0:e1:e0:1:fd1:g0:e1:sll\
              i2eeli1eeee"
                .to_vec()
        );
        // Removing a dict marks each of its keys removed.
        let diff = diff_dicts(&old, &Dict::new());
        assert_eq!(
            diff.get(b"d".as_slice()),
            Some(&Value::Dict(dict([
                ("x", removed_marker()),
                ("y", removed_marker())
            ])))
        );
        assert!(diff_dicts(&new, &new).is_empty());
    }
}
