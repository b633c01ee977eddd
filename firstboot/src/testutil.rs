//! Test helpers: a real HTTP server on loopback that replays scripted answers, one per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status code and body.
    Status(u16, Vec<u8>),
    /// Read the request, then send nothing and hold the connection open.
    Stall,
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// A loopback HTTP/1.1 server: each connection gets the next scripted reply (the last one repeats).
pub struct Server {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn start(script: Vec<Reply>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let reply = script[i.min(script.len() - 1)].clone();
                i += 1;
                let seen = seen2.clone();
                std::thread::spawn(move || serve(conn, reply, seen));
            }
        });
        Server { base, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, reply: Reply, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    seen.lock().unwrap().push(Seen { method, path, body });
    let mut w = conn;
    match reply {
        Reply::Status(code, body) => {
            let _ = write!(
                w,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = w.write_all(&body);
        }
        Reply::Stall => std::thread::sleep(Duration::from_secs(30)),
    }
}
