//! The UPDATE response (RFC 2136 §3.8): the request's header with QR set
//! and the RCODE, and its zone section echoed; the other sections empty.
//! Signing it with TSIG is the caller's job (`tsig::ResponseSigner`).

use cutover_zone::rdata::wire_name_len;

use super::UpdateRcode;

/// The response to the UPDATE `request`, or an empty `Vec` when the
/// request is shorter than a header (there is no ID to answer).
///
/// The zone section is echoed when it is a well-formed, uncompressed name
/// with type and class (at offset 12 nothing precedes it that a pointer
/// could point at); otherwise ZOCOUNT is 0.
pub fn response(request: &[u8], rcode: UpdateRcode) -> Vec<u8> {
    let Some(header) = request.get(..12) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(request.len().min(512));
    out.extend_from_slice(&header[..2]);
    // QR, the request's opcode, no AA/TC/RD; RA and Z clear, then RCODE.
    out.push(0x80 | (header[2] & 0x78));
    out.push(rcode.code() & 0x0f);
    let zone = u16::from_be_bytes([header[4], header[5]]);
    let echo = request.get(12..).and_then(|rest| {
        let len = wire_name_len(rest)?;
        (zone >= 1).then(|| rest.get(..len + 4)).flatten()
    });
    out.extend_from_slice(&u16::from(echo.is_some()).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    if let Some(echo) = echo {
        out.extend_from_slice(echo);
    }
    out
}
