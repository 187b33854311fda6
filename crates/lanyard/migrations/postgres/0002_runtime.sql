CREATE TABLE IF NOT EXISTS runtime (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS runtime_expiry ON runtime (expires_at);
