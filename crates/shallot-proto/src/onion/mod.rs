//! Onion requests (onion-client spec §1–§2). In progress.
