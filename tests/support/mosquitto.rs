//! A real Mosquitto for the bridge suites: started by the test on a loopback port, from a
//! config file the test writes, killed by its PID (its `Child`) on drop. Run as root,
//! Mosquitto drops to the user `mosquitto`, so what it reads is world-readable. Where it is
//! not installed, [`Mosquitto::binary`] is `None` and such a test prints why and passes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Mosquitto may take to listen.
const STARTUP: Duration = Duration::from_secs(5);

/// A running Mosquitto on its own loopback port.
#[derive(Debug)]
pub struct Mosquitto {
    child: Option<Child>,
    pub addr: SocketAddr,
    binary: PathBuf,
    dir: PathBuf,
    extra: String,
}

impl Mosquitto {
    /// `/usr/sbin/mosquitto`, or `mosquitto` on PATH; none with `RINGMQ_TEST_NO_MOSQUITTO`
    /// set (to check that the tests that need it skip cleanly).
    pub fn binary() -> Option<PathBuf> {
        if std::env::var_os("RINGMQ_TEST_NO_MOSQUITTO").is_some() {
            return None;
        }
        let apt = PathBuf::from("/usr/sbin/mosquitto");
        if apt.is_file() {
            return Some(apt);
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    }

    /// A Mosquitto with `listener PORT 127.0.0.1`, anonymous clients and `extra` config
    /// lines; `None` (after saying so) where Mosquitto is not installed.
    pub fn start(test: &str, extra: &str) -> Option<Self> {
        let Some(binary) = Self::binary() else {
            // The interop suite installs Mosquitto and runs these tests again: there a
            // missing Mosquitto is a failure, not a skip.
            if std::env::var_os("RINGMQ_TEST_REQUIRE_MOSQUITTO").is_some() {
                panic!("{test}: RINGMQ_TEST_REQUIRE_MOSQUITTO is set, but mosquitto is not found");
            }
            println!("{test}: skipped, mosquitto is not installed (apt install mosquitto)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "ringmq-mosquitto-{}-{}",
            std::process::id(),
            super::broker::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut last = String::new();
        for _ in 0..3 {
            // A free port now; Mosquitto takes it a moment later (retried if it lost it).
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap_or_else(|e| panic!("no free port: {e}"));
            let mut m = Self {
                child: None,
                addr: port,
                binary: binary.clone(),
                dir: dir.clone(),
                extra: extra.to_owned(),
            };
            match m.spawn() {
                Ok(()) => return Some(m),
                Err(e) => last = e,
            }
        }
        panic!("mosquitto did not start: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let conf = self.dir.join("mosquitto.conf");
        let text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n{}\n",
            self.addr.port(),
            self.extra
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("exited with {status} on port {}", self.addr.port()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(format!("not listening on {} within {STARTUP:?}", self.addr))
    }

    /// Kills it (SIGKILL, by its PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same config.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STARTUP;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("mosquitto again: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A file in its private directory (world-readable, for its config).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
