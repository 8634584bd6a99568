//! The shutdown signal: SIGTERM (Kubernetes) or SIGINT (a terminal).

/// Resolves when the process is asked to stop. Errors installing the handler resolve at once:
/// a service that cannot be stopped gracefully should not start its loop at all.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
