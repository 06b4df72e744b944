//! The audio half of a media stream: G.711 frames in and out of RTP payloads, the jitter
//! buffer that plays received frames out by timestamp, and telephone-events (RFC 4733). The
//! packets themselves are the stream's ([`super::stream::RtpStream`]).

use std::time::Instant;

use super::jitter::{FrameKind, JitterBuffer, JitterConfig};
use super::stream::{PayloadKind, RtpIn};
use super::{MAX_PAYLOAD, MediaConfig, Received, SessionError};
use crate::audio::{Codec, TelephoneEvent};
use crate::rtp::HeaderError;

/// The audio half of one stream; see the [module documentation](self).
#[derive(Debug)]
pub struct AudioPipeline {
    /// The codec we send.
    codec: Codec,
    /// Codecs we accept.
    receive_codecs: Vec<Codec>,
    /// The payload type of `telephone-event/8000`, if negotiated.
    telephone_event_pt: Option<u8>,
    jitter_config: JitterConfig,
    jitter: JitterBuffer,
    /// The next audio packet starts a talkspurt (marker bit).
    marker_next: bool,
    /// Timestamp of the last telephone-event sent, and whether its end was sent.
    event_ts: Option<(u32, bool)>,
    /// Timestamp of the last telephone-event seen, and whether its end was seen.
    last_event: Option<(u32, bool)>,
    scratch: Vec<i16>,
}

impl AudioPipeline {
    /// The pipeline of `config`'s codecs and jitter buffer.
    pub fn new(config: &MediaConfig) -> Self {
        AudioPipeline {
            codec: config.codec,
            receive_codecs: config.receive_codecs.clone(),
            telephone_event_pt: config.telephone_event_pt,
            jitter_config: config.jitter,
            jitter: JitterBuffer::new(config.jitter),
            marker_next: true,
            event_ts: None,
            last_event: None,
            scratch: vec![0; MAX_PAYLOAD],
        }
    }

    /// What a received payload type is to this pipeline: an accepted codec (media), the
    /// telephone-event type, or neither.
    pub fn payload_kind(&self, pt: u8) -> PayloadKind {
        if self.telephone_event_pt == Some(pt) {
            PayloadKind::Event
        } else if Codec::from_payload_type(pt).is_some_and(|c| self.receive_codecs.contains(&c)) {
            PayloadKind::Media
        } else {
            PayloadKind::Refused
        }
    }

    /// The payload type of telephone-events, if negotiated.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.telephone_event_pt
    }

    /// Sets the marker bit on the next audio packet (start of a talkspurt after silence).
    pub fn mark_talkspurt(&mut self) {
        self.marker_next = true;
    }

    /// Encodes `pcm` into `payload`; returns (marker, payload type, bytes written).
    pub fn encode(&mut self, pcm: &[i16], payload: &mut [u8]) -> (bool, u8, usize) {
        let n = self.codec.encode(pcm, payload);
        let marker = std::mem::take(&mut self.marker_next);
        (marker, self.codec.payload_type(), n)
    }

    /// The timestamp and marker of an event packet (RFC 4733 §2.5): the first packet of an
    /// event takes `next_ts` and the marker; later packets of the same event (growing
    /// duration, then end, the end packet sent three times) keep its timestamp until an end
    /// packet has been sent and a new event starts.
    pub fn event_timing(&mut self, event: &TelephoneEvent, next_ts: u32) -> (u32, bool) {
        let (timestamp, marker) = match self.event_ts {
            Some((ts, ended)) if !ended || event.end => (ts, false),
            _ => (next_ts, true),
        };
        self.event_ts = Some((timestamp, event.end));
        (timestamp, marker)
    }

    /// Takes an accepted RTP packet (`payload` is its payload): an event, or an audio frame
    /// decoded into the jitter buffer.
    pub fn receive(
        &mut self,
        now: Instant,
        rtp: &RtpIn,
        payload: &[u8],
    ) -> Result<Received, SessionError> {
        if rtp.new_source {
            self.jitter = JitterBuffer::new(self.jitter_config);
            self.last_event = None;
        }
        if self.telephone_event_pt == Some(rtp.payload_type) {
            let len = payload.len();
            let event = TelephoneEvent::parse(payload)
                .map_err(|_| HeaderError::Truncated { len, need: 4 })?;
            let timestamp = rtp.timestamp;
            let (start, end) = match self.last_event {
                Some((ts, seen_end)) if ts == timestamp => (false, event.end && !seen_end),
                _ => (true, event.end),
            };
            let seen_end = end || matches!(self.last_event, Some((ts, true)) if ts == timestamp);
            self.last_event = Some((timestamp, seen_end));
            return Ok(Received::Event { event, start, end });
        }
        let samples = match Codec::from_payload_type(rtp.payload_type) {
            Some(c) => c.decode(payload, &mut self.scratch),
            None => 0,
        };
        let inserted = match self.scratch.get(..samples) {
            Some(s) if !s.is_empty() => {
                self.jitter
                    .insert(now, rtp.timestamp, rtp.marker, rtp.jitter, s)
            }
            _ => super::Inserted::Stored,
        };
        Ok(Received::Audio {
            seq: rtp.seq,
            timestamp: rtp.timestamp,
            payload_type: rtp.payload_type,
            marker: rtp.marker,
            inserted,
        })
    }

    /// Plays the next 20 ms of received audio if due at `now`.
    pub fn poll_audio(&mut self, now: Instant, out: &mut [i16]) -> Option<FrameKind> {
        self.jitter.poll(now, out)
    }

    /// The jitter buffer (its counters and playout time).
    pub fn jitter(&self) -> &JitterBuffer {
        &self.jitter
    }
}
