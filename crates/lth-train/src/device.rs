//! `--device auto|cpu|cuda|cuda:N`, resolved against what libtorch actually sees.

use std::str::FromStr;

use tch::{Cuda, Device};

use crate::{Result, TrainError};

/// The device asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when libtorch sees one, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: expected auto, cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(0) => f.write_str("cuda"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The device to train on; asking for CUDA where libtorch sees none is an error that says so.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda(n) => {
            let count = Cuda::device_count();
            if !Cuda::is_available() || count == 0 {
                return Err(TrainError::Device(format!(
                    "CUDA was asked for (--device {choice}), but libtorch sees no CUDA device: \
                     this machine has no NVIDIA GPU or driver, or the libtorch in use was built \
                     without CUDA. Use --device cpu, or --device auto to take a GPU only when \
                     there is one."
                )));
            }
            if n as i64 >= count {
                return Err(TrainError::Device(format!(
                    "--device {choice}: CUDA device {n} was asked for, but libtorch sees {count} \
                     device(s) (0..{})",
                    count - 1
                )));
            }
            Ok(Device::Cuda(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!("cuda:1".parse(), Ok(DeviceChoice::Cuda(1)));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert!(
            "gpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .contains("auto, cpu, cuda")
        );
    }

    #[test]
    fn cuda_without_a_gpu_is_a_clear_error() {
        if Cuda::is_available() {
            eprintln!("SKIPPED cuda_without_a_gpu_is_a_clear_error: this machine has a GPU");
            return;
        }
        let err = resolve_device(DeviceChoice::Cuda(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("libtorch sees no CUDA device"), "{err}");
        // The device is named as it was asked for.
        let err = resolve_device(DeviceChoice::Cuda(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("(--device cuda:1)"), "{err}");
    }
}
