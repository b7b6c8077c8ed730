package relay

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/omserver/omserver-go/internal/relay/relaypb"
)

func TestCatalogFromFirstUsableMaster(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range schemes {
		t.Run(scheme, func(t *testing.T) {
			live := startServer(t, serverConfig(p, scheme), newFakeExec(instantRun))
			// A dead master and one with another login come first: both
			// are skipped.
			wrongLogin := serverConfig(p, scheme)
			wrongLogin.Password = "another password"
			other := startServer(t, wrongLogin, newFakeExec(instantRun))
			c := newTestClient(t, clientConfig(p, scheme, closedPort(t), other, live))
			got, err := c.Catalog(testCtx(t))
			if err != nil {
				t.Fatalf("Catalog: %v", err)
			}
			if !reflect.DeepEqual(got, fakeCatalog) {
				t.Fatalf("Catalog = %+v, want %+v", got, fakeCatalog)
			}
		})
	}
}

func TestCatalogAllMastersDown(t *testing.T) {
	p := newPKI(t)
	a, b := closedPort(t), closedPort(t)
	c := newTestClient(t, clientConfig(p, "aead", a, b))
	_, err := c.Catalog(testCtx(t))
	if !errors.Is(err, ErrMasterDown) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("Catalog with every master down: %v", err)
	}
}

func TestCatalogIsSealedAndNeedsLogin(t *testing.T) {
	p := newPKI(t)
	addr := startServer(t, serverConfig(p, "aead"), newFakeExec(instantRun))
	rc := rawConn(t, p, addr, "")
	if _, err := rc.Catalog(testCtx(t), &relaypb.CatalogRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Catalog without login: %v, want Unauthenticated", err)
	}
	env, err := rc.Catalog(loginRaw(t, rc), &relaypb.CatalogRequest{})
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	if strings.Contains(env.GetSealed(), "restart a service") || strings.Contains(env.GetSealed(), "nginx") {
		t.Fatal("the catalog travels in the clear")
	}
	// Another SECRET_KEY cannot open it.
	cfg := clientConfig(p, "aead", addr)
	cfg.SecretKey = "not the shared key"
	c := newTestClient(t, cfg)
	if _, err := c.Catalog(testCtx(t)); !errors.Is(err, ErrBadResult) {
		t.Fatalf("Catalog with the wrong key: %v, want ErrBadResult", err)
	}
}

func TestOpenCatalogRefusesNonsense(t *testing.T) {
	codec := mustCodec(t, "aead", testSecret)
	seal := func(doc string) string {
		s, err := codec.Seal([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name, doc, want string
	}{
		{"duplicate id", `{"modules":[{"id":1,"name":"a","params":[],"version":"v"},{"id":1,"name":"b","params":[],"version":"v"}]}`, "twice"},
		{"zero id", `{"modules":[{"id":0,"name":"a","params":[],"version":"v"}]}`, "not positive"},
		{"no name", `{"modules":[{"id":1,"params":[],"version":"v"}]}`, "no name"},
		{"no version", `{"modules":[{"id":1,"name":"a","params":[]}]}`, "no version"},
		{"no params", `{"modules":[{"id":1,"name":"a","version":"v"}]}`, "not JSON"},
		{"unknown field", `{"modules":[],"extra":1}`, "bad catalog"},
		{"trailing data", `{"modules":[]} {}`, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openCatalog(codec, seal(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("openCatalog(%s) = %v, want an error mentioning %q", tt.doc, err, tt.want)
			}
		})
	}
	mods, err := openCatalog(codec, seal(`{"modules":[]}`))
	if err != nil || mods == nil || len(mods) != 0 {
		t.Fatalf("empty catalog: %v, %v", mods, err)
	}
	if _, err := openCatalog(codec, seal(`{"modules":[{"id":5,"name":"x","params":{"a":1},"version":"v"}]}`)); err != nil {
		t.Fatalf("a catalog with an object schema is valid JSON: %v", err)
	}
}
