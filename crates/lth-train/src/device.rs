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

/// What other work occupies this machine's processors: its processor count and how many tasks of
/// other processes are ready to run, read from `/proc/stat` less this process's own running threads
/// (`/proc/self/task`: a data loader's or a thread pool's workers may still be finishing) (Linux;
/// `None` elsewhere or when it cannot be read). The count is the least of a few readings 2 ms
/// apart, so that a task that only passes through (a shell, a compiler's short step) does not
/// count; a job that computes without pause (another training, a `yes` loop) is ready at every
/// reading.
pub fn busy_processors() -> Option<(usize, usize)> {
    let mut least: Option<(usize, usize)> = None;
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (cpus, running) = parse_proc_stat(&stat)?;
        // The reading thread is always one of ours that runs.
        let others = running.saturating_sub(own_running().max(1));
        least = Some((cpus, least.map_or(others, |(_, o)| o.min(others))));
    }
    least
}

/// How many of this process's threads are running (state `R` in `/proc/self/task/*/stat`).
fn own_running() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 1;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|s| task_state(s) == Some('R'))
        .count()
}

/// The state letter of a `/proc/<pid>/task/<tid>/stat` line: the first field after the command
/// name, which is in parentheses and may itself hold spaces and parentheses.
fn task_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The processor count (`cpuN` lines) and `procs_running` of `/proc/stat`'s text.
fn parse_proc_stat(stat: &str) -> Option<(usize, usize)> {
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let running = stat
        .lines()
        .find_map(|l| l.strip_prefix("procs_running "))
        .and_then(|n| n.trim().parse().ok())?;
    (cpus > 0).then_some((cpus, running))
}

/// The intra-op threads to use when none were asked for: libtorch's own count (`wanted`), or fewer
/// when other tasks keep the machine's processors busy, so that each thread has a processor to
/// itself. At least one. (Threads that outnumber the free processors wait on each other at every
/// parallel region: on a 2-core machine beside two busy processes, an epoch took twice as long at
/// 2 threads as at 1.)
pub fn threads_for_load(wanted: i32, cpus: usize, others: usize) -> i32 {
    let free = i32::try_from(cpus.saturating_sub(others)).unwrap_or(i32::MAX);
    wanted.min(free).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_leave_the_busy_processors_to_their_jobs() {
        // Quiet: libtorch's count.
        assert_eq!(threads_for_load(2, 2, 0), 2);
        // One busy processor of two: one thread; two or more busy: still one.
        assert_eq!(threads_for_load(2, 2, 1), 1);
        assert_eq!(threads_for_load(2, 2, 5), 1);
        // A large host with a few busy processors: the count asked for stands.
        assert_eq!(threads_for_load(8, 64, 30), 8);
        assert_eq!(threads_for_load(16, 16, 4), 12);
    }

    #[test]
    fn proc_stat_gives_processors_and_running_tasks() {
        let stat = "cpu  10 0 5 100 0 0 0 0 0 0\ncpu0 5 0 2 50 0 0 0 0 0 0\n\
                    cpu1 5 0 3 50 0 0 0 0 0 0\nintr 1 2\nctxt 9\nprocs_running 3\n\
                    procs_blocked 0\n";
        assert_eq!(parse_proc_stat(stat), Some((2, 3)));
        assert_eq!(parse_proc_stat("cpu  1 2 3\n"), None);
        assert_eq!(task_state("4242 (lth (x) y) R 1 2 3"), Some('R'));
        assert_eq!(task_state("4242 (lth) S 1 2 3"), Some('S'));
        if cfg!(target_os = "linux") {
            let (cpus, _) = busy_processors().unwrap();
            assert!(cpus >= 1);
            // The thread asking is running.
            assert!(own_running() >= 1);
        }
    }

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
