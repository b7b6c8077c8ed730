package migrations

import (
	"io/fs"
	"reflect"
	"testing"
)

// Both dialects have the same migration versions, so a database's version
// means the same schema whichever engine holds it.
func TestDialectsShareVersions(t *testing.T) {
	names := map[string][]string{}
	for _, d := range []string{SQLite, MySQL} {
		fsys, err := FS(d)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) < 3 {
			t.Fatalf("%s: %v, %v", d, files, err)
		}
		names[d] = files
	}
	if !reflect.DeepEqual(names[SQLite], names[MySQL]) {
		t.Fatalf("migration files differ:\nsqlite %v\nmysql  %v", names[SQLite], names[MySQL])
	}
	if _, err := FS("postgres"); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}
