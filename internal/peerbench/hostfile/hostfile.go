// Package hostfile reads the host lists of the fan-out benchmark: one
// address a line, blank lines skipped.
package hostfile

import (
	"bufio"
	"os"
	"strings"
)

// Read returns the addresses listed in path.
func Read(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
