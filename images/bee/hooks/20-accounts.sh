# Accounts and the few files busybox and dropbear read.
# root logs in over SSH with the keys bootd installed (/root/.ssh); no
# password: "*" is "no password", not "locked" ("!"), which dropbear would
# refuse even for a key.
cd "$ROOT"
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' > etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group
printf 'root:*:19000:0:99999:7:::\n' > etc/shadow
chmod 600 etc/shadow
printf '/bin/sh\n/bin/ash\n' > etc/shells
echo bee > etc/hostname
printf '127.0.0.1\tlocalhost\n' > etc/hosts
mkdir -p etc/dropbear var/log var/run root/.ssh
chmod 700 root root/.ssh
ln -sfn /proc/mounts etc/mtab
