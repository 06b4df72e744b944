//! A connection's queue of messages to write: any sender pushes without waiting, its task
//! takes; the bytes queued are counted, so a slow peer's backlog is bounded.

use super::*;

/// The queue both ends share: the messages, the bytes they hold, and the senders alive.
/// A `VecDeque` behind a mutex and a `Notify` rather than a channel: an idle connection's
/// queue then holds no allocation (a channel allocates a block of slots per connection,
/// about 1.3 KB; 10,000 idle devices).
#[derive(Debug, Default)]
struct Queue {
    messages: std::sync::Mutex<std::collections::VecDeque<Bytes>>,
    /// Bytes in `messages`.
    queued: AtomicUsize,
    /// Outboxes alive; at zero the inbox sees the end.
    senders: AtomicUsize,
    ready: tokio::sync::Notify,
}

/// The sending end of a connection's queue of messages to write; it counts the bytes queued.
#[derive(Debug)]
pub(super) struct Outbox {
    queue: Arc<Queue>,
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        // The Arc first: `push` must never see more senders than holders.
        let queue = self.queue.clone();
        queue.senders.fetch_add(1, Ordering::Relaxed);
        Outbox { queue }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: wake the task so that it sees the end.
            self.queue.ready.notify_one();
        }
    }
}

/// Why [`Outbox::push`] did not queue a message (which comes back).
pub(super) enum PushError {
    /// The queue holds too much.
    Full(Bytes),
    /// The connection is gone.
    Closed(Bytes),
}

impl Outbox {
    /// Bytes queued and not yet taken by the connection's task.
    pub(super) fn queued(&self) -> usize {
        self.queue.queued.load(Ordering::Relaxed)
    }

    /// Queues `data` unless that would put more than `max` bytes in the queue (a message
    /// larger than `max` still goes into an empty queue). Never waits.
    pub(super) fn push(&self, data: Bytes, max: usize) -> Result<(), PushError> {
        let len = data.len();
        if Arc::strong_count(&self.queue) == self.queue.senders.load(Ordering::Acquire) {
            // Every holder is a sender: the inbox (the connection's task) is gone.
            return Err(PushError::Closed(data));
        }
        let before = self.queue.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before.saturating_add(len) > max {
            self.queue.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(PushError::Full(data));
        }
        lock(&self.queue.messages).push_back(data);
        self.queue.ready.notify_one();
        Ok(())
    }
}

/// The receiving end of a connection's queue, read by its task.
#[derive(Debug)]
pub(super) struct Inbox {
    queue: Arc<Queue>,
}

impl Inbox {
    pub(super) fn outbox_pair() -> (Outbox, Inbox) {
        let queue = Arc::new(Queue::default());
        queue.senders.store(1, Ordering::Relaxed);
        (
            Outbox {
                queue: queue.clone(),
            },
            Inbox { queue },
        )
    }

    /// The next message; `None` once every sender is gone and the queue is empty.
    pub(super) async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(m) = self.try_recv() {
                return Some(m);
            }
            if self.queue.senders.load(Ordering::Acquire) == 0 {
                return self.try_recv();
            }
            // A push between the check above and this wait left a permit: no lost wake-up.
            self.queue.ready.notified().await;
        }
    }

    pub(super) fn try_recv(&mut self) -> Option<Bytes> {
        let m = lock(&self.queue.messages).pop_front()?;
        self.queue.queued.fetch_sub(m.len(), Ordering::Relaxed);
        Some(m)
    }
}
