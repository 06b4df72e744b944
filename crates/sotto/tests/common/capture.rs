//! Test helper: a `tshark` capture on the loopback interface, read back field by field, and
//! byte searches in what it holds.
//!
//! Included with `#[path = "common/capture.rs"] mod capture;`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `tshark` capture on `lo` into a pcap file; stopped with SIGINT, killed on drop.
pub(crate) struct Capture {
    /// The pcap file.
    pub(crate) pcap: PathBuf,
    child: Option<Child>,
}

impl Capture {
    /// Starts `tshark -i lo -q -w <pcap> -f <filter>` and waits until it is capturing.
    pub(crate) fn start(pcap: &Path, filter: &str) -> Capture {
        let err_path = pcap.with_extension("err");
        let err = File::create(&err_path).expect("create tshark stderr file");
        let child = Command::new("tshark")
            .args(["-i", "lo", "-q", "-w"])
            .arg(pcap)
            .args(["-f", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn tshark");
        let mut cap = Capture {
            pcap: pcap.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            if text.contains("Capturing on") {
                break;
            }
            if let Some(c) = cap.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("tshark exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "tshark did not start: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Let the capture settle (what tshark prints precedes the first packet captured).
        std::thread::sleep(Duration::from_millis(300));
        cap
    }

    /// Stops the capture (SIGINT, so the pcap is complete), bounded; SIGKILL if it hangs.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Reads the pcap with `tshark -r`, the given decode hints (`-d` values), display filter
    /// and fields: one `Vec` of field values per frame.
    pub(crate) fn fields(
        &self,
        decode: &[String],
        filter: &str,
        fields: &[&str],
    ) -> Vec<Vec<String>> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(&self.pcap);
        for d in decode {
            cmd.args(["-d", d]);
        }
        if !filter.is_empty() {
            cmd.args(["-Y", filter]);
        }
        cmd.args(["-T", "fields", "-E", "separator=|"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("run tshark -r");
        assert!(
            out.status.success(),
            "tshark -r failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many times `needle` occurs in `hay`.
pub(crate) fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}
