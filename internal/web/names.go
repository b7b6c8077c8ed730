package web

import (
	"context"
	"fmt"
	"strings"

	"github.com/omserver/omserver-go/internal/store"
)

// Category names are what operators pick from on the dashboard, so two
// entries with the same name would make them guess. The original schema
// has no unique index on them (and existing databases may hold
// duplicates, so one cannot be added by a migration); the web tier refuses
// to create new ones instead.

// sameName compares names as the original MySQL schema's default collation
// does: case-insensitively, ignoring surrounding space.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// funNameFree refuses a function category name another one (not self) has.
func (s *Server) funNameFree(ctx context.Context, name string, self int64) error {
	if err := legacyName("function category", name); err != nil {
		return err
	}
	list, err := s.st.ListFunCategs(ctx)
	if err != nil {
		return fmt.Errorf("list function categories: %w", err)
	}
	for _, c := range list {
		if c.ID != self && sameName(c.Name, name) {
			return fmt.Errorf("function category %d is already named %q; choose another name: %w", c.ID, c.Name, store.ErrConflict)
		}
	}
	return nil
}

// appNameFree refuses an application name another application (not self)
// of the same function category has.
func (s *Server) appNameFree(ctx context.Context, funID int64, name string, self int64) error {
	if err := legacyName("application category", name); err != nil {
		return err
	}
	if funID <= 0 {
		return nil // the store refuses the category itself
	}
	list, err := s.st.ListAppCategs(ctx, funID)
	if err != nil {
		return fmt.Errorf("list application categories: %w", err)
	}
	for _, c := range list {
		if c.ID != self && sameName(c.Name, name) {
			return fmt.Errorf("application category %d of this function category is already named %q; choose another name: %w", c.ID, c.Name, store.ErrConflict)
		}
	}
	return nil
}

// legacyName refuses a name that would break the legacy text endpoints'
// formats, which join names with "," (and "|" between the name and id
// lists, which the store already refuses): a comma in a name shifts every
// name after it against its id for the scripts that parse them.
func legacyName(what, name string) error {
	if strings.Contains(name, ",") {
		return badReq("%s name %q contains a comma, which the legacy /autoadmin/ lists use as their separator", what, clipRunes(name, 64))
	}
	return nil
}

// legacyModule refuses module texts that would break module_list (names
// joined with ",") or module_info (fields joined with "@@").
func legacyModule(name, caption string) error {
	if err := legacyName("module", name); err != nil {
		return err
	}
	if strings.Contains(name, "@@") || strings.Contains(caption, "@@") {
		return badReq("module name and description may not contain \"@@\", the field separator of the legacy /autoadmin/module_info/ answer")
	}
	return nil
}
