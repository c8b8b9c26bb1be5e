//! A tiny local HTTP/1.0 server and client on `std::net`, so the Python
//! programs that call `urllib.request.urlopen(url)` run without the internet.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// A page the [`LocalServer`] serves: its path, body and how long the server
/// takes to answer (to make the I/O wait visible).
#[derive(Debug, Clone)]
pub struct Page {
    /// The path, e.g. `/python`.
    pub path: String,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The simulated latency before the answer.
    pub delay: Duration,
}

impl Page {
    /// A page of `size` bytes of text, served after `delay_ms` milliseconds.
    pub fn new(path: &str, size: usize, delay_ms: u64) -> Page {
        let line = format!("<p>the page at {path}</p>\n");
        let body = line.bytes().cycle().take(size).collect();
        Page {
            path: path.to_owned(),
            body,
            delay: Duration::from_millis(delay_ms),
        }
    }
}

/// An HTTP server on `127.0.0.1` (a free port) answering GETs for its pages
/// (404 otherwise), one thread per connection. It runs until the program ends.
#[derive(Debug)]
pub struct LocalServer {
    addr: SocketAddr,
}

impl LocalServer {
    /// Binds `127.0.0.1:0` and serves `pages` in a background thread.
    ///
    /// # Errors
    ///
    /// If the socket cannot be bound.
    pub fn start(pages: Vec<Page>) -> io::Result<LocalServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let pages = std::sync::Arc::new(pages);
        thread::Builder::new()
            .name("http-server".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let pages = pages.clone();
                    thread::spawn(move || {
                        let _ = serve(conn, &pages);
                    });
                }
            })?;
        Ok(LocalServer { addr })
    }

    /// The URL of `path` on this server, e.g. `http://127.0.0.1:40123/python`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve(conn: TcpStream, pages: &[Page]) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let mut conn = conn;
    match pages.iter().find(|p| p.path == path) {
        Some(page) => {
            thread::sleep(page.delay);
            write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                page.body.len()
            )?;
            conn.write_all(&page.body)
        }
        None => conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
}

/// The Python programs' `fetch_url(url)`: GET `http://host:port/path` and
/// return the body.
///
/// # Errors
///
/// A malformed URL, a connection failure, or a status other than 200.
pub fn fetch_url(url: &str) -> io::Result<Vec<u8>> {
    let (host, path) = split_url(url)?;
    let mut conn = TcpStream::connect(host)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    body_of(url, response)
}

/// `http://host:port/path` as `(host:port, /path)`.
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("bad url {url:?}"));
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((host, if path.is_empty() { "/" } else { path }))
}

/// The body of a whole HTTP/1.x response, or an error for a status other
/// than 200.
fn body_of(url: &str, response: Vec<u8>) -> io::Result<Vec<u8>> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no header end"))?;
    let status = String::from_utf8_lossy(&response[..split]);
    if !status.starts_with("HTTP/1.0 200") && !status.starts_with("HTTP/1.1 200") {
        let first = status.lines().next().unwrap_or("").to_owned();
        return Err(io::Error::other(format!("{url}: {first}")));
    }
    Ok(response[split + 4..].to_vec())
}

/// [`fetch_url`] on tokio's sockets, for tasks: the connection and the reads
/// wait in the runtime instead of blocking a worker thread (what gevent's
/// `monkey.patch_all()` does to `urlopen`).
///
/// # Errors
///
/// As [`fetch_url`].
pub async fn fetch_url_async(url: &str) -> io::Result<Vec<u8>> {
    let (host, path) = split_url(url)?;
    let conn = tokio::net::TcpStream::connect(host).await?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").into_bytes();
    let mut sent = 0;
    while sent < request.len() {
        conn.writable().await?;
        match conn.try_write(&request[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    request.clear();
    let mut response = request;
    let mut buf = [0u8; 4096];
    loop {
        conn.readable().await?;
        match conn.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    body_of(url, response)
}
