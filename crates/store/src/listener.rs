//! LISTEN/NOTIFY wake-ups for the relay, on a dedicated connection (a pooled connection would
//! lose its LISTEN when recycled). Reconnects on its own after a database restart; the relay
//! also polls, so a notification lost during a reconnect only costs one poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use crate::OUTBOX_CHANNEL;

/// Spawns the listener task; `notify_one` is called for every notification on the outbox
/// channel. The task ends when the returned handle is aborted.
pub fn spawn_outbox_listener(url: SecretString, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listen_once(&url, &wake).await {
                Ok(()) => tracing::warn!("outbox listener connection closed; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "outbox listener failed; reconnecting"),
            }
            // Wake the relay anyway: rows may have been committed while we were deaf.
            wake.notify_one();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen_once(url: &SecretString, wake: &Arc<Notify>) -> Result<(), crate::StoreError> {
    // The same TLS as the pool's (`sslmode`, `sslrootcert`).
    let target = crate::tls::connect_config(url.expose_secret())?;
    let (client, mut connection) = target.config.connect(target.tls).await?;
    let wake_conn = wake.clone();
    // The connection must be polled for LISTEN to complete and for notifications to arrive.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => wake_conn.notify_one(),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {OUTBOX_CHANNEL}"))
        .await?;
    let result = match driver.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    };
    drop(client);
    Ok(result?)
}
