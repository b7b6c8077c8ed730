-- Host facts; the same logical schema as the MySQL set (see there).

-- +goose Up
CREATE TABLE server_facts (
  server_ip TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  collected_at DATETIME NOT NULL,
  cpu_count INTEGER NOT NULL,
  load1 REAL NOT NULL,
  mem_used_pct REAL NOT NULL,
  facts TEXT NOT NULL
);
CREATE INDEX server_facts_mem ON server_facts (mem_used_pct, server_ip);

CREATE TABLE server_disks (
  server_ip TEXT NOT NULL,
  mount TEXT NOT NULL,
  size_kb INTEGER NOT NULL,
  used_kb INTEGER NOT NULL,
  avail_kb INTEGER NOT NULL,
  used_pct REAL NOT NULL,
  PRIMARY KEY (server_ip, mount)
);
CREATE INDEX server_disks_use ON server_disks (mount, used_pct, server_ip);

-- +goose Down
DROP TABLE server_disks;
DROP TABLE server_facts;
