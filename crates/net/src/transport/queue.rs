//! A connection's queue of messages to write: any sender pushes without waiting, its task
//! takes; the bytes queued are counted, so a slow peer's backlog is bounded.

use super::*;

/// The sending end of a connection's queue of messages to write; it counts the bytes queued.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    pub(super) tx: mpsc::UnboundedSender<Bytes>,
    pub(super) queued: Arc<AtomicUsize>,
}

/// Why [`Outbox::push`] did not queue a message (which comes back).
pub(super) enum PushError {
    /// The queue holds too much.
    Full(Bytes),
    /// The connection is gone.
    Closed(Bytes),
}

impl Outbox {
    /// Queues `data` unless that would put more than `max` bytes in the queue (a message
    /// larger than `max` still goes into an empty queue). Never waits.
    pub(super) fn push(&self, data: Bytes, max: usize) -> Result<(), PushError> {
        let len = data.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before.saturating_add(len) > max {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(PushError::Full(data));
        }
        self.tx.send(data).map_err(|mpsc::error::SendError(back)| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            PushError::Closed(back)
        })
    }
}

/// The receiving end of a connection's queue, read by its task.
#[derive(Debug)]
pub(super) struct Inbox {
    pub(super) rx: mpsc::UnboundedReceiver<Bytes>,
    pub(super) queued: Arc<AtomicUsize>,
}

impl Inbox {
    pub(super) fn outbox_pair() -> (Outbox, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Outbox {
                tx,
                queued: queued.clone(),
            },
            Inbox { rx, queued },
        )
    }

    pub(super) fn taken(&self, m: &Bytes) {
        self.queued.fetch_sub(m.len(), Ordering::Relaxed);
    }

    pub(super) async fn recv(&mut self) -> Option<Bytes> {
        let m = self.rx.recv().await?;
        self.taken(&m);
        Some(m)
    }

    pub(super) fn try_recv(&mut self) -> Option<Bytes> {
        let m = self.rx.try_recv().ok()?;
        self.taken(&m);
        Some(m)
    }
}
