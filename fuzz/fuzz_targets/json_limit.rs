//! `json_limit::from_slice`: with an unlimited budget it accepts exactly what
//! `serde_json::from_slice::<Value>` accepts and builds the same value; with a budget taken from
//! the first input byte it either gives that same value or fails with "too many JSON values",
//! and only when the document holds more values than the budget (or repeats object keys).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shallot_proto::json_limit::from_slice;

/// Values in a document as `json_limit` counts them: every scalar, array, object and key.
fn count(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(|v| 1 + count(v)).sum::<usize>(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&budget, json)) = data.split_first() else {
        return;
    };
    let reference = serde_json::from_slice::<Value>(json);
    let unlimited = from_slice(json, usize::MAX);
    assert_eq!(unlimited.as_ref().ok(), reference.as_ref().ok());
    let budget = usize::from(budget);
    match (from_slice(json, budget), &reference) {
        (Ok(value), Ok(expected)) => {
            assert_eq!(&value, expected);
            assert!(count(expected) <= budget);
        }
        (Ok(value), Err(_)) => panic!("accepted what serde_json refuses: {value:?}"),
        (Err(error), Ok(expected)) => {
            assert!(error.to_string().contains("too many JSON values"), "{error}");
            // A repeated key is charged but then replaced, so only objects may hold fewer.
            assert!(count(expected) > budget || json.contains(&b'{'));
        }
        (Err(_), Err(_)) => {}
    }
});
