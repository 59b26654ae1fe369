# One symlink per busybox applet, where no real program was copied
# (kmod's modprobe and util-linux's lsblk win over busybox's).
# Runs on the build host: busybox-static runs anywhere of its own architecture.
# For another one (FOREIGN=1: an arm64 image built here) the list comes from
# the build host's busybox, built by Debian from the same source; an applet
# the image's busybox lacks would answer "applet not found", never run
# something else.
cd "$ROOT"
if [ "${FOREIGN:-0}" = 1 ]; then
  list=$(busybox --list-full) || { echo "FOREIGN=1: the build host has no busybox to list applets (apt-get install busybox)" >&2; exit 1; }
  echo "applets of $ARCH busybox listed by the build host's busybox ($(busybox | head -1))"
else
  list=$("$ROOT/bin/busybox" --list-full)
fi
for p in $list; do
  case "$p" in linuxrc) continue ;; esac
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then
    mkdir -p "$(dirname "$p")"
    ln -s /bin/busybox "$p"
  fi
done
test -L "$ROOT/sbin/init" && test -L "$ROOT/bin/sh" && test -L "$ROOT/sbin/udhcpc" && test -L "$ROOT/usr/bin/tftp"
