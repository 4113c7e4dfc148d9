//! Zone files in RFC 1035 master format (to be written).
