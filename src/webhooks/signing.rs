//! Standard Webhooks signatures (standardwebhooks.com), so receivers can verify with that
//! specification's existing libraries: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"<webhook-id>.<webhook-timestamp>.<body>"`, keyed with the bytes of a `whsec_<base64>` secret.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix the specification gives secrets, so they are recognisable in configuration.
const SECRET_PREFIX: &str = "whsec_";

/// The key lengths the specification asks for (24 to 64 random bytes).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A `WEBHOOK_SECRET` that is not `whsec_` followed by 24 to 64 bytes in base64.
#[derive(Debug, thiserror::Error)]
#[error(
    "WEBHOOK_SECRET must be `whsec_` followed by 24 to 64 random bytes in standard base64 \
         (e.g. `whsec_$(head -c 32 /dev/urandom | base64)`): {0}"
)]
pub struct BadSecret(&'static str);

/// Signs webhook bodies with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <hidden> }")
    }
}

impl Signer {
    /// Parses `whsec_<base64 key>`.
    pub fn from_secret(secret: &str) -> Result<Signer, BadSecret> {
        let encoded = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(BadSecret("it does not start with `whsec_`"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| BadSecret("the part after `whsec_` is not base64"))?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(BadSecret("the key is not 24 to 64 bytes long"));
        }
        Ok(Signer { key })
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length, so this never fails; the key length is checked above.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published example: the reference Rust library's `test_sign`
    /// (github.com/standard-webhooks/standard-webhooks, `libraries/rust/src/lib.rs`).
    #[test]
    fn signs_the_specifications_example_exactly() {
        let signer = Signer::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("secret");
        assert_eq!(
            signer.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_signature_covers_id_timestamp_and_body() {
        let signer = Signer::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("secret");
        let base = signer.sign("msg_1", 1, b"{}");
        assert_ne!(base, signer.sign("msg_2", 1, b"{}"));
        assert_ne!(base, signer.sign("msg_1", 2, b"{}"));
        assert_ne!(base, signer.sign("msg_1", 1, b"{ }"));
    }

    #[test]
    fn bad_secrets_are_refused_with_the_reason() {
        for (secret, reason) in [
            ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_"),
            ("whsec_not base64!", "not base64"),
            ("whsec_c2hvcnQ=", "24 to 64"),
        ] {
            let err = Signer::from_secret(secret).expect_err(secret).to_string();
            assert!(err.contains(reason), "{secret}: {err}");
        }
        assert!(!format!(
            "{:?}",
            Signer::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        )
        .contains("C2FV"));
    }

    /// Checked when the configuration is read, so a bad secret stops the start, saying why.
    #[test]
    fn the_configuration_refuses_a_malformed_secret_and_reads_one_from_a_file() {
        let err = crate::config::Config::from_args(["image-processor", "--webhook-secret", "hunter2"])
            .expect_err("malformed");
        assert!(
            err.to_string().contains("WEBHOOK_SECRET must be `whsec_`"),
            "{err}"
        );
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n").expect("write");
        let path = file.path().to_str().expect("utf-8 path");
        let config = crate::config::Config::from_args(["image-processor", "--webhook-secret-file", path])
            .expect("a secret from its file");
        assert_eq!(
            config.webhook_secret.as_deref(),
            Some("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        );
    }
}
