//! A tiny HTTP/1.1 client over a `TcpStream` that sends exactly the bytes it
//! is given (reqwest normalises paths and refuses bad headers) and reads one
//! response: status line, headers, and a body framed by `Content-Length`,
//! chunked encoding, or the end of the connection. Every read has a deadline.
//!
//! Included with `#[path = "common/raw.rs"] mod raw;`.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// One response as received.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names in lower case, values as bytes.
    pub headers: Headers,
    /// The body (empty for HEAD, 1xx, 204, 304).
    pub body: Vec<u8>,
}

impl Response {
    /// A header value as text (lossy), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The `code` fields of a spec error body, or `None` when the body is
    /// not `{"errors":[{"code":...},...]}`.
    pub fn error_codes(&self) -> Option<Vec<String>> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value
            .get("errors")?
            .as_array()?
            .iter()
            .map(|e| e.get("code")?.as_str().map(str::to_owned))
            .collect()
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// A complete response arrived.
    Answered(Response),
    /// The server closed the connection without a (complete) response.
    Closed,
    /// Nothing conclusive before the deadline.
    TimedOut,
}

/// What the client does after writing the request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Keep the connection open while reading the response.
    KeepOpen,
    /// Shut down the writing half (the server sees the end of the stream).
    HalfClose,
}

/// Connects to `addr`, writes `request`, ends as told, reads one response.
pub fn exchange(addr: &str, request: &[u8], ending: Ending, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let Ok(mut stream) = TcpStream::connect(addr) else {
        panic!("cannot connect to {addr}");
    };
    let _ = stream.set_nodelay(true);
    // A server may answer (and close) before reading everything; a failed
    // write is not the test's verdict, the response (or its absence) is.
    let _ = stream.write_all(request);
    if ending == Ending::HalfClose {
        let _ = stream.shutdown(Shutdown::Write);
    }
    read_response(&mut stream, deadline, false)
}

/// Reads one response from `stream` before `deadline`. `head`: the request
/// was HEAD, so no body follows whatever the headers say.
pub fn read_response(stream: &mut TcpStream, deadline: Instant, head: bool) -> Outcome {
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        deadline,
    };
    loop {
        let Some(end) = reader.fill_until_head() else {
            return reader.verdict();
        };
        let head_bytes = reader.buf.drain(..end + 4).collect::<Vec<u8>>();
        let Some((status, headers)) = parse_head(&head_bytes[..end]) else {
            return Outcome::Closed;
        };
        if (100..200).contains(&status) {
            continue; // 100 Continue: the real answer follows
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return Outcome::Answered(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok());
        let body = if chunked {
            reader.chunked()
        } else if let Some(length) = length {
            reader.exactly(length)
        } else {
            reader.until_eof()
        };
        return match body {
            Some(body) => {
                response.body = body;
                Outcome::Answered(response)
            }
            None => reader.verdict(),
        };
    }
}

struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

/// Why a read stopped.
enum Stop {
    Eof,
    Timeout,
}

impl Reader<'_> {
    /// Reads more bytes into `buf`; `Err` at the end of the stream or the deadline.
    fn more(&mut self) -> Result<(), Stop> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Stop::Timeout);
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(Stop::Eof),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(Stop::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(Stop::Eof), // reset: the server closed
        }
    }

    /// What to report when the response cannot be completed.
    fn verdict(&mut self) -> Outcome {
        if Instant::now() >= self.deadline {
            Outcome::TimedOut
        } else {
            Outcome::Closed
        }
    }

    /// Position of the `\r\n\r\n` ending the head; `None` if it never came.
    fn fill_until_head(&mut self) -> Option<usize> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(i);
            }
            if self.more().is_err() {
                return None;
            }
        }
    }

    fn exactly(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            self.more().ok()?;
        }
        Some(self.buf.drain(..n).collect())
    }

    fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.drain(..i + 2).take(i).collect();
                return Some(line);
            }
            self.more().ok()?;
        }
    }

    fn chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).ok()?;
            if size == 0 {
                // Trailers, then an empty line.
                while !self.line()?.is_empty() {}
                return Some(body);
            }
            body.extend(self.exactly(size)?);
            self.exactly(2)?; // CRLF after the chunk
        }
    }

    fn until_eof(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.more() {
                Ok(()) => {}
                Err(Stop::Eof) => return Some(std::mem::take(&mut self.buf)),
                Err(Stop::Timeout) => return None,
            }
        }
    }
}

/// Header names (lower case) and values.
type Headers = Vec<(String, Vec<u8>)>;

/// Status and headers of a response head (without the final blank line).
fn parse_head(head: &[u8]) -> Option<(u16, Headers)> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = std::str::from_utf8(lines.next()?).ok()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let mut headers = Vec::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name, value));
    }
    Some((status, headers))
}

/// `METHOD target HTTP/1.1` with `Host`, the given headers (each without
/// CRLF), `Content-Length` when `body` is not empty and no header sets it,
/// and `Connection: close`.
pub fn request(method: &str, target: &[u8], headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n");
    let mut has_length = false;
    for header in headers {
        let lower = header.to_ascii_lowercase();
        has_length |=
            lower.starts_with(b"content-length:") || lower.starts_with(b"transfer-encoding:");
        out.extend_from_slice(header);
        out.extend_from_slice(b"\r\n");
    }
    if !has_length && !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
