package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
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

// seedCatalog adds each module of the master's catalog that the web's
// table lacks (the port's own, such as 1008 主机信息), so the demo's
// dashboard offers everything its master runs. A module already in the
// table is left as it is, so a restarted demo keeps an admin's edits.
func seedCatalog(ctx context.Context, st *store.Store, catalog []task.ModuleInfo) error {
	for _, mi := range catalog {
		if _, err := st.GetModule(ctx, int64(mi.ID)); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("looking up module %d: %w", mi.ID, err)
		}
		var params param.Schema
		if err := json.Unmarshal(mi.Params, &params); err != nil {
			return fmt.Errorf("module %d: parameters from the master: %w", mi.ID, err)
		}
		m := store.Module{ID: int64(mi.ID), Name: mi.Name, Caption: mi.Caption, Params: params}
		if _, err := st.CreateModule(ctx, m); err != nil {
			return fmt.Errorf("adding module %d from the master: %w", mi.ID, err)
		}
	}
	return nil
}
