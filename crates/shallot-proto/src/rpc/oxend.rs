//! `oxend_request` params (storage RPC spec §4.12): a whitelisted read-only call proxied to the
//! node's oxend.

use std::fmt;

use serde_json::{Map, Value};

use super::error::ParamError;
use super::fields::{require, Params};

/// The oxend RPC endpoints clients may reach through a storage node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OxendEndpoint {
    /// `get_service_nodes`.
    GetServiceNodes,
    /// `ons_resolve`.
    OnsResolve,
}

impl OxendEndpoint {
    /// The endpoint name (the node calls `rpc.<name>` on oxend).
    pub const fn name(self) -> &'static str {
        match self {
            Self::GetServiceNodes => "get_service_nodes",
            Self::OnsResolve => "ons_resolve",
        }
    }

    /// The endpoint with this exact name, if whitelisted.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::GetServiceNodes, Self::OnsResolve]
            .into_iter()
            .find(|e| e.name() == name)
    }
}

impl fmt::Display for OxendEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `endpoint` (required, whitelisted) and `params` (any non-null JSON value).
pub(crate) fn parse(p: Params<'_>) -> Result<(OxendEndpoint, Option<Value>), ParamError> {
    let endpoint = require("endpoint", p.string("endpoint")?)?;
    let endpoint = OxendEndpoint::from_name(endpoint)
        .ok_or_else(|| ParamError::OxendEndpoint(endpoint.to_owned()))?;
    let params = p.raw("params").filter(|v| !v.is_null()).cloned();
    Ok((endpoint, params))
}

/// JSON params for an oxend request.
pub(crate) fn to_params(endpoint: OxendEndpoint, params: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("endpoint".into(), endpoint.name().into());
    if let Some(params) = params.filter(|v| !v.is_null()) {
        out.insert("params".into(), params.clone());
    }
    out
}
