package backend

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCertPool reads a PEM bundle of CA certificates (the salt-api CA,
// the Func certmaster CA) into a pool, refusing a file that holds none.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
