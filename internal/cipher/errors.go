package cipher

import "errors"

// Sentinel errors returned (wrapped with detail) by Open and
// ReplayGuard.Check; test for them with errors.Is.
var (
	// ErrMalformed: not valid base64, too short, or truncated.
	ErrMalformed = errors.New("cipher: malformed message")
	// ErrVersion: an envelope version this codec does not open, including a
	// legacy message given to the AEAD codec and the reverse.
	ErrVersion = errors.New("cipher: unsupported message version")
	// ErrAuth: the AEAD tag did not verify.
	ErrAuth = errors.New("cipher: message authentication failed (wrong SECRET_KEY or tampered message)")
	// ErrReplay: the same message was already accepted within the window.
	ErrReplay = errors.New("cipher: replayed message")
	// ErrExpired: the message's issue time is outside the accepted window.
	ErrExpired = errors.New("cipher: message issue time outside the accepted window")
	// ErrReplayCacheFull: the replay guard holds its maximum number of live
	// ids; the message is refused rather than accepted unchecked.
	ErrReplayCacheFull = errors.New("cipher: replay cache full, message refused")
)
