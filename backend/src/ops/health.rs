//! `otp-backend healthcheck`: GET `/healthz` over plain HTTP/1.0 and exit 0 on a 200, for a
//! container's HEALTHCHECK on an image that has no curl.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// The default URL for a server listening on `listen` (a wildcard address is asked on
/// loopback).
pub fn default_url(listen: SocketAddr) -> String {
    let host = match listen {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        a => a.to_string(),
    };
    format!("http://{host}/healthz")
}

/// Ask `url` (`http://host:port/path`) and succeed on a 200 answer within `timeout`.
///
/// # Errors
/// Not an `http://` URL, no connection, or any other status.
pub fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("the healthcheck URL must start with http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {authority}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes())?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let got = conn.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let status = std::str::from_utf8(&head[..n]).unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!("{url} answered {:?}", status.lines().next().unwrap_or(""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_probed_on_loopback() {
        assert_eq!(
            default_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            default_url("10.0.0.5:9000".parse().unwrap()),
            "http://10.0.0.5:9000/healthz"
        );
    }

    #[test]
    fn probe_reads_the_status() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.1 200 OK\r\n\r\nok",
                "HTTP/1.1 503 Service Unavailable\r\n\r\n",
            ] {
                let (mut s, _) = l.accept().unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while !got.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "request ended early");
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        let url = format!("http://{addr}/healthz");
        probe(&url, Duration::from_secs(2)).unwrap();
        assert!(probe(&url, Duration::from_secs(2)).is_err());
        server.join().unwrap();
        assert!(probe("https://x/healthz", Duration::from_secs(1)).is_err());
    }
}
