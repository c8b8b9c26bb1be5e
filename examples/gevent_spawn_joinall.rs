//! gevent's introductory example: after `monkey.patch_all()`, spawn one
//! greenlet per URL to fetch it, then `gevent.joinall(jobs, timeout=2)`;
//! the fetches wait on the network side by side in one thread.
//!
//! Python: `jobs = [gevent.spawn(print_head, url) for url in urls];
//! gevent.joinall(jobs, timeout=2)`, `print_head` printing the size and
//! the first bytes of each page.
//!
//! spindle: `spindle_aio::spawn` from the plain main thread (the tasks run
//! on a global runtime, gevent's hub), `join_all(&mut jobs, Some(2 s))`.
//! `monkey.patch_all()` becomes writing the fetch with `tokio::net` (Rust
//! has no monkey-patching; see docs/PYTHON.md). The pages come from a local
//! server (`examples/common/http.rs`), each answering after 100 ms: the
//! three fetches overlap, so all finish in about 100 ms, not 300.

use std::io;
use std::time::{Duration, Instant};

use spindle_aio::{join_all, spawn};
use spindle_examples::http::{LocalServer, Page, fetch_url_async};

/// `print_head(url)`: GET the page (on `tokio::net`: see
/// `fetch_url_async`), print its size and first bytes.
async fn print_head(url: String) -> io::Result<usize> {
    println!("Starting {url}");
    let data = fetch_url_async(&url).await?;
    let head = String::from_utf8_lossy(&data[..data.len().min(30)]).into_owned();
    println!("{url}: {} bytes: {head:?}", data.len());
    Ok(data.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pages = ["/google", "/example", "/python"]
        .iter()
        .map(|p| Page::new(p, 2000, 100))
        .collect();
    let server = LocalServer::start(pages)?;
    let urls = ["/google", "/example", "/python"].map(|p| server.url(p));

    let start = Instant::now();
    let mut jobs: Vec<_> = urls.into_iter().map(|u| spawn(print_head(u))).collect();
    let outcomes = join_all(&mut jobs, Some(Duration::from_secs(2)));
    for outcome in outcomes {
        let size = outcome??; // a task error, then the fetch's own
        assert_eq!(size, 2000);
    }
    println!("all three in {:?}", start.elapsed());
    Ok(())
}
