//! Session protocol message crypto (onion-client spec §4). In progress.
