//! What the agent does in its mode, sans-IO: register and stay; register, call, hang up after
//! a while and unregister; register and answer every call. The decisions of a run (when to
//! place the call, answer, start or stop media, hang up, unregister, stop, and with which
//! result) live here, on `now` passed in; the async loop ([`super::run`]) only carries them
//! out ([`Effect`]) and feeds back what happened.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sotto_sdp::NegotiatedMedia;
use sotto_sip::message::Uri;

use super::{DriverError, Mode};
use crate::call::{CallId, CallState};
use crate::ua::{UaError, UaEvent, UserAgent};

/// How long the run waits for the registrar to confirm an unregistration on exit.
pub(crate) const UNREGISTER_WAIT: Duration = Duration::from_secs(5);
/// How long the run waits for its calls to end on exit before unregistering anyway.
pub(crate) const HANGUP_WAIT: Duration = Duration::from_secs(5);

/// The agent as a run sees it (a [`UserAgent`], or a fake in tests).
pub(crate) trait Control {
    /// Ends a call; `reason` when not the user's hangup.
    fn hangup(&mut self, call: CallId, reason: Option<String>, now: Instant);
    /// Sends the unregistration; `false` when there is nothing to unregister or it failed.
    fn unregister(&mut self, now: Instant) -> bool;
    /// The calls in progress.
    fn call_ids(&self) -> Vec<CallId>;
    /// Drops a call without signalling (its peer is unreachable).
    fn forget_call(&mut self, call: CallId);
}

impl Control for UserAgent {
    fn hangup(&mut self, call: CallId, reason: Option<String>, now: Instant) {
        let _ = match reason {
            Some(r) => self.hangup_because(call, r, now),
            None => UserAgent::hangup(self, call, now),
        };
    }

    fn unregister(&mut self, now: Instant) -> bool {
        self.is_registered() && UserAgent::unregister(self, now).is_ok()
    }

    fn call_ids(&self) -> Vec<CallId> {
        UserAgent::call_ids(self)
    }

    fn forget_call(&mut self, call: CallId) {
        UserAgent::forget_call(self, call);
    }
}

/// What the IO loop must do for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Open media sockets and place a call to this target; report with
    /// [`AgentSession::call_placed`].
    PlaceCall(Uri),
    /// Open media sockets and answer this call.
    Answer(CallId),
    /// Start this call's media for its negotiated stream (its sockets, its key exchange).
    StartMedia(CallId, Box<NegotiatedMedia>),
    /// Stop this call's media and let it write its last report.
    StopMedia(CallId),
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Doing the mode's work.
    Running,
    /// Shutting down: calls are being hung up, until they end or the deadline.
    HangingUp { deadline: Instant },
    /// The unregistration is sent; the run stops on its answer or at the deadline.
    Unregistering { deadline: Instant },
    /// Over.
    Done,
}

/// One run of the agent in its [`Mode`]; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct AgentSession {
    mode: Mode,
    phase: Phase,
    /// The call of [`Mode::Call`] was asked for (placed once, even over re-registrations).
    call_requested: bool,
    /// The call of [`Mode::Call`].
    placed: Option<CallId>,
    /// That call connected at some point.
    connected: bool,
    /// When that call is hung up ([`Mode::Call`]'s duration).
    hangup_at: Option<(CallId, Instant)>,
    result: Result<(), DriverError>,
    effects: VecDeque<Effect>,
}

impl AgentSession {
    /// A run in `mode`, before the first registration.
    pub(crate) fn new(mode: Mode) -> Self {
        AgentSession {
            mode,
            phase: Phase::Running,
            call_requested: false,
            placed: None,
            connected: false,
            hangup_at: None,
            result: Ok(()),
            effects: VecDeque::new(),
        }
    }

    fn running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// An event of the agent.
    pub(crate) fn handle_event(&mut self, ctl: &mut impl Control, ev: &UaEvent, now: Instant) {
        match ev {
            UaEvent::Registered { .. } => {
                if let Mode::Call { target, .. } = &self.mode
                    && !self.call_requested
                    && self.running()
                {
                    self.call_requested = true;
                    self.effects.push_back(Effect::PlaceCall(target.clone()));
                }
            }
            UaEvent::RegistrationFailed { status, reason } => {
                if self.running() {
                    self.result = Err(DriverError::Registration {
                        status: *status,
                        reason: reason.clone(),
                    });
                }
                self.phase = Phase::Done;
            }
            UaEvent::Unregistered if matches!(self.phase, Phase::Unregistering { .. }) => {
                self.phase = Phase::Done;
            }
            UaEvent::IncomingCall { call, .. }
                if matches!(self.mode, Mode::Listen { auto_answer: true }) && self.running() =>
            {
                self.effects.push_back(Effect::Answer(*call));
            }
            UaEvent::CallState {
                call,
                state,
                reason,
            } => self.call_state(ctl, *call, *state, reason.as_deref(), now),
            UaEvent::MediaReady { call, media, .. } => self
                .effects
                .push_back(Effect::StartMedia(*call, media.clone())),
            _ => {}
        }
        self.advance(ctl, now);
    }

    fn call_state(
        &mut self,
        ctl: &mut impl Control,
        call: CallId,
        state: CallState,
        reason: Option<&str>,
        now: Instant,
    ) {
        let ours = Some(call) == self.placed;
        match state {
            CallState::Connected if ours => {
                self.connected = true;
                if let Mode::Call {
                    duration: Some(d), ..
                } = &self.mode
                {
                    self.hangup_at = Some((call, now + *d));
                }
            }
            CallState::Ended => {
                self.effects.push_back(Effect::StopMedia(call));
                if ours && self.running() {
                    if !self.connected {
                        self.result = Err(DriverError::CallFailed(
                            reason.unwrap_or_default().to_owned(),
                        ));
                    }
                    self.unregister(ctl, now);
                }
            }
            _ => {}
        }
    }

    /// The outcome of an [`Effect::PlaceCall`].
    pub(crate) fn call_placed(
        &mut self,
        ctl: &mut impl Control,
        placed: Result<CallId, UaError>,
        now: Instant,
    ) {
        match placed {
            Ok(id) => self.placed = Some(id),
            Err(e) => {
                self.result = Err(DriverError::CallFailed(e.to_string()));
                self.unregister(ctl, now);
            }
        }
    }

    /// A call's media failed or went silent: the call is hung up, saying why.
    pub(crate) fn media_failed(
        &mut self,
        ctl: &mut impl Control,
        call: CallId,
        reason: String,
        now: Instant,
    ) {
        ctl.hangup(call, Some(reason), now);
    }

    /// The user asked to stop: hang up every call, then unregister.
    pub(crate) fn shutdown(&mut self, ctl: &mut impl Control, now: Instant) {
        if !self.running() {
            return;
        }
        for id in ctl.call_ids() {
            ctl.hangup(id, None, now);
        }
        self.phase = Phase::HangingUp {
            deadline: now + HANGUP_WAIT,
        };
        self.advance(ctl, now);
    }

    fn unregister(&mut self, ctl: &mut impl Control, now: Instant) {
        self.phase = if ctl.unregister(now) {
            Phase::Unregistering {
                deadline: now + UNREGISTER_WAIT,
            }
        } else {
            Phase::Done
        };
    }

    /// Moves on from hanging up once every call ended (or they had their time).
    fn advance(&mut self, ctl: &mut impl Control, now: Instant) {
        if let Phase::HangingUp { deadline } = self.phase
            && (ctl.call_ids().is_empty() || deadline <= now)
        {
            // Calls that did not end in time are dropped (their peer is unreachable).
            for id in ctl.call_ids() {
                ctl.forget_call(id);
            }
            self.unregister(ctl, now);
        }
    }

    /// When [`AgentSession::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::HangingUp { deadline } | Phase::Unregistering { deadline } => Some(deadline),
            Phase::Running | Phase::Done => None,
        };
        [phase, self.hangup_at.map(|(_, at)| at)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires what is due at `now`: the timed hangup, the deadlines.
    pub(crate) fn handle_timeout(&mut self, ctl: &mut impl Control, now: Instant) {
        if let Some((call, at)) = self.hangup_at
            && at <= now
        {
            self.hangup_at = None;
            ctl.hangup(call, None, now);
        }
        if let Phase::Unregistering { deadline } = self.phase
            && deadline <= now
        {
            self.phase = Phase::Done;
        }
        self.advance(ctl, now);
    }

    /// The next thing for the IO loop to do.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Whether the run is over.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The run's result.
    pub(crate) fn into_result(self) -> Result<(), DriverError> {
        self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A fake agent: records what the run asked of it.
    #[derive(Default)]
    struct Fake {
        calls: BTreeSet<CallId>,
        hangups: Vec<(CallId, Option<String>)>,
        registered: bool,
        unregisters: usize,
        forgotten: Vec<CallId>,
    }

    impl Control for Fake {
        fn hangup(&mut self, call: CallId, reason: Option<String>, _now: Instant) {
            self.hangups.push((call, reason));
        }
        fn unregister(&mut self, _now: Instant) -> bool {
            self.unregisters += 1;
            std::mem::take(&mut self.registered)
        }
        fn call_ids(&self) -> Vec<CallId> {
            self.calls.iter().copied().collect()
        }
        fn forget_call(&mut self, call: CallId) {
            self.calls.remove(&call);
            self.forgotten.push(call);
        }
    }

    fn registered() -> UaEvent {
        UaEvent::Registered {
            expires: Duration::from_secs(600),
            contact: String::new(),
            auth: "digest-SHA-256".into(),
        }
    }

    fn state(call: CallId, state: CallState, reason: Option<&str>) -> UaEvent {
        UaEvent::CallState {
            call,
            state,
            reason: reason.map(str::to_owned),
        }
    }

    fn call_mode(duration: u64) -> Mode {
        Mode::Call {
            target: "sips:bob@example.test".parse().unwrap(),
            duration: Some(Duration::from_secs(duration)),
        }
    }

    #[test]
    fn a_call_run_places_once_hangs_up_on_time_and_unregisters() {
        let t0 = Instant::now();
        let mut ua = Fake {
            registered: true,
            ..Fake::default()
        };
        let mut s = AgentSession::new(call_mode(3));
        s.handle_event(&mut ua, &registered(), t0);
        assert!(matches!(s.poll_effect(), Some(Effect::PlaceCall(_))));
        // A refresh does not place a second call.
        s.handle_event(&mut ua, &registered(), t0);
        assert_eq!(s.poll_effect(), None);
        let id = CallId(1);
        s.call_placed(&mut ua, Ok(id), t0);
        ua.calls.insert(id);
        s.handle_event(&mut ua, &state(id, CallState::Connected, None), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        s.handle_timeout(&mut ua, t0 + Duration::from_secs(2));
        assert!(ua.hangups.is_empty(), "not before its time");
        s.handle_timeout(&mut ua, t0 + Duration::from_secs(3));
        assert_eq!(ua.hangups, vec![(id, None)]);
        ua.calls.remove(&id);
        s.handle_event(&mut ua, &state(id, CallState::Ended, None), t0);
        assert_eq!(s.poll_effect(), Some(Effect::StopMedia(id)));
        assert_eq!(ua.unregisters, 1);
        assert!(!s.is_done(), "waits for the registrar");
        s.handle_event(&mut ua, &UaEvent::Unregistered, t0);
        assert!(s.is_done());
        assert!(s.into_result().is_ok());
    }

    #[test]
    fn a_call_that_never_connects_fails_the_run_with_its_reason() {
        let t0 = Instant::now();
        let mut ua = Fake {
            registered: true,
            ..Fake::default()
        };
        let mut s = AgentSession::new(call_mode(3));
        s.handle_event(&mut ua, &registered(), t0);
        s.call_placed(&mut ua, Ok(CallId(7)), t0);
        let ended = state(CallId(7), CallState::Ended, Some("486 Busy Here"));
        s.handle_event(&mut ua, &ended, t0);
        // The registrar never answers the unregistration: the run ends at the deadline.
        s.handle_timeout(&mut ua, t0 + UNREGISTER_WAIT);
        assert!(s.is_done());
        match s.into_result() {
            Err(DriverError::CallFailed(r)) => assert_eq!(r, "486 Busy Here"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_registration_ends_the_run_with_its_status() {
        let mut ua = Fake::default();
        let mut s = AgentSession::new(Mode::Register);
        let ev = UaEvent::RegistrationFailed {
            status: 403,
            reason: "Forbidden".into(),
        };
        s.handle_event(&mut ua, &ev, Instant::now());
        assert!(s.is_done());
        assert!(matches!(
            s.into_result(),
            Err(DriverError::Registration { status: 403, .. })
        ));
    }

    #[test]
    fn shutdown_hangs_up_every_call_then_drops_the_stuck_ones_and_unregisters() {
        let t0 = Instant::now();
        let mut ua = Fake {
            registered: true,
            calls: [CallId(1), CallId(2)].into(),
            ..Fake::default()
        };
        let mut s = AgentSession::new(Mode::Listen { auto_answer: true });
        s.shutdown(&mut ua, t0);
        assert_eq!(ua.hangups.len(), 2);
        assert_eq!(ua.unregisters, 0, "calls end first");
        // An incoming call during shutdown is not answered.
        let incoming = UaEvent::IncomingCall {
            call: CallId(3),
            from: String::new(),
            to: String::new(),
        };
        s.handle_event(&mut ua, &incoming, t0);
        assert_eq!(s.poll_effect(), None);
        assert_eq!(s.poll_timeout(), Some(t0 + HANGUP_WAIT));
        s.handle_timeout(&mut ua, t0 + HANGUP_WAIT);
        assert_eq!(ua.forgotten, vec![CallId(1), CallId(2)]);
        assert_eq!(ua.unregisters, 1);
        s.handle_event(&mut ua, &UaEvent::Unregistered, t0 + HANGUP_WAIT);
        assert!(s.is_done() && s.into_result().is_ok());
    }

    #[test]
    fn listen_answers_and_starts_media_when_ready() {
        let t0 = Instant::now();
        let mut ua = Fake::default();
        let mut s = AgentSession::new(Mode::Listen { auto_answer: true });
        let incoming = UaEvent::IncomingCall {
            call: CallId(4),
            from: String::new(),
            to: String::new(),
        };
        s.handle_event(&mut ua, &incoming, t0);
        assert_eq!(s.poll_effect(), Some(Effect::Answer(CallId(4))));
        s.media_failed(&mut ua, CallId(4), "no media".into(), t0);
        assert_eq!(ua.hangups, vec![(CallId(4), Some("no media".into()))]);
        // Without auto-answer, the call rings.
        let mut s = AgentSession::new(Mode::Listen { auto_answer: false });
        s.handle_event(&mut ua, &incoming, t0);
        assert_eq!(s.poll_effect(), None);
    }
}
