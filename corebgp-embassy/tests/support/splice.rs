//! User-space relay between an embassy-net TCP socket and a tokio TcpStream
//! on 127.0.0.1: no root, no TAP.

use embassy_futures::join::join;
use embassy_net::tcp::TcpSocket;
use embedded_io_async::Write as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Copies both directions until both sides have closed, then closes the
/// embassy socket.
pub async fn splice(socket: &mut TcpSocket<'_>, stream: TcpStream) {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut tr, mut tw) = stream.into_split();
    {
        let (mut er, mut ew) = socket.split();
        let up = async {
            let mut buf = [0u8; 1500];
            loop {
                match er.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tw.shutdown().await;
        };
        let down = async {
            let mut buf = [0u8; 1500];
            loop {
                match tr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if ew.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let _ = ew.flush().await;
                    }
                }
            }
        };
        join(up, down).await;
    }
    socket.close();
    let _ = socket.flush().await;
}
