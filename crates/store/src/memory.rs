//! In-memory stores: for tests, and for a server that may forget everything on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use sotto_sip::digest::{Algorithm, Ha1, UserRecord};

use crate::binding::{Step7, step7};
use crate::user::{check_record, realms_of};
use crate::{Binding, BindingKey, BindingStore, Error, Upsert, UserInfo, UserStore};

/// Users and bindings kept in memory behind one lock. Lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// username → realm → base algorithm name → HA1.
    users: BTreeMap<String, BTreeMap<String, BTreeMap<&'static str, Ha1>>>,
    /// aor → its bindings (expired ones included until purged).
    bindings: HashMap<String, Vec<Binding>>,
    /// temp GRUU → (aor, key) of the binding that holds it.
    temp_gruus: HashMap<String, (String, BindingKey)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves `Inner` consistent before it can panic, so a poisoned lock
        // still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn index_gruu(&mut self, b: &Binding) {
        if let Some(g) = &b.temp_gruu {
            self.temp_gruus.insert(g.clone(), (b.aor.clone(), b.key()));
        }
    }

    fn unindex_gruu(&mut self, b: &Binding) {
        if let Some(g) = &b.temp_gruu {
            let key = b.key();
            if self
                .temp_gruus
                .get(g)
                .is_some_and(|(aor, k)| *aor == b.aor && *k == key)
            {
                self.temp_gruus.remove(g);
            }
        }
    }

    fn take(&mut self, aor: &str, key: &BindingKey) -> Option<Binding> {
        let list = self.bindings.get_mut(aor)?;
        let pos = list.iter().position(|b| b.key() == *key)?;
        let old = list.swap_remove(pos);
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        self.unindex_gruu(&old);
        Some(old)
    }

    fn insert(&mut self, b: Binding) {
        self.index_gruu(&b);
        self.bindings.entry(b.aor.clone()).or_default().push(b);
    }
}

impl UserStore for MemoryStore {
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, Error> {
        let inner = self.lock();
        let Some(by_alg) = inner.users.get(username).and_then(|r| r.get(realm)) else {
            return Ok(None);
        };
        let mut record = UserRecord::new(username);
        for ha1 in by_alg.values() {
            record.insert(realm, ha1.clone());
        }
        Ok(Some(record))
    }

    fn put(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let mut inner = self.lock();
        put_locked(&mut inner, record);
        Ok(())
    }

    fn create(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let realms = realms_of(record);
        if realms.is_empty() {
            return Err(Error::InvalidRecord { field: "entries" });
        }
        let mut inner = self.lock();
        if let Some(stored) = inner.users.get(record.username())
            && let Some(realm) = realms.iter().find(|r| stored.contains_key(*r))
        {
            return Err(Error::UserExists {
                username: record.username().to_owned(),
                realm: realm.clone(),
            });
        }
        put_locked(&mut inner, record);
        Ok(())
    }

    fn delete(&self, username: &str) -> Result<bool, Error> {
        Ok(self.lock().users.remove(username).is_some())
    }

    fn list(&self) -> Result<Vec<UserInfo>, Error> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (username, realms) in &inner.users {
            for (realm, by_alg) in realms {
                let algorithms = by_alg
                    .keys()
                    .filter_map(|name| Algorithm::from_name(name))
                    .collect();
                out.push(UserInfo::new(username.clone(), realm.clone(), algorithms));
            }
        }
        Ok(out)
    }
}

fn put_locked(inner: &mut Inner, record: &UserRecord) {
    let realms = realms_of(record);
    if realms.is_empty() {
        return;
    }
    let user = inner.users.entry(record.username().to_owned()).or_default();
    for realm in &realms {
        user.remove(realm);
    }
    for (realm, ha1) in record.entries() {
        user.entry(realm.to_owned())
            .or_default()
            .insert(ha1.algorithm().name(), ha1.clone());
    }
}

impl BindingStore for MemoryStore {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error> {
        let inner = self.lock();
        Ok(inner
            .bindings
            .get(aor)
            .map(|list| list.iter().filter(|b| b.is_active(now)).cloned().collect())
            .unwrap_or_default())
    }

    fn upsert(&self, binding: &Binding, now: SystemTime) -> Result<Upsert, Error> {
        let new = binding.checked()?;
        let key = new.key();
        let mut inner = self.lock();
        let existing = inner
            .bindings
            .get(&new.aor)
            .and_then(|list| list.iter().find(|b| b.key() == key))
            .filter(|b| b.is_active(now))
            .cloned();
        Ok(match step7(&new, existing, now) {
            Step7::OutOfOrder(existing) => Upsert::OutOfOrder { existing },
            Step7::Absent => {
                // An expired leftover with this key goes too.
                inner.take(&new.aor, &key);
                Upsert::Absent
            }
            Step7::Remove(previous) => {
                inner.take(&new.aor, &key);
                Upsert::Removed { previous }
            }
            Step7::Insert => {
                inner.take(&new.aor, &key);
                inner.insert(new);
                Upsert::Inserted
            }
            Step7::Replace(previous) => {
                inner.take(&new.aor, &key);
                inner.insert(new);
                Upsert::Updated { previous }
            }
        })
    }

    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        Ok(self.lock().take(aor, key))
    }

    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error> {
        let mut inner = self.lock();
        let Some(list) = inner.bindings.remove(aor) else {
            return Ok(0);
        };
        for b in &list {
            inner.unindex_gruu(b);
        }
        Ok(list.iter().filter(|b| b.is_active(now)).count())
    }

    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error> {
        let inner = self.lock();
        let Some((aor, key)) = inner.temp_gruus.get(temp_gruu) else {
            return Ok(None);
        };
        Ok(inner
            .bindings
            .get(aor)
            .and_then(|list| list.iter().find(|b| b.key() == *key))
            .filter(|b| b.is_active(now))
            .cloned())
    }

    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error> {
        let mut inner = self.lock();
        let mut expired = Vec::new();
        inner.bindings.retain(|_, list| {
            let (gone, kept): (Vec<Binding>, Vec<Binding>) = std::mem::take(list)
                .into_iter()
                .partition(|b| !b.is_active(now));
            expired.extend(gone);
            *list = kept;
            !list.is_empty()
        });
        for b in &expired {
            inner.unindex_gruu(b);
        }
        Ok(expired.len())
    }

    fn count(&self) -> Result<usize, Error> {
        Ok(self.lock().bindings.values().map(Vec::len).sum())
    }
}
