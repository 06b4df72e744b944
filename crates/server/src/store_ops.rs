//! What the modules need from the stores, as values: a module that needs a user's digest
//! record or an address's bindings answers [`Verdict::Fetch`](crate::pipeline::Verdict) with
//! a [`StoreOp`] instead of calling a store, and is asked again with the [`StoreAnswer`] in
//! its request context. The proxy core runs the operation itself (memory stores) or hands it
//! to the IO edge ([`crate::proxy::Proxy::poll_store`]), which runs it on a store thread and
//! gives the answer back ([`crate::proxy::Proxy::handle_store`]): a slow store then delays only
//! the requests that wait for it.
//!
//! An operation is one store round trip's worth of work and is run by [`StoreOp::run`], the
//! same code wherever it runs.

use std::time::SystemTime;

use sotto_sip::digest::UserRecord;
use sotto_store::{Binding, BindingStore, UserStore};

/// Identifies a parked request's store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreTicket(pub u64);

/// A store operation a module asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// A user's digest record for a realm (authentication).
    User {
        /// The user name of the credentials.
        username: String,
        /// The realm.
        realm: String,
    },
    /// The bindings in force of an address of record (routing).
    Bindings {
        /// The address of record.
        aor: String,
    },
    /// The binding whose temp GRUU is this URI (routing, RFC 5627).
    TempGruu {
        /// The temp GRUU.
        uri: String,
    },
    /// A REGISTER's changes, applied, then the bindings in force (registrar).
    Register(RegisterChange),
}

/// What a REGISTER changes.
#[derive(Debug, Clone, PartialEq)]
pub enum RegisterChange {
    /// `Contact: *` with `Expires: 0`: every binding of the address goes.
    RemoveAll {
        /// The address of record.
        aor: String,
    },
    /// These bindings are added, refreshed or removed (expiry 0), unless the address would
    /// hold more than `max_contacts`.
    Upsert {
        /// The address of record.
        aor: String,
        /// The request's bindings.
        bindings: Vec<Binding>,
        /// Most contacts per address of record.
        max_contacts: usize,
    },
}

/// What a REGISTER's changes came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Registered {
    /// Applied: the bindings in force now.
    Current(Vec<Binding>),
    /// Refused: the address would hold more than its maximum of contacts.
    TooManyContacts,
    /// Refused: a binding's Call-ID and CSeq are older than the stored one's.
    OutOfOrder,
}

/// A store that failed, and how (for the log; the request gets a 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<sotto_store::Error> for StoreError {
    fn from(e: sotto_store::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// The answer to a [`StoreOp`].
#[derive(Debug, Clone)]
pub enum StoreAnswer {
    /// To [`StoreOp::User`].
    User(Result<Option<UserRecord>, StoreError>),
    /// To [`StoreOp::Bindings`] and [`StoreOp::TempGruu`].
    Bindings(Result<Vec<Binding>, StoreError>),
    /// To [`StoreOp::Register`].
    Registered(Result<Registered, StoreError>),
}

/// A store operation to run at the IO edge, and the time its bindings are judged at.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    /// Give it back with the answer.
    pub ticket: StoreTicket,
    /// The operation.
    pub op: StoreOp,
    /// The wall time of the request that asked (expiry is judged at it).
    pub wall: SystemTime,
}

impl StoreRequest {
    /// Runs the operation on `users` and `bindings`.
    pub fn run(&self, users: &dyn UserStore, bindings: &dyn BindingStore) -> StoreAnswer {
        self.op.run(users, bindings, self.wall)
    }

    /// A key that keeps operations on the same user or address in order when several store
    /// threads run them (operations with the same key go to the same thread).
    pub fn affinity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        match &self.op {
            StoreOp::User { username, .. } => username.hash(&mut h),
            StoreOp::Bindings { aor }
            | StoreOp::Register(
                RegisterChange::RemoveAll { aor } | RegisterChange::Upsert { aor, .. },
            ) => aor.hash(&mut h),
            StoreOp::TempGruu { uri } => uri.hash(&mut h),
        }
        h.finish()
    }
}

impl StoreOp {
    /// Runs the operation on `users` and `bindings` at `wall`.
    pub fn run(
        &self,
        users: &dyn UserStore,
        bindings: &dyn BindingStore,
        wall: SystemTime,
    ) -> StoreAnswer {
        match self {
            StoreOp::User { username, realm } => {
                StoreAnswer::User(users.get(username, realm).map_err(StoreError::from))
            }
            StoreOp::Bindings { aor } => {
                StoreAnswer::Bindings(bindings.bindings(aor, wall).map_err(StoreError::from))
            }
            StoreOp::TempGruu { uri } => StoreAnswer::Bindings(
                bindings
                    .by_temp_gruu(uri, wall)
                    .map(|b| b.into_iter().collect())
                    .map_err(StoreError::from),
            ),
            StoreOp::Register(change) => StoreAnswer::Registered(
                crate::modules::registrar::apply(change, bindings, wall).map_err(StoreError::from),
            ),
        }
    }
}

/// A module with stores to answer its fetches at once, for the modules' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::time::Instant;

    use sotto_store::{BindingStore, UserStore};

    use crate::pipeline::{Module, RequestContext, Verdict};

    /// `module`, its store operations run on `users` and `bindings` as it asks.
    pub(crate) struct Served<M> {
        pub(crate) module: M,
        users: Arc<dyn UserStore>,
        bindings: Arc<dyn BindingStore>,
    }

    impl<M: Module> Served<M> {
        pub(crate) fn new(
            module: M,
            users: Arc<dyn UserStore>,
            bindings: Arc<dyn BindingStore>,
        ) -> Self {
            Served {
                module,
                users,
                bindings,
            }
        }

        /// The module's verdict once its fetches are answered.
        pub(crate) fn on_request(&mut self, ctx: &mut RequestContext, now: Instant) -> Verdict {
            for _ in 0..8 {
                match self.module.on_request(ctx, now) {
                    Verdict::Fetch(op) => {
                        ctx.answer = Some(op.run(&*self.users, &*self.bindings, ctx.wall));
                    }
                    v => return v,
                }
            }
            panic!("the module kept asking the store");
        }
    }

    impl<M> std::ops::Deref for Served<M> {
        type Target = M;
        fn deref(&self) -> &M {
            &self.module
        }
    }

    impl<M> std::ops::DerefMut for Served<M> {
        fn deref_mut(&mut self) -> &mut M {
            &mut self.module
        }
    }
}
