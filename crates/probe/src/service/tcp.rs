//! The simplest service probe: does a TCP connection to an address open,
//! and how long does it take.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::ServiceError;

/// A connected TCP stream and how long connecting took.
pub struct Connected {
    /// The stream.
    pub stream: TcpStream,
    /// Time to connect.
    pub elapsed: Duration,
}

/// What a TCP connect probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpObservation {
    /// The address.
    pub address: SocketAddr,
    /// Time to connect, or why it failed.
    pub result: Result<Duration, ServiceError>,
}

/// Opens a TCP connection within `timeout`.
pub async fn open(address: SocketAddr, timeout: Duration) -> Result<Connected, ServiceError> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => Err(ServiceError::Timeout {
            address,
            stage: "connect",
        }),
        Ok(Err(e)) => Err(ServiceError::Connect {
            address,
            reason: e.to_string(),
        }),
        Ok(Ok(stream)) => Ok(Connected {
            stream,
            elapsed: started.elapsed(),
        }),
    }
}

/// Connects and closes: is the port open?
pub async fn connect(address: SocketAddr, timeout: Duration) -> TcpObservation {
    TcpObservation {
        address,
        result: open(address, timeout).await.map(|c| c.elapsed),
    }
}
