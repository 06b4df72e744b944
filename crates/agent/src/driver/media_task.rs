//! One call's media task: its RTP/RTCP sockets, the clock, the WAV files, around the
//! sans-IO [`CallMedia`] (streams, key exchange, demultiplexing). What the media learns (keys
//! ready, a SAS, a failure) goes back to the agent as [`MediaMsg::Event`]; the task decides
//! nothing about the call.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sotto_media::audio::{FRAME_SAMPLES, Tone, WavWriter};
use sotto_media::call::{CallMedia, MediaEvent};
use sotto_media::keyx::MediaKeyExchange;
use sotto_media::session::{Channel, MediaStats, NoProtection, RtpSession};
use sotto_sdp::NegotiatedMedia;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::{DriverError, Source};
use crate::call::CallId;

/// Amplitude of a generated tone.
const TONE_AMPLITUDE: i16 = 8000;
/// Attempts at finding a free RTP port whose next port is free too.
const PORT_PAIR_TRIES: usize = 64;

/// What a media task tells the loop.
pub(crate) enum MediaMsg {
    /// Statistics (`true`: the last of the call).
    Stats(CallId, Box<MediaStats>, bool),
    /// Received audio was written.
    Recorded(CallId, PathBuf, usize),
    /// The media failed.
    Failed(CallId, String),
    /// Nothing arrived from the peer for this long (RTP timeout).
    NoMedia(CallId, Duration),
    /// News of the call's media (keys ready, protection, key exchange failed).
    Event(CallId, MediaEvent),
}

/// What the loop asks of a media task.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MediaCmd {
    /// The user confirmed (`true`) or rejected the SAS.
    SasVerified(bool),
}

/// A running media task.
pub(crate) struct MediaTask {
    stop: Option<oneshot::Sender<()>>,
    cmd: mpsc::UnboundedSender<MediaCmd>,
    handle: tokio::task::JoinHandle<()>,
}

impl MediaTask {
    /// Passes a command to the task.
    pub(crate) fn command(&self, c: MediaCmd) {
        let _ = self.cmd.send(c);
    }

    /// Stops the task and lets it write its last report and close its WAV file.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.handle).await;
    }
}

/// A call's media sockets: RTP, and RTCP on the RTP port + 1 (the default RTCP port of an
/// SDP without `a=rtcp`, RFC 3605/RFC 3550 §11): peers that refuse rtcp-mux send there.
pub(crate) struct MediaSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl MediaSockets {
    fn of(&self, channel: Channel) -> &UdpSocket {
        match channel {
            Channel::Rtp => &self.rtp,
            Channel::Rtcp => &self.rtcp,
        }
    }

    /// The RTP socket's address (what our SDP announces).
    pub(crate) fn rtp_address(&self) -> Result<SocketAddr, DriverError> {
        self.rtp
            .local_addr()
            .map_err(|e| DriverError::Net(e.to_string()))
    }

    /// Binds an even RTP port and the odd RTCP port above it (RFC 3550 §11) on `ip`.
    pub(crate) async fn bind(ip: std::net::IpAddr) -> Result<Self, DriverError> {
        let mut last = String::from("no attempt");
        for _ in 0..PORT_PAIR_TRIES {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .map_err(|e| DriverError::Net(format!("binding an RTP socket: {e}")))?;
            let port = rtp
                .local_addr()
                .map_err(|e| DriverError::Net(e.to_string()))?
                .port();
            if port % 2 != 0 {
                continue;
            }
            let Some(next) = port.checked_add(1) else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(ip, next)).await {
                Ok(rtcp) => return Ok(MediaSockets { rtp, rtcp }),
                Err(e) => last = e.to_string(),
            }
        }
        Err(DriverError::Net(format!(
            "no free RTP/RTCP port pair after {PORT_PAIR_TRIES} attempts: {last}"
        )))
    }
}

/// What a media task needs beside its sockets and key exchange.
#[derive(Debug, Clone)]
pub(crate) struct MediaSettings {
    /// What to play.
    pub(crate) play: Source,
    /// Where to record.
    pub(crate) record: Option<PathBuf>,
    /// Interval of statistics reports.
    pub(crate) stats: Duration,
    /// Hang up after this long without media from the peer.
    pub(crate) rtp_timeout: Option<Duration>,
}

/// Sends `buf[..len]` from the socket of `channel` (borrowing only the sockets across the
/// wait: the call's media is not `Sync`).
async fn send(sock: &MediaSockets, buf: &[u8], channel: Channel, len: usize, dst: SocketAddr) {
    if let Some(b) = buf.get(..len) {
        let _ = sock.of(channel).send_to(b, dst).await;
    }
}

type Recorder = Option<(PathBuf, WavWriter<std::fs::File>)>;

/// Starts a call's media: one stream for `neg`, protected by what `keyx` agrees.
pub(crate) fn start(
    call: CallId,
    sock: MediaSockets,
    neg: &NegotiatedMedia,
    keyx: Box<dyn MediaKeyExchange>,
    settings: &MediaSettings,
    tx: mpsc::Sender<MediaMsg>,
) -> Result<MediaTask, DriverError> {
    let provider = sotto_crypto_rust::provider();
    let encrypted = keyx.protection().is_encrypted();
    let mconf = crate::media::media_config(neg, "sotto-agent", encrypted)
        .map_err(|e| DriverError::Media(e.to_string()))?;
    // The stream starts unprotected; the call's media installs SRTP when keys come, and lets
    // nothing flow before them when the key exchange encrypts.
    let stream = RtpSession::new(
        mconf,
        Box::new(NoProtection::new()),
        provider.rng,
        Instant::now(),
        SystemTime::now(),
    )
    .map_err(|e| DriverError::Media(e.to_string()))?;
    let media = CallMedia::new(provider, keyx, vec![stream]);
    let writer = match &settings.record {
        Some(p) => {
            let f = std::fs::File::create(p)
                .map_err(|e| DriverError::Io(format!("{}: {e}", p.display())))?;
            Some((
                p.clone(),
                WavWriter::new(f, sotto_media::audio::SAMPLE_RATE)
                    .map_err(|e| DriverError::Io(format!("{}: {e}", p.display())))?,
            ))
        }
        None => None,
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let task = Task {
        call,
        sock,
        media,
        play: settings.play.clone(),
        writer,
        tx,
        write_failed: false,
    };
    let handle = tokio::spawn(task.run(settings.stats, settings.rtp_timeout, stop_rx, cmd_rx));
    Ok(MediaTask {
        stop: Some(stop_tx),
        cmd: cmd_tx,
        handle,
    })
}

struct Task {
    call: CallId,
    sock: MediaSockets,
    media: CallMedia,
    play: Source,
    writer: Recorder,
    tx: mpsc::Sender<MediaMsg>,
    write_failed: bool,
}

/// The next 20 ms of what we play.
struct Player {
    tone: Option<Tone>,
    samples: Option<Arc<Vec<i16>>>,
    pos: usize,
}

impl Player {
    fn new(play: &Source) -> Self {
        Player {
            tone: match play {
                Source::Tone(f) => Some(Tone::new(
                    *f,
                    TONE_AMPLITUDE,
                    sotto_media::audio::SAMPLE_RATE,
                )),
                _ => None,
            },
            samples: match play {
                Source::Samples(s) => Some(s.clone()),
                _ => None,
            },
            pos: 0,
        }
    }

    fn fill(&mut self, pcm: &mut [i16]) {
        if let Some(t) = self.tone.as_mut() {
            t.fill(pcm);
        } else if let Some(s) = &self.samples {
            for p in pcm.iter_mut() {
                *p = s.get(self.pos % s.len().max(1)).copied().unwrap_or(0);
                self.pos = self.pos.wrapping_add(1);
            }
        } else {
            pcm.fill(0);
        }
    }
}

impl Task {
    async fn run(
        mut self,
        stats_every: Duration,
        rtp_timeout: Option<Duration>,
        mut stop: oneshot::Receiver<()>,
        mut commands: mpsc::UnboundedReceiver<MediaCmd>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut stats_tick = tokio::time::interval(stats_every);
        stats_tick.tick().await;
        // When the peer's media last arrived (the call's start, before any).
        let mut last_heard = Instant::now();
        let mut player = Player::new(&self.play);
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut buf = [0u8; 1500];
        let mut rbuf = [0u8; 2048];
        let mut cbuf = [0u8; 2048];
        self.forward_events().await;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(c) = commands.recv() => {
                    match c {
                        MediaCmd::SasVerified(v) => self.media.set_sas_verified(v),
                    }
                    self.forward_events().await;
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if let Some(limit) = rtp_timeout
                        && now.duration_since(last_heard) >= limit
                    {
                        let _ = self.tx.send(MediaMsg::NoMedia(self.call, limit)).await;
                        break;
                    }
                    if self.media.poll_timeout().is_some_and(|t| t <= now) {
                        self.media.handle_timeout(now);
                    }
                    player.fill(&mut pcm);
                    match self.media.send_audio(now, 0, &pcm, &mut buf) {
                        Ok(Some(t)) => send(&self.sock, &buf, t.channel, t.len, t.dst).await,
                        Ok(None) => {}
                        Err(e) => {
                            let _ = self.tx.send(MediaMsg::Failed(self.call, e.to_string())).await;
                            break;
                        }
                    }
                    self.flush(now, &mut buf).await;
                    self.play_out(now);
                    self.forward_events().await;
                }
                r = self.sock.rtp.recv_from(&mut rbuf) => {
                    if let Ok((n, src)) = r
                        && self.receive(src, Channel::Rtp, rbuf.get_mut(..n)).await
                    {
                        last_heard = Instant::now();
                    }
                }
                r = self.sock.rtcp.recv_from(&mut cbuf) => {
                    if let Ok((n, src)) = r
                        && self.receive(src, Channel::Rtcp, cbuf.get_mut(..n)).await
                    {
                        last_heard = Instant::now();
                    }
                }
                _ = stats_tick.tick() => {
                    let stats = Box::new(self.stats());
                    let _ = self.tx.send(MediaMsg::Stats(self.call, stats, false)).await;
                }
            }
        }
        self.finish(&mut buf).await;
    }

    /// A datagram in; `true` when it was the peer's (media or key exchange).
    async fn receive(&mut self, src: SocketAddr, channel: Channel, pkt: Option<&mut [u8]>) -> bool {
        let Some(pkt) = pkt else { return false };
        let ok = self
            .media
            .handle_packet(Instant::now(), 0, src, channel, pkt)
            .is_ok();
        // A key exchange answers on the media path at once (ZRTP, DTLS).
        let mut buf = [0u8; 1500];
        self.flush(Instant::now(), &mut buf).await;
        self.forward_events().await;
        ok
    }

    /// Sends what the call's media has queued (key exchange, RTCP).
    async fn flush(&mut self, now: Instant, buf: &mut [u8]) {
        for _ in 0..8 {
            match self.media.poll_transmit(now, buf) {
                Ok(Some((_, t))) => send(&self.sock, buf, t.channel, t.len, t.dst).await,
                _ => break,
            }
        }
    }

    /// Plays out what is due, into the recording.
    fn play_out(&mut self, now: Instant) {
        let mut out = [0i16; FRAME_SAMPLES];
        for _ in 0..50 {
            if self.media.poll_audio(now, 0, &mut out).is_none() {
                break;
            }
            if let Some((_, w)) = self.writer.as_mut()
                && !self.write_failed
                && w.write_samples(&out).is_err()
            {
                self.write_failed = true;
            }
        }
    }

    async fn forward_events(&mut self) {
        while let Some(ev) = self.media.poll_event() {
            let _ = self.tx.send(MediaMsg::Event(self.call, ev)).await;
        }
    }

    fn stats(&self) -> MediaStats {
        self.media.stats(0).unwrap_or_default()
    }

    async fn finish(mut self, buf: &mut [u8]) {
        if let Ok(Some(t)) = self.media.close(Instant::now(), 0, "call ended", buf) {
            send(&self.sock, buf, t.channel, t.len, t.dst).await;
        }
        let stats = Box::new(self.stats());
        let _ = self.tx.send(MediaMsg::Stats(self.call, stats, true)).await;
        if let Some((path, w)) = self.writer.take() {
            let samples = w.samples_written();
            let msg = if w.finish().is_ok() && !self.write_failed {
                MediaMsg::Recorded(self.call, path, samples)
            } else {
                MediaMsg::Failed(self.call, format!("writing {}", path.display()))
            };
            let _ = self.tx.send(msg).await;
        }
    }
}
