//! Statistics and the machine description shared by the benches.

use procfs::Current;

/// The index of the `p` quantile (0–1) in a sorted, non-empty list of `len` values.
pub(crate) fn quantile_index(len: usize, p: f64) -> usize {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = (len.saturating_sub(1) as f64 * p).round() as usize;
    index.min(len.saturating_sub(1))
}

/// "host — model, N cores available" of this machine (from /proc and uname).
pub(crate) fn machine() -> String {
    let model = procfs::CpuInfo::current()
        .ok()
        .and_then(|info| info.model_name(0).map(str::to_owned))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy();
    format!("{host} — {model}, {cores} cores available")
}
