#!/usr/bin/env bash
# tools/systemd/install.sh: installs forkstore-gc.{service,timer}, the page
# server template forkstore-pages@.service (not enabled: started per VM) and
# /etc/default/forkstore (kept if present), then enables the timer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
install -m 644 "$here/forkstore-gc.service" "$here/forkstore-gc.timer" "$here/forkstore-pages@.service" /etc/systemd/system/
[ -e /etc/default/forkstore ] || install -m 644 "$here/forkstore.default" /etc/default/forkstore
systemctl daemon-reload
systemctl enable --now forkstore-gc.timer
echo "forkstore-gc.timer enabled; edit /etc/default/forkstore to set retention rules"
