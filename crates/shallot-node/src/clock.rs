//! Wall-clock time for protocol checks: the workspace's one clock trait (`shallot-clock`).

pub use shallot_clock::{Clock, ManualClock, OffsetClock, SystemClock};
