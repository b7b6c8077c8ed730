package backend

import (
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		in      string
		limit   int64
		wantErr bool
	}{
		{"", 4, false}, {"abcd", 4, false}, {"abcde", 4, true}, {strings.Repeat("x", 1<<16), 1 << 10, true},
	} {
		data, err := ReadBody(strings.NewReader(tc.in), tc.limit)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "larger than the limit") || data != nil {
				t.Errorf("%d bytes, limit %d: %d bytes, %v; want refused", len(tc.in), tc.limit, len(data), err)
			}
			continue
		}
		if err != nil || string(data) != tc.in {
			t.Errorf("%d bytes, limit %d: %q, %v", len(tc.in), tc.limit, data, err)
		}
	}
}
