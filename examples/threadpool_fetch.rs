//! Python Cookbook recipe 12.7, "Creating a Thread Pool":
//! `ThreadPoolExecutor(10)`, submit `fetch_url` twice, block on each
//! `result()`.
//!
//! The recipe fetches python.org and pypy.org; this port fetches two pages from
//! a local HTTP server it starts itself on 127.0.0.1 (no internet needed). Each
//! page takes 200 ms to answer, so the two fetches overlapping show as ~200 ms
//! in total instead of ~400 ms.

use std::time::Instant;

use spindle::futures::{Executor, ThreadPoolExecutor, fallible};
use spindle_examples::http::{LocalServer, Page, fetch_url};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = LocalServer::start(vec![
        Page::new("/www.python.org", 48_000, 200),
        Page::new("/www.pypy.org", 21_000, 200),
    ])?;
    let (python, pypy) = (server.url("/www.python.org"), server.url("/www.pypy.org"));

    let start = Instant::now();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(10)
        .build()
        .unwrap();
    // Submit work to the pool
    let a = pool.submit(fallible(move || fetch_url(&python)))?;
    let b = pool.submit(fallible(move || fetch_url(&pypy)))?;

    // Get the results back: result() blocks until the function has returned.
    let x = a.result()?;
    let y = b.result()?;
    println!("a.result(): {} bytes: {:?}...", x.len(), preview(&x));
    println!("b.result(): {} bytes: {:?}...", y.len(), preview(&y));
    println!(
        "both fetched in {:.0} ms (each page takes 200 ms: they ran at the same time)",
        start.elapsed().as_secs_f64() * 1e3
    );

    // A failing fetch surfaces as the future's error, like the exception
    // urlopen would raise from result().
    let missing = server.url("/no-such-page");
    let c = pool.submit(fallible(move || fetch_url(&missing)))?;
    match c.result() {
        Ok(_) => println!("unexpected: the missing page was found"),
        Err(e) => println!("c.result(): {e}"),
    }
    Ok(())
}

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(30)]).into_owned()
}
