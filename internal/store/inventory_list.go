package store

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Paged reads of the inventory: the category tree and servers with
// server-side search, for the inventory page and the JSON API. The legacy
// text endpoints keep their own unpaged reads (ListFunCategs, ListAppCategs,
// ListServers), each bounded by one parent.

// FunCategRow is a function category with its number of applications.
type FunCategRow struct {
	FunCateg
	AppCount int `db:"app_count" json:"app_count"`
}

// FunCategPage is one page of function categories by id; Next is the
// cursor of the following page, "" on the last.
type FunCategPage struct {
	FunCategs []FunCategRow
	Next      string
}

// PageRequest is a page size and the cursor where the page starts.
type PageRequest struct {
	Limit  int    // default DefaultLimit, at most MaxLimit
	Cursor string // Next of the previous page; "" for the first
}

const funCursor = "fun-categs"

// ListFunCategsPage returns one page of function categories, by id, each
// with its number of applications.
func (s *Store) ListFunCategsPage(ctx context.Context, p PageRequest) (FunCategPage, error) {
	limit, err := pageLimit("function categories", p.Limit, DefaultLimit)
	if err != nil {
		return FunCategPage{}, err
	}
	var after int64
	if _, err := decodeCursor(funCursor, p.Cursor, &after); err != nil {
		return FunCategPage{}, err
	}
	var rows []FunCategRow
	err = s.db.SelectContext(ctx, &rows, `SELECT f.ID, f.server_categ_name,
		(SELECT COUNT(*) FROM server_app_categ a WHERE a.server_categ_id = f.ID) AS app_count
		FROM server_fun_categ f WHERE f.ID > ? ORDER BY f.ID LIMIT ?`, after, limit+1)
	if err != nil {
		return FunCategPage{}, fmt.Errorf("store: list function categories: %w", err)
	}
	page := FunCategPage{FunCategs: rows}
	if len(rows) > limit {
		page.FunCategs = rows[:limit]
		page.Next = encodeCursor(funCursor, rows[limit-1].ID)
	}
	if page.FunCategs == nil {
		page.FunCategs = []FunCategRow{}
	}
	return page, nil
}

// AppFilter selects application categories for ListAppCategsPage.
type AppFilter struct {
	PageRequest
	FunID int64  // applications of this function category; 0 for all
	Name  string // name contains this (case-insensitive for ASCII)
}

// AppCategRow is an application category with its function category's
// name and its number of servers.
type AppCategRow struct {
	AppCateg
	FunName     string `db:"fun_name" json:"fun_categ_name"`
	ServerCount int    `db:"server_count" json:"server_count"`
}

// AppCategPage is one page of application categories by id.
type AppCategPage struct {
	AppCategs []AppCategRow
	Next      string
}

const appCursor = "app-categs"

// maxSearchLen bounds search terms (runes).
const maxSearchLen = 64

func checkSearch(what, v string) error {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxSearchLen || strings.ContainsAny(v, "\x00\r\n") {
		return invalid("%s: search term %q must be at most %d characters on one line", what, clipText(v, 40), maxSearchLen)
	}
	return nil
}

// ListAppCategsPage returns one page of application categories, by id,
// with their function category's name and number of servers.
func (s *Store) ListAppCategsPage(ctx context.Context, f AppFilter) (AppCategPage, error) {
	limit, err := pageLimit("application categories", f.Limit, DefaultLimit)
	if err != nil {
		return AppCategPage{}, err
	}
	if f.FunID < 0 {
		return AppCategPage{}, invalid("application categories: function category id %d is negative", f.FunID)
	}
	if err := checkSearch("application categories", f.Name); err != nil {
		return AppCategPage{}, err
	}
	var after int64
	if _, err := decodeCursor(appCursor, f.Cursor, &after); err != nil {
		return AppCategPage{}, err
	}
	q := `SELECT a.ID, a.server_categ_id, a.app_categ_name, COALESCE(f.server_categ_name, '') AS fun_name,
		(SELECT COUNT(*) FROM server_list s WHERE s.server_app_id = a.ID) AS server_count
		FROM server_app_categ a LEFT JOIN server_fun_categ f ON f.ID = a.server_categ_id WHERE a.ID > ?`
	args := []any{after}
	if f.FunID > 0 {
		q += ` AND a.server_categ_id = ?`
		args = append(args, f.FunID)
	}
	if f.Name != "" {
		q += ` AND a.app_categ_name LIKE ? ESCAPE '!'`
		args = append(args, "%"+likeEscape(f.Name)+"%")
	}
	var rows []AppCategRow
	if err := s.db.SelectContext(ctx, &rows, q+` ORDER BY a.ID LIMIT ?`, append(args, limit+1)...); err != nil {
		return AppCategPage{}, fmt.Errorf("store: list application categories: %w", err)
	}
	page := AppCategPage{AppCategs: rows}
	if len(rows) > limit {
		page.AppCategs = rows[:limit]
		page.Next = encodeCursor(appCursor, rows[limit-1].ID)
	}
	if page.AppCategs == nil {
		page.AppCategs = []AppCategRow{}
	}
	return page, nil
}

// ServerFilter selects servers for ListServersPage; zero fields do not
// filter, and all given filters apply together.
type ServerFilter struct {
	PageRequest
	AppID int64  // servers of this application category
	FunID int64  // servers of the applications of this function category
	IP    string // internal address starts with this
	Name  string // hostname contains this
	OS    string // OS is this (case-insensitive on MySQL)
	Q     string // internal address starts with, or hostname contains, this
}

// ServerRow is a server with its application category's name.
type ServerRow struct {
	Server
	AppName string `db:"app_name" json:"app_name"`
}

// ServerPage is one page of servers by internal address.
type ServerPage struct {
	Servers []ServerRow
	Next    string
}

const serversCursor = "servers"

// ListServersPage returns one page of the servers that match f, by
// internal address (server_lip, the key).
func (s *Store) ListServersPage(ctx context.Context, f ServerFilter) (ServerPage, error) {
	limit, err := pageLimit("servers", f.Limit, DefaultLimit)
	if err != nil {
		return ServerPage{}, err
	}
	if f.AppID < 0 || f.FunID < 0 {
		return ServerPage{}, invalid("servers: category ids must not be negative")
	}
	for _, v := range []string{f.IP, f.Name, f.OS, f.Q} {
		if err := checkSearch("servers", v); err != nil {
			return ServerPage{}, err
		}
	}
	var after string
	more, err := decodeCursor(serversCursor, f.Cursor, &after)
	if err != nil {
		return ServerPage{}, err
	}
	var where []string
	var args []any
	if more {
		where, args = append(where, "s.server_lip > ?"), append(args, after)
	}
	if f.AppID > 0 {
		where, args = append(where, "s.server_app_id = ?"), append(args, f.AppID)
	}
	if f.FunID > 0 {
		where, args = append(where, "s.server_app_id IN (SELECT ID FROM server_app_categ WHERE server_categ_id = ?)"), append(args, f.FunID)
	}
	if f.IP != "" {
		where, args = append(where, "s.server_lip LIKE ? ESCAPE '!'"), append(args, likeEscape(f.IP)+"%")
	}
	if f.Name != "" {
		where, args = append(where, "s.server_name LIKE ? ESCAPE '!'"), append(args, "%"+likeEscape(f.Name)+"%")
	}
	if f.OS != "" {
		where, args = append(where, "s.server_op = ?"), append(args, f.OS)
	}
	if f.Q != "" {
		where = append(where, "(s.server_lip LIKE ? ESCAPE '!' OR s.server_name LIKE ? ESCAPE '!')")
		args = append(args, likeEscape(f.Q)+"%", "%"+likeEscape(f.Q)+"%")
	}
	q := `SELECT s.server_lip, s.server_name, s.server_wip, s.server_op, s.server_app_id,
		COALESCE(a.app_categ_name, '') AS app_name
		FROM server_list s LEFT JOIN server_app_categ a ON a.ID = s.server_app_id`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	var rows []ServerRow
	if err := s.db.SelectContext(ctx, &rows, q+` ORDER BY s.server_lip LIMIT ?`, append(args, limit+1)...); err != nil {
		return ServerPage{}, fmt.Errorf("store: list servers: %w", err)
	}
	page := ServerPage{Servers: rows}
	if len(rows) > limit {
		page.Servers = rows[:limit]
		page.Next = encodeCursor(serversCursor, rows[limit-1].IP)
	}
	if page.Servers == nil {
		page.Servers = []ServerRow{}
	}
	return page, nil
}
