//! What the meta-requests answer (storage RPC spec §4.13, §4.14): one `{"code", "body"}` per
//! subrequest run.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Hardfork;

/// A `batch` or `sequence` answer: `{"results": [...]}`, in request order (a `sequence` stops
/// after the first result outside 200–299).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResults {
    /// One result per subrequest run.
    pub results: Vec<SubResult>,
}

/// One subrequest's status and body: the method's JSON answer, or its error text as a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubResult {
    /// The body the subrequest would have had on its own.
    #[serde(default)]
    pub body: Value,
    /// The HTTP status it would have had.
    pub code: u16,
}

impl SubResult {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The body as the method's typed answer.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.body)
    }

    /// The body as text: an error's string as is, any other JSON as JSON text.
    pub fn text(&self) -> String {
        match &self.body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

/// An `ifelse` answer: `{"hf", "v", "height", "condition", "result"?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IfElseResult {
    /// Whether the `if` conditions held.
    pub condition: bool,
    /// The node's block height.
    pub height: u64,
    /// The network's `[hardfork, snode_revision]`.
    pub hf: Hardfork,
    /// The chosen branch's result; absent when that branch was not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SubResult>,
    /// The storage server version compared against.
    pub v: [u16; 3],
}
