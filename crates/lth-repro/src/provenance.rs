//! Where a measured snapshot came from: `repro/<target>/provenance.csv`, one line per scale, with
//! the command, the device, the CPU's model and vector extensions, and the threads. Floating-point
//! results differ in the last bits between CPUs with and without AVX-512 (and between thread
//! counts), so a reader comparing a run with a snapshot knows what differed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use lth_store::CsvLog;

use crate::Result;

/// One recorded snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub scale: String,
    pub device: String,
    pub replicates: u64,
    pub samples: u64,
    pub command: String,
    pub cpu: String,
    /// The vector extensions that change libtorch's kernels (`avx2 fma avx512f ...`).
    pub simd: String,
    /// libtorch's intra-op threads.
    pub threads: i32,
}

impl Provenance {
    /// Reads the file (none yet: no lines).
    pub fn load(path: &Path) -> Result<Vec<Provenance>> {
        Ok(CsvLog::new(path).load()?)
    }

    /// Replaces the line of `self.scale` in the file at `path`.
    pub fn record(&self, path: &Path) -> Result<()> {
        let mut all = Provenance::load(path)?;
        all.retain(|p| p.scale != self.scale);
        all.push(self.clone());
        all.sort_by(|a, b| a.scale.cmp(&b.scale));
        Ok(CsvLog::new(path).save(&all)?)
    }
}

/// This machine's CPU model and the vector extensions that matter to libtorch's kernels.
pub fn cpu_description() -> (String, String) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let mut simd: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                std::arch::is_x86_feature_detected!("avx512bf16"),
            ),
        ] {
            if on {
                simd.push(name);
            }
        }
    }
    (model, simd.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_a_scale_replaces_its_line_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("provenance.csv");
        let (cpu, simd) = cpu_description();
        assert!(!cpu.is_empty());
        let p = |scale: &str, replicates| Provenance {
            scale: scale.into(),
            device: "cpu".into(),
            replicates,
            samples: 2,
            command: "cargo xtask repro fig3, with a comma".into(),
            cpu: cpu.clone(),
            simd: simd.clone(),
            threads: 2,
        };
        p("quick", 6)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        p("smoke", 3)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        p("quick", 8)
            .record(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let all = Provenance::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, vec![p("quick", 8), p("smoke", 3)]);
    }
}
