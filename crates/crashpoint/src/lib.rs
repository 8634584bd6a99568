//! Crash points: the `fail` crate's failpoints, armed from the environment of a real
//! process, with one extra action, `return(kill)`, that kills the process with SIGKILL
//! on the spot.
//!
//! Why: the crash suite (#9) must show that a relay or API killed at the worst moment loses
//! nothing and anchors nothing twice. An in-process "return an error" failpoint still runs
//! destructors, drops leases politely and flushes what it holds; `kill -9` does none of that.
//! Killing the process *from the failpoint* makes the moment exact, where a test sending
//! SIGKILL from outside could only hope to hit it.
//!
//! Safety of shipping this: the `fail_point!` macro expands to nothing unless the `fail`
//! crate is built with its `failpoints` feature, which only test builds turn on (through
//! dev-dependencies). A release binary therefore has no failpoint to arm, and [`arm_from_env`]
//! refuses to start when asked to arm one in such a build, so a crash test can never pass
//! vacuously against a binary without failpoints.

use std::process;

/// The environment variable read by [`arm_from_env`]: `name=actions;name=actions`, the
/// `fail` crate's syntax, e.g. `relay::after_send=3*off->return(kill)` (pass three times,
/// then kill the process).
pub const ENV: &str = "FAILPOINTS";

/// The `return` argument that makes [`hit`] kill the process.
pub const KILL: &str = "kill";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArmError {
    #[error(
        "{ENV} is set but this binary was built without failpoints (only test builds have them)"
    )]
    NotCompiledIn,
    #[error("{ENV} entry {0:?} is not of the form name=actions")]
    Malformed(String),
    #[error("{ENV} entry for {name:?}: {reason}")]
    BadActions { name: String, reason: String },
}

/// Arms the failpoints listed in `FAILPOINTS`, if it is set. Returns how many were armed.
/// Unlike `fail::FailScenario::setup`, a bad value is an error, not a panic.
pub fn arm_from_env() -> Result<usize, ArmError> {
    match std::env::var(ENV) {
        Ok(spec) => arm(&spec, fail::has_failpoints()),
        Err(_) => Ok(0),
    }
}

/// Arms each `name=actions` entry of `spec`. `compiled_in` says whether this build has
/// failpoints at all.
pub fn arm(spec: &str, compiled_in: bool) -> Result<usize, ArmError> {
    let entries: Vec<&str> = spec
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(0);
    }
    if !compiled_in {
        return Err(ArmError::NotCompiledIn);
    }
    for entry in &entries {
        let (name, actions) = entry
            .split_once('=')
            .map(|(n, a)| (n.trim(), a.trim()))
            .filter(|(n, a)| !n.is_empty() && !a.is_empty())
            .ok_or_else(|| ArmError::Malformed((*entry).to_string()))?;
        fail::cfg(name, actions).map_err(|reason| ArmError::BadActions {
            name: name.to_string(),
            reason,
        })?;
    }
    Ok(entries.len())
}

/// Called from a failpoint's closure with the `return` argument: `return(kill)` kills the
/// process here and now; anything else returns, and the caller simulates its in-process
/// crash (an early error return) as before.
pub fn hit(arg: Option<&str>) {
    if arg == Some(KILL) {
        kill_now();
    }
}

/// SIGKILL to ourselves: no destructor, no flush, no goodbye to PostgreSQL.
pub fn kill_now() -> ! {
    // Write straight to fd 2 (unbuffered) so the test's log shows where the process died.
    eprintln!("crashpoint: SIGKILL");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    // SIGKILL cannot be caught, so this is unreachable in practice; abort keeps the promise
    // of dying without cleanup even if raise() failed.
    process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_arm_is_fine_in_any_build() {
        assert_eq!(arm("", false), Ok(0));
        assert_eq!(arm(" ; ", false), Ok(0));
    }

    #[test]
    fn arming_a_build_without_failpoints_is_refused() {
        assert_eq!(arm("a=return", false), Err(ArmError::NotCompiledIn));
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        assert!(matches!(
            arm("no-equals", true),
            Err(ArmError::Malformed(_))
        ));
        assert!(matches!(arm("=return", true), Err(ArmError::Malformed(_))));
        assert!(matches!(arm("x=", true), Err(ArmError::Malformed(_))));
        assert!(matches!(
            arm("crashpoint::t=bogus(1)", true),
            Err(ArmError::BadActions { .. })
        ));
    }

    #[test]
    fn armed_points_fire_with_their_argument() {
        assert_eq!(arm("crashpoint::t1=1*off->return(x)", true), Ok(1));
        let eval = || -> Option<String> {
            fail::fail_point!("crashpoint::t1", |arg: Option<String>| arg);
            None
        };
        assert_eq!(eval(), None, "first evaluation is off");
        assert_eq!(eval(), Some("x".to_string()));
        fail::remove("crashpoint::t1");
    }

    #[test]
    fn hit_returns_unless_told_to_kill() {
        hit(None);
        hit(Some("other"));
    }
}
