//! The user store: digest HA1 values per user, realm and algorithm (RFC 7616 §3.4.2).

use sotto_sip::digest::{Algorithm, UserRecord};

use crate::Error;

/// Digest secrets of the server's users. Stores HA1 values (password-equivalent for their
/// realm), never a password.
///
/// A user is named by its user name; it may hold HA1 values for several realms, each with one
/// value per base algorithm (`MD5`, `SHA-256`).
pub trait UserStore: Send + Sync {
    /// The user's HA1 values for `realm` (a record holding only that realm's entries), or
    /// `None` if the user has none for it.
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, Error>;

    /// Stores `record`: for every realm present in it, the user's previous HA1 values for that
    /// realm are replaced by the record's. Other realms are left alone.
    fn put(&self, record: &UserRecord) -> Result<(), Error>;

    /// Like [`put`](Self::put), but fails with [`Error::UserExists`] (changing nothing) if the
    /// user already has HA1 values for any realm present in `record`. An empty record is
    /// refused with [`Error::InvalidRecord`].
    fn create(&self, record: &UserRecord) -> Result<(), Error>;

    /// Removes the user from every realm. `true` if anything was removed.
    fn delete(&self, username: &str) -> Result<bool, Error>;

    /// Every stored (user, realm) pair with its algorithms, sorted by user name then realm.
    fn list(&self) -> Result<Vec<UserInfo>, Error>;
}

/// One user in one realm, as [`UserStore::list`] reports it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The realm.
    pub realm: String,
    /// The base algorithms an HA1 is stored for, sorted by name (`MD5` before `SHA-256`).
    pub algorithms: Vec<Algorithm>,
}

impl UserInfo {
    pub(crate) fn new(username: String, realm: String, algorithms: Vec<Algorithm>) -> Self {
        UserInfo {
            username,
            realm,
            algorithms,
        }
    }
}

/// Checks what every store requires of a record it is given.
pub(crate) fn check_record(record: &UserRecord) -> Result<(), Error> {
    if record.username().is_empty() {
        return Err(Error::InvalidRecord { field: "username" });
    }
    if record.entries().any(|(realm, _)| realm.is_empty()) {
        return Err(Error::InvalidRecord { field: "realm" });
    }
    Ok(())
}

/// The distinct realms of a record, in first-seen order.
pub(crate) fn realms_of(record: &UserRecord) -> Vec<String> {
    let mut realms: Vec<String> = Vec::new();
    for (realm, _) in record.entries() {
        if !realms.iter().any(|r| r == realm) {
            realms.push(realm.to_owned());
        }
    }
    realms
}
