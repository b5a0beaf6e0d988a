//! Reading and writing image files: format sniffing, header checks, decoding, encoding and
//! the colour management that comes with decoding.

mod colour;
pub(super) mod decode;
pub(super) mod encode;
pub(super) mod format;
mod jpeg;
