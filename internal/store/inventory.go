package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Column limits after migration 00002 (enforced here for both dialects).
const (
	MaxCategNameLen  = 64
	MaxServerNameLen = 64
	MaxServerOSLen   = 32
	MaxIPLen         = 45
)

// FunCateg is a function category (server_fun_categ), e.g. "Linux.Web".
type FunCateg struct {
	ID   int64  `db:"ID" json:"id"`
	Name string `db:"server_categ_name" json:"name"`
}

// AppCateg is an application category (server_app_categ) of a function
// category, e.g. "bbs.domain.com".
type AppCateg struct {
	ID         int64  `db:"ID" json:"id"`
	FunCategID int64  `db:"server_categ_id" json:"fun_categ_id"`
	Name       string `db:"app_categ_name" json:"name"`
}

// Server is one row of server_list. IP (server_lip) is its key.
type Server struct {
	IP    string `db:"server_lip" json:"ip"`
	Name  string `db:"server_name" json:"name"`
	WIP   string `db:"server_wip" json:"wip"`
	OS    string `db:"server_op" json:"os"`
	AppID int64  `db:"server_app_id" json:"app_id"`
}

func checkName(what, name string, max int) error {
	if strings.TrimSpace(name) == "" {
		return invalid("%s: name is empty", what)
	}
	if !utf8.ValidString(name) {
		return invalid("%s: name is not valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(name); n > max {
		return invalid("%s: name is %d characters, more than %d", what, n, max)
	}
	if strings.ContainsAny(name, "\x00\r\n|") {
		// '|' separates fields in the legacy text endpoints.
		return invalid("%s: name contains a control character or '|'", what)
	}
	return nil
}

// checkLegacyName is checkName for names the legacy /autoadmin/ text
// endpoints list: they join names with ',', so a comma in one would shift
// every later name against its id for the scripts that parse them.
func checkLegacyName(what, name string, max int) error {
	if err := checkName(what, name, max); err != nil {
		return err
	}
	if strings.Contains(name, ",") {
		return invalid("%s: name contains ',', the separator of the legacy /autoadmin/ lists", what)
	}
	return nil
}

// ListFunCategs returns every function category, by id, for the legacy
// text endpoint (which lists them all; there are tens of them). Other
// readers page with ListFunCategsPage.
func (s *Store) ListFunCategs(ctx context.Context) ([]FunCateg, error) {
	out := []FunCateg{}
	err := s.db.SelectContext(ctx, &out, `SELECT ID, server_categ_name FROM server_fun_categ ORDER BY ID`)
	if err != nil {
		return nil, fmt.Errorf("store: list function categories: %w", err)
	}
	return out, nil
}

// GetFunCateg returns one function category.
func (s *Store) GetFunCateg(ctx context.Context, id int64) (FunCateg, error) {
	var c FunCateg
	err := s.db.GetContext(ctx, &c, `SELECT ID, server_categ_name FROM server_fun_categ WHERE ID = ?`, id)
	return c, classify(err, fmt.Sprintf("function category %d", id))
}

// Category names are what operators pick from on the dashboard, so two
// entries with the same name would make them guess. The original schema
// has no unique index on them (and existing databases may hold duplicates,
// so one cannot be added by a migration): new duplicates are refused here,
// compared as the original schema's default collation does
// (case-insensitively, ignoring surrounding space).

// funNameFree refuses a function category name another one (not self) has.
func funNameFree(ctx context.Context, q sqlx.QueryerContext, name string, self int64) error {
	var other FunCateg
	err := sqlx.GetContext(ctx, q, &other, `SELECT ID, server_categ_name FROM server_fun_categ
		WHERE LOWER(TRIM(server_categ_name)) = LOWER(TRIM(?)) AND ID <> ? LIMIT 1`, name, self)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: function category names: %w", err)
	}
	return fmt.Errorf("function category %d is already named %q; choose another name: %w", other.ID, other.Name, ErrConflict)
}

// appNameFree refuses an application name another application (not self)
// of the same function category has.
func appNameFree(ctx context.Context, q sqlx.QueryerContext, c AppCateg) error {
	var other AppCateg
	err := sqlx.GetContext(ctx, q, &other, `SELECT ID, server_categ_id, app_categ_name FROM server_app_categ
		WHERE server_categ_id = ? AND LOWER(TRIM(app_categ_name)) = LOWER(TRIM(?)) AND ID <> ? LIMIT 1`, c.FunCategID, c.Name, c.ID)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: application names: %w", err)
	}
	return fmt.Errorf("application category %d of this function category is already named %q; choose another name: %w", other.ID, other.Name, ErrConflict)
}

// CreateFunCateg adds a function category and returns its id.
func (s *Store) CreateFunCateg(ctx context.Context, name string) (int64, error) {
	if err := checkLegacyName("function category", name, MaxCategNameLen); err != nil {
		return 0, err
	}
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := funNameFree(ctx, tx, name, 0); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO server_fun_categ (server_categ_name) VALUES (?)`, name)
		if err != nil {
			return classify(err, "create function category")
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// UpdateFunCateg renames a function category.
func (s *Store) UpdateFunCateg(ctx context.Context, id int64, name string) error {
	if err := checkLegacyName("function category", name, MaxCategNameLen); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM server_fun_categ WHERE ID = ?`, id); err != nil {
			return classify(err, fmt.Sprintf("function category %d", id))
		}
		if err := funNameFree(ctx, tx, name, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE server_fun_categ SET server_categ_name = ? WHERE ID = ?`, name, id)
		return classify(err, "update function category")
	})
}

// DeleteFunCateg removes a function category; it refuses (ErrInUse) while
// application categories belong to it.
func (s *Store) DeleteFunCateg(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM server_fun_categ WHERE ID = ?`, id); err != nil {
			return classify(err, fmt.Sprintf("function category %d", id))
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM server_app_categ WHERE server_categ_id = ?`, id); err != nil {
			return fmt.Errorf("store: count applications: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("function category %d has %d application categories; delete or move them first: %w", id, n, ErrInUse)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM server_fun_categ WHERE ID = ?`, id)
		return classify(err, "delete function category")
	})
}

// ListAppCategs returns every application category of one function
// category, by id, for the legacy text endpoint (which lists them all; it
// is bounded by the category's size). Other readers page with
// ListAppCategsPage.
func (s *Store) ListAppCategs(ctx context.Context, funID int64) ([]AppCateg, error) {
	if funID <= 0 {
		return nil, invalid("application categories: function category id %d is not positive", funID)
	}
	out := []AppCateg{}
	err := s.db.SelectContext(ctx, &out, `SELECT ID, server_categ_id, app_categ_name FROM server_app_categ
		WHERE server_categ_id = ? ORDER BY ID`, funID)
	if err != nil {
		return nil, fmt.Errorf("store: list application categories: %w", err)
	}
	return out, nil
}

// GetAppCateg returns one application category.
func (s *Store) GetAppCateg(ctx context.Context, id int64) (AppCateg, error) {
	var c AppCateg
	err := s.db.GetContext(ctx, &c, `SELECT ID, server_categ_id, app_categ_name FROM server_app_categ WHERE ID = ?`, id)
	return c, classify(err, fmt.Sprintf("application category %d", id))
}

func checkAppCateg(ctx context.Context, q sqlx.QueryerContext, c AppCateg) error {
	if err := checkLegacyName("application category", c.Name, MaxCategNameLen); err != nil {
		return err
	}
	if err := exists(ctx, q, `SELECT 1 FROM server_fun_categ WHERE ID = ?`, c.FunCategID); err != nil {
		return invalid("application category: function category %d does not exist", c.FunCategID)
	}
	return appNameFree(ctx, q, c)
}

// CreateAppCateg adds an application category (its function category must
// exist) and returns its id.
func (s *Store) CreateAppCateg(ctx context.Context, c AppCateg) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := checkAppCateg(ctx, tx, c); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO server_app_categ (server_categ_id, app_categ_name) VALUES (?, ?)`, c.FunCategID, c.Name)
		if err != nil {
			return classify(err, "create application category")
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// UpdateAppCateg renames an application category or moves it to another
// function category.
func (s *Store) UpdateAppCateg(ctx context.Context, c AppCateg) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM server_app_categ WHERE ID = ?`, c.ID); err != nil {
			return classify(err, fmt.Sprintf("application category %d", c.ID))
		}
		if err := checkAppCateg(ctx, tx, c); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE server_app_categ SET server_categ_id = ?, app_categ_name = ? WHERE ID = ?`, c.FunCategID, c.Name, c.ID)
		return classify(err, "update application category")
	})
}

// DeleteAppCateg removes an application category; it refuses (ErrInUse)
// while servers belong to it.
func (s *Store) DeleteAppCateg(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM server_app_categ WHERE ID = ?`, id); err != nil {
			return classify(err, fmt.Sprintf("application category %d", id))
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM server_list WHERE server_app_id = ?`, id); err != nil {
			return fmt.Errorf("store: count servers: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("application category %d has %d servers; delete or move them first: %w", id, n, ErrInUse)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM server_app_categ WHERE ID = ?`, id)
		return classify(err, "delete application category")
	})
}

const serverCols = `server_lip, server_name, server_wip, server_op, server_app_id`

// ListServers returns every server of one application category, by IP,
// for the legacy text endpoint (which lists them all; it is bounded by the
// application's size). Other readers page with ListServersPage.
func (s *Store) ListServers(ctx context.Context, appID int64) ([]Server, error) {
	if appID <= 0 {
		return nil, invalid("servers: application category id %d is not positive", appID)
	}
	out := []Server{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+serverCols+` FROM server_list WHERE server_app_id = ? ORDER BY server_lip`, appID)
	if err != nil {
		return nil, fmt.Errorf("store: list servers: %w", err)
	}
	return out, nil
}

// GetServer returns the server with this IP.
func (s *Store) GetServer(ctx context.Context, ip string) (Server, error) {
	var sv Server
	err := s.db.GetContext(ctx, &sv, `SELECT `+serverCols+` FROM server_list WHERE server_lip = ?`, ip)
	return sv, classify(err, fmt.Sprintf("server %q", ip))
}

// GetServers returns the servers with these IPs, in the order asked. Every
// IP must exist (otherwise ErrNotFound naming the missing ones) and appear
// once (otherwise ErrInvalid).
func (s *Store) GetServers(ctx context.Context, ips []string) ([]Server, error) {
	if len(ips) == 0 {
		return []Server{}, nil
	}
	seen := make(map[string]bool, len(ips))
	for _, ip := range ips {
		if seen[ip] {
			return nil, invalid("server %q listed twice", ip)
		}
		seen[ip] = true
	}
	found := map[string]Server{}
	// Chunks keep the IN list under every placeholder limit.
	for start := 0; start < len(ips); start += 500 {
		end := min(start+500, len(ips))
		q, args, err := sqlx.In(`SELECT `+serverCols+` FROM server_list WHERE server_lip IN (?)`, ips[start:end])
		if err != nil {
			return nil, fmt.Errorf("store: get servers: %w", err)
		}
		var part []Server
		if err := s.db.SelectContext(ctx, &part, s.db.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("store: get servers: %w", err)
		}
		for _, sv := range part {
			found[sv.IP] = sv
		}
	}
	out := make([]Server, 0, len(ips))
	var missing []string
	for _, ip := range ips {
		sv, ok := found[ip]
		if !ok {
			missing = append(missing, ip)
			continue
		}
		out = append(out, sv)
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], "...")
		}
		return nil, fmt.Errorf("servers %s: %w", strings.Join(missing, ", "), ErrNotFound)
	}
	return out, nil
}

// CheckServer validates a server row without touching the database.
func CheckServer(sv Server) error {
	addr, err := netip.ParseAddr(sv.IP)
	if err != nil || addr.Zone() != "" || len(sv.IP) > MaxIPLen {
		return invalid("server: %q is not an IPv4 or IPv6 address", sv.IP)
	}
	if addr.String() != sv.IP {
		return invalid("server: address %q is not in canonical form (%s)", sv.IP, addr)
	}
	if err := checkLegacyName("server "+sv.IP, sv.Name, MaxServerNameLen); err != nil {
		return err
	}
	if strings.ContainsAny(sv.Name, " \t*@") {
		// '*' and '@' are separators of the original dashboard's host strings.
		return invalid("server %s: name %q contains a space, '*' or '@'", sv.IP, sv.Name)
	}
	if sv.WIP != "" {
		if w, err := netip.ParseAddr(sv.WIP); err != nil || w.Zone() != "" || len(sv.WIP) > MaxIPLen {
			return invalid("server %s: external address %q is not an IPv4 or IPv6 address", sv.IP, sv.WIP)
		}
	}
	if utf8.RuneCountInString(sv.OS) > MaxServerOSLen || !utf8.ValidString(sv.OS) || strings.ContainsAny(sv.OS, "\x00\r\n|") {
		return invalid("server %s: OS %q is not a short single-line name", sv.IP, sv.OS)
	}
	if sv.AppID <= 0 {
		return invalid("server %s: application category id %d is not positive", sv.IP, sv.AppID)
	}
	return nil
}

// upsertServer writes one server inside tx and reports whether it was new.
func upsertServer(ctx context.Context, tx *sqlx.Tx, sv Server) (bool, error) {
	if err := CheckServer(sv); err != nil {
		return false, err
	}
	if err := exists(ctx, tx, `SELECT 1 FROM server_app_categ WHERE ID = ?`, sv.AppID); err != nil {
		return false, invalid("server %s: application category %d does not exist", sv.IP, sv.AppID)
	}
	err := exists(ctx, tx, `SELECT 1 FROM server_list WHERE server_lip = ?`, sv.IP)
	switch {
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE server_list SET server_name = ?, server_wip = ?, server_op = ?, server_app_id = ? WHERE server_lip = ?`,
			sv.Name, sv.WIP, sv.OS, sv.AppID, sv.IP)
		return false, classify(err, "update server "+sv.IP)
	case isNotFound(err):
		_, err = tx.ExecContext(ctx, `INSERT INTO server_list (`+serverCols+`) VALUES (?, ?, ?, ?, ?)`,
			sv.IP, sv.Name, sv.WIP, sv.OS, sv.AppID)
		return true, classify(err, "create server "+sv.IP)
	default:
		return false, fmt.Errorf("store: look up server %s: %w", sv.IP, err)
	}
}

// UpsertServer creates the server or, if its IP exists, updates it; created
// reports which.
func (s *Store) UpsertServer(ctx context.Context, sv Server) (created bool, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		created, err = upsertServer(ctx, tx, sv)
		return err
	})
	return created, err
}

// DeleteServer removes a server; it refuses (ErrInUse) while the original
// server_history table holds events of its IP.
func (s *Store) DeleteServer(ctx context.Context, ip string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM server_list WHERE server_lip = ?`, ip); err != nil {
			return classify(err, fmt.Sprintf("server %q", ip))
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM server_history WHERE history_ip = ?`, ip); err != nil {
			return fmt.Errorf("store: count server history: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("server %s has %d history events: %w", ip, n, ErrInUse)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM server_list WHERE server_lip = ?`, ip)
		return classify(err, "delete server "+ip)
	})
}

// MaxImport is the largest number of servers ImportServers accepts at once.
const MaxImport = 10000

// ImportServers creates or updates many servers in one transaction: either
// every row is written or, at the first bad row, none is (the error names
// the row by its 1-based position).
func (s *Store) ImportServers(ctx context.Context, servers []Server) (inserted, updated int, err error) {
	if len(servers) == 0 {
		return 0, 0, invalid("import: no servers")
	}
	if len(servers) > MaxImport {
		return 0, 0, invalid("import: %d servers, more than the limit of %d", len(servers), MaxImport)
	}
	seen := make(map[string]int, len(servers))
	for i, sv := range servers {
		if err := CheckServer(sv); err != nil {
			return 0, 0, fmt.Errorf("import row %d: %w", i+1, err)
		}
		if j, dup := seen[sv.IP]; dup {
			return 0, 0, invalid("import row %d: address %s already on row %d", i+1, sv.IP, j)
		}
		seen[sv.IP] = i + 1
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		for i, sv := range servers {
			created, err := upsertServer(ctx, tx, sv)
			if err != nil {
				return fmt.Errorf("import row %d: %w", i+1, err)
			}
			if created {
				inserted++
			} else {
				updated++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return inserted, updated, nil
}
