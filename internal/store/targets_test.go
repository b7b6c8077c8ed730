package store

import (
	"errors"
	"testing"
)

// TestTargetServers: a whole application or function category as targets,
// each server once, bounded by the limit; unknown ids are refused.
func TestTargetServers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		fun, err := s.CreateFunCateg(ctx, "T.Fun")
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.CreateFunCateg(ctx, "T.Other")
		if err != nil {
			t.Fatal(err)
		}
		a1, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fun, Name: "a1"})
		a2, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: fun, Name: "a2"})
		a3, _ := s.CreateAppCateg(ctx, AppCateg{FunCategID: other, Name: "a3"})
		for _, sv := range []Server{
			{IP: "127.0.0.2", Name: "b", AppID: a1}, {IP: "127.0.0.1", Name: "a", AppID: a1},
			{IP: "127.0.0.3", Name: "c", AppID: a2}, {IP: "127.0.0.4", Name: "d", AppID: a3},
		} {
			if _, err := s.UpsertServer(ctx, sv); err != nil {
				t.Fatal(err)
			}
		}
		ips := func(list []Server) (out []string) {
			for _, sv := range list {
				out = append(out, sv.IP)
			}
			return out
		}
		tests := []struct {
			name       string
			apps, funs []int64
			limit      int
			want       []string
			wantErr    error
		}{
			{"one application", []int64{a1}, nil, 10, []string{"127.0.0.1", "127.0.0.2"}, nil},
			{"a category", nil, []int64{fun}, 10, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, nil},
			{"overlap counted once", []int64{a1, a3}, []int64{fun}, 10, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, nil},
			{"nothing asked", nil, nil, 10, nil, nil},
			{"over the limit", nil, []int64{fun}, 2, nil, ErrInvalid},
			{"unknown application", []int64{99999}, nil, 10, nil, ErrInvalid},
			{"unknown category", nil, []int64{99999}, 10, nil, ErrInvalid},
		}
		for _, tt := range tests {
			got, err := s.TargetServers(ctx, tt.apps, tt.funs, tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: err %v, want %v", tt.name, err, tt.wantErr)
				}
				continue
			}
			if err != nil || len(got) != len(tt.want) {
				t.Errorf("%s: %v, %v; want %v", tt.name, ips(got), err, tt.want)
				continue
			}
			for i := range got {
				if got[i].IP != tt.want[i] {
					t.Errorf("%s: %v, want %v", tt.name, ips(got), tt.want)
					break
				}
			}
		}
	})
}
