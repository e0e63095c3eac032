//! Fans: boards with fans of their own (workstation cards) answer their count and each fan's
//! duty; passively cooled boards (every data-center preset) answer NOT_SUPPORTED, as the real
//! driver does for them.

use super::*;

/// `nvmlDeviceGetNumFans`.
pub(crate) fn count(dev: *mut c_void, n: *mut c_uint) -> Result<(), Ret> {
    let (_, g, _) = live(dev)?;
    if g.preset.fans == 0 {
        return Err(NOT_SUPPORTED);
    }
    out(n, g.preset.fans)
}

/// `nvmlDeviceGetFanSpeed(_v2)`: the duty of fan `fan`, percent of its maximum. A fan index
/// past the board's fans is INVALID_ARGUMENT.
pub(crate) fn speed(dev: *mut c_void, fan: c_uint, speed: *mut c_uint) -> Result<(), Ret> {
    let (_, g, s) = state(dev)?;
    if g.preset.fans == 0 {
        return Err(NOT_SUPPORTED);
    }
    if fan >= g.preset.fans {
        return Err(INVALID_ARGUMENT);
    }
    out(speed, s.fan_speed_pct.ok_or(NOT_SUPPORTED)?)
}
