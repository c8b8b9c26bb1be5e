//! Python Cookbook recipe 12.1, a thread blocked in I/O: a thread blocked in
//! `sock.recv()` cannot see a stop flag, so the socket gets a timeout and the
//! thread re-checks the flag after each timeout.
//!
//! Python: `sock.settimeout(5)`; `except socket.timeout: continue`. Rust:
//! `set_read_timeout`, and the timeout comes back as `WouldBlock`/`TimedOut`.
//! Everything runs over loopback.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use spindle::thread::{StopSource, StopToken, Thread};

/// Reads messages until stopped; returns how many it got.
fn run(token: StopToken, mut sock: TcpStream) -> std::io::Result<usize> {
    sock.set_read_timeout(Some(Duration::from_millis(100)))?; // sock.settimeout(...)
    let mut got = 0;
    let mut buf = [0u8; 8192];
    while !token.is_stopped() {
        match sock.read(&mut buf) {
            Ok(0) => break, // peer closed
            Ok(n) => {
                got += 1;
                println!("reader: got {:?}", String::from_utf8_lossy(&buf[..n]));
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                println!("reader: timeout, still running? {}", !token.is_stopped());
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    println!("reader: terminated");
    Ok(got)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut peer = TcpStream::connect(listener.local_addr()?)?;
    let (sock, _) = listener.accept()?;

    let stop = StopSource::new();
    let token = stop.token();
    let reader = Thread::builder()
        .name("reader")
        .spawn(move || run(token, sock))?;

    peer.write_all(b"hello")?;
    std::thread::sleep(Duration::from_millis(250)); // the reader times out a couple of times
    let t0 = Instant::now();
    stop.stop(); // terminate(): the peer stays connected, recv() would block forever
    let got = reader.join()??;
    println!(
        "main: reader got {got} message(s) and stopped {:.0} ms after terminate() \
         (at most one read timeout)",
        t0.elapsed().as_secs_f64() * 1e3
    );
    drop(peer);
    Ok(())
}
