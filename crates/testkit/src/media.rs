//! Two ends of a call's media ([`CallMedia`], each keyed by its own key exchange) across a
//! [`Link`] in each direction, on virtual time: each end plays a tone every 20 ms and keeps
//! what it plays out, so a test can check what crossed, through loss, jitter and reordering.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sotto_media::audio::{FRAME_SAMPLES, Tone};
use sotto_media::call::{CallMedia, MediaEvent};
use sotto_media::keyx::MediaKeyExchange;
use sotto_media::session::{Channel, MediaStats, NoProtection, RtpSession};
use sotto_sdp::NegotiatedMedia;

use crate::clock::VirtualClock;
use crate::link::{Link, LinkConfig};

/// The frame interval.
const FRAME: Duration = Duration::from_millis(20);

/// One end: its media, what it plays, what it heard.
struct End {
    media: CallMedia,
    /// Where the other end sends to (this end's address).
    addr: SocketAddr,
    tone: Tone,
    heard: Vec<i16>,
    events: Vec<MediaEvent>,
    /// Packets refused by this end's media (not secured, failed authentication...).
    refused: u64,
}

/// The call's media between two ends; see the [module documentation](self).
pub struct MediaLink {
    a: End,
    b: End,
    a_to_b: Link<(Channel, Vec<u8>)>,
    b_to_a: Link<(Channel, Vec<u8>)>,
    next_frame: Instant,
}

impl std::fmt::Debug for MediaLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLink").finish_non_exhaustive()
    }
}

/// Which end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first end given.
    A,
    /// The second.
    B,
}

fn end(
    clock: &VirtualClock,
    neg: &NegotiatedMedia,
    keyx: Box<dyn MediaKeyExchange>,
    own: SocketAddr,
    tone_hz: f64,
) -> Result<End, String> {
    let p = sotto_crypto_rust::provider();
    let encrypted = keyx.protection().is_encrypted();
    let config =
        sotto_agent::media::media_config(neg, "testkit", encrypted).map_err(|e| e.to_string())?;
    let stream = RtpSession::new(
        config,
        Box::new(NoProtection::new()),
        p.rng,
        clock.now(),
        clock.wall(),
    )
    .map_err(|e| e.to_string())?;
    let mut media = CallMedia::new(p, keyx, vec![stream]);
    let mut events = Vec::new();
    while let Some(e) = media.poll_event() {
        events.push(e);
    }
    Ok(End {
        media,
        addr: own,
        tone: Tone::new(tone_hz, 8000, 8000),
        heard: Vec::new(),
        events,
        refused: 0,
    })
}

/// The address the other side's SDP announced for us.
fn announced(neg: &NegotiatedMedia) -> Result<SocketAddr, String> {
    let ip: IpAddr = neg
        .remote_address
        .parse()
        .map_err(|_| format!("not an IP address: {}", neg.remote_address))?;
    Ok(SocketAddr::new(ip, neg.remote_rtp_port))
}

impl MediaLink {
    /// The media of a call whose ends negotiated `a` and `b` (each: the stream and its key
    /// exchange, as the agent hands them out on `MediaReady`), `a` playing `tone_a` Hz and
    /// `b` playing `tone_b` Hz, across `link` both ways (`seed` for its randomness).
    pub fn new(
        clock: &VirtualClock,
        a: (NegotiatedMedia, Box<dyn MediaKeyExchange>),
        b: (NegotiatedMedia, Box<dyn MediaKeyExchange>),
        (tone_a, tone_b): (f64, f64),
        link: LinkConfig,
        seed: u64,
    ) -> Result<Self, String> {
        // Each end's address is what the other end's negotiation says about it.
        let (addr_a, addr_b) = (announced(&b.0)?, announced(&a.0)?);
        Ok(MediaLink {
            a: end(clock, &a.0, a.1, addr_a, tone_a)?,
            b: end(clock, &b.0, b.1, addr_b, tone_b)?,
            a_to_b: Link::new(link, seed),
            b_to_a: Link::new(link, seed.wrapping_add(1)),
            next_frame: clock.now(),
        })
    }

    fn end(&self, side: Side) -> &End {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// What `side` played out (8 kHz samples).
    pub fn heard(&self, side: Side) -> &[i16] {
        &self.end(side).heard
    }

    /// `side`'s media events so far.
    pub fn events(&self, side: Side) -> &[MediaEvent] {
        &self.end(side).events
    }

    /// `side`'s stream statistics.
    pub fn stats(&self, side: Side) -> MediaStats {
        self.end(side).media.stats(0).unwrap_or_default()
    }

    /// Packets `side` refused.
    pub fn refused(&self, side: Side) -> u64 {
        self.end(side).refused
    }

    /// Runs both ends for `d` on `clock`.
    pub fn run(&mut self, clock: &mut VirtualClock, d: Duration) {
        let end = clock.now() + d;
        loop {
            let now = clock.now();
            if now >= self.next_frame {
                self.next_frame += FRAME;
                frame(&mut self.a, &mut self.a_to_b, now);
                frame(&mut self.b, &mut self.b_to_a, now);
            }
            deliver(&mut self.a_to_b, &mut self.b, self.a.addr, now);
            deliver(&mut self.b_to_a, &mut self.a, self.b.addr, now);
            for e in [&mut self.a, &mut self.b] {
                if e.media.poll_timeout().is_some_and(|t| t <= now) {
                    e.media.handle_timeout(now);
                }
                play_out(e, now);
            }
            let next = [
                Some(self.next_frame),
                self.a_to_b.poll_timeout(),
                self.b_to_a.poll_timeout(),
                self.a.media.poll_timeout(),
                self.b.media.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min();
            match next {
                Some(t) if t <= end => clock.advance_to(t),
                _ => {
                    clock.advance_to(end);
                    return;
                }
            }
        }
    }
}

/// One 20 ms frame of `e`'s tone, and whatever else its media sends, into `link`.
fn frame(e: &mut End, link: &mut Link<(Channel, Vec<u8>)>, now: Instant) {
    let mut pcm = [0i16; FRAME_SAMPLES];
    e.tone.fill(&mut pcm);
    let mut buf = [0u8; 1500];
    if let Ok(Some(t)) = e.media.send_audio(now, 0, &pcm, &mut buf)
        && let Some(b) = buf.get(..t.len)
    {
        link.send(now, (t.channel, b.to_vec()));
    }
    while let Ok(Some((_, t))) = e.media.poll_transmit(now, &mut buf) {
        if let Some(b) = buf.get(..t.len) {
            link.send(now, (t.channel, b.to_vec()));
        }
    }
    while let Some(ev) = e.media.poll_event() {
        e.events.push(ev);
    }
}

/// What arrived at `to` by `now`, from `from`.
fn deliver(link: &mut Link<(Channel, Vec<u8>)>, to: &mut End, from: SocketAddr, now: Instant) {
    while let Some((channel, mut pkt)) = link.poll_receive(now) {
        // Each datagram arrives on the port it was sent to (RTP, or RTCP's own port).
        if to
            .media
            .handle_packet(now, 0, from, channel, &mut pkt)
            .is_err()
        {
            to.refused += 1;
        }
    }
    while let Some(ev) = to.media.poll_event() {
        to.events.push(ev);
    }
}

fn play_out(e: &mut End, now: Instant) {
    let mut out = [0i16; FRAME_SAMPLES];
    while e.media.poll_audio(now, 0, &mut out).is_some() {
        e.heard.extend_from_slice(&out);
    }
}
