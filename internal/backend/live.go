package backend

import (
	"sync"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// liveOutput is one host's stdout and stderr writers: each write goes to
// the capped buffer of the host's result and, when the run has an
// OnOutput hook, to the hook as it arrives.
//
// What the hook sees (the contract documented on Options.OnOutput):
//   - calls are serialised for the host (one mutex for both streams);
//   - data is a copy the hook may keep;
//   - a chunk never ends inside a UTF-8 sequence: an incomplete trailing
//     sequence is held back until the next write or the end of the
//     command, so a reader that turns chunks into strings never splits a
//     character (the operators' output is often Chinese);
//   - at most the output cap is passed on per stream, the same bytes the
//     result keeps, so a runaway command floods neither the result nor
//     the live stream;
//   - after the host's run ends the hook is never called again, even if a
//     straggling write arrives.
type liveOutput struct {
	mu     sync.Mutex
	hook   func(task.Stream, []byte)
	closed bool
	stdout *streamWriter
	stderr *streamWriter
}

type streamWriter struct {
	live    *liveOutput
	stream  task.Stream
	buf     *task.CappedBuffer
	pending []byte // incomplete UTF-8 sequence held back, at most 3 bytes
	budget  int    // bytes the hook may still be given
}

func newLiveOutput(out *Output, opts Options) *liveOutput {
	limit := opts.OutputCap
	if limit <= 0 {
		limit = task.DefaultOutputCap
	}
	l := &liveOutput{hook: opts.OnOutput}
	l.stdout = &streamWriter{live: l, stream: task.Stdout, buf: out.Stdout, budget: limit}
	l.stderr = &streamWriter{live: l, stream: task.Stderr, buf: out.Stderr, budget: limit}
	return l
}

// Write keeps p in the result's buffer and passes it to the hook. It
// always reports the whole of p written: the cap drops bytes, never the
// command.
func (w *streamWriter) Write(p []byte) (int, error) {
	l := w.live
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = w.buf.Write(p)
	if l.hook == nil || l.closed || w.budget <= 0 {
		return len(p), nil
	}
	data := append(w.pending, p...)
	cut := completePrefix(data)
	w.pending = append([]byte(nil), data[cut:]...)
	w.emit(data[:cut])
	return len(p), nil
}

// emit passes data, up to the budget, to the hook; l.mu is held.
func (w *streamWriter) emit(data []byte) {
	if len(data) > w.budget {
		data = data[:w.budget]
	}
	if len(data) == 0 {
		return
	}
	w.budget -= len(data)
	w.live.hook(w.stream, append([]byte(nil), data...))
}

// completePrefix is the length of the longest prefix of b that does not
// end inside a UTF-8 sequence. Invalid bytes count as complete: they are
// passed on, never held.
func completePrefix(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

// flush passes on what was held back at the end of a command.
func (l *liveOutput) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hook == nil || l.closed {
		return
	}
	for _, w := range []*streamWriter{l.stdout, l.stderr} {
		if len(w.pending) > 0 {
			p := w.pending
			w.pending = nil
			w.emit(p)
		}
	}
}

// close flushes and stops calling the hook.
func (l *liveOutput) close() {
	l.flush()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
