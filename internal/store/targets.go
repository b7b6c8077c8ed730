package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// TargetServers returns the servers of the given applications and of
// every application of the given function categories (each server once),
// by address, for a run that targets them as a whole. More than limit
// servers is ErrInvalid (the caller's host limit), so a run never
// silently drops part of its targets; an unknown application or category
// is ErrInvalid too.
func (s *Store) TargetServers(ctx context.Context, appIDs, funIDs []int64, limit int) ([]Server, error) {
	if len(appIDs) == 0 && len(funIDs) == 0 {
		return []Server{}, nil
	}
	if len(appIDs)+len(funIDs) > 1000 {
		return nil, invalid("targets: %d applications and categories is more than 1000", len(appIDs)+len(funIDs))
	}
	for _, c := range []struct {
		ids   []int64
		table string
		what  string
	}{{appIDs, "server_app_categ", "application"}, {funIDs, "server_fun_categ", "function category"}} {
		for _, id := range c.ids {
			if err := exists(ctx, s.db, `SELECT 1 FROM `+c.table+` WHERE ID = ?`, id); err != nil {
				if isNotFound(err) {
					return nil, invalid("targets: %s %d does not exist", c.what, id)
				}
				return nil, fmt.Errorf("store: targets: %w", err)
			}
		}
	}
	var conds []string
	var args []any
	if len(appIDs) > 0 {
		conds = append(conds, `server_app_id IN (?)`)
		args = append(args, appIDs)
	}
	if len(funIDs) > 0 {
		conds = append(conds, `server_app_id IN (SELECT ID FROM server_app_categ WHERE server_categ_id IN (?))`)
		args = append(args, funIDs)
	}
	where := conds[0]
	if len(conds) == 2 {
		where += " OR " + conds[1]
	}
	q, qargs, err := sqlx.In(`SELECT `+serverCols+` FROM server_list WHERE `+where+` ORDER BY server_lip LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, fmt.Errorf("store: targets: %w", err)
	}
	out := []Server{}
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), qargs...); err != nil {
		return nil, fmt.Errorf("store: targets: %w", err)
	}
	if len(out) > limit {
		return nil, invalid("targets: more than %d servers; choose fewer applications or categories", limit)
	}
	return out, nil
}

// FindServers returns the servers of the inventory among ips, by address;
// addresses not in the inventory are simply absent (an import preview
// tells new servers from existing ones with it).
func (s *Store) FindServers(ctx context.Context, ips []string) (map[string]Server, error) {
	out := make(map[string]Server, len(ips))
	for start := 0; start < len(ips); start += 500 {
		chunk := ips[start:min(start+500, len(ips))]
		q, args, err := sqlx.In(`SELECT `+serverCols+` FROM server_list WHERE server_lip IN (?)`, chunk)
		if err != nil {
			return nil, fmt.Errorf("store: find servers: %w", err)
		}
		var rows []Server
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("store: find servers: %w", err)
		}
		for _, sv := range rows {
			out[sv.IP] = sv
		}
	}
	return out, nil
}
