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
        Migration(
            version: 4,
            name: "audit log",
            statements: [
                // Roles the deployment grants to its login roles (see Docs/Audit.md). Created when missing, which
                // needs CREATEROLE; a database administrator may create them beforehand instead.
                """
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ora_server') THEN
                        BEGIN
                            CREATE ROLE ora_server NOLOGIN;
                        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                        END;
                    END IF;
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ora_auditor') THEN
                        BEGIN
                            CREATE ROLE ora_auditor NOLOGIN;
                        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                        END;
                    END IF;
                END
                $$
                """,
                "DROP TABLE login_events",
                """
                CREATE TABLE audit_events (
                    sequence bigint NOT NULL CHECK (sequence > 0),
                    id uuid NOT NULL,
                    occurred_at timestamptz NOT NULL,
                    event text NOT NULL,
                    code text NOT NULL,
                    actor_kind text NOT NULL,
                    actor_id text NOT NULL,
                    actor_name text,
                    machine text,
                    session_id uuid,
                    source_address text,
                    policy_version bigint,
                    policy_names text[],
                    outcome text NOT NULL,
                    details jsonb NOT NULL,
                    previous_hash bytea NOT NULL CHECK (octet_length(previous_hash) = 32),
                    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
                    recorded_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (sequence, occurred_at),
                    UNIQUE (id, occurred_at)
                ) PARTITION BY RANGE (occurred_at)
                """,
                """
                COMMENT ON TABLE audit_events IS
                    'the audit log: append-only, one hash chain over sequence, partitioned by month of occurred_at'
                """,
                "CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at)",
                "CREATE INDEX audit_events_actor ON audit_events (lower(actor_id), occurred_at)",
                "CREATE INDEX audit_events_account ON audit_events (lower(actor_name), occurred_at)",
                "CREATE INDEX audit_events_machine ON audit_events (lower(machine), occurred_at)",
                "CREATE INDEX audit_events_session ON audit_events (session_id) WHERE session_id IS NOT NULL",
                """
                CREATE FUNCTION ora_audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
                        USING ERRCODE = 'insufficient_privilege';
                END
                $$
                """,
                """
                CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
                    FOR EACH ROW EXECUTE FUNCTION ora_audit_reject_change()
                """,
                """
                CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
                    FOR EACH STATEMENT EXECUTE FUNCTION ora_audit_reject_change()
                """,
                // Partitions are created ahead by the servers through this function, which runs as its owner: the
                // servers' role itself may only insert and read.
                """
                CREATE FUNCTION ora_audit_prepare_partition(month date) RETURNS text
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' AS $$
                DECLARE
                    first_day date := date_trunc('month', month)::date;
                    partition text := 'audit_events_' || to_char(first_day, 'YYYY_MM');
                BEGIN
                    PERFORM pg_advisory_xact_lock(8030588148090237556);
                    IF to_regclass(partition) IS NULL THEN
                        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                            partition, first_day::timestamptz, (first_day + interval '1 month')::timestamptz);
                        EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
                            'FOR EACH STATEMENT EXECUTE FUNCTION ora_audit_reject_change()', partition);
                    END IF;
                    RETURN partition;
                EXCEPTION WHEN check_violation THEN
                    -- Events of that month already went to the default partition; they stay there.
                    RETURN 'audit_events_default';
                END
                $$
                """,
                "CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT",
                """
                CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events_default
                    FOR EACH STATEMENT EXECUTE FUNCTION ora_audit_reject_change()
                """,
                "SELECT ora_audit_prepare_partition(current_date)",
                "SELECT ora_audit_prepare_partition((current_date + interval '1 month')::date)",
                """
                CREATE TABLE audit_chain_head (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    sequence bigint NOT NULL,
                    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
                )
                """,
                "INSERT INTO audit_chain_head (sequence, hash) VALUES (0, decode(repeat('00', 32), 'hex'))",
                "COMMENT ON TABLE audit_chain_head IS 'the sequence and hash of the newest audit event'",
                """
                CREATE TABLE audit_checkpoints (
                    sequence bigint NOT NULL,
                    hash text NOT NULL,
                    signed_time text NOT NULL,
                    public_key text NOT NULL,
                    signature text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (sequence, public_key)
                )
                """,
                """
                CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
                    FOR EACH ROW EXECUTE FUNCTION ora_audit_reject_change()
                """,
                """
                CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
                    FOR EACH STATEMENT EXECUTE FUNCTION ora_audit_reject_change()
                """,
                "COMMENT ON TABLE audit_checkpoints IS 'signed statements of the audit chain head, for anchoring'",
                """
                CREATE TABLE audit_forwarding (
                    destination text PRIMARY KEY,
                    sequence bigint NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "COMMENT ON TABLE audit_forwarding IS 'the last audit event each SIEM destination has received'",
                "REVOKE ALL ON audit_events, audit_chain_head, audit_checkpoints, audit_forwarding FROM PUBLIC",
                "REVOKE ALL ON FUNCTION ora_audit_prepare_partition(date) FROM PUBLIC",
                "GRANT EXECUTE ON FUNCTION ora_audit_prepare_partition(date) TO ora_server",
                "GRANT SELECT, INSERT ON audit_events, audit_checkpoints TO ora_server",
                "GRANT SELECT, UPDATE ON audit_chain_head TO ora_server",
                "GRANT SELECT, INSERT, UPDATE ON audit_forwarding TO ora_server",
                """
                GRANT SELECT, INSERT, UPDATE, DELETE
                    ON server_instances, operator_sessions, policy_versions, policy_activations TO ora_server
                """,
                "GRANT SELECT ON schema_migrations TO ora_server",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ora_server",
                "GRANT SELECT ON audit_events, audit_checkpoints, audit_chain_head TO ora_auditor",
            ]
        ),
        Migration(
            version: 5,
            name: "machines and enrollment tokens",
            statements: [
                """
                CREATE TABLE enrollment_tokens (
                    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
                    created_by text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    uses_left integer NOT NULL CHECK (uses_left >= 0),
                    comment text
                )
                """,
                "COMMENT ON TABLE enrollment_tokens IS 'one-time agent enrollment secrets, stored as SHA-256 hashes only'",
                """
                CREATE TABLE machines (
                    name text PRIMARY KEY CHECK (name = lower(name) AND name <> ''),
                    computer_dn text NOT NULL,
                    public_key text NOT NULL,
                    operating_system text NOT NULL,
                    agent_version text NOT NULL,
                    enrolled_at timestamptz NOT NULL,
                    enrolled_by text NOT NULL,
                    revoked_at timestamptz,
                    revoked_by text,
                    last_seen_at timestamptz
                )
                """,
                "COMMENT ON TABLE machines IS 'enrolled machines: the computer object each agent proved, and its device key'",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON enrollment_tokens, machines TO ora_server",
            ]
        ),
        Migration(
            version: 6,
            name: "agent connections and sessions shared between replicas",
            statements: [
                "ALTER TABLE machines ADD COLUMN connected_instance uuid",
                "COMMENT ON COLUMN machines.connected_instance IS 'the server replica its agent is connected to now'",
                """
                CREATE TABLE sessions (
                    id uuid PRIMARY KEY,
                    machine text NOT NULL,
                    helper_dn text NOT NULL,
                    instance uuid NOT NULL,
                    ended boolean NOT NULL DEFAULT false,
                    revision integer NOT NULL,
                    snapshot jsonb NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX sessions_live ON sessions (instance) WHERE NOT ended",
                "CREATE INDEX sessions_updated ON sessions (updated_at)",
                """
                COMMENT ON TABLE sessions IS
                    'the state of each assistance session as the replica running it last wrote it; the audit log is the record'
                """,
                "GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO ora_server",
            ]
        ),
        Migration(
            version: 7,
            name: "audit batches inserted before the chain lock",
            statements: [
                // The rows go in first, while the batch ahead (on another connection) may still hold the chain
                // lock; then the lock, and the head moves only from where this batch was chained. If it is not
                // there (the batch ahead failed, or another server appended), the block's changes are undone and
                // false is returned.
                """
                CREATE FUNCTION ora_audit_append(
                    lock_wait text, after_sequence bigint, after_hash bytea, new_sequence bigint, new_hash bytea,
                    s bigint[], i uuid[], t text[], ev text[], c text[], ak text[], ai text[], an text[], m text[],
                    si text[], sa text[], pv bigint[], pn text[], o text[], d text[], n integer[], ph bytea[],
                    h bytea[]
                ) RETURNS boolean LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO audit_events (sequence, id, occurred_at, event, code, actor_kind, actor_id,
                        actor_name, machine, session_id, source_address, policy_version, policy_names, outcome,
                        details, previous_hash, hash)
                    SELECT e.s, e.i, e.t::timestamptz, e.ev, e.c, e.ak, e.ai, CASE WHEN e.n & 1 = 0 THEN e.an END,
                        CASE WHEN e.n & 2 = 0 THEN e.m END, CASE WHEN e.n & 4 = 0 THEN e.si::uuid END,
                        CASE WHEN e.n & 8 = 0 THEN e.sa END, CASE WHEN e.n & 16 = 0 THEN e.pv END,
                        CASE WHEN e.n & 32 = 0 THEN e.pn::text[] END, e.o, e.d::jsonb, e.ph, e.h
                    FROM unnest(s, i, t, ev, c, ak, ai, an, m, si, sa, pv, pn, o, d, n, ph, h)
                        AS e(s, i, t, ev, c, ak, ai, an, m, si, sa, pv, pn, o, d, n, ph, h);
                    -- A writer stuck behind a lock that is not released is refused, not left waiting.
                    PERFORM set_config('lock_timeout', lock_wait, true);
                    PERFORM pg_advisory_xact_lock(\(AuditLog.chainLockKey));
                    UPDATE audit_chain_head SET sequence = new_sequence, hash = new_hash
                        WHERE sequence = after_sequence AND hash = after_hash;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'the audit chain head moved' USING ERRCODE = 'OR001';
                    END IF;
                    RETURN true;
                EXCEPTION WHEN SQLSTATE 'OR001' THEN
                    RETURN false;
                END
                $$
                """,
                """
                REVOKE ALL ON FUNCTION ora_audit_append(text, bigint, bytea, bigint, bytea, bigint[], uuid[], text[], text[], text[], text[], text[],
                    text[], text[], text[], text[], bigint[], text[], text[], text[], integer[], bytea[], bytea[]) FROM PUBLIC
                """,
                """
                GRANT EXECUTE ON FUNCTION ora_audit_append(text, bigint, bytea, bigint, bytea, bigint[], uuid[], text[], text[], text[], text[], text[],
                    text[], text[], text[], text[], bigint[], text[], text[], text[], integer[], bytea[], bytea[]) TO ora_server
                """,
            ]
        ),
        Migration(
            version: 8,
            name: "enrollment tokens bound to what they enroll",
            statements: [
                // Tokens made before could enroll any computer; they are withdrawn rather than honoured.
                "DELETE FROM enrollment_tokens",
                """
                ALTER TABLE enrollment_tokens
                    ADD COLUMN bound_kind text NOT NULL CHECK (bound_kind IN ('machine', 'ou', 'group')),
                    ADD COLUMN bound_to text NOT NULL CHECK (bound_to <> ''),
                    ADD COLUMN rekey boolean NOT NULL DEFAULT false,
                    ADD CONSTRAINT enrollment_tokens_rekey_one_machine
                        CHECK (NOT rekey OR (bound_kind = 'machine' AND uses_left <= 1))
                """,
                """
                COMMENT ON COLUMN enrollment_tokens.bound_kind IS
                    'what the token may enroll: one machine by name, the computers below an OU, or a computer group'
                """,
                """
                COMMENT ON COLUMN enrollment_tokens.rekey IS
                    'an administrator''s re-key: the only token that replaces an enrolled or revoked machine''s key'
                """,
            ]
        ),
        Migration(
            version: 9,
            name: "operator sessions an administrator can list and revoke",
            statements: [
                """
                ALTER TABLE operator_sessions
                    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
                    ADD COLUMN checked_at timestamptz NOT NULL DEFAULT now(),
                    ADD COLUMN revoked_by text,
                    ADD COLUMN revoke_reason text
                """,
                "CREATE UNIQUE INDEX operator_sessions_id ON operator_sessions (id)",
                "CREATE INDEX operator_sessions_operator ON operator_sessions (lower(operator_dn)) WHERE revoked_at IS NULL",
                """
                COMMENT ON COLUMN operator_sessions.checked_at IS
                    'when the directory last confirmed the account exists and is not locked or disabled'
                """,
            ]
        ),
        Migration(
            version: 10,
            name: "one-time login links that open the console from the command line",
            statements: [
                """
                CREATE TABLE login_links (
                    code_hash bytea PRIMARY KEY CHECK (octet_length(code_hash) = 32),
                    session_id uuid NOT NULL,
                    target text NOT NULL CHECK (length(target) <= 200),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX login_links_expires_at ON login_links (expires_at)",
                """
                COMMENT ON TABLE login_links IS
                    'single-use links that log a browser in as the operator session that made them; SHA-256 only'
                """,
                "GRANT SELECT, INSERT, DELETE ON login_links TO ora_server",
            ]
        ),
        Migration(
            version: 11,
            name: "console sessions that end after a while without use",
            statements: [
                """
                ALTER TABLE operator_sessions
                    ADD COLUMN idle_timeout_seconds integer CHECK (idle_timeout_seconds > 0),
                    ADD COLUMN used_at timestamptz NOT NULL DEFAULT now()
                """,
                """
                COMMENT ON COLUMN operator_sessions.idle_timeout_seconds IS
                    'a console session ends when unused this long (null: only at expires_at)'
                """,
            ]
        ),
        Migration(
            version: 12,
            name: "enrollment tokens an administrator can list and revoke",
            statements: [
                """
                ALTER TABLE enrollment_tokens
                    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
                    ADD COLUMN revoked_at timestamptz,
                    ADD COLUMN revoked_by text
                """,
                "CREATE UNIQUE INDEX enrollment_tokens_id ON enrollment_tokens (id)",
                "CREATE INDEX enrollment_tokens_expires_at ON enrollment_tokens (expires_at)",
            ]
        ),
        Migration(
            version: 13,
            name: "machines' directory facts, kept for searching without asking the directory",
            statements: [
                """
                ALTER TABLE machines
                    ADD COLUMN directory_dn text,
                    ADD COLUMN directory_containers text[] NOT NULL DEFAULT '{}',
                    ADD COLUMN directory_container_keys text[] NOT NULL DEFAULT '{}',
                    ADD COLUMN directory_groups text[] NOT NULL DEFAULT '{}',
                    ADD COLUMN directory_group_keys text[] NOT NULL DEFAULT '{}',
                    ADD COLUMN directory_checked_at timestamptz,
                    ADD COLUMN directory_claimed_at timestamptz
                """,
                """
                COMMENT ON COLUMN machines.directory_dn IS
                    'its computer object when last looked up (null: not found then, or never looked up)'
                """,
                """
                COMMENT ON COLUMN machines.directory_container_keys IS
                    'normalised DNs of the OUs and containers above its computer object, for searching'
                """,
                """
                COMMENT ON COLUMN machines.directory_group_keys IS
                    'normalised DNs of its computer groups, nested included, for searching'
                """,
                "CREATE INDEX machines_directory_containers ON machines USING gin (directory_container_keys)",
                "CREATE INDEX machines_directory_groups ON machines USING gin (directory_group_keys)",
                "CREATE INDEX machines_directory_checked ON machines (directory_checked_at NULLS FIRST)",
            ]
        ),
        Migration(
            version: 14,
            name: "operators' title and department, shown to the person at the machine",
            statements: [
                "ALTER TABLE operator_sessions ADD COLUMN title text, ADD COLUMN department text",
                """
                COMMENT ON COLUMN operator_sessions.title IS
                    'the operator''s job title in the directory at login, shown in offers (null: none)'
                """,
            ]
        ),
        Migration(
            version: 15,
            name: "the helpdesk's queue of invitations, and who watches it",
            statements: [
                """
                CREATE TABLE invitation_queue (
                    id uuid PRIMARY KEY,
                    machine text NOT NULL,
                    invitation text NOT NULL CHECK (length(invitation) <= 16384),
                    asked_by text NOT NULL,
                    message text,
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    posted_at timestamptz NOT NULL DEFAULT now(),
                    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'taken', 'withdrawn')),
                    taken_by_dn text,
                    taken_by_name text,
                    taken_at timestamptz,
                    withdrawn_reason text
                )
                """,
                "CREATE INDEX invitation_queue_open ON invitation_queue (posted_at) WHERE state = 'open'",
                """
                COMMENT ON TABLE invitation_queue IS
                    'invitations sent to the helpdesk: signed by their machine, taken by exactly one helper'
                """,
                """
                CREATE TABLE queue_watchers (
                    id uuid PRIMARY KEY,
                    instance uuid NOT NULL,
                    operator_dn text NOT NULL,
                    operator_session uuid NOT NULL,
                    groups text[] NOT NULL,
                    since timestamptz NOT NULL DEFAULT now(),
                    ended_at timestamptz
                )
                """,
                "CREATE INDEX queue_watchers_instance ON queue_watchers (instance)",
                """
                COMMENT ON TABLE queue_watchers IS
                    'helpers watching the invitation queue (ended_at null) or who watched it: whom the person at a machine sees online, busy or away'
                """,
                "GRANT SELECT, INSERT, UPDATE, DELETE ON invitation_queue, queue_watchers TO ora_server",
            ]
        ),
        Migration(
            version: 16,
            name: "operators in the audit log found by their DN however it is spelt",
            statements: [
                // One spelling for every RFC 4514 spelling of a DN: escapes (`\,` or `\2C`) decoded and the
                // characters that need it escaped again as `\,`, spaces around separators dropped and runs of spaces
                // made one, `;` read as `,`, control characters as `\XX`, all in lower case. A DN without escapes, quotes or controls (nearly
                // every DN a directory returns) takes the short way.
                #"""
                CREATE FUNCTION ora_dn_key(dn text) RETURNS text
                LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
                DECLARE
                    result bytea := '';
                    spaces bytea := '';
                    position integer := 1;
                    total integer := length(dn);
                    character text;
                    value bytea;
                    code integer;
                    starting boolean := true;
                BEGIN
                    IF dn !~ '[\\"<>[:cntrl:]]' THEN
                        RETURN lower(replace(regexp_replace(regexp_replace(btrim(dn, ' '), ' *([,;=+]) *', '\1', 'g'),
                            '  +', ' ', 'g'), ';', ','));
                    END IF;
                    WHILE position <= total LOOP
                        character := substr(dn, position, 1);
                        IF character = '\' AND position < total THEN
                            IF substr(dn, position + 1, 2) ~ '^[0-9A-Fa-f]{2}$' THEN
                                value := decode(substr(dn, position + 1, 2), 'hex');
                                position := position + 3;
                            ELSE
                                value := convert_to(substr(dn, position + 1, 1), 'UTF8');
                                position := position + 2;
                            END IF;
                        ELSIF character IN (',', ';', '=', '+') THEN
                            result := result || convert_to(CASE WHEN character = ';' THEN ',' ELSE character END, 'UTF8');
                            spaces := '';
                            starting := true;
                            position := position + 1;
                            CONTINUE;
                        ELSIF character = ' ' THEN
                            IF NOT starting THEN spaces := '\x20'::bytea; END IF;
                            position := position + 1;
                            CONTINUE;
                        ELSE
                            value := convert_to(character, 'UTF8');
                            position := position + 1;
                        END IF;
                        code := get_byte(value, 0);
                        IF length(value) = 1 AND code IN (34, 43, 44, 59, 60, 61, 62, 92) THEN
                            value := '\x5c'::bytea || value;
                        ELSIF length(value) = 1 AND (code < 32 OR code = 127) THEN
                            value := convert_to('\' || upper(encode(value, 'hex')), 'UTF8');
                        END IF;
                        result := result || spaces || value;
                        spaces := '';
                        starting := false;
                    END LOOP;
                    RETURN lower(convert_from(result, 'UTF8'));
                END
                $$
                """#,
                """
                COMMENT ON FUNCTION ora_dn_key(text) IS
                    'one spelling for every RFC 4514 spelling of a DN, to find an operator in the audit log however their DN is written'
                """,
                """
                CREATE INDEX audit_events_operator_key ON audit_events (ora_dn_key(actor_id), occurred_at)
                    WHERE actor_kind = 'operator'
                """,
            ]
        ),
        Migration(
            version: 17,
            name: "the last report of each machine's doctor",
            statements: [
                "ALTER TABLE machines ADD COLUMN doctor_report jsonb, ADD COLUMN doctor_reported_at timestamptz",
                """
                COMMENT ON COLUMN machines.doctor_report IS
                    'the checks of the last ora-agent doctor run on the machine, as its device key signed them'
                """,
            ]
        ),
        Migration(
            version: 18,
            name: "every change of an operator's session announced to the replicas",
            statements: [
                // On ReplicaStore.sessionsChannel, as ReplicaStore.operatorSessionPrefix and the id. Only the server
                // moving used_at on (noting a session in use) is not announced: it changes nothing a replica keeps.
                """
                CREATE FUNCTION ora_operator_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'UPDATE' AND NEW.used_at >= OLD.used_at
                        AND to_jsonb(NEW) - 'used_at' = to_jsonb(OLD) - 'used_at' THEN
                        RETURN NULL;
                    END IF;
                    PERFORM pg_notify('ora_sessions', 'login:' || OLD.id::text);
                    RETURN NULL;
                END
                $$
                """,
                """
                CREATE TRIGGER operator_sessions_changed AFTER UPDATE OR DELETE ON operator_sessions
                    FOR EACH ROW EXECUTE FUNCTION ora_operator_session_changed()
                """,
                """
                COMMENT ON TRIGGER operator_sessions_changed ON operator_sessions IS
                    'announces each revoked, expired, checked or removed session, so that no replica serves it from memory'
                """,
            ]
        ),
        Migration(
            version: 19,
            name: "where the other replicas reach each replica's screen relay",
            statements: [
                // Nullable, and written by each replica's heartbeat: a replica of the previous release leaves them
                // empty, and a screen held there is then answered as before (session_elsewhere).
                "ALTER TABLE server_instances ADD COLUMN relay_address text, ADD COLUMN relay_key_sha256 text",
                """
                COMMENT ON COLUMN server_instances.relay_address IS
                    'host:port at which the other replicas reach this replica''s relay port, to carry a viewer there'
                """,
                """
                COMMENT ON COLUMN server_instances.relay_key_sha256 IS
                    'SHA-256 of the public key of the relay port''s TLS certificate (hex); NULL when it is plain TCP'
                """,
            ]
        ),
    ]
}
