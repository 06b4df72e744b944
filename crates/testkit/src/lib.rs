//! # sotto-testkit: engines and whole calls on virtual time
//!
//! - [`clock::VirtualClock`]: the time every engine is driven with; tests advance it, nothing
//!   waits.
//! - [`link::Link`]: a sans-IO network link with delay, jitter, loss, reordering and
//!   duplication, deterministic for a seed.
//! - [`network::Network`]: user agents ([`sotto_agent::UserAgent`]) registered with the proxy
//!   core ([`sotto_server::proxy::Proxy`], memory stores) over emulated links, in one
//!   process: registration, calls, hang-ups, in milliseconds of real time.
//! - [`calls`]: what an agent's events say of a call, its media once connected, and the
//!   usual call between two registered agents ([`Network::connected_pair`]).
//! - [`media::MediaLink`]: two calls' media ([`sotto_media::call::CallMedia`], keyed by the
//!   call's own key exchange) across a link, with a tone to check what arrives.
//!
//! Tests of cores use this kit instead of sockets and sleeps.

#![forbid(unsafe_code)]

pub mod calls;
pub mod clock;
pub mod link;
pub mod media;
pub mod network;

pub use calls::{ConnectedPair, MediaHalf};
pub use clock::VirtualClock;
pub use link::{Link, LinkConfig, LinkStats};
pub use media::{MediaLink, Side};
pub use network::{AgentId, Network};
