//! Runs Linphone's liblime benchmark (`bench/lime/liblime_bench.c`, built by
//! `bench/lime/compare.sh`) in the same run as `sotto bench lime`: its key-server posts are
//! answered by sotto's key server logic in process; its JSON line is printed as it comes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sotto_lime::CurveId;
use sotto_lime::keyserver::{KeyServer, Limits, MemoryKeyStore};

/// Runs the built liblime benchmark at `path` for `messages` on `curve`.
pub(crate) fn run(path: &Path, curve: CurveId, messages: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(path)
        .arg(dir.path())
        .arg(curve.id().to_string())
        .arg(messages.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", path.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let ks = KeyServer::new(MemoryKeyStore::default(), vec![curve], Limits::default());
    for line in stdout.lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("POST ") {
            let (from, hex) = rest.split_once(' ').context("POST FROM HEX")?;
            let mut body = vec![0u8; hex.len() / 2];
            if !sotto_crypto::hex::decode(hex, &mut body) {
                bail!("liblime posted bad hex");
            }
            let reply = ks.handle(from, &body);
            writeln!(stdin, "RESP 200 {}", sotto_crypto::hex::encode(&reply))?;
        } else {
            println!("{line}");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the liblime benchmark failed ({status})");
    }
    Ok(())
}
