// Package facts reads what the built-in facts module (modules/Mid_1008.yaml,
// psutil-style, the book's chapter 1) prints on a host and keeps each
// server's latest facts: when a run of that module finishes, every ok
// host's output is parsed and stored with its time, for the inventory and
// for filters such as "disk / above 90%".
package facts

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header is the first line of the module's output.
const Header = "omsfacts=1"

// Facts are one host's facts.
type Facts struct {
	Hostname       string     `json:"hostname,omitempty"`
	CPUCount       int        `json:"cpu_count"`
	CPUModel       string     `json:"cpu_model,omitempty"`
	Load           [3]float64 `json:"load"` // 1, 5, 15 minutes
	MemTotalKB     int64      `json:"mem_total_kb"`
	MemAvailableKB int64      `json:"mem_available_kb"`
	SwapTotalKB    int64      `json:"swap_total_kb"`
	SwapFreeKB     int64      `json:"swap_free_kb"`
	Disks          []Disk     `json:"disks"`
	Ifaces         []Iface    `json:"ifaces"`
	OS             string     `json:"os,omitempty"`
	Kernel         string     `json:"kernel,omitempty"`
	Arch           string     `json:"arch,omitempty"`
	UptimeS        int64      `json:"uptime_s"`
}

// Disk is one mounted file system.
type Disk struct {
	Mount   string  `json:"mount"`
	SizeKB  int64   `json:"size_kb"`
	UsedKB  int64   `json:"used_kb"`
	AvailKB int64   `json:"avail_kb"`
	UsedPct float64 `json:"used_pct"` // used / (used + available), as df computes it
}

// Iface is one network interface.
type Iface struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac,omitempty"`
	State string   `json:"state,omitempty"`
	Addrs []string `json:"addrs,omitempty"` // CIDR
}

// MemUsedPct is the share of memory not available, in percent.
func (f Facts) MemUsedPct() float64 {
	if f.MemTotalKB <= 0 {
		return 0
	}
	return pct(f.MemTotalKB-f.MemAvailableKB, f.MemTotalKB)
}

func pct(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	v := float64(part) * 100 / float64(whole)
	return float64(int64(v*10+0.5)) / 10
}

// Limits on what a host may report.
const (
	maxLines   = 2000
	maxValue   = 512
	maxDisks   = 200
	maxIfaces  = 200
	maxAddrs   = 64
	maxBytes   = 256 << 10
	maxMountKB = 1 << 50
)

// ErrNotFacts is output that is not the facts module's.
var ErrNotFacts = errors.New("facts: output does not start with " + Header)

// Parse reads the module's output. Unknown keys are skipped (a newer
// module may report more); a known key with a bad value is an error
// naming its line.
func Parse(out string) (Facts, error) {
	var f Facts
	if len(out) > maxBytes {
		return f, fmt.Errorf("facts: output is larger than %d bytes", maxBytes)
	}
	if !utf8.ValidString(out) {
		out = strings.ToValidUTF8(out, "\uFFFD")
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 4096), maxBytes)
	n := 0
	ifaces := map[string]int{}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		n++
		if n == 1 {
			if line != Header {
				return f, ErrNotFacts
			}
			continue
		}
		if n > maxLines {
			return f, fmt.Errorf("facts: more than %d lines", maxLines)
		}
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return f, fmt.Errorf("facts: line %d is not key=value", n)
		}
		if len(val) > maxValue {
			return f, fmt.Errorf("facts: line %d: value longer than %d bytes", n, maxValue)
		}
		if err := f.set(key, val, ifaces); err != nil {
			return f, fmt.Errorf("facts: line %d (%s): %w", n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("facts: %w", err)
	}
	if n == 0 {
		return f, ErrNotFacts
	}
	if f.CPUCount <= 0 {
		return f, errors.New("facts: no cpu_count")
	}
	return f, nil
}

func (f *Facts) set(key, val string, ifaces map[string]int) error {
	var err error
	switch key {
	case "hostname":
		f.Hostname = val
	case "cpu_count":
		f.CPUCount, err = strconv.Atoi(val)
		if err == nil && (f.CPUCount < 1 || f.CPUCount > 1<<16) {
			err = errors.New("out of range")
		}
	case "cpu_model":
		f.CPUModel = val
	case "load":
		fs := strings.Fields(val)
		if len(fs) != 3 {
			return errors.New("want three numbers")
		}
		for i, s := range fs {
			if f.Load[i], err = strconv.ParseFloat(s, 64); err != nil || f.Load[i] < 0 || f.Load[i] > 1e6 {
				return errors.New("not a load average")
			}
		}
	case "mem_total_kb":
		f.MemTotalKB, err = kb(val)
	case "mem_available_kb":
		f.MemAvailableKB, err = kb(val)
	case "swap_total_kb":
		f.SwapTotalKB, err = kb(val)
	case "swap_free_kb":
		f.SwapFreeKB, err = kb(val)
	case "disk":
		fs := strings.Fields(val)
		if len(fs) != 4 {
			return errors.New("want mount size used available")
		}
		if len(f.Disks) >= maxDisks {
			return fmt.Errorf("more than %d disks", maxDisks)
		}
		d := Disk{Mount: fs[0]}
		if !strings.HasPrefix(d.Mount, "/") {
			return errors.New("mount point is not absolute")
		}
		if d.SizeKB, err = kb(fs[1]); err != nil {
			return err
		}
		if d.UsedKB, err = kb(fs[2]); err != nil {
			return err
		}
		if d.AvailKB, err = kb(fs[3]); err != nil {
			return err
		}
		d.UsedPct = pct(d.UsedKB, d.UsedKB+d.AvailKB)
		f.Disks = append(f.Disks, d)
	case "iface":
		fs := strings.Fields(val)
		if len(fs) < 1 || len(fs) > 3 {
			return errors.New("want name mac state")
		}
		if len(f.Ifaces) >= maxIfaces {
			return fmt.Errorf("more than %d interfaces", maxIfaces)
		}
		it := Iface{Name: fs[0]}
		if len(fs) > 1 && fs[1] != "-" {
			it.MAC = fs[1]
		}
		if len(fs) > 2 {
			it.State = fs[2]
		}
		ifaces[it.Name] = len(f.Ifaces)
		f.Ifaces = append(f.Ifaces, it)
	case "addr":
		fs := strings.Fields(val)
		if len(fs) != 2 {
			return errors.New("want interface address/prefix")
		}
		name := strings.TrimSuffix(fs[0], ":")
		i, ok := ifaces[name]
		if !ok {
			if len(f.Ifaces) >= maxIfaces {
				return fmt.Errorf("more than %d interfaces", maxIfaces)
			}
			i = len(f.Ifaces)
			ifaces[name] = i
			f.Ifaces = append(f.Ifaces, Iface{Name: name})
		}
		if len(f.Ifaces[i].Addrs) < maxAddrs {
			f.Ifaces[i].Addrs = append(f.Ifaces[i].Addrs, fs[1])
		}
	case "os":
		f.OS = val
	case "kernel":
		f.Kernel = val
	case "arch":
		f.Arch = val
	case "uptime_s":
		f.UptimeS, err = kb(val)
	}
	return err
}

// kb parses a non-negative count.
func kb(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > maxMountKB {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	return v, nil
}
