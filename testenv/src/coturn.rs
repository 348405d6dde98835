//! A real coturn TURN server for tests: [`Coturn::start`] runs Debian's
//! `turnserver` with coturn's REST shared-secret authentication
//! (`use-auth-secret`), no TLS/DTLS, no CLI, loopback peers allowed and
//! relay addresses on the listening address, and returns once it answers a
//! STUN Binding request. Dropping the handle kills it.
//!
//! A test that needs coturn panics with a clear message when `turnserver`
//! is missing: it never passes by not running (`cargo xtask test` installs
//! the `coturn` package).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The realm the test server runs under.
pub const REALM: &str = "peerhost.test";

/// How long [`Coturn::start`] waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `turnserver`; killed on drop.
pub struct Coturn {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Where a coturn binary (`turnserver`, `turnutils_uclient`, …) is: on the
/// `PATH` or in `/usr/bin`. Panics naming the package when it is absent.
pub fn coturn_binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: this test needs a real coturn (Debian package `coturn`, \
                 installed by `cargo xtask test`; or `apt-get install coturn`)"
            )
        })
}

/// A UDP port nobody is bound to on `ip` right now.
fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free UDP port on {ip}: {e}"))
}

impl Coturn {
    /// Starts coturn on `listen_ip:port` (`port` 0 picks a free one) with
    /// `static-auth-secret=secret`, and waits until it answers STUN.
    pub fn start(listen_ip: IpAddr, port: u16, secret: &str) -> Coturn {
        let turnserver = coturn_binary("turnserver");
        let port = if port == 0 {
            free_udp_port(listen_ip)
        } else {
            port
        };
        let dir =
            std::env::temp_dir().join(format!("peerhost-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("coturn scratch directory");
        let log = std::fs::File::create(dir.join("turnserver.log")).expect("coturn log file");
        let ip = listen_ip.to_string();
        let child = Command::new(turnserver)
            .args(["-n", "--listening-ip", &ip, "--relay-ip", &ip])
            .args(["--listening-port", &port.to_string()])
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={secret}"))
            .args(["--realm", REALM])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--log-file", "stdout", "--simple-log", "--no-stdout-log"])
            .arg("--db")
            .arg(dir.join("turndb"))
            .arg("--pidfile")
            .arg(dir.join("turnserver.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("coturn log file"))
            .stderr(log)
            .spawn()
            .expect("starting turnserver");
        let mut me = Coturn {
            child,
            addr: SocketAddr::new(listen_ip, port),
            dir,
        };
        me.wait_until_answering();
        me
    }

    /// The address it listens on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turnserver.log")).unwrap_or_default()
    }

    /// The scratch directory (log, database, pid file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wait_until_answering(&mut self) {
        let probe = UdpSocket::bind((self.addr.ip(), 0)).expect("probe socket");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("probe timeout");
        let started = Instant::now();
        let mut request = [0u8; 20];
        // Binding request, no attributes, magic cookie, a fixed transaction id.
        request[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]);
        request[8..].copy_from_slice(b"peerhost-tst");
        let mut buf = [0u8; 512];
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("turnserver exited ({status}) at start:\n{}", self.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "turnserver did not answer STUN on {} within {START_TIMEOUT:?}:\n{}",
                self.addr,
                self.log()
            );
            let _ = probe.send_to(&request, self.addr);
            // A Binding success response with our transaction id.
            if let Ok((n, _)) = probe.recv_from(&mut buf)
                && n >= 20
                && buf[..2] == [0x01, 0x01]
                && buf[8..20] == request[8..]
            {
                return;
            }
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
