#!/usr/bin/env bash
# Install Prometheus, Alertmanager and the Pushgateway from the OS packages when they are missing.
# Debian/Ubuntu only; elsewhere (or without root/sudo) it says what to run and exits 0,
# so that `make run` can still start what is there.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have prometheus && have promtool && { have alertmanager || have prometheus-alertmanager; } && have amtool \
    && { have pushgateway || have prometheus-pushgateway; } && have chromium; then
  exit 0
fi
PKGS="prometheus prometheus-alertmanager prometheus-pushgateway chromium"  # chromium: the pages' browser tests
if ! have apt-get; then
  echo "mlscope: Prometheus/Alertmanager missing; install them from your OS packages or the upstream releases" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif have sudo && sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "mlscope: Prometheus/Alertmanager missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends $PKGS" >&2
  exit 0
fi
echo "mlscope: installing $PKGS from the OS packages..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
