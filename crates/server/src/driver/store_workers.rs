//! The store threads: the proxy's deferred store operations
//! ([`crate::proxy::Proxy::poll_store`]) run here, off the SIP loop, so one slow store round
//! trip delays only the requests that wait for it. Operations on the same user or address
//! go to the same thread, in order ([`StoreRequest::affinity`]). With group commit on (a
//! SQLite store), a thread runs the operations queued to it in one store batch and answers
//! them only after the batch is committed: nothing is acknowledged before it is durable.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use sotto_store::{BindingStore, UserStore};
use tokio::sync::mpsc;

use crate::store_ops::{StoreAnswer, StoreRequest, StoreTicket};

/// Most operations one thread runs in one store batch (group commit).
pub const GROUP_MAX: usize = 64;

/// Where a thread sends its answers.
pub type Answers = mpsc::UnboundedSender<(StoreTicket, StoreAnswer)>;

/// Threads running store operations; see the [module documentation](self). Dropping it
/// stops them once their queues are empty.
#[derive(Debug)]
pub struct StoreWorkers {
    queues: Vec<std_mpsc::Sender<(StoreRequest, Answers)>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl StoreWorkers {
    /// `threads` threads (at least one) over `users` and `bindings`; `group_commit` runs
    /// what is queued to a thread in one batch of the binding store.
    pub fn start(
        users: Arc<dyn UserStore>,
        bindings: Arc<dyn BindingStore>,
        threads: usize,
        group_commit: bool,
    ) -> std::io::Result<Self> {
        let mut queues = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = std_mpsc::channel::<(StoreRequest, Answers)>();
            let (users, bindings) = (users.clone(), bindings.clone());
            let handle = std::thread::Builder::new()
                .name(format!("sotto-store-{i}"))
                .spawn(move || work(&*users, &*bindings, &rx, group_commit))?;
            queues.push(tx);
            handles.push(handle);
        }
        Ok(StoreWorkers { queues, handles })
    }

    /// Queues `request`; its answer goes to `answers`.
    pub fn submit(&self, request: StoreRequest, answers: &Answers) {
        let n = self.queues.len().max(1) as u64;
        let i = usize::try_from(request.affinity() % n).unwrap_or(0);
        if let Some(q) = self.queues.get(i) {
            let ticket = request.ticket;
            if q.send((request, answers.clone())).is_err() {
                tracing::error!(ticket = ticket.0, "store thread gone: operation lost");
            }
        }
    }

    /// Stops the threads after what is queued (waits for them).
    pub fn stop(mut self) {
        self.queues.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One thread's loop.
fn work(
    users: &dyn UserStore,
    bindings: &dyn BindingStore,
    rx: &std_mpsc::Receiver<(StoreRequest, Answers)>,
    group_commit: bool,
) {
    while let Ok(first) = rx.recv() {
        if !group_commit {
            let (req, answers) = first;
            let _ = answers.send((req.ticket, req.run(users, bindings)));
            continue;
        }
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        if let Err(e) = bindings.batch_begin() {
            tracing::error!(error = %e, "store batch could not begin");
        }
        let done: Vec<_> = group
            .into_iter()
            .map(|(req, answers)| (req.ticket, req.run(users, bindings), answers))
            .collect();
        if let Err(e) = bindings.batch_end() {
            tracing::error!(error = %e, "store batch could not commit");
        }
        for (ticket, answer, answers) in done {
            let _ = answers.send((ticket, answer));
        }
    }
}
