//! The async glue (the crate's only async file): feeds what a `sotto_net::Transport` receives
//! to the sans-IO [`Proxy`], sends what it asks for, and arms its one timer. No protocol
//! decision is made here.

use std::future::Future;
use std::time::{Instant, SystemTime};

use sotto_net::{Incoming, IncomingReceiver, Transport};

use crate::identity::client_identities;
use crate::proxy::{Packet, Proxy, ProxyEvent};

/// Converts a received message for the proxy (the client certificate's identities included).
pub fn packet_of(m: &Incoming) -> Packet {
    let client_identities = m
        .tls
        .as_ref()
        .and_then(|t| t.peer_certificates.first())
        .map(|der| client_identities(der.as_ref()))
        .unwrap_or_default();
    Packet {
        data: m.data.clone(),
        source: m.source,
        transport: m.transport,
        connection: m.connection,
        client_identities,
    }
}

/// Sends everything the proxy queued; failures go back to their transaction.
async fn flush(proxy: &mut Proxy, transport: &Transport, on_event: &mut impl FnMut(&ProxyEvent)) {
    loop {
        while let Some(ev) = proxy.poll_event() {
            on_event(&ev);
        }
        let Some(t) = proxy.poll_transmit() else {
            break;
        };
        if let Err(e) = transport.send(&t.destination, t.data).await {
            tracing::debug!(error = %e, dest = %t.destination.remote, "send failed");
            if let Some(id) = t.transaction {
                proxy.handle_send_error(id, Instant::now());
            }
        }
    }
}

/// Runs the proxy until `shutdown` resolves or the transport stops; `on_event` sees every
/// request's outcome. Messages already queued are sent before returning.
pub async fn run(
    proxy: &mut Proxy,
    transport: &Transport,
    incoming: &mut IncomingReceiver,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(&ProxyEvent),
) {
    tokio::pin!(shutdown);
    loop {
        let wake = proxy.poll_timeout();
        let timer = async move {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            m = incoming.recv() => {
                let Some(m) = m else { break };
                proxy.handle_packet(packet_of(&m), Instant::now(), SystemTime::now());
            }
            () = timer => proxy.handle_timeout(Instant::now()),
        }
        flush(proxy, transport, &mut on_event).await;
    }
    flush(proxy, transport, &mut on_event).await;
}
