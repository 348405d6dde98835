//! `udp_probe BIND_ADDR`: a UDP socket driven over stdin/stdout, for the
//! topology's smoke tests to run inside a home (`Home::command`).
//!
//! Prints `bound ADDR` once, then `recv FROM TEXT` for every datagram.
//! Reads `send ADDR TEXT` lines and sends TEXT to ADDR. Exits at the end of
//! its input, or after a bounded lifetime.

use std::io::{BufRead as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const LIFETIME: Duration = Duration::from_secs(300);

fn main() {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:0".into());
    let socket = UdpSocket::bind(&bind).unwrap_or_else(|e| panic!("cannot bind {bind}: {e}"));
    println!("bound {}", socket.local_addr().expect("local address"));
    std::io::stdout().flush().expect("stdout");
    let receiver = socket.try_clone().expect("socket clone");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = receiver.recv_from(&mut buf) {
            println!("recv {from} {}", String::from_utf8_lossy(&buf[..n]));
            if std::io::stdout().flush().is_err() {
                break;
            }
        }
    });
    std::thread::spawn(|| {
        std::thread::sleep(LIFETIME);
        std::process::exit(2);
    });
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let mut words = line.splitn(3, ' ');
        if words.next() != Some("send") {
            continue;
        }
        let (Some(to), Some(text)) = (words.next(), words.next()) else {
            continue;
        };
        let to: SocketAddr = to
            .parse()
            .unwrap_or_else(|e| panic!("bad address {to}: {e}"));
        socket.send_to(text.as_bytes(), to).expect("send");
    }
}
