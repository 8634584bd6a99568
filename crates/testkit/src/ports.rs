//! Free loopback ports for the servers the harness starts.

use std::net::TcpListener;

/// A port that was free a moment ago. The tiny race with other processes is acceptable for a
/// test harness: a collision fails the start loudly and the caller can retry.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
