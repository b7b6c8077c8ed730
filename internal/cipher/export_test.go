package cipher

import "encoding/base64"

func encodeRaw(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
