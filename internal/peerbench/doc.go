// Package peerbench holds the fan-out benchmark that compares OMServer-Go's
// master with a minimal SSH client (the floor) and with the tools the
// original OMServer drove or its users reach for (ansible, parallel-ssh),
// each a process of its own against the same real sshd on loopback, side
// by side, so that their ratios (not the absolute figures of a shared,
// noisy machine) are what it reports. See BenchmarkFanoutPeers and
// `make bench`; fanfloor and fanmaster are its two Go clients.
package peerbench
