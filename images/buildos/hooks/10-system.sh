# System setup inside the debootstrap root (runs on the build host, enters
# the root with chroot). Seed 001/002: user build, home /build, /build/tftp
# and /build/machines owned by it; SSH for the smoke test with bootd's key.
c() { chroot "$ROOT" "$@"; }

echo buildos > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"

c useradd --create-home --home-dir /build --shell /bin/bash --user-group --uid 1000 build
install -d -m 0755 "$ROOT/build/tftp" "$ROOT/build/machines"
c chown build:build /build/tftp /build/machines

if [ -n "$AUTHORIZED_KEYS" ]; then
  install -d -m 0700 "$ROOT/build/.ssh"
  install -m 0600 "$AUTHORIZED_KEYS" "$ROOT/build/.ssh/authorized_keys"
  c chown -R build:build /build/.ssh
fi

# Host keys are made at boot (/init runs ssh-keygen -A): no two hosts share one.
rm -f "$ROOT"/etc/ssh/ssh_host_*
# An empty machine-id: systemd makes a fresh one at every boot.
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"

c systemctl enable ssh.service buildos-monitor.service bootd-up.service
# Nothing to fsck or remount: the root is the initramfs.
c systemctl mask systemd-remount-fs.service systemd-firstboot.service

c apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/*
test -x "$ROOT/init" && test -x "$ROOT/usr/sbin/buildos-monitor"
