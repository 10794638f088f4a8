/// ora's database schema, as the ordered list of every migration ever released.
public enum Schema {
    /// Every migration, oldest first. Append only; never edit or reorder a released one.
    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            name: "server instances",
            statements: [
                """
                CREATE TABLE server_instances (
                    id uuid PRIMARY KEY,
                    host text NOT NULL,
                    process_id integer NOT NULL,
                    version text NOT NULL,
                    started_at timestamptz NOT NULL,
                    last_seen_at timestamptz NOT NULL
                )
                """,
                "COMMENT ON TABLE server_instances IS 'ora-server replicas that are running or ran recently'",
            ]
        ),
        Migration(
            version: 2,
            name: "operator sessions and login events",
            statements: [
                """
                CREATE TABLE operator_sessions (
                    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
                    operator_dn text NOT NULL,
                    account text NOT NULL,
                    display_name text NOT NULL,
                    mail text,
                    source_address text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    revoked_at timestamptz
                )
                """,
                "CREATE INDEX operator_sessions_expires_at ON operator_sessions (expires_at)",
                "COMMENT ON TABLE operator_sessions IS 'operator bearer tokens, stored as SHA-256 hashes only'",
                """
                CREATE TABLE login_events (
                    id uuid PRIMARY KEY,
                    occurred_at timestamptz NOT NULL DEFAULT now(),
                    user_name text NOT NULL,
                    operator_dn text,
                    source_address text,
                    outcome text NOT NULL
                        CHECK (outcome IN ('success', 'failure', 'unavailable', 'rate_limited', 'logout')),
                    reason text
                )
                """,
                "CREATE INDEX login_events_occurred_at ON login_events (occurred_at)",
                "COMMENT ON TABLE login_events IS 'every operator login attempt and logout, as typed, never passwords'",
            ]
        ),
        Migration(
            version: 3,
            name: "policy versions",
            statements: [
                """
                CREATE TABLE policy_versions (
                    version bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
                    files jsonb NOT NULL,
                    author_dn text NOT NULL,
                    comment text,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "COMMENT ON TABLE policy_versions IS 'every policy set ever applied, with its source files verbatim'",
                """
                CREATE TABLE policy_activations (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    version bigint NOT NULL REFERENCES policy_versions (version),
                    action text NOT NULL CHECK (action IN ('apply', 'rollback')),
                    actor_dn text NOT NULL,
                    comment text,
                    activated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                """
                COMMENT ON TABLE policy_activations IS
                    'which policy version became active when; the newest row is the active version'
                """,
            ]
        ),
    ]
}
