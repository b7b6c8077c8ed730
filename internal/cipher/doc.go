// Package cipher seals the messages that travel between the web tier and the
// master (tasks and per-host results), keyed by the shared SECRET_KEY.
//
// Two schemes exist:
//
//   - "aead" (the default, use it for everything new): XChaCha20-Poly1305
//     with a per-message key derived from SECRET_KEY by HKDF-SHA256 and a
//     random per-message salt. The envelope is versioned ("omv2." prefix and
//     a version byte) and the version, issue time, salt and nonce are all
//     authenticated. Open rejects tampered, truncated, wrong-key,
//     wrong-version, replayed and stale messages, each with its own sentinel
//     error (ErrMalformed, ErrVersion, ErrAuth, ErrReplay, ErrExpired).
//
//   - "legacy": the original OMServer tencode/tdecode,
//     base64(salt16 || RC4(SHA1(SECRET_KEY || salt), plaintext)). It exists
//     only so a migrating site can talk to an original peer. RC4 gives no
//     integrity: a wrong key or a tampered message decodes to garbage
//     without any error, so callers must parse the plaintext strictly and
//     carry their own nonce and issue time (see ReplayGuard).
//
// A rejected message is never half-decoded: Open returns nil plaintext
// whenever it returns an error.
package cipher
