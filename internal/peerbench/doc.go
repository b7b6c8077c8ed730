// Package peerbench holds benchmarks that compare OMServer-Go's backends
// with the tools the original OMServer drove, run side by side in one
// process against the same real sshd on loopback, so that their ratio (not
// the absolute figures of a shared, noisy machine) is what they report.
// It has no code of its own: see peer_bench_test.go and `make bench`.
package peerbench
