//! Fan speed of boards that carry their own fans (workstation cards). The fan count is read
//! once: a passively cooled board answers NOT_SUPPORTED, and is then not asked again.

use super::nvml::call;
use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;

/// What is known about one GPU's fans.
#[derive(Debug, Default)]
pub(super) struct Fans {
    /// `Some(Ok(n))`: n fans; `Some(Err(()))`: the board has none (NOT_SUPPORTED); `None`: not
    /// asked yet, or the last answer was a transient error.
    count: Option<Result<u32, ()>>,
}

impl Fans {
    /// Mean duty of the board's fans as a fraction of their maximum. NOT_SUPPORTED where the
    /// board has no fans; any fan that cannot be read fails the whole reading (a mean over the
    /// fans that answered would silently change meaning).
    pub(super) fn mean_speed(&mut self, d: &Device<'_>) -> Result<f64, NvmlError> {
        let n = match self.count {
            Some(Ok(n)) => n,
            Some(Err(())) => return Err(NvmlError::NotSupported),
            None => match call("nvmlDeviceGetNumFans", d.num_fans()) {
                Ok(0) | Err(NvmlError::NotSupported) => {
                    self.count = Some(Err(()));
                    return Err(NvmlError::NotSupported);
                }
                Ok(n) => {
                    self.count = Some(Ok(n));
                    n
                }
                Err(e) => return Err(e),
            },
        };
        let mut sum = 0.0;
        for fan in 0..n {
            sum += f64::from(call("nvmlDeviceGetFanSpeed_v2", d.fan_speed(fan))?);
        }
        Ok(sum / f64::from(n) / 100.0)
    }
}
