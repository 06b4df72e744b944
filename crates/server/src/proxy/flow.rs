//! Flow tokens (RFC 5626 §5.3): the Record-Route this proxy inserts names the connection
//! ("flow") a UA is reached over, so that in-dialog requests reach a device behind NAT over
//! the connection it registered (or called) on, not at its unreachable Contact.
//!
//! A token is the hex encoding of
//!
//! ```text
//! version (1) | transport (1) | connection id (8, BE) | family (1) | IP (4 or 16) | port (2)
//! | HMAC-SHA-256 of all that, first 16 bytes
//! ```
//!
//! keyed with a secret drawn from the RNG when the proxy starts. The MAC makes a token
//! unforgeable (a request cannot choose another user's connection), and the remote address in
//! it lets the transport refuse a connection id that names another peer (ids restart with the
//! process; a token of an earlier process fails its MAC anyway). It is carried as the user
//! part of our Record-Route URI, marked with the `ob` parameter:
//! `<sips:0102…@proxy:5061;lr;ob>`.
//!
//! Whenever a side is a flow, the Record-Route has one value per side (the callee's on top),
//! each with its side's token if it has one. Routing (in the router): of the Route values
//! naming us, each with a token is verified (a bad one is refused with 403, §5.3); the last
//! of them names the side the request goes to, and if it carries a token (not naming the
//! flow the request arrived on), the request goes over that flow. If that flow is closed,
//! sending fails and the request is answered 430 Flow Failed (§5.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sotto_crypto::CryptoProvider;
use sotto_crypto::mac::{MacAlgorithm, MacKey};
use sotto_crypto::secret::SecretBytes;
use sotto_sip::message::Uri;
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};

/// The token format version.
const VERSION: u8 = 1;
/// Bytes of the (truncated) HMAC-SHA-256 tag.
pub const TAG_BYTES: usize = 16;
/// Bytes of the secret key drawn at start.
const KEY_BYTES: usize = 32;
/// The URI parameter marking a Record-Route/Route value that carries a flow token.
pub const FLOW_PARAM: &str = "ob";

/// One flow: a connection and the peer at its other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// TCP or TLS (UDP flows are not tokenized).
    pub transport: TransportKind,
    /// The transport's connection id.
    pub connection: ConnectionId,
    /// The peer's address on that connection.
    pub remote: SocketAddr,
}

impl Flow {
    /// The flow of a stream destination that names a connection; `None` for UDP or without
    /// a connection.
    pub fn of_destination(d: &Destination) -> Option<Flow> {
        if !d.transport.is_stream() {
            return None;
        }
        Some(Flow {
            transport: d.transport,
            connection: d.connection?,
            remote: d.remote,
        })
    }

    /// The flow a message arrived on (`None` for UDP).
    pub fn arrived_on(
        transport: TransportKind,
        connection: Option<ConnectionId>,
        source: SocketAddr,
    ) -> Option<Flow> {
        if !transport.is_stream() {
            return None;
        }
        Some(Flow {
            transport,
            connection: connection?,
            remote: source,
        })
    }

    /// Where to send over this flow (its connection, only for the peer it was opened with).
    pub fn destination(&self) -> Destination {
        Destination {
            transport: self.transport,
            remote: self.remote,
            connection: Some(self.connection),
            server_name: None,
        }
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + 1 + 8 + 1 + 16 + 2 + TAG_BYTES);
        v.push(VERSION);
        v.push(match self.transport {
            TransportKind::Udp => 0,
            TransportKind::Tcp => 1,
            TransportKind::Tls => 2,
        });
        v.extend_from_slice(&self.connection.0.to_be_bytes());
        match self.remote.ip() {
            IpAddr::V4(ip) => {
                v.push(4);
                v.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                v.push(6);
                v.extend_from_slice(&ip.octets());
            }
        }
        v.extend_from_slice(&self.remote.port().to_be_bytes());
        v
    }

    fn from_bytes(b: &[u8]) -> Option<Flow> {
        let (&version, rest) = b.split_first()?;
        if version != VERSION {
            return None;
        }
        let (&kind, rest) = rest.split_first()?;
        let transport = match kind {
            1 => TransportKind::Tcp,
            2 => TransportKind::Tls,
            _ => return None,
        };
        let (id, rest) = rest.split_first_chunk::<8>()?;
        let (&family, rest) = rest.split_first()?;
        let (ip, rest) = match family {
            4 => {
                let (o, rest) = rest.split_first_chunk::<4>()?;
                (IpAddr::V4(Ipv4Addr::from(*o)), rest)
            }
            6 => {
                let (o, rest) = rest.split_first_chunk::<16>()?;
                (IpAddr::V6(Ipv6Addr::from(*o)), rest)
            }
            _ => return None,
        };
        let (port, rest) = rest.split_first_chunk::<2>()?;
        if !rest.is_empty() {
            return None;
        }
        Some(Flow {
            transport,
            connection: ConnectionId(u64::from_be_bytes(*id)),
            remote: SocketAddr::new(ip, u16::from_be_bytes(*port)),
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowTokenError {
    /// Not hex, or too short to hold a tag.
    #[error("flow token is malformed")]
    Malformed,
    /// The MAC does not match: tampered with, forged, or issued by another process.
    #[error("flow token does not verify")]
    BadMac,
    /// The MAC matches but the content is not a flow this version understands.
    #[error("flow token content is invalid")]
    Invalid,
}

/// Issues and verifies flow tokens with one secret key.
pub struct FlowTokens {
    key: Box<dyn MacKey>,
}

impl std::fmt::Debug for FlowTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowTokens(<redacted>)")
    }
}

impl FlowTokens {
    /// Tokens keyed with a fresh random secret (so tokens die with the process).
    pub fn new(provider: &CryptoProvider) -> Result<Self, sotto_crypto::Error> {
        let mut key = SecretBytes::zeroed(KEY_BYTES);
        provider.rng.fill(key.expose_mut())?;
        Self::with_key(provider, key.expose())
    }

    /// Tokens keyed with `key` (e.g. shared by the nodes of a cluster).
    pub fn with_key(provider: &CryptoProvider, key: &[u8]) -> Result<Self, sotto_crypto::Error> {
        Ok(FlowTokens {
            key: provider.mac.hmac(MacAlgorithm::Sha256, key)?,
        })
    }

    /// The token of `flow` (lower-case hex, usable as a URI user part as is).
    pub fn encode(&self, flow: &Flow) -> String {
        let mut data = flow.to_bytes();
        let mut tag = [0u8; TAG_BYTES];
        // The tag length is within HMAC-SHA-256's output, so compute cannot fail; a zero tag
        // would only make the token fail verification.
        let _ = self.key.compute(&[&data], &mut tag);
        data.extend_from_slice(&tag);
        sotto_crypto::hex::encode(&data)
    }

    /// The flow named by `token`, if its MAC verifies.
    pub fn decode(&self, token: &str) -> Result<Flow, FlowTokenError> {
        let raw = from_hex(token).ok_or(FlowTokenError::Malformed)?;
        let split = raw
            .len()
            .checked_sub(TAG_BYTES)
            .filter(|n| *n > 0)
            .ok_or(FlowTokenError::Malformed)?;
        let (data, tag) = raw.split_at(split);
        if !self.key.verify(&[data], tag) {
            return Err(FlowTokenError::BadMac);
        }
        Flow::from_bytes(data).ok_or(FlowTokenError::Invalid)
    }

    /// The token carried by `uri` (a Route naming us): `None` if it carries none (no `ob`
    /// parameter or no user part), else the verification result.
    pub fn from_route(&self, uri: &Uri) -> Option<Result<Flow, FlowTokenError>> {
        if !uri.has_param(FLOW_PARAM) {
            return None;
        }
        uri.user().map(|u| self.decode(u))
    }

    /// The flow a request should go over, from the Route values naming us that were popped
    /// (in order). Our Record-Route has one value per side (the requester's first in its
    /// route set), so the last one names the side the request goes to: its token's flow,
    /// unless it has none or names the flow the request `arrived` on (then `None`: routed
    /// normally). `Err` if any of them carries a token that is not valid.
    pub fn select(
        &self,
        popped: &[Uri],
        arrived: Option<Flow>,
    ) -> Result<Option<Flow>, FlowTokenError> {
        let mut last = None;
        for uri in popped {
            last = self.from_route(uri).transpose()?;
        }
        Ok(last.filter(|f| Some(*f) != arrived))
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks_exact(2)
        .map(|p| match p {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> &'static CryptoProvider {
        sotto_crypto_rust::provider()
    }

    fn flow(id: u64, remote: &str) -> Flow {
        Flow {
            transport: TransportKind::Tls,
            connection: ConnectionId(id),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn encode_then_decode_gives_the_flow() {
        let t = FlowTokens::new(provider()).unwrap();
        for f in [
            flow(7, "127.0.0.1:40000"),
            flow(u64::MAX, "[::1]:5061"),
            Flow {
                transport: TransportKind::Tcp,
                ..flow(1, "10.0.0.2:1")
            },
        ] {
            let token = t.encode(&f);
            assert!(token.bytes().all(|c| c.is_ascii_hexdigit()), "{token}");
            assert_eq!(t.decode(&token), Ok(f));
            assert_eq!(t.decode(&token.to_ascii_uppercase()), Ok(f));
        }
    }

    #[test]
    fn a_fixed_key_gives_a_fixed_token() {
        let t = FlowTokens::with_key(provider(), b"k").unwrap();
        let token = t.encode(&flow(0x0102, "127.0.0.1:258"));
        // The clear part is readable: version, TLS, id, IPv4, address, port.
        assert!(
            token.starts_with("0102000000000000010204" /* v1 TLS id=0x102 v4 */),
            "{token}"
        );
        assert_eq!(&token[22..34], "7f0000010102", "{token}");
        assert_eq!(token.len(), 2 * (17 + TAG_BYTES));
        assert_eq!(token, t.encode(&flow(0x0102, "127.0.0.1:258")));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let t = FlowTokens::new(provider()).unwrap();
        let token = t.encode(&flow(42, "127.0.0.1:40000"));
        let raw = from_hex(&token).unwrap();
        for i in 0..raw.len() * 8 {
            let mut bad = raw.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let hex: String = bad.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(t.decode(&hex), Err(FlowTokenError::BadMac), "bit {i}");
        }
    }

    #[test]
    fn another_key_or_a_forged_token_is_refused() {
        let a = FlowTokens::new(provider()).unwrap();
        let b = FlowTokens::new(provider()).unwrap();
        let f = flow(3, "127.0.0.1:40000");
        assert_eq!(b.decode(&a.encode(&f)), Err(FlowTokenError::BadMac));
        // The clear part of a valid token with another connection id and no valid tag.
        let mut forged = Flow {
            connection: ConnectionId(4),
            ..f
        }
        .to_bytes();
        forged.extend_from_slice(&[0u8; TAG_BYTES]);
        let hex: String = forged.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.decode(&hex), Err(FlowTokenError::BadMac));
        for junk in ["", "0", "zz", "00", &"ab".repeat(TAG_BYTES), "alice"] {
            assert_eq!(a.decode(junk), Err(FlowTokenError::Malformed), "{junk:?}");
        }
        // Truncated tag, extra byte.
        let good = a.encode(&f);
        assert!(a.decode(&good[..good.len() - 2]).is_err());
        assert!(a.decode(&format!("{good}00")).is_err());
    }

    #[test]
    fn a_valid_mac_over_bad_content_is_invalid() {
        let t = FlowTokens::with_key(provider(), b"k").unwrap();
        let data = [VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 127, 0, 0, 1, 0, 1];
        let mut tag = [0u8; TAG_BYTES];
        t.key.compute(&[&data], &mut tag).unwrap();
        let hex: String = data
            .iter()
            .chain(tag.iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        // Transport 0 (UDP) is never tokenized.
        assert_eq!(t.decode(&hex), Err(FlowTokenError::Invalid));
    }

    #[test]
    fn select_skips_the_arrival_flow_and_takes_the_far_side() {
        let t = FlowTokens::new(provider()).unwrap();
        let a = flow(1, "127.0.0.1:40001");
        let b = flow(2, "127.0.0.1:40002");
        let uri =
            |f: &Flow| Uri::parse(&format!("sips:{}@127.0.0.1:5061;lr;ob", t.encode(f))).unwrap();
        let plain = Uri::parse("sip:127.0.0.1:5060;lr").unwrap();
        // alice's route set: her side first, bob's last.
        let routes = vec![uri(&a), uri(&b)];
        assert_eq!(t.select(&routes, Some(a)), Ok(Some(b)));
        // bob's route set is the reverse.
        let back: Vec<Uri> = routes.iter().rev().cloned().collect();
        assert_eq!(t.select(&back, Some(b)), Ok(Some(a)));
        // alice reconnected (a new flow): still bob's.
        assert_eq!(t.select(&routes, Some(flow(9, "127.0.0.1:1"))), Ok(Some(b)));
        // Only the caller is a flow: its side first, the callee's (plain) last.
        let one = vec![uri(&a), plain.clone()];
        assert_eq!(t.select(&one, Some(a)), Ok(None));
        // ... even when the caller reconnected: its old flow is not where the request goes.
        assert_eq!(t.select(&one, Some(flow(9, "127.0.0.1:1"))), Ok(None));
        // The callee's requests go over the caller's flow.
        let back: Vec<Uri> = one.iter().rev().cloned().collect();
        assert_eq!(t.select(&back, Some(flow(8, "127.0.0.1:2"))), Ok(Some(a)));
        assert_eq!(t.select(&back, None), Ok(Some(a)));
        // The last one names the arrival flow: normal routing.
        assert_eq!(t.select(&[uri(&b), uri(&a)], Some(a)), Ok(None));
        assert_eq!(t.select(std::slice::from_ref(&plain), None), Ok(None));
        // A user part without `ob` is not a token; with `ob` it must verify.
        let user = Uri::parse("sip:alice@127.0.0.1:5060;lr").unwrap();
        assert_eq!(t.select(&[user], None), Ok(None));
        let bad = Uri::parse("sips:00ff@127.0.0.1:5061;lr;ob").unwrap();
        assert_eq!(
            t.select(&[bad, uri(&b)], None),
            Err(FlowTokenError::Malformed)
        );
    }
}
