//! Reads `index.json` beside this file: the RFC 4475 messages, each with its bytes, its class
//! and the response codes the RFC names per role. Included by the tests that replay the
//! messages to the server (`#[path = ".../vectors/rfc4475/cases.rs"] mod rfc4475_cases;`),
//! each giving the directory from its own `CARGO_MANIFEST_DIR`.

#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;

/// One message of the index.
pub(crate) struct Case {
    /// Its name in the RFC (`wsinv`, `badinv01`, …).
    pub(crate) name: String,
    /// `valid`, `application`, `invalid` or `transaction`.
    pub(crate) class: String,
    /// The message's bytes.
    pub(crate) bytes: Vec<u8>,
    /// (role, code) for each response the RFC names.
    responses: Vec<(String, u16)>,
}

impl Case {
    /// The codes the RFC names for any of `roles` (`any`, `proxy`, `registrar`, …).
    pub(crate) fn codes(&self, roles: &[&str]) -> Vec<u16> {
        self.responses
            .iter()
            .filter(|(role, _)| roles.contains(&role.as_str()))
            .map(|(_, code)| *code)
            .collect()
    }

    /// Whether the RFC calls the message invalid (class `invalid` or `transaction`).
    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self.class.as_str(), "invalid" | "transaction")
    }
}

/// Every message of `dir/index.json`, in the index's order.
pub(crate) fn cases(dir: &Path) -> Vec<Case> {
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap())
        .expect("index.json is JSON");
    index["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| Case {
            name: m["name"].as_str().expect("name").to_owned(),
            class: m["class"].as_str().expect("class").to_owned(),
            bytes: std::fs::read(dir.join(m["file"].as_str().expect("file"))).unwrap(),
            responses: m["expected_responses"]
                .as_array()
                .expect("expected_responses")
                .iter()
                .map(|r| {
                    (
                        r["role"].as_str().expect("role").to_owned(),
                        r["code"].as_u64().expect("code") as u16,
                    )
                })
                .collect(),
        })
        .collect()
}
