//! Shallot client library.
