//! The flow to the outbound proxy: located by DNS when its URI names a domain (RFC 3263),
//! opened to the first of its servers that takes a connection.

use bytes::Bytes;
use sotto_net::Transport;
use sotto_net::dns::Resolver;
use sotto_sip::resolve::Policy;
use sotto_sip::transport::{Destination, TransportKind};

use super::{DriverError, Output};
use crate::ua::UaConfig;

/// Locates the outbound proxy (`ua.proxy_uri`: an address, or a domain looked up by DNS,
/// RFC 3263) and opens a connection to the first of its servers that takes one, trying the
/// next on failure (RFC 3263 §4.3). Returns that server and the connection.
pub(crate) async fn open_proxy_flow(
    transport: &Transport,
    resolver: &Resolver,
    ua: &UaConfig,
    emit: &mut impl FnMut(&Output),
) -> Result<(Destination, sotto_net::Sent), DriverError> {
    let tls_only = ua.proxy.transport == TransportKind::Tls;
    let uri = &ua.proxy_uri;
    let candidates = resolver
        .resolve(uri, Policy { tls_only })
        .await
        .map_err(|e| DriverError::Net(format!("locating the proxy {uri}: {e}")))?;
    let mut failures = Vec::new();
    for c in candidates {
        let mut dest = Destination::new(c.transport, c.addr);
        // The name the proxy's certificate must carry: the account's override, else the
        // domain looked up (RFC 5922 §4), else the address.
        dest.server_name = ua.proxy.server_name.clone().or(c.server_name);
        match transport.send(&dest, Bytes::from_static(b"\r\n\r\n")).await {
            Ok(sent) => {
                if !failures.is_empty() {
                    emit(&Output::ProxyFailover {
                        server: dest.remote,
                        failed: failures.clone(),
                    });
                }
                return Ok((dest, sent));
            }
            Err(e) => failures.push(format!("{} {}: {e}", c.transport.as_str(), c.addr)),
        }
    }
    Err(DriverError::Net(format!(
        "connecting to the proxy {uri}: {}",
        failures.join("; ")
    )))
}
