package demo

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/store"
)

// The demo's web table gets each module its master runs that the original
// dump lacks (1008 主机信息), with the master's parameters; a restart keeps
// what an admin changed rather than seeding over it.
func TestDemoSeedsTheMastersModules(t *testing.T) {
	dataDir := t.TempDir()
	start := func() *Instance {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		inst, err := Start(ctx, Options{Listen: "127.0.0.1:0", DataDir: dataDir, ModulesDir: "../../modules", Log: zerolog.Nop()})
		if err != nil {
			t.Fatalf("demo did not start: %v", err)
		}
		return inst
	}
	stop := func(inst *Instance) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := inst.Close(ctx); err != nil {
			t.Fatalf("closing demo: %v", err)
		}
	}
	ctx := context.Background()

	inst := start()
	m, err := inst.Store.GetModule(ctx, 1008)
	if err != nil {
		stop(inst)
		t.Fatalf("module 1008 not seeded from the master: %v", err)
	}
	if m.Name != "主机信息" {
		t.Errorf("module 1008 seeded as %q", m.Name)
	}
	orig, err := inst.Store.GetModule(ctx, 1001)
	if err != nil || orig.Caption == "" || orig.Caption[0] != '[' {
		t.Errorf("module 1001 should keep the original dump's caption, got %+v (%v)", orig, err)
	}
	m.Name = "主机信息 (edited)"
	if err := inst.Store.UpdateModule(ctx, store.Module{ID: m.ID, Name: m.Name, Caption: m.Caption, Params: m.Params}); err != nil {
		stop(inst)
		t.Fatal(err)
	}
	stop(inst)

	inst = start()
	defer stop(inst)
	m, err = inst.Store.GetModule(ctx, 1008)
	if err != nil || m.Name != "主机信息 (edited)" {
		t.Fatalf("a restart re-seeded module 1008: %+v (%v)", m, err)
	}
}
