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
        )
    ]
}
