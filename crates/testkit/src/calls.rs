//! Call helpers on a [`Network`]: what an agent's events say of a call, the media an agent
//! hands over once a call is connected, and the usual call between two registered agents.

use std::net::SocketAddr;
use std::time::Duration;

use sotto_agent::config::{Encryption, KeyExchange};
use sotto_agent::{CallId, CallState, UaEvent};
use sotto_media::keyx::MediaKeyExchange;
use sotto_sdp::NegotiatedMedia;
use sotto_sip::message::Uri;

use crate::link::LinkConfig;
use crate::network::{AgentId, Network};

/// One end's negotiated stream and the key exchange its media runs.
pub type MediaHalf = (NegotiatedMedia, Box<dyn MediaKeyExchange>);

/// Alice's media address in [`Network::connected_pair`].
pub const ALICE_MEDIA: &str = "127.0.0.10:7000";
/// Bob's media address in [`Network::connected_pair`].
pub const BOB_MEDIA: &str = "127.0.0.11:7002";

/// A connected call between two agents of a [`Network`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectedPair {
    /// The caller.
    pub alice: AgentId,
    /// The callee.
    pub bob: AgentId,
    /// The call on alice's side.
    pub a_call: CallId,
    /// The call on bob's side.
    pub b_call: CallId,
}

impl Network {
    /// The latest state agent `id` reported for `call`.
    pub fn call_state(&self, id: AgentId, call: CallId) -> Option<CallState> {
        self.events(id).iter().rev().find_map(|e| match e {
            UaEvent::CallState { call: c, state, .. } if *c == call => Some(*state),
            _ => None,
        })
    }

    /// The first incoming call agent `id` was told of.
    pub fn incoming_call(&self, id: AgentId) -> Option<CallId> {
        self.events(id).iter().find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
    }

    /// The negotiated stream and key exchange of agent `id`'s first call whose media is
    /// ready (taken from the agent: once per call); `None` before `MediaReady`.
    pub fn take_media(&mut self, id: AgentId) -> Option<MediaHalf> {
        let (call, neg) = self.events(id).iter().find_map(|e| match e {
            UaEvent::MediaReady { call, media, .. } => Some((*call, (**media).clone())),
            _ => None,
        })?;
        let keyx = self.ua(id).take_key_exchange(call)?;
        Some((neg, keyx))
    }

    /// Adds `alice` and `bob` (passwords `<user>-pw`, mandatory encryption with `methods`)
    /// over `link`, registers them, and has alice call bob and bob answer. `None` if a step
    /// does not happen within its bound of virtual time (5 s to register, 10 s to ring, 10 s
    /// to connect on alice's side).
    pub fn connected_pair(
        &mut self,
        methods: &[KeyExchange],
        link: LinkConfig,
    ) -> Option<ConnectedPair> {
        let mut ids = Vec::new();
        for user in ["alice", "bob"] {
            let mut config = self.agent_config(user, Encryption::Mandatory);
            config.methods = methods.to_vec();
            self.add_user(user, &format!("{user}-pw"));
            ids.push(self.add_agent_with(config, link));
        }
        let (alice, bob) = (ids[0], ids[1]);
        if !self.run_until(Duration::from_secs(5), |n| {
            n.ua_registered(alice) && n.ua_registered(bob)
        }) {
            return None;
        }
        let now = self.clock.now();
        let a_media: SocketAddr = ALICE_MEDIA.parse().ok()?;
        let target = Uri::parse(&format!("sip:bob@{}", self.domain())).ok()?;
        let a_call = self.ua(alice).call(&target, a_media, now).ok()?;
        if !self.run_until(Duration::from_secs(10), |n| n.incoming_call(bob).is_some()) {
            return None;
        }
        let b_call = self.incoming_call(bob)?;
        let now = self.clock.now();
        let b_media: SocketAddr = BOB_MEDIA.parse().ok()?;
        self.ua(bob).answer(b_call, b_media, now).ok()?;
        self.run_until(Duration::from_secs(10), |n| {
            n.call_state(alice, a_call) == Some(CallState::Connected)
        })
        .then_some(ConnectedPair {
            alice,
            bob,
            a_call,
            b_call,
        })
    }
}
