#!/usr/bin/env bash
# Starts the local RabbitMQ and PostgreSQL the integration and e2e tests need, if they are
# installed but down, and waits until both accept connections. A service that cannot be
# started fails the run: tests never skip a missing broker or database.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 4; i++)); do port_open "$2" && return 0; sleep 0.25; done
  echo "ensure-services: $1 is not listening on 127.0.0.1:$2 after $3 s" >&2
  return 1
}

if ! port_open 5432; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
wait_port PostgreSQL 5432 60

if ! port_open 5672; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached
fi
wait_port RabbitMQ 5672 120
# The port opens before the broker accepts logins; wait for the app itself.
timeout 120 rabbitmqctl await_startup >/dev/null
echo "ensure-services: PostgreSQL and RabbitMQ are up"
