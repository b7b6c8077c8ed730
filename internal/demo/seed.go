package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/omserver/omserver-go/internal/store"
)

// The demo's one target: this host, on the local backend. The original
// servers' addresses (192.168.x) are not seeded: the demo runs only here.
const (
	localhostIP   = "127.0.0.1"
	localhostName = "localhost"
	localhostApp  = 1 // www.domain.com under Linux.Web
)

// seed fills an empty demo database with the original categories and
// modules and adds localhost; what exists is left alone, so a restarted
// demo keeps what the user changed.
func seed(ctx context.Context, st *store.Store) error {
	if _, err := st.SeedOriginal(ctx); err != nil {
		return err
	}
	if _, err := st.GetServer(ctx, localhostIP); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("looking up %s: %w", localhostIP, err)
	}
	if _, err := st.GetAppCateg(ctx, localhostApp); err != nil {
		return nil // the user removed the application; do not re-create it
	}
	_, err := st.UpsertServer(ctx, store.Server{IP: localhostIP, Name: localhostName, OS: "Linux", AppID: localhostApp})
	return err
}
