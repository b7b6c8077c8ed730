package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFunAndAppCategs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		web, err := s.CreateFunCateg(ctx, "Linux.Web")
		if err != nil {
			t.Fatal(err)
		}
		cache, _ := s.CreateFunCateg(ctx, "Linux.Cache")
		for _, tc := range []struct {
			name  string
			input string
			want  error
		}{
			{"empty", "", ErrInvalid},
			{"blank", "   ", ErrInvalid},
			{"too long", strings.Repeat("x", MaxCategNameLen+1), ErrInvalid},
			{"pipe breaks legacy format", "a|b", ErrInvalid},
			{"comma breaks legacy lists", "a,b", ErrInvalid},
			{"newline", "a\nb", ErrInvalid},
			{"invalid utf8", "a\xffb", ErrInvalid},
			{"64 chinese characters fit", strings.Repeat("中", MaxCategNameLen), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := s.ListFunCategs(ctx)
				_, err := s.CreateFunCateg(ctx, tc.input)
				if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
					t.Fatalf("CreateFunCateg(%q) = %v; want %v", tc.input, err, tc.want)
				}
				after, _ := s.ListFunCategs(ctx)
				if tc.want != nil && len(after) != len(before) {
					t.Fatalf("refused create changed the table: %d -> %d rows", len(before), len(after))
				}
			})
		}
		if err := s.UpdateFunCateg(ctx, web, "Linux.WWW"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetFunCateg(ctx, web); got.Name != "Linux.WWW" {
			t.Fatalf("renamed = %+v", got)
		}
		if err := s.UpdateFunCateg(ctx, 9999, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown = %v", err)
		}
		if _, err := s.GetFunCateg(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("get unknown = %v", err)
		}

		app, err := s.CreateAppCateg(ctx, AppCateg{FunCategID: web, Name: "bbs.domain.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAppCateg(ctx, AppCateg{FunCategID: 9999, Name: "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("app under unknown function category = %v; want ErrInvalid", err)
		}
		if _, err := s.CreateAppCateg(ctx, AppCateg{FunCategID: web, Name: ""}); !errors.Is(err, ErrInvalid) {
			t.Errorf("app without name = %v", err)
		}
		if got, _ := s.ListAppCategs(ctx, web); !reflect.DeepEqual(got, []AppCateg{{ID: app, FunCategID: web, Name: "bbs.domain.com"}}) {
			t.Errorf("list apps = %+v", got)
		}
		if got, _ := s.ListAppCategs(ctx, cache); len(got) != 0 {
			t.Errorf("cache apps = %+v", got)
		}
		if err := s.UpdateAppCateg(ctx, AppCateg{ID: app, FunCategID: cache, Name: "moved"}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateAppCateg(ctx, AppCateg{ID: app, FunCategID: 9999, Name: "moved"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("move to unknown = %v", err)
		}
		if got, _ := s.GetAppCateg(ctx, app); got.FunCategID != cache || got.Name != "moved" {
			t.Errorf("after move = %+v", got)
		}

		// Deleting a function category in use is refused and deletes nothing.
		err = s.DeleteFunCateg(ctx, cache)
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "1 application") {
			t.Fatalf("delete in-use function category = %v; want ErrInUse naming the count", err)
		}
		if _, err := s.GetFunCateg(ctx, cache); err != nil {
			t.Fatalf("refused delete removed the category: %v", err)
		}
		if _, err := s.GetAppCateg(ctx, app); err != nil {
			t.Fatalf("refused delete removed the application: %v", err)
		}
		if _, err := s.UpsertServer(ctx, Server{IP: "10.0.0.1", Name: "h1", AppID: app}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAppCateg(ctx, app); !errors.Is(err, ErrInUse) {
			t.Fatalf("delete app with servers = %v", err)
		}
		if err := s.DeleteServer(ctx, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAppCateg(ctx, app); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteFunCateg(ctx, cache); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteFunCateg(ctx, cache); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete = %v", err)
		}
		if err := s.DeleteAppCateg(ctx, app); !errors.Is(err, ErrNotFound) {
			t.Errorf("second app delete = %v", err)
		}
	})
}

func TestServers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		fid, _ := s.CreateFunCateg(ctx, "Linux.Web")
		a1, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fid, Name: "www"})
		a2, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fid, Name: "bbs"})
		good := Server{IP: "192.168.1.10", Name: "sn2012-07-010", WIP: "10.11.100.10", OS: "Linux", AppID: a1}
		created, err := s.UpsertServer(ctx, good)
		if err != nil || !created {
			t.Fatalf("create = %v, %v", created, err)
		}
		for _, tc := range []struct {
			name string
			sv   Server
			want error
		}{
			{"not an address", Server{IP: "host.example", Name: "h", AppID: a1}, ErrInvalid},
			{"empty address", Server{IP: "", Name: "h", AppID: a1}, ErrInvalid},
			{"non-canonical IPv6", Server{IP: "2001:DB8::1", Name: "h", AppID: a1}, ErrInvalid},
			{"zone", Server{IP: "fe80::1%eth0", Name: "h", AppID: a1}, ErrInvalid},
			{"no name", Server{IP: "10.0.0.2", AppID: a1}, ErrInvalid},
			{"name with star", Server{IP: "10.0.0.2", Name: "a*b", AppID: a1}, ErrInvalid},
			{"name too long", Server{IP: "10.0.0.2", Name: strings.Repeat("h", 65), AppID: a1}, ErrInvalid},
			{"bad external address", Server{IP: "10.0.0.2", Name: "h", WIP: "x", AppID: a1}, ErrInvalid},
			{"unknown application", Server{IP: "10.0.0.2", Name: "h", AppID: 999}, ErrInvalid},
			{"no application", Server{IP: "10.0.0.2", Name: "h"}, ErrInvalid},
			{"ipv6 ok", Server{IP: "2001:db8::1", Name: "v6", AppID: a2}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := allServers(t, s)
				_, err := s.UpsertServer(ctx, tc.sv)
				if tc.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("UpsertServer(%+v) = %v; want %v", tc.sv, err, tc.want)
				}
				if after, _ := allServers(t, s); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused upsert changed servers")
				}
			})
		}
		moved := good
		moved.AppID, moved.Name = a2, "renamed"
		if created, err := s.UpsertServer(ctx, moved); err != nil || created {
			t.Fatalf("update = %v, %v", created, err)
		}
		if got, _ := s.ListServers(ctx, a2); !reflect.DeepEqual(got, []Server{moved, {IP: "2001:db8::1", Name: "v6", AppID: a2}}) {
			t.Errorf("servers of a2 = %+v", got)
		}
		got, err := s.GetServers(ctx, []string{"2001:db8::1", "192.168.1.10"})
		if err != nil || len(got) != 2 || got[0].Name != "v6" || got[1].Name != "renamed" {
			t.Fatalf("GetServers = %+v, %v", got, err)
		}
		if _, err := s.GetServers(ctx, []string{"192.168.1.10", "10.9.9.9"}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "10.9.9.9") {
			t.Errorf("GetServers with unknown = %v", err)
		}
		if _, err := s.GetServers(ctx, []string{"192.168.1.10", "192.168.1.10"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("GetServers with duplicate = %v", err)
		}
		if err := s.DeleteServer(ctx, "10.9.9.9"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete unknown = %v", err)
		}
	})
}

func TestImportServersAllOrNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		fid, _ := s.CreateFunCateg(ctx, "Linux.Web")
		app, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fid, Name: "www"})
		if _, err := s.UpsertServer(ctx, Server{IP: "10.0.0.1", Name: "old", AppID: app}); err != nil {
			t.Fatal(err)
		}
		snapshot := func() []Server { l, _ := allServers(t, s); return l }
		before := snapshot()
		for _, tc := range []struct {
			name    string
			rows    []Server
			wantRow string
		}{
			{"bad address on row 3", []Server{
				{IP: "10.0.0.1", Name: "new", AppID: app},
				{IP: "10.0.0.2", Name: "h2", AppID: app},
				{IP: "bogus", Name: "h3", AppID: app},
			}, "row 3"},
			{"unknown application on row 2 (found in the database)", []Server{
				{IP: "10.0.0.2", Name: "h2", AppID: app},
				{IP: "10.0.0.3", Name: "h3", AppID: 4242},
			}, "row 2"},
			{"duplicate address", []Server{
				{IP: "10.0.0.2", Name: "h2", AppID: app},
				{IP: "10.0.0.2", Name: "h2b", AppID: app},
			}, "row 2"},
			{"empty", nil, "no servers"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ins, upd, err := s.ImportServers(ctx, tc.rows)
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantRow) {
					t.Fatalf("import = %d, %d, %v; want ErrInvalid naming %q", ins, upd, err, tc.wantRow)
				}
				if ins != 0 || upd != 0 {
					t.Errorf("counts %d/%d reported for a refused import", ins, upd)
				}
				if after := snapshot(); !reflect.DeepEqual(before, after) {
					t.Fatalf("refused import changed servers:\n%+v\n%+v", before, after)
				}
			})
		}
		ins, upd, err := s.ImportServers(ctx, []Server{
			{IP: "10.0.0.1", Name: "new", AppID: app},
			{IP: "10.0.0.2", Name: "h2", AppID: app},
			{IP: "::1", Name: "localhost", AppID: app},
		})
		if err != nil || ins != 2 || upd != 1 {
			t.Fatalf("import = %d inserted, %d updated, %v; want 2, 1", ins, upd, err)
		}
		if got := snapshot(); len(got) != 3 || got[0].Name != "new" || got[2].Name != "localhost" {
			t.Errorf("after import = %+v", got)
		}
	})
}
