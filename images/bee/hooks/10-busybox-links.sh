# One symlink per busybox applet, where no real program was copied
# (kmod's modprobe and util-linux's lsblk win over busybox's).
# Runs on the build host: busybox-static runs anywhere.
cd "$ROOT"
for p in $("$ROOT/bin/busybox" --list-full); do
  case "$p" in linuxrc) continue ;; esac
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then
    mkdir -p "$(dirname "$p")"
    ln -s /bin/busybox "$p"
  fi
done
test -L "$ROOT/sbin/init" && test -L "$ROOT/bin/sh" && test -L "$ROOT/sbin/udhcpc" && test -L "$ROOT/usr/bin/tftp"
