//! The kubelet's side of the CRI streaming server for Exec, over WebSocket with the
//! `v4.channel.k8s.io` protocol (what `kubectl exec` reaches through the API server): every
//! message's first byte names the stream (1 stdout, 2 stderr, 3 the final status).
//! Just enough of RFC 6455 for a reader: the server's frames are not masked, and we send none.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What an exec printed and the status document it ended with.
#[derive(Debug, Default)]
pub struct Streamed {
    pub stdout: String,
    pub stderr: String,
    pub status: String,
}

/// Opens `url` (an Exec response's, `http://127.0.0.1:PORT/exec/TOKEN`) as a WebSocket and
/// reads the streams until the server closes them.
pub fn exec(url: &str) -> Result<Streamed, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    // The key is any 16 bytes in base64: the server only hashes it back.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Origin: http://{host}\r\nSec-WebSocket-Key: YmVydGgtY3JpLXRlc3Qtaw==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .map_err(|e| format!("send the upgrade: {e}"))?;
    let mut reader = BufReader::new(tcp);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .map_err(|e| format!("read the upgrade's answer: {e}"))?;
    if !status_line.starts_with("HTTP/1.1 101") {
        return Err(format!(
            "the streaming server refused the upgrade: {status_line:?}"
        ));
    }
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| e.to_string())?;
        if header.trim().is_empty() {
            break;
        }
    }
    let mut out = Streamed::default();
    while let Some(message) = read_frame(&mut reader)? {
        let Some((&channel, data)) = message.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(data);
        match channel {
            1 => out.stdout.push_str(&text),
            2 => out.stderr.push_str(&text),
            3 => out.status.push_str(&text),
            _ => {}
        }
    }
    Ok(out)
}

/// The next data frame's payload, or `None` at a close frame or the end of the connection.
fn read_frame(reader: &mut impl Read) -> Result<Option<Vec<u8>>, String> {
    let mut head = [0u8; 2];
    match reader.read_exact(&mut head) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        r => r.map_err(|e| format!("read a frame: {e}"))?,
    }
    let opcode = head[0] & 0x0f;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(|e| e.to_string())?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            reader.read_exact(&mut b).map_err(|e| e.to_string())?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
    reader
        .read_exact(&mut payload)
        .map_err(|e| format!("read a frame's {len} bytes: {e}"))?;
    match opcode {
        0x8 => Ok(None),
        // Ping and pong carry no stream data.
        0x9 | 0xa => Ok(Some(Vec::new())),
        _ => Ok(Some(payload)),
    }
}
