//! A throwaway PostgreSQL cluster for tests (Debian `postgresql`): `initdb` in a temp dir,
//! `pg_ctl` on a loopback port, stopped and removed on drop. Run as the `postgres` user when
//! the test runs as root (initdb refuses root). Shared by the store's and the server's tests.

#![allow(dead_code, unreachable_pub)]

/// A throwaway PostgreSQL cluster (Debian `postgresql`): `initdb` in a temp dir, `pg_ctl`
/// on a loopback port; stopped and removed on drop. Run as the `postgres` user when the
/// test runs as root (initdb refuses root).
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
    as_postgres: bool,
}

impl PgCluster {
    fn tool(&self, name: &str) -> std::process::Command {
        let exe = self.bin.join(name);
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    pub fn start() -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).max())
            .filter(|b| b.join("initdb").exists())
            .expect("PostgreSQL is not installed: apt-get install -y postgresql");
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = PgCluster {
            dir,
            port,
            bin,
            as_postgres,
        };
        let data = c.dir.path().join("data");
        let out = c
            .tool("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            c.dir.path().display()
        );
        let out = c
            .tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(c.dir.path().join("log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
