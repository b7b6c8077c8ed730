package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Every list of the store is paginated by key, never by OFFSET: a page is
// the rows after a cursor in the list's order, and the cursor names the
// last row of the previous page by its sort key. A page costs an index
// range scan of Limit+1 rows however deep it is, and rows added or removed
// meanwhile never shift a page. No list counts its rows.

// Page sizes: a list answers Limit rows (DefaultLimit when zero), never
// more than MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// maxCursorLen bounds a cursor before it is decoded (the longest key is a
// run's time and id: well under 200 bytes).
const maxCursorLen = 512

// pageLimit checks a requested page size: zero means def.
func pageLimit(what string, limit, def int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case limit < 0 || limit > MaxLimit:
		return 0, invalid("%s: limit %d is out of range (1..%d)", what, limit, MaxLimit)
	}
	return limit, nil
}

// A cursor is the URL-safe base64 (no padding) of a JSON array: the name of
// the list it belongs to, then the sort key of the last row shown. It is
// opaque to callers; a cursor of another list, or one that was altered, is
// refused with ErrInvalid rather than silently starting over.

// encodeCursor makes the cursor of list for a row whose sort key is key.
func encodeCursor(list string, key ...any) string {
	b, err := json.Marshal(append([]any{list}, key...))
	if err != nil {
		// Keys are strings, integers and times: they always encode.
		panic(fmt.Sprintf("store: encode %s cursor: %v", list, err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor of list into the key's parts (pointers to
// string, int64 or time.Time, in order). An empty cursor is the first page:
// it returns false and touches nothing.
func decodeCursor(list, cursor string, key ...any) (bool, error) {
	if cursor == "" {
		return false, nil
	}
	bad := func(why string) error {
		return invalid("%s: cursor %q is not valid (%s); use the next link of the previous page, or no cursor for the first page",
			list, clipText(cursor, 40), why)
	}
	if len(cursor) > maxCursorLen {
		return false, bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(cursor, "="))
	if err != nil {
		return false, bad("not base64url")
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return false, bad("not a key")
	}
	var name string
	if len(parts) == 0 || json.Unmarshal(parts[0], &name) != nil || name != list {
		return false, bad("it belongs to another list")
	}
	if len(parts) != len(key)+1 {
		return false, bad("wrong number of key parts")
	}
	for i, dst := range key {
		part := bytes.TrimSpace(parts[i+1])
		if bytes.Equal(part, []byte("null")) {
			return false, bad("empty key part")
		}
		if err := json.Unmarshal(part, dst); err != nil {
			return false, bad("bad key part")
		}
	}
	return true, nil
}

// likeEscape makes s match itself literally in LIKE ... ESCAPE '!' ('!',
// not a backslash: a backslash means different things in MySQL and SQLite
// string literals).
func likeEscape(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}
