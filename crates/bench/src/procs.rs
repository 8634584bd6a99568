//! What /proc says about the services under test (started by `testkit::services`, the
//! release binaries configured through `APP__*` variables like in production):
//! resident memory (current and peak) and CPU time, plus the validator's CPU use so each
//! report says how much CPU was left to the services.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// (VmRSS, VmHWM) in MiB.
pub fn rss_of(pid: u32) -> (f64, f64) {
    (
        status_kib(pid, "VmRSS:") / 1024.0,
        status_kib(pid, "VmHWM:") / 1024.0,
    )
}

/// User + system CPU seconds a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SC_CLK_TCK is 100 on Linux x86_64.
    (ticks(11) + ticks(12)) / 100.0
}

/// (run-queue wait, CPU time) in ms, summed over a process's threads: the second and first
/// fields of `/proc/<pid>/task/<tid>/schedstat` (ns). Threads that exited are not counted,
/// so take both readings while the same threads live (actix and tokio keep theirs).
pub fn run_queue_and_cpu_ms(pid: u32) -> (f64, f64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0.0);
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|text| parse_schedstat(&text))
        .fold((0.0, 0.0), |(w, c), (cpu, wait)| (w + wait, c + cpu))
}

/// `schedstat` is `cpu_ns wait_ns timeslices`; returns (cpu, wait) in ms.
pub fn parse_schedstat(text: &str) -> Option<(f64, f64)> {
    let mut it = text.split_whitespace();
    let cpu: f64 = it.next()?.parse().ok()?;
    let wait: f64 = it.next()?.parse().ok()?;
    Some((cpu / 1e6, wait / 1e6))
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in ticks: (busy, idle, steal).
/// Busy is user + nice + system + irq + softirq; idle includes iowait; steal is time the
/// hypervisor ran something else while we had work.
pub fn machine_cpu_ticks() -> (f64, f64, f64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(parse_proc_stat_cpu))
        .unwrap_or((0.0, 0.0, 0.0))
}

/// (busy, idle, steal) from a `cpu  user nice system idle iowait irq softirq steal ...` line.
pub fn parse_proc_stat_cpu(line: &str) -> (f64, f64, f64) {
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    (at(0) + at(1) + at(2) + at(5) + at(6), at(3) + at(4), at(7))
}

/// Shares of the machine's CPU between two `machine_cpu_ticks` readings, in percent:
/// (busy, steal).
pub fn cpu_shares(before: (f64, f64, f64), after: (f64, f64, f64)) -> (f64, f64) {
    let busy = after.0 - before.0;
    let idle = after.1 - before.1;
    let steal = after.2 - before.2;
    let total = (busy + idle + steal).max(1e-9);
    (100.0 * busy / total, 100.0 * steal / total)
}

/// The pid of the local validator (its command name starts with "solana-test-val").
pub fn validator_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        comm.starts_with("solana-test-val").then_some(pid)
    })
}

/// Lowers the local validator's CPU priority to `nice` on every one of its threads (Linux
/// nice values are per thread; threads it starts later inherit their creator's). The
/// validator is a test fixture sharing the 2 cores: at normal priority its bursts preempt
/// the services being measured. It still gets every cycle they leave idle. Returns how many
/// threads were changed.
pub fn nice_validator(nice: i32) -> anyhow::Result<usize> {
    use anyhow::Context;
    let pid = validator_pid().context("no local validator process")?;
    let tids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let status = std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p"])
        .args(&tids)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running renice")?;
    anyhow::ensure!(status.success(), "renice exited with {status}");
    Ok(tids.len())
}

/// How the validator is scheduled against this process: its autogroup's nice value, if it
/// has a group of its own (`localnet exec --validator-nice`), else `None`.
pub fn validator_own_group_nice() -> Option<i32> {
    let pid = validator_pid()?;
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/autogroup")).ok()?;
    let ours = std::fs::read_to_string("/proc/self/autogroup").ok()?;
    let (their_group, nice) = testkit::validator::parse_autogroup(&theirs)?;
    let (our_group, _) = testkit::validator::parse_autogroup(&ours)?;
    (their_group != our_group).then_some(nice)
}

/// Measures the validator's CPU use (in cores) over a scenario.
pub struct CpuMeter {
    pid: Option<u32>,
    start_cpu: f64,
    start: Instant,
}

impl CpuMeter {
    pub fn start() -> CpuMeter {
        let pid = validator_pid();
        CpuMeter {
            pid,
            start_cpu: pid.map(cpu_seconds).unwrap_or(0.0),
            start: Instant::now(),
        }
    }

    /// Cores the validator used on average since `start`.
    pub fn validator_cores(&self) -> f64 {
        let Some(pid) = self.pid else { return 0.0 };
        let wall = self.start.elapsed().as_secs_f64().max(1e-3);
        (cpu_seconds(pid) - self.start_cpu) / wall
    }
}

/// A free TCP port on localhost.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(testkit::ports::free_port()?)
}

/// Where the service binaries are.
pub fn bin(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_splits_busy_idle_and_steal() {
        let line = "cpu  100 5 50 800 20 3 2 10 0 0";
        assert_eq!(parse_proc_stat_cpu(line), (160.0, 820.0, 10.0));
        let (busy, steal) = cpu_shares((0.0, 0.0, 0.0), (160.0, 820.0, 20.0));
        assert!((busy - 16.0).abs() < 1e-9 && (steal - 2.0).abs() < 1e-9);
        assert_eq!(parse_proc_stat_cpu("cpu"), (0.0, 0.0, 0.0));
    }

    #[test]
    fn schedstat_fields_are_cpu_then_wait() {
        assert_eq!(parse_schedstat("2000000 5000000 7\n"), Some((2.0, 5.0)));
        assert_eq!(parse_schedstat("garbage"), None);
        assert_eq!(parse_schedstat(""), None);
        // Our own process has at least one thread with a readable schedstat.
        let (_wait, cpu) = run_queue_and_cpu_ms(std::process::id());
        assert!(cpu > 0.0);
    }
}
