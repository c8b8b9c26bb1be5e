//! Python's classic coroutine echo server: a select-based scheduler runs one
//! coroutine per client, each answering `"GOT:" + line` to every line it
//! receives (Python: an `EchoServer` whose client coroutines `yield` on
//! socket readiness; today `asyncio.start_server` with `readline` / `write`
//! / `drain`).
//!
//! spindle: `spindle_aio::echo::EchoServer::bind_aio` with the prefix
//! `GOT:` — one tokio task per connection, tokio's epoll reactor being the
//! `select` loop. Here three clients talk to it at once from plain threads
//! and print what comes back; `spindle echo serve --prefix GOT:` is the
//! same server as a command. A line over 64 KiB closes its connection.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;

use spindle_aio::echo::EchoServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = EchoServer::bind_aio("127.0.0.1:0", b"GOT:", 2)?;
    let addr = server.local_addr();
    println!("listening on {addr}");
    let clients: Vec<_> = (1..=3)
        .map(|c| {
            thread::spawn(move || -> std::io::Result<Vec<String>> {
                let mut s = TcpStream::connect(addr)?;
                let mut r = BufReader::new(s.try_clone()?);
                let mut got = Vec::new();
                for i in 1..=2 {
                    writeln!(s, "client {c} line {i}")?;
                    let mut line = String::new();
                    r.read_line(&mut line)?;
                    got.push(line.trim_end().to_owned());
                }
                Ok(got)
            })
        })
        .collect();
    for (c, t) in clients.into_iter().enumerate() {
        for line in t.join().expect("client thread")? {
            println!("client {}: {line}", c + 1);
        }
    }
    println!("served {} connections", server.accepted());
    server.shutdown();
    Ok(())
}
