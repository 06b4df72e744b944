//! The agent's registration through the proxy core, on virtual time: digest, refresh at half
//! the granted lifetime, a wrong password, unregistration. An hour of registrations runs in
//! milliseconds.

use std::time::Duration;

use sotto_agent::UaEvent;
use sotto_agent::config::Encryption;
use sotto_testkit::{LinkConfig, Network};

fn wan() -> LinkConfig {
    LinkConfig::delay(Duration::from_millis(40)).with_jitter(Duration::from_millis(30))
}

fn registrations(net: &Network, id: sotto_testkit::AgentId) -> Vec<(Duration, String)> {
    net.events(id)
        .iter()
        .filter_map(|e| match e {
            UaEvent::Registered { expires, auth, .. } => Some((*expires, auth.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn registers_with_digest_and_refreshes_at_half_the_granted_lifetime() {
    let mut net = Network::new("example.test");
    let alice = net.add_agent("alice", Encryption::Mandatory, wan());
    assert!(net.run_until(Duration::from_secs(5), |n| {
        !registrations(n, alice).is_empty()
    }));
    let first = registrations(&net, alice);
    let (granted, auth) = first[0].clone();
    assert_eq!(
        auth, "digest-SHA-256",
        "the strongest digest the server offers"
    );
    assert!(granted > Duration::from_secs(60), "{granted:?}");
    // Just before half the lifetime: no refresh yet; just after: refreshed, still digest.
    net.run_for(granted / 2 - Duration::from_secs(10));
    assert_eq!(registrations(&net, alice).len(), 1);
    net.run_for(Duration::from_secs(20));
    let all = registrations(&net, alice);
    assert_eq!(all.len(), 2, "{all:?}");
    // Three lifetimes later the binding never lapsed: a refresh per half lifetime.
    net.run_for(granted * 3);
    assert_eq!(registrations(&net, alice).len(), 8);
    assert!(net.ua(alice).is_registered());
    assert_eq!(net.unroutable(), 0);
}

#[test]
fn a_wrong_password_fails_with_the_registrars_status() {
    let mut net = Network::new("example.test");
    net.add_user("mallory", "the-real-one");
    let mut config = net.agent_config("mallory", Encryption::Mandatory);
    config.password = "a-guess".to_owned().into();
    let mallory = net.add_agent_with(config, wan());
    let failed = |n: &Network| n.saw(mallory, |e| matches!(e, UaEvent::RegistrationFailed { .. }));
    assert!(net.run_until(Duration::from_secs(40), failed));
    let status = net.events(mallory).iter().find_map(|e| match e {
        UaEvent::RegistrationFailed { status, .. } => Some(*status),
        _ => None,
    });
    // The registrar challenges again (as kamailio and Flexisip do); the agent stops after
    // two authenticated attempts (the second for a nonce gone stale) instead of looping.
    assert_eq!(status, Some(401));
    let registers = net
        .proxy_events()
        .iter()
        .filter(|e| e.method == "REGISTER")
        .count();
    assert_eq!(registers, 3, "the first attempt and two authenticated ones");
    assert!(!net.ua(mallory).is_registered());
}

#[test]
fn unregisters_on_request() {
    let mut net = Network::new("example.test");
    let bob = net.add_agent("bob", Encryption::Mandatory, LinkConfig::default());
    assert!(net.run_until(Duration::from_secs(5), |n| n.ua_registered(bob)));
    let now = net.clock.now();
    net.ua(bob).unregister(now).unwrap();
    let gone = |n: &Network| n.saw(bob, |e| matches!(e, UaEvent::Unregistered));
    assert!(net.run_until(Duration::from_secs(5), gone));
    assert!(!net.ua(bob).is_registered());
}
