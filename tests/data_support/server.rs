//! A tiny HTTP/1.1 server on 127.0.0.1 for the downloader tests. It serves canned replies by
//! path, counts requests, and stops when dropped, after 60 s, or after 200 connections.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub enum Reply {
    /// 200 with the right Content-Length.
    File(Vec<u8>),
    /// 200 announcing `claimed` bytes, then sending `body` (shorter) and closing.
    Truncated {
        body: Vec<u8>,
        claimed: usize,
    },
    /// HTTP/1.0 200 without Content-Length: the body runs until the connection closes.
    Unsized(Vec<u8>),
    NotFound,
}

pub struct Server {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `routes` (path such as `/m/train-images-idx3-ubyte.gz` to reply); anything else
    /// gets a 404.
    pub fn start(routes: Vec<(String, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Reply> = routes.into_iter().collect();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (hits2, stop2) = (hits.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut served = 0;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline && served < 200 {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        hits2.fetch_add(1, Ordering::Relaxed);
                        let _ = handle(stream, &routes);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            base,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// The mirror base URL for a path prefix, e.g. `url("/m/")`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}{prefix}", self.base)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, routes: &HashMap<String, Reply>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let ok = |len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    match routes.get(&path).cloned().unwrap_or(Reply::NotFound) {
        Reply::File(body) => {
            stream.write_all(ok(body.len()).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Truncated { body, claimed } => {
            stream.write_all(ok(claimed).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Unsized(body) => {
            stream.write_all(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n")?;
            stream.write_all(&body)?;
        }
        Reply::NotFound => {
            let body = b"not found";
            stream.write_all(
                format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )?;
            stream.write_all(body)?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
