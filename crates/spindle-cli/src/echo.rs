//! `spindle echo serve` and `spindle echo load`: the line echo servers of
//! `spindle_aio::echo` and the load client every server (Python's
//! `bench/python/echo.py` included) is measured with.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use spindle_aio::echo::{EchoServer, load};

/// `spindle echo serve`: binds, prints `listening on HOST:PORT` as its first
/// stdout line, then serves until killed.
pub(crate) fn serve(threads: bool, prefix: &str, host: &str, port: u16) -> ExitCode {
    let addr = (host, port);
    let server = if threads {
        EchoServer::bind_threads(addr, prefix.as_bytes())
    } else {
        EchoServer::bind_aio(addr, prefix.as_bytes(), 0)
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spindle echo serve: cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening on {}", server.local_addr())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    server.serve_forever()
}

/// `spindle echo load`: prints `echo.throughput`, `echo.p50_us`, `echo.p99_us`.
pub(crate) fn load_cmd(connect: &str, conns: usize, rounds: u64) -> ExitCode {
    let addr: SocketAddr = match connect.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            eprintln!("spindle echo load: {connect} names no address");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("spindle echo load: --connect {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match load(addr, conns, rounds) {
        Ok(r) => {
            println!("echo.throughput: {:.0} rt/s", r.throughput());
            println!("echo.p50_us: {:.0}", r.p50_us);
            println!("echo.p99_us: {:.0}", r.p99_us);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spindle echo load: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
