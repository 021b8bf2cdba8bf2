#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL on 127.0.0.1:5432 and
# Redis on 127.0.0.1:6379. Start them when they are installed but stopped; fail loudly otherwise.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
    echo "services: PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
        done
    fi
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
    pg_up || { echo "services: FAILED to start PostgreSQL on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! redis_up; then
    echo "services: Redis is not answering on 127.0.0.1:6379; starting it" >&2
    if command -v redis-server >/dev/null 2>&1; then
        mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/interlock-redis.log" >&2 || true
    fi
    for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
    redis_up || { echo "services: FAILED to start Redis on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "services: PostgreSQL and Redis are up"
