//! image-processor: an event-driven image service on PostgreSQL.
pub mod imaging;
