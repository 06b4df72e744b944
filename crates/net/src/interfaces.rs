//! The machine's interface addresses, for what a wildcard listener (`0.0.0.0`, `[::]`)
//! stands for: read at start ([`addresses`], if-addrs) and followed as they change
//! ([`watch`], if-watch: netlink on Linux), or polled when change notifications are not
//! available.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt as _;

/// How often the addresses are read again when the system cannot notify changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// The addresses of the machine's interfaces now (empty if they cannot be read).
pub fn addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => {
            let set: BTreeSet<IpAddr> = list.iter().map(|i| i.ip()).collect();
            set.into_iter().collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, "interface addresses cannot be read");
            Vec::new()
        }
    }
}

/// Follows the interface addresses until the task is dropped: `changed` gets the whole new
/// list after each change. Runs on the current tokio runtime.
pub fn watch(changed: impl Fn(Vec<IpAddr>) + Send + 'static) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut current: BTreeSet<IpAddr> = addresses().into_iter().collect();
        match if_watch::tokio::IfWatcher::new() {
            Ok(mut watcher) => {
                while let Some(event) = watcher.next().await {
                    let changed_now = match event {
                        Ok(if_watch::IfEvent::Up(net)) => current.insert(net.addr()),
                        Ok(if_watch::IfEvent::Down(net)) => current.remove(&net.addr()),
                        Err(e) => {
                            tracing::debug!(error = %e, "interface watch");
                            false
                        }
                    };
                    if changed_now {
                        tracing::info!(addresses = ?current, "interface addresses changed");
                        changed(current.iter().copied().collect());
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "no interface change notifications: polling");
                let mut tick = tokio::time::interval(POLL_INTERVAL);
                loop {
                    tick.tick().await;
                    let now: BTreeSet<IpAddr> = addresses().into_iter().collect();
                    if now != current {
                        current = now;
                        tracing::info!(addresses = ?current, "interface addresses changed");
                        changed(current.iter().copied().collect());
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_an_interface_address() {
        let a = super::addresses();
        assert!(a.iter().any(|ip| ip.is_loopback()), "{a:?}");
    }
}
