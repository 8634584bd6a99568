//! A TCP proxy the test controls, to make an RPC endpoint (or anything) misbehave and come
//! back (issue #9): drop, black-hole, delay or reset the connections going through it.
//!
//! Every mode applies to connections that are ALREADY open as well as to new ones. That is
//! the point: HTTP clients (reqwest inside the Solana RPC client) pool keep-alive
//! connections, so a fault that only touched new connections would never be seen by a client
//! that connected before the fault started. Each connection task therefore watches the
//! shared mode (a `watch` channel) and reacts to a change at once:
//!
//! | mode            | new connection                                     | open connection                      |
//! |-----------------|----------------------------------------------------|--------------------------------------|
//! | `Forward`       | forwarded                                          | forwarded                            |
//! | `Delay(d)`      | forwarded, each chunk held `d` in each direction   | same, from the next chunk on         |
//! | `Drop`          | accepted and closed at once (FIN: an early EOF)    | cut (closed, FIN)                    |
//! | `BlackHole`     | accepted, read and discarded, never answered       | upstream closed, then as a new one   |
//! | `Reset`         | accepted, then reset (RST: "connection reset")     | reset (RST)                          |
//!
//! A black-holed connection is never closed while the black hole lasts: the client sees a
//! peer that takes its request and says nothing, which only its own timeout can end. When the
//! mode changes away from `BlackHole` such connections are closed (reset if the new mode is
//! `Reset`): their requests were swallowed, so forwarding later bytes would desynchronise the
//! protocol. The client reconnects, as it would after any cut connection.
//!
//! `Drop` is what the first version of this proxy did when disabled (`set_enabled(false)`),
//! and `set_enabled` keeps that meaning.
//!
//! One trigger cuts at a precise point of a protocol: [`TcpProxy::drop_after_forwarding`]
//! forwards the next client chunk that contains a byte pattern (a PostgreSQL `COMMIT`, say),
//! then switches to `Drop` before any answer comes back: the server acted on the request and
//! the client never learns it did.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with the connections going through it; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass bytes through unchanged.
    Forward,
    /// Close new connections at once and cut open ones (the peer reads EOF).
    Drop,
    /// Accept and read, but never answer and never close: open connections stall too.
    BlackHole,
    /// Forward, but hold each chunk for this long before passing it on, in each direction.
    Delay(Duration),
    /// Accept, then abort with a TCP RST; open connections are reset as well.
    Reset,
}

impl ProxyMode {
    /// Whether bytes get through in this mode (possibly late).
    fn forwards(self) -> bool {
        matches!(self, ProxyMode::Forward | ProxyMode::Delay(_))
    }
}

/// The armed pattern of [`TcpProxy::drop_after_forwarding`], shared with every connection.
type Trigger = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    trigger: Trigger,
    accepted: Arc<AtomicUsize>,
    /// Owns the connection tasks (in a `JoinSet`): aborting it ends them all.
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target` (host:port).
    pub async fn start(target: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ProxyMode::Forward);
        let accepted = Arc::new(AtomicUsize::new(0));
        let trigger: Trigger = Arc::default();
        let (modes, count, armed) = (mode.clone(), accepted.clone(), trigger.clone());
        let accept = tokio::spawn(async move {
            // Dropped with this task (on `TcpProxy` drop), which aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                while connections.try_join_next().is_some() {}
                connections.spawn(connection(
                    inbound,
                    target.clone(),
                    modes.clone(),
                    armed.clone(),
                ));
            }
        });
        Ok(Self {
            addr,
            mode,
            trigger,
            accepted,
            accept,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the proxy listens (for a non-HTTP client, such as a PostgreSQL URL).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the mode for new AND open connections (see the module docs).
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// `true`: [`ProxyMode::Forward`]; `false`: [`ProxyMode::Drop`] (open connections are cut
    /// and new ones closed at once).
    pub fn set_enabled(&self, on: bool) {
        self.set_mode(if on {
            ProxyMode::Forward
        } else {
            ProxyMode::Drop
        });
    }

    /// Arms a one-shot cut: the next chunk a client sends that contains `pattern` is
    /// forwarded whole, then the mode becomes [`ProxyMode::Drop`] before the answer can come
    /// back. The upstream received the request; the client sees its connection closed.
    pub fn drop_after_forwarding(&self, pattern: &[u8]) {
        if let Ok(mut armed) = self.trigger.lock() {
            *armed = Some(pattern.to_vec());
        }
    }

    /// Whether an armed [`TcpProxy::drop_after_forwarding`] has fired.
    pub fn trigger_fired(&self) -> bool {
        self.trigger.lock().is_ok_and(|armed| armed.is_none())
    }

    /// How many connections the proxy has accepted so far, whatever it did with them: lets a
    /// test check that its client really went through the proxy, or reused a connection.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // Cut open connections now, as `set_enabled(false)` would; aborting the accept task
        // then drops its `JoinSet`, which aborts every connection task.
        self.set_mode(ProxyMode::Drop);
        self.accept.abort();
    }
}

/// One accepted connection, for its whole life: it follows the mode until it ends.
async fn connection(
    mut inbound: TcpStream,
    target: String,
    modes: watch::Sender<ProxyMode>,
    trigger: Trigger,
) {
    let mut mode = modes.subscribe();
    let _ = inbound.set_nodelay(true);
    let mut current = *mode.borrow_and_update();
    if current.forwards() {
        let Ok(mut outbound) = TcpStream::connect(&target).await else {
            // Upstream is down: the client sees a closed connection, as it would directly.
            return;
        };
        let _ = outbound.set_nodelay(true);
        let fired_here = std::sync::atomic::AtomicBool::new(false);
        let (inbound_read, inbound_write) = inbound.split();
        let (outbound_read, outbound_write) = outbound.split();
        let forward = async {
            tokio::try_join!(
                pump(
                    inbound_read,
                    outbound_write,
                    mode.clone(),
                    Some((&trigger, &modes, &fired_here))
                ),
                pump(outbound_read, inbound_write, mode.clone(), None),
            )
        };
        let stopped = tokio::select! {
            _ = forward => false,
            _ = next_stopping_mode(mode.clone()) => true,
        };
        // The upstream side closes normally; what the client sees depends on the mode. The
        // connection that fired the trigger keeps its upstream open a while, reading and
        // discarding: the request must be acted on, and closing a socket with unread data
        // would reset it (the server might then drop the request unread).
        if fired_here.load(Ordering::SeqCst) {
            tokio::spawn(drain(outbound));
        } else {
            drop(outbound);
        }
        if !stopped {
            // Both directions ended (or one failed): the connection is over.
            return;
        }
        // The LATEST mode (it may have changed again meanwhile), marked seen so black_hole
        // waits for the next change.
        current = *mode.borrow_and_update();
    }
    match current {
        ProxyMode::Reset => reset(inbound),
        ProxyMode::BlackHole => black_hole(inbound, mode).await,
        // Drop; or a forwarding mode here means the connection already ended.
        _ => drop(inbound),
    }
}

/// Copies one direction chunk by chunk, holding each chunk while the mode is `Delay`.
/// At end of stream it half-closes the other side, so the opposite direction can finish.
/// With `cut` (the client's direction), a chunk matching the armed trigger switches the
/// proxy to `Drop` once it is written.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mode: watch::Receiver<ProxyMode>,
    cut: Option<(
        &Trigger,
        &watch::Sender<ProxyMode>,
        &std::sync::atomic::AtomicBool,
    )>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        let delay = match *mode.borrow() {
            ProxyMode::Delay(d) => Some(d),
            _ => None,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        to.write_all(&buf[..n]).await?;
        if let Some((trigger, modes, fired_here)) = cut {
            let fired = trigger.lock().is_ok_and(|mut armed| {
                let hit = armed
                    .as_deref()
                    .is_some_and(|p| !p.is_empty() && buf[..n].windows(p.len()).any(|w| w == p));
                if hit {
                    *armed = None;
                }
                hit
            });
            if fired {
                to.flush().await?;
                fired_here.store(true, Ordering::SeqCst);
                modes.send_replace(ProxyMode::Drop);
            }
        }
    }
}

/// Reads and discards what the upstream still sends, for up to 2 s, then closes (a FIN
/// after everything the client sent: the server reads the request before the end).
async fn drain(mut outbound: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(outbound.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Resolves with the first mode (current or future) that stops forwarding; `Drop` when the
/// proxy is gone.
async fn next_stopping_mode(mut mode: watch::Receiver<ProxyMode>) -> ProxyMode {
    loop {
        let m = *mode.borrow_and_update();
        if !m.forwards() {
            return m;
        }
        if mode.changed().await.is_err() {
            return ProxyMode::Drop;
        }
    }
}

/// Reads and discards until the mode changes away from `BlackHole` (then closes, or resets
/// for `Reset`) or the client gives up. Never writes a byte.
async fn black_hole(mut inbound: TcpStream, mut mode: watch::Receiver<ProxyMode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Decide first, act after: the read borrows the stream that `reset` takes.
        let next = tokio::select! {
            r = inbound.read(&mut buf) => match r {
                // The client closed or the socket failed: nothing left to stall.
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            changed = mode.changed() => match changed {
                Ok(()) => *mode.borrow_and_update(),
                Err(_) => ProxyMode::Drop,
            },
        };
        match next {
            ProxyMode::BlackHole => continue,
            ProxyMode::Reset => return reset(inbound),
            // Forward, Delay, Drop: close (see the module docs for why not forward).
            _ => return,
        }
    }
}

/// Aborts the connection with an RST instead of a FIN: `SO_LINGER` set to zero, then close.
fn reset(stream: TcpStream) {
    // A zero linger never blocks on close (only a non-zero one does, which is why tokio
    // deprecated `set_linger`); `set_zero_linger` says the same but needs tokio 1.50, and the
    // workspace declares 1.47.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// A JSON-RPC proxy in front of `upstream` that forwards every call and lets `lie` rewrite
/// the answer (given the request): a node that lies about what the chain holds, or one that
/// lags behind it.
///
/// A fake, used only because no real RPC node lies on demand: every answer it rewrites is
/// first fetched from the real local validator, so everything else it says is the chain's.
pub async fn rewriting_rpc(
    upstream: String,
    lie: impl Fn(&serde_json::Value, &mut serde_json::Value) + Send + Sync + 'static,
) -> std::io::Result<String> {
    let lie = Arc::new(lie);
    let http = reqwest::Client::new();
    json_rpc_server(move |request| {
        let (http, upstream, lie) = (http.clone(), upstream.clone(), lie.clone());
        async move {
            let response = http.post(&upstream).json(&request).send().await.ok()?;
            let mut answer: serde_json::Value =
                response.json().await.unwrap_or(serde_json::Value::Null);
            lie(&request, &mut answer);
            Some(answer)
        }
    })
    .await
}

/// A JSON-RPC endpoint over HTTP/1.1 on a free loopback port; returns its URL. Each request
/// body (JSON, `null` when it is not) goes to `answer`, whose value is the response body;
/// `None` closes the connection unanswered. Connections are kept alive, one request at a
/// time, as RPC clients use them. For the fakes of an error path no real node produces
/// ([`rewriting_rpc`], a node that knows nothing).
pub async fn json_rpc_server<F, Fut>(answer: F) -> std::io::Result<String>
where
    F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<serde_json::Value>> + Send + 'static,
{
    let answer = Arc::new(answer);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                while let Some(request) = read_http_json(&mut sock).await {
                    let Some(body) = answer(request).await else {
                        return;
                    };
                    let body = body.to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// Reads one HTTP request with a `Content-Length` body; its body as JSON (`null` when it is
/// not JSON), or `None` once the peer closed or the connection failed.
async fn read_http_json(sock: &mut TcpStream) -> Option<serde_json::Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() < len {
            continue;
        }
        return Some(serde_json::from_str(&body[..len]).unwrap_or(serde_json::Value::Null));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::time::timeout;

    /// An echo server on a free loopback port; returns its host:port.
    async fn echo_server() -> String {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr.to_string()
    }

    async fn proxy() -> TcpProxy {
        TcpProxy::start(echo_server().await).await.unwrap()
    }

    async fn connect(p: &TcpProxy) -> TcpStream {
        TcpStream::connect(p.addr).await.unwrap()
    }

    /// Writes `msg` and reads the echo back, within `limit`.
    async fn round_trip(
        s: &mut TcpStream,
        msg: &[u8],
        limit: Duration,
    ) -> std::io::Result<Vec<u8>> {
        timeout(limit, async {
            s.write_all(msg).await?;
            let mut got = vec![0u8; msg.len()];
            s.read_exact(&mut got).await?;
            Ok(got)
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))?
    }

    fn is_reset(e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::ConnectionReset
    }

    const QUICK: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn an_armed_pattern_is_forwarded_then_the_connection_is_cut_before_the_answer() {
        let p = proxy().await;
        let mut s = connect(&p).await;
        p.drop_after_forwarding(b"COMMIT");
        assert_eq!(round_trip(&mut s, b"BEGIN", QUICK).await.unwrap(), b"BEGIN");
        assert!(!p.trigger_fired());
        let r = round_trip(&mut s, b"xCOMMITx", QUICK).await;
        assert!(
            r.is_err(),
            "the echo of the matching chunk never comes back: {r:?}"
        );
        assert!(p.trigger_fired());
        assert_eq!(p.mode(), ProxyMode::Drop);
    }

    #[tokio::test]
    async fn forward_echoes_and_counts_connections() {
        let p = proxy().await;
        assert_eq!(p.mode(), ProxyMode::Forward);
        let mut s = connect(&p).await;
        assert_eq!(round_trip(&mut s, b"ping", QUICK).await.unwrap(), b"ping");
        assert_eq!(round_trip(&mut s, b"again", QUICK).await.unwrap(), b"again");
        assert_eq!(p.accepted(), 1);
    }

    #[tokio::test]
    async fn drop_closes_new_connections_and_cuts_open_ones() {
        let p = proxy().await;
        let mut open = connect(&p).await;
        assert_eq!(
            round_trip(&mut open, b"ping", QUICK).await.unwrap(),
            b"ping"
        );
        p.set_enabled(false);
        assert_eq!(p.mode(), ProxyMode::Drop);
        // The open connection reads EOF (or, if our write raced the close, a reset).
        let mut buf = [0u8; 8];
        let r = timeout(QUICK, open.read(&mut buf))
            .await
            .expect("cut in time");
        assert!(
            matches!(r, Ok(0)) || r.as_ref().is_err_and(is_reset),
            "{r:?}"
        );
        // A new one is closed at once without an answer.
        let mut fresh = connect(&p).await;
        let r = round_trip(&mut fresh, b"ping", QUICK).await;
        let err = r.expect_err("no echo while dropping");
        assert_ne!(
            err.kind(),
            std::io::ErrorKind::TimedOut,
            "closed, not stalled"
        );
        // And back.
        p.set_enabled(true);
        let mut again = connect(&p).await;
        assert_eq!(
            round_trip(&mut again, b"back", QUICK).await.unwrap(),
            b"back"
        );
    }

    #[tokio::test]
    async fn reset_sends_rst_to_new_and_open_connections() {
        let p = proxy().await;
        let mut open = connect(&p).await;
        assert_eq!(
            round_trip(&mut open, b"ping", QUICK).await.unwrap(),
            b"ping"
        );
        p.set_mode(ProxyMode::Reset);
        let mut buf = [0u8; 8];
        let r = timeout(QUICK, open.read(&mut buf))
            .await
            .expect("reset in time");
        assert!(r.as_ref().is_err_and(is_reset), "open connection: {r:?}");

        let mut fresh = connect(&p).await;
        let r = timeout(QUICK, fresh.read(&mut buf))
            .await
            .expect("reset in time");
        assert!(r.as_ref().is_err_and(is_reset), "new connection: {r:?}");

        p.set_mode(ProxyMode::Forward);
        let mut again = connect(&p).await;
        assert_eq!(
            round_trip(&mut again, b"back", QUICK).await.unwrap(),
            b"back"
        );
    }

    #[tokio::test]
    async fn black_hole_stalls_new_and_open_connections_without_closing() {
        let p = proxy().await;
        let mut open = connect(&p).await;
        assert_eq!(
            round_trip(&mut open, b"ping", QUICK).await.unwrap(),
            b"ping"
        );
        p.set_mode(ProxyMode::BlackHole);
        // Let the open connection's task see the change before the next write.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let stall = Duration::from_millis(700);
        let err = round_trip(&mut open, b"lost", stall).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "open: {err}");
        let mut fresh = connect(&p).await;
        let err = round_trip(&mut fresh, b"lost", stall).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "new: {err}");
        // Still open: more writes are accepted (and swallowed) without error.
        for _ in 0..10 {
            fresh.write_all(&[7u8; 1024]).await.unwrap();
        }
        let err = round_trip(&mut fresh, b"x", stall).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

        // Leaving the black hole closes the stalled connections; new ones forward again.
        p.set_mode(ProxyMode::Forward);
        let mut buf = [0u8; 8];
        let r = timeout(QUICK, fresh.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(
            matches!(r, Ok(0)) || r.as_ref().is_err_and(is_reset),
            "{r:?}"
        );
        let mut again = connect(&p).await;
        assert_eq!(
            round_trip(&mut again, b"back", QUICK).await.unwrap(),
            b"back"
        );
    }

    #[tokio::test]
    async fn delay_holds_each_direction_on_new_and_open_connections() {
        let p = proxy().await;
        let mut open = connect(&p).await;
        assert_eq!(
            round_trip(&mut open, b"ping", QUICK).await.unwrap(),
            b"ping"
        );
        let d = Duration::from_millis(200);
        p.set_mode(ProxyMode::Delay(d));

        // One chunk each way: at least two delays per round trip.
        let t = Instant::now();
        assert_eq!(
            round_trip(&mut open, b"slow", QUICK).await.unwrap(),
            b"slow"
        );
        assert!(t.elapsed() >= 2 * d, "open: {:?}", t.elapsed());

        let mut fresh = connect(&p).await;
        let t = Instant::now();
        assert_eq!(
            round_trip(&mut fresh, b"slow", QUICK).await.unwrap(),
            b"slow"
        );
        assert!(t.elapsed() >= 2 * d, "new: {:?}", t.elapsed());

        // Back to full speed on the same connection.
        p.set_mode(ProxyMode::Forward);
        let t = Instant::now();
        assert_eq!(
            round_trip(&mut open, b"fast", QUICK).await.unwrap(),
            b"fast"
        );
        assert!(t.elapsed() < d, "forward: {:?}", t.elapsed());
    }

    #[tokio::test]
    async fn dropping_the_proxy_cuts_open_connections() {
        let p = proxy().await;
        let mut open = connect(&p).await;
        assert_eq!(
            round_trip(&mut open, b"ping", QUICK).await.unwrap(),
            b"ping"
        );
        drop(p);
        let mut buf = [0u8; 8];
        let r = timeout(QUICK, open.read(&mut buf))
            .await
            .expect("cut in time");
        assert!(
            matches!(r, Ok(0)) || r.as_ref().is_err_and(is_reset),
            "{r:?}"
        );
    }
}
