package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/param"
)

// Module column limits after migration 00002.
const (
	MaxModuleNameLen    = 64
	MaxModuleCaptionLen = 255
	MaxModuleExtendLen  = legacyform.MaxInputBytes - 1 // a MySQL TEXT holds 65535 bytes
)

// Module is one row of module_list. Caption and Extend are the original's
// HTML fragments, kept for the legacy endpoints; pages never render them
// as HTML. Params is the declared parameter schema: from module_params when
// set, otherwise parsed from Extend.
type Module struct {
	ID      int64         `json:"id"`
	Name    string        `json:"name"`
	Caption string        `json:"caption"`
	Extend  string        `json:"extend,omitempty"`
	Params  []param.Param `json:"params"`
	// FormError is set by ListModules when the stored form cannot be
	// parsed: the module is listed (one odd legacy row must not hide every
	// module) but has no usable parameters, and GetModule returns the error.
	FormError string `json:"form_error,omitempty"`
}

type moduleRow struct {
	ID      int64          `db:"ID"`
	Name    string         `db:"module_name"`
	Caption string         `db:"module_caption"`
	Extend  string         `db:"module_extend"`
	Params  sql.NullString `db:"module_params"`
}

const moduleCols = `ID, module_name, module_caption, module_extend, module_params`

func (r moduleRow) module() (Module, error) {
	m := Module{ID: r.ID, Name: r.Name, Caption: r.Caption, Extend: r.Extend, Params: []param.Param{}}
	if r.Params.Valid && strings.TrimSpace(r.Params.String) != "" {
		if err := json.Unmarshal([]byte(r.Params.String), &m.Params); err != nil {
			return Module{}, fmt.Errorf("module %d: stored parameter schema is not valid JSON (%v): %w", r.ID, err, ErrInvalid)
		}
		if err := legacyform.Validate(m.Params); err != nil {
			return Module{}, fmt.Errorf("module %d: stored parameter schema (%v): %w", r.ID, err, ErrInvalid)
		}
		return m, nil
	}
	ps, err := legacyform.Parse(r.Extend)
	if err != nil {
		return Module{}, fmt.Errorf("module %d: its stored form cannot be used (%v): %w", r.ID, err, ErrInvalid)
	}
	if ps != nil {
		m.Params = ps
	}
	return m, nil
}

// ListModules returns every module, by id. A module whose stored form
// cannot be parsed is listed with FormError set and no parameters.
func (s *Store) ListModules(ctx context.Context) ([]Module, error) {
	var rows []moduleRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+moduleCols+` FROM module_list ORDER BY ID`); err != nil {
		return nil, fmt.Errorf("store: list modules: %w", err)
	}
	out := make([]Module, 0, len(rows))
	for _, r := range rows {
		m, err := r.module()
		if err != nil {
			m = Module{ID: r.ID, Name: r.Name, Caption: r.Caption, Extend: r.Extend, Params: []param.Param{}, FormError: err.Error()}
		}
		out = append(out, m)
	}
	return out, nil
}

// GetModule returns one module with its parameter schema.
func (s *Store) GetModule(ctx context.Context, id int64) (Module, error) {
	var r moduleRow
	if err := s.db.GetContext(ctx, &r, `SELECT `+moduleCols+` FROM module_list WHERE ID = ?`, id); err != nil {
		return Module{}, classify(err, fmt.Sprintf("module %d", id))
	}
	return r.module()
}

// prepareModule validates m and returns the module_extend and module_params
// values to store. When Params is given it is authoritative and stored as
// JSON; if Extend is empty, a legacy rendering of Params is stored in it so
// the legacy module_info endpoint keeps working. When Params is empty,
// Extend must parse as a legacy form, and module_params stays NULL.
func prepareModule(m Module) (extend string, params sql.NullString, err error) {
	if err := checkLegacyName("module", m.Name, MaxModuleNameLen); err != nil {
		return "", params, err
	}
	if strings.Contains(m.Name, "@@") || strings.Contains(m.Caption, "@@") {
		return "", params, invalid("module: name and caption may not contain \"@@\", the field separator of the legacy module_info answer")
	}
	if !utf8.ValidString(m.Caption) || utf8.RuneCountInString(m.Caption) > MaxModuleCaptionLen {
		return "", params, invalid("module: caption must be valid UTF-8 of at most %d characters", MaxModuleCaptionLen)
	}
	extend = m.Extend
	if len(m.Params) > 0 {
		if err := legacyform.Validate(m.Params); err != nil {
			return "", params, invalid("module: parameters: %v", err)
		}
		b, err := json.Marshal(m.Params)
		if err != nil {
			return "", params, fmt.Errorf("store: encode parameters: %w", err)
		}
		params = sql.NullString{String: string(b), Valid: true}
		if strings.TrimSpace(extend) == "" {
			extend = legacyform.Render(m.Params)
		}
	} else if _, err := legacyform.Parse(extend); err != nil {
		return "", params, invalid("module: form: %v", err)
	}
	if len(extend) > MaxModuleExtendLen || !utf8.ValidString(extend) {
		return "", params, invalid("module: form HTML must be valid UTF-8 of at most %d bytes", MaxModuleExtendLen)
	}
	return extend, params, nil
}

// CreateModule adds a module and returns its id. With m.ID > 0 that id is
// used (ErrConflict if taken), which is how the original modules 1001-1007
// are seeded; otherwise the next id is assigned.
func (s *Store) CreateModule(ctx context.Context, m Module) (int64, error) {
	extend, params, err := prepareModule(m)
	if err != nil {
		return 0, err
	}
	if m.ID < 0 {
		return 0, invalid("module: id %d is negative", m.ID)
	}
	var res sql.Result
	if m.ID > 0 {
		res, err = s.db.ExecContext(ctx, `INSERT INTO module_list (ID, module_name, module_caption, module_extend, module_params) VALUES (?, ?, ?, ?, ?)`,
			m.ID, m.Name, m.Caption, extend, params)
	} else {
		res, err = s.db.ExecContext(ctx, `INSERT INTO module_list (module_name, module_caption, module_extend, module_params) VALUES (?, ?, ?, ?)`,
			m.Name, m.Caption, extend, params)
	}
	if err != nil {
		return 0, classify(err, fmt.Sprintf("create module %q", m.Name))
	}
	if m.ID > 0 {
		return m.ID, nil
	}
	return res.LastInsertId()
}

// UpdateModule replaces a module's name, caption and form. As in
// CreateModule, Params (if given) is authoritative; to change the form of a
// legacy module give new Params, or a new Extend and no Params.
func (s *Store) UpdateModule(ctx context.Context, m Module) error {
	extend, params, err := prepareModule(m)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM module_list WHERE ID = ?`, m.ID); err != nil {
			return classify(err, fmt.Sprintf("module %d", m.ID))
		}
		_, err := tx.ExecContext(ctx, `UPDATE module_list SET module_name = ?, module_caption = ?, module_extend = ?, module_params = ? WHERE ID = ?`,
			m.Name, m.Caption, extend, params, m.ID)
		return classify(err, fmt.Sprintf("update module %d", m.ID))
	})
}

// DeleteModule removes a module. Its past runs keep their records.
func (s *Store) DeleteModule(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM module_list WHERE ID = ?`, id)
	if err != nil {
		return classify(err, fmt.Sprintf("delete module %d", id))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("module %d: %w", id, ErrNotFound)
	}
	return nil
}
