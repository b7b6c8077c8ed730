// Package apperr gives errors a category that callers act on without
// reading their text: the web tier maps the category to an HTTP status in
// one place, the relay maps it to a gRPC code, and the message of any error
// that is not Internal is written for the person who made the request.
//
// An error gets its category by wrapping a categorised error anywhere in its
// chain, usually a package's sentinel:
//
//	var ErrUnknownModule = apperr.New(apperr.NotFound, "unknown module")
//	return fmt.Errorf("%w: module %d is not installed on this master", ErrUnknownModule, id)
//
// or directly with Errorf. An error without a category is Internal: its text
// may name files, queries or addresses, so it is logged, never shown.
package apperr

import (
	"errors"
	"fmt"
)

// Kind is the category of an error.
type Kind uint8

// The categories. The zero value is Internal, so an error nobody
// categorised is never shown to a caller as if it were their fault.
const (
	Internal        Kind = iota // a bug or an unexpected failure: logged, a generic message shown
	Invalid                     // the request is malformed or breaks a rule; repeating it fails again
	NotFound                    // what the request names does not exist
	Conflict                    // the request clashes with the current state (duplicate, in use, already done)
	Unavailable                 // a dependency is down or the service is stopping; retrying later may work
	Forbidden                   // the caller is known but may not do this
	Unauthenticated             // the caller is not known (no or bad credentials)
	TooLarge                    // the request is bigger than allowed
	Interrupted                 // work was accepted and then lost contact before it finished
	TooMany                     // the caller sent too much too fast; retrying later works
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not found",
	Conflict:        "conflict",
	Unavailable:     "unavailable",
	Forbidden:       "forbidden",
	Unauthenticated: "unauthenticated",
	TooLarge:        "too large",
	Interrupted:     "interrupted",
	TooMany:         "too many requests",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is an error with a category. Msg is the text for the caller; Err,
// when set, is the cause it wraps.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if _, ok := e.Err.(hidden); ok || e.Err == nil {
		return e.Msg
	}
	if e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with message msg, typically a sentinel.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Msg: msg} }

// Errorf formats a message of kind k; a %w verb wraps its operand as with
// fmt.Errorf, so errors.Is still finds it.
func Errorf(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: err.Error(), Err: unwrapped(err)}
}

// unwrapped returns what fmt.Errorf wrapped with %w, if anything, so Errorf
// keeps the chain without repeating the text.
func unwrapped(err error) error {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return hidden{u.Unwrap()}
	case interface{ Unwrap() []error }:
		return hidden{errors.Join(u.Unwrap()...)}
	}
	return nil
}

// hidden keeps a wrapped error reachable by errors.Is and errors.As while
// Error() prints only the formatted message it is already part of.
type hidden struct{ err error }

func (h hidden) Error() string { return "" }
func (h hidden) Unwrap() error { return h.err }

// Wrap gives err the category k, keeping its text and chain. A nil err
// stays nil.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// KindOf returns the category of err: that of the outermost *Error in its
// chain, Internal when there is none. A nil error has no category and
// KindOf panics on it, as that is always a caller's bug.
func KindOf(err error) Kind {
	if err == nil {
		panic("apperr.KindOf(nil)")
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
