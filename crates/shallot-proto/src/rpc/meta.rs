//! The meta-requests (storage RPC spec §4.13, §4.14): `batch`/`sequence` run up to 20 ordinary
//! subrequests; `ifelse` runs one of two requests depending on the node's hardfork, version and
//! block height.

use serde_json::{Map, Value};

use super::error::{Branch, ParamError};
use super::fields::Params;
use super::method::Method;
use super::request::Request;
use super::MAX_BATCH;

/// Parses `batch`/`sequence` params into their subrequests. A parse error in any subrequest
/// fails the whole request with that error.
pub(crate) fn parse_subrequests(p: Params<'_>) -> Result<Vec<Request>, ParamError> {
    let requests = match p.raw("requests") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Err(ParamError::BatchNoRequests),
    };
    if requests.len() > MAX_BATCH {
        return Err(ParamError::BatchLimit);
    }
    requests
        .iter()
        .map(|item| {
            let item = item.as_object().ok_or(ParamError::BatchNotObject)?;
            let method = item.get("method").and_then(Value::as_str);
            let params = item.get("params").filter(|v| v.is_object());
            let (Some(name), Some(params)) = (method, params) else {
                return Err(ParamError::BatchKeys);
            };
            let method =
                Method::from_name(name).ok_or_else(|| ParamError::BatchMethod(name.to_owned()))?;
            // The reference parses the subrequest before refusing meta-requests.
            let request = Request::parse_method(method, params)?;
            if method.is_meta() {
                return Err(ParamError::BatchMeta);
            }
            Ok(request)
        })
        .collect()
}

/// `batch`/`sequence` params for the given subrequests.
pub(crate) fn subrequests_params(requests: &[Request]) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "requests".into(),
        requests.iter().map(Request::to_envelope).collect(),
    );
    out
}

/// A parsed `ifelse` request.
#[derive(Clone, Debug, PartialEq)]
pub struct IfElse {
    /// The `if` conditions (all must hold).
    pub condition: IfCondition,
    /// Run when the condition holds.
    pub then: Option<Request>,
    /// Run when it does not (at least one of the two branches is present when parsed).
    pub otherwise: Option<Request>,
}

/// The `if` object of an `ifelse`: bounds compared lexicographically with the node's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCondition {
    /// Hardfork `[major, revision]` must be ≥ this.
    pub hf_at_least: Option<[i64; 2]>,
    /// Hardfork must be < this.
    pub hf_before: Option<[i64; 2]>,
    /// Storage server version `[major, minor, patch]` must be ≥ this.
    pub v_at_least: Option<[i64; 3]>,
    /// Version must be < this.
    pub v_before: Option<[i64; 3]>,
    /// Block height must be ≥ this.
    pub height_at_least: Option<i64>,
    /// Block height must be < this.
    pub height_before: Option<i64>,
}

/// Pads with zeros or truncates to `N` elements; an empty list is no condition.
fn fixed<const N: usize>(values: Option<Vec<i64>>) -> Option<[i64; N]> {
    let values = values.filter(|v| !v.is_empty())?;
    let mut out = [0; N];
    for (slot, value) in out.iter_mut().zip(values) {
        *slot = value;
    }
    Some(out)
}

impl IfCondition {
    fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let condition = Self {
            height_at_least: p.integer("height_at_least")?,
            height_before: p.integer("height_before")?,
            hf_at_least: fixed(p.integer_array("hf_at_least")?),
            hf_before: fixed(p.integer_array("hf_before")?),
            v_at_least: fixed(p.integer_array("v_at_least")?),
            v_before: fixed(p.integer_array("v_before")?),
        };
        if condition == Self::default() {
            return Err(ParamError::IfNoCondition);
        }
        Ok(condition)
    }

    fn to_params(self) -> Map<String, Value> {
        fn list(values: &[i64]) -> Value {
            values.iter().copied().map(Value::from).collect()
        }
        let mut out = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                out.insert(key.into(), value);
            }
        };
        put("height_at_least", self.height_at_least.map(Value::from));
        put("height_before", self.height_before.map(Value::from));
        put("hf_at_least", self.hf_at_least.map(|v| list(&v)));
        put("hf_before", self.hf_before.map(|v| list(&v)));
        put("v_at_least", self.v_at_least.map(|v| list(&v)));
        put("v_before", self.v_before.map(|v| list(&v)));
        out
    }

    /// Whether the node state satisfies every given bound.
    pub fn evaluate(&self, hardfork: [i64; 2], version: [i64; 3], height: i64) -> bool {
        self.hf_at_least.is_none_or(|b| hardfork >= b)
            && self.hf_before.is_none_or(|b| hardfork < b)
            && self.v_at_least.is_none_or(|b| version >= b)
            && self.v_before.is_none_or(|b| version < b)
            && self.height_at_least.is_none_or(|b| height >= b)
            && self.height_before.is_none_or(|b| height < b)
    }
}

/// A `then`/`else` branch: absent, or `{"method": name, "params": any}` (non-object params read
/// as empty, as in the reference). Any method may appear, including nested meta-requests.
fn parse_branch(p: Params<'_>, branch: Branch) -> Result<Option<Request>, ParamError> {
    let Some(value) = p.raw(branch.key()) else {
        return Ok(None);
    };
    let object = value
        .as_object()
        .ok_or(ParamError::BranchNotObject(branch))?;
    let method = object.get("method").and_then(Value::as_str);
    let params = object.get("params");
    let (Some(name), Some(params)) = (method, params) else {
        return Err(ParamError::BranchKeys(branch));
    };
    let method = Method::from_name(name).ok_or(ParamError::BranchMethod(branch))?;
    Request::parse_method(method, params).map(Some)
}

impl IfElse {
    pub(crate) fn parse(p: Params<'_>) -> Result<Self, ParamError> {
        let condition = match p.raw("if") {
            Some(value) if value.is_object() => IfCondition::parse(Params::new(value))?,
            _ => return Err(ParamError::IfMissing),
        };
        let then = parse_branch(p, Branch::Then)?;
        let otherwise = parse_branch(p, Branch::Else)?;
        if then.is_none() && otherwise.is_none() {
            return Err(ParamError::NoBranch);
        }
        Ok(Self {
            condition,
            then,
            otherwise,
        })
    }

    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("if".into(), self.condition.to_params().into());
        if let Some(then) = &self.then {
            out.insert("then".into(), then.to_envelope());
        }
        if let Some(otherwise) = &self.otherwise {
            out.insert("else".into(), otherwise.to_envelope());
        }
        out
    }

    /// The branch to run for a node state (`None` if that branch is absent).
    pub fn choose(&self, hardfork: [i64; 2], version: [i64; 3], height: i64) -> Option<&Request> {
        if self.condition.evaluate(hardfork, version, height) {
            self.then.as_ref()
        } else {
            self.otherwise.as_ref()
        }
    }
}
