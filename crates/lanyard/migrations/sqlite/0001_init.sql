CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    data TEXT NOT NULL,
    secrets TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS resources_scope ON resources (env_id, kind, parent_id, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_parent ON resources (kind, parent_id, created_at, id);
CREATE TABLE IF NOT EXISTS unique_keys (
    scope_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (scope_id, kind, key, value)
);
CREATE INDEX IF NOT EXISTS unique_keys_by_id ON unique_keys (kind, id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
