package funcrpc

// An in-test funcd. It follows Func's wire protocol as its source defines
// it (https://github.com/makkalot/func): XML-RPC (http://xmlrpc.com/spec.md)
// over HTTPS that demands a client certificate from the certmaster CA
// (func/minion/AuthedXMLRPCServer.py, func/minion/server.py), methods named
// "<module>.<method>", command.run(command) running
// Popen(command, shell=True) and answering (returncode, stdout, stderr)
// (func/minion/modules/command.py), copyfile.copyfile(filepath, filebuf,
// mode, uid, gid) writing filebuf.data and answering 1, 0 or -1
// (func/minion/modules/copyfile.py), a minion-side exception answered as
// ["REMOTE_ERROR", type, value, traceback] (certmaster utils.nice_exception),
// and an unknown method answered as an XML-RPC fault. Answers are laid out
// the way Python 2's xmlrpclib writes them.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority for the test PKI.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate. With no dnsNames and no ips it carries a
// CN only, as certmaster's certificates do.
func (ca *testCA) issue(t *testing.T, cn string, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dnsNames, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, pair
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// funcdMode changes how the fake minion answers command.run.
type funcdMode int

const (
	funcdRuns        funcdMode = iota // runs the command
	funcdRaises                       // answers REMOTE_ERROR
	funcdNoSuchCall                   // answers a fault, as for an unknown method
	funcdHangs                        // never answers
	funcdCopyFails                    // copyfile answers -1
	funcdRawAnswer                    // answers raw bytes
	funcdHTTPFailure                  // answers HTTP 500
)

type recordedCall struct {
	Method   string
	Params   []xmlValue
	ClientCN string
}

type fakeFuncd struct {
	srv     *httptest.Server
	addr    string
	mu      sync.Mutex
	mode    funcdMode
	raw     []byte
	calls   []recordedCall
	hanging chan struct{}
}

// newFakeFuncd starts a minion on 127.0.0.1 with minionCert that accepts
// only clients with a certificate from clientCA.
func newFakeFuncd(t *testing.T, minionCert tls.Certificate, clientCA *testCA) *fakeFuncd {
	t.Helper()
	f := &fakeFuncd{hanging: make(chan struct{}, 8)}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{minionCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.addr = f.srv.Listener.Addr().String()
	return f
}

func (f *fakeFuncd) set(mode funcdMode, raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode, f.raw = mode, raw
}

func (f *fakeFuncd) recorded() []recordedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedCall(nil), f.calls...)
}

// xmlValue is one XML-RPC <value>, decoded independently of the backend's
// own decoder.
type xmlValue struct {
	String *string `xml:"string"`
	Int    *string `xml:"int"`
	I4     *string `xml:"i4"`
	Base64 *string `xml:"base64"`
	Text   string  `xml:",chardata"`
}

func (v xmlValue) str() string {
	if v.String != nil {
		return *v.String
	}
	return v.Text
}

func (v xmlValue) integer() (int, bool) {
	s := v.Int
	if s == nil {
		s = v.I4
	}
	if s == nil {
		return 0, false
	}
	n, err := strconv.Atoi(*s)
	return n, err == nil
}

type methodCall struct {
	XMLName    xml.Name `xml:"methodCall"`
	MethodName string   `xml:"methodName"`
	Params     []struct {
		Value xmlValue `xml:"value"`
	} `xml:"params>param"`
}

func (f *fakeFuncd) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var mc methodCall
	if err := xml.NewDecoder(r.Body).Decode(&mc); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call := recordedCall{Method: mc.MethodName, ClientCN: r.TLS.PeerCertificates[0].Subject.CommonName}
	for _, p := range mc.Params {
		call.Params = append(call.Params, p.Value)
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	mode, raw := f.mode, f.raw
	f.mu.Unlock()

	w.Header().Set("Content-Type", "text/xml")
	switch {
	case mode == funcdHTTPFailure:
		http.Error(w, "boom", http.StatusInternalServerError)
	case mode == funcdRawAnswer:
		_, _ = w.Write(raw)
	case mode == funcdHangs:
		f.hanging <- struct{}{}
		<-r.Context().Done()
	case mode == funcdNoSuchCall:
		_, _ = w.Write(pyFault(1, "<class 'func.minion.codes.InvalidMethodException'>:method "+mc.MethodName+" not found"))
	case mode == funcdRaises:
		_, _ = w.Write(pyResponse(pyArray(pyString("REMOTE_ERROR"), pyString("exceptions.OSError"), pyString("[Errno 13] Permission denied"), pyString("  File ..."))))
	case mc.MethodName == "command.run" && len(call.Params) == 1:
		_, _ = w.Write(pyResponse(f.commandRun(r, call.Params[0].str())))
	case mc.MethodName == "copyfile.copyfile" && len(call.Params) == 5:
		_, _ = w.Write(pyResponse(f.copyfile(call.Params, mode)))
	default:
		_, _ = w.Write(pyFault(1, "<class 'func.minion.codes.InvalidMethodException'>:"))
	}
}

func (f *fakeFuncd) commandRun(r *http.Request, command string) string {
	cmd := exec.CommandContext(r.Context(), "/bin/sh", "-c", command)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return pyArray(pyInt(code), pyString(out.String()), pyString(errOut.String()))
}

func (f *fakeFuncd) copyfile(p []xmlValue, mode funcdMode) string {
	if mode == funcdCopyFails || p[1].Base64 == nil {
		return pyInt(-1)
	}
	data, err := base64.StdEncoding.DecodeString(*p[1].Base64)
	perm, okm := p[2].integer()
	_, oku := p[3].integer()
	_, okg := p[4].integer()
	if err != nil || !okm || !oku || !okg {
		return pyInt(-1)
	}
	path := p[0].str()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return pyInt(-1)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return pyInt(0)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return pyInt(-1)
	}
	if err := os.Chmod(path, os.FileMode(perm)); err != nil {
		return pyInt(-1)
	}
	return pyInt(1)
}

// Python 2 xmlrpclib's layout: escape only &, < and >; one element per line.
var pyEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func pyString(s string) string {
	return "<value><string>" + pyEscaper.Replace(s) + "</string></value>\n"
}
func pyInt(n int) string { return fmt.Sprintf("<value><int>%d</int></value>\n", n) }
func pyArray(vals ...string) string {
	return "<value><array><data>\n" + strings.Join(vals, "") + "</data></array></value>\n"
}
func pyResponse(v string) []byte {
	return []byte("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n" + v + "</param>\n</params>\n</methodResponse>\n")
}
func pyFault(code int, msg string) []byte {
	return []byte(fmt.Sprintf("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n"+
		"<member>\n<name>faultCode</name>\n<value><int>%d</int></value>\n</member>\n"+
		"<member>\n<name>faultString</name>\n<value><string>%s</string></value>\n</member>\n"+
		"</struct></value>\n</fault>\n</methodResponse>\n", code, pyEscaper.Replace(msg)))
}
