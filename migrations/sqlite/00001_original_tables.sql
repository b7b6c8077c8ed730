-- The five tables of the original OMServer with the same names and columns.
-- SQLite does not enforce declared lengths; the store enforces the widened
-- MySQL limits for both dialects.

-- +goose Up
CREATE TABLE IF NOT EXISTS server_fun_categ (
  ID INTEGER PRIMARY KEY AUTOINCREMENT,
  server_categ_name TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS server_app_categ (
  ID INTEGER PRIMARY KEY AUTOINCREMENT,
  server_categ_id INTEGER NOT NULL REFERENCES server_fun_categ (ID),
  app_categ_name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_app_categ_ibfk_1 ON server_app_categ (server_categ_id);

CREATE TABLE IF NOT EXISTS server_list (
  server_name TEXT NOT NULL,
  server_wip TEXT NOT NULL DEFAULT '',
  server_lip TEXT NOT NULL DEFAULT '' PRIMARY KEY,
  server_op TEXT NOT NULL DEFAULT '',
  server_app_id INTEGER NOT NULL REFERENCES server_app_categ (ID)
);
CREATE INDEX IF NOT EXISTS server_list_ibfk_1 ON server_list (server_app_id);

CREATE TABLE IF NOT EXISTS module_list (
  ID INTEGER PRIMARY KEY AUTOINCREMENT,
  module_name TEXT NOT NULL,
  module_caption TEXT NOT NULL,
  module_extend TEXT NOT NULL
);
-- Module ids start at 1001 as in the original.
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'module_list', 1000
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'module_list');

CREATE TABLE IF NOT EXISTS server_history (
  ID INTEGER PRIMARY KEY AUTOINCREMENT,
  history_id INTEGER NOT NULL,
  history_ip TEXT NOT NULL REFERENCES server_list (server_lip),
  history_user TEXT NOT NULL,
  history_datetime DATETIME NOT NULL,
  db_datetime DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  history_command TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_ip ON server_history (history_ip);

-- +goose Down
-- The original tables hold the operator's data: never dropped by a rollback.
SELECT 1;
