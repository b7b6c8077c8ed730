package apperr

import (
	"errors"
	"fmt"
	"testing"
)

var errSentinel = New(NotFound, "unknown module")

func TestKindAndMessage(t *testing.T) {
	plain := errors.New("dial tcp 10.0.0.1:3306: connection refused")
	tests := []struct {
		name     string
		err      error
		wantKind Kind
		wantMsg  string
		wantIs   error
	}{
		{"sentinel", errSentinel, NotFound, "unknown module", errSentinel},
		{"wrapped sentinel", fmt.Errorf("%w: module 2003 is not installed", errSentinel), NotFound, "unknown module: module 2003 is not installed", errSentinel},
		{"twice wrapped", fmt.Errorf("run: %w", fmt.Errorf("%w: 2003", errSentinel)), NotFound, "run: unknown module: 2003", errSentinel},
		{"errorf", Errorf(Invalid, "parameter %s is too long", "sys_param_1"), Invalid, "parameter sys_param_1 is too long", nil},
		{"errorf wrapping", Errorf(Conflict, "run %s: %w", "r1", plain), Conflict, "run r1: dial tcp 10.0.0.1:3306: connection refused", plain},
		{"errorf joining", Errorf(Invalid, "bad: %w; %w", errSentinel, plain), Invalid, "bad: unknown module; dial tcp 10.0.0.1:3306: connection refused", plain},
		{"wrap", Wrap(Unavailable, plain), Unavailable, plain.Error(), plain},
		{"uncategorised", plain, Internal, plain.Error(), plain},
		{"outermost wins", Wrap(Unavailable, fmt.Errorf("x: %w", errSentinel)), Unavailable, "x: unknown module", errSentinel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.wantKind {
				t.Errorf("KindOf = %v, want %v", got, tc.wantKind)
			}
			if got := tc.err.Error(); got != tc.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tc.wantMsg)
			}
			if tc.wantIs != nil && !errors.Is(tc.err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", tc.err, tc.wantIs)
			}
			if !Is(tc.err, tc.wantKind) {
				t.Errorf("Is(err, %v) = false", tc.wantKind)
			}
		})
	}
}

func TestWrapNil(t *testing.T) {
	if Wrap(Invalid, nil) != nil {
		t.Fatal("Wrap(nil) must stay nil")
	}
	if Is(nil, Internal) {
		t.Fatal("Is(nil, ...) must be false")
	}
}

func TestKindString(t *testing.T) {
	if NotFound.String() != "not found" || Kind(200).String() != "kind(200)" {
		t.Fatalf("names: %q %q", NotFound, Kind(200))
	}
}
