#!/bin/sh
# Builds the tiny busybox test image for LXD as one unified tarball
# (metadata.yaml + templates/ + rootfs/): /bin/busybox from busybox-static
# with every applet linked, a getty-less busybox init that brings up lo and
# handles poweroff, passwd/group, /etc/hosts. It holds what ghsim's runner
# package needs (sh, wget, sha256sum, tar, gzip, base64, sed, timeout, ...)
# and no runner: instances download it. For the `exec` bootstrap path of the
# LXD tests; never for anything but tests (root has no password, no init
# scripts beyond the minimum).
#
#   build-busybox-image.sh OUT.tar.gz
#
# Inputs (they make the cache key in tests/lib/lxd.sh): this script and
# /bin/busybox. Output is reproducible for the same inputs (fixed mtimes,
# sorted entries, numeric owners). PAD_MB=N adds /pad.bin, N MiB of random
# bytes (not reproducible), for an image whose create takes seconds.
set -eu
out=$1
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "build-busybox-image: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
# a fixed date (2024-01-01) so that the same inputs give the same bytes
epoch=1704067200

work=$(mktemp -d "${TMPDIR:-/tmp}/runnerd-bbimg.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc/init.d" "$r/proc" "$r/sys" "$r/dev" \
	"$r/run" "$r/root" "$r/home" "$r/var/log" "$r/var/run" "$r/opt" "$r/mnt"
mkdir "$r/tmp"
chmod 1777 "$r/tmp"
cp "$bb" "$r/bin/busybox"
chmod 755 "$r/bin/busybox"
# every applet as a relative symlink at its usual place
"$bb" --list-full | while read -r p; do
	case $p in
	bin/busybox) continue ;;
	bin/*) t=busybox ;;
	sbin/*) t=../bin/busybox ;;
	usr/bin/* | usr/sbin/*) t=../../bin/busybox ;;
	*) continue ;;
	esac
	[ -e "$r/$p" ] || [ -L "$r/$p" ] || ln -s "$t" "$r/$p"
done

cat >"$r/etc/inittab" <<'INITTAB'
# busybox init, no getty: sysinit brings up lo; poweroff/halt (SIGUSR2/SIGUSR1
# to init) run the shutdown entries, then init ends the container.
::sysinit:/etc/init.d/rcS
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
INITTAB
cat >"$r/etc/init.d/rcS" <<'RCS'
#!/bin/sh
# The proxy device that reaches the test servers listens on 127.0.0.1 here.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set eth0 up 2>/dev/null
exit 0
RCS
chmod 755 "$r/etc/init.d/rcS"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
printf 'root::19000:0:99999:7:::\n' >"$r/etc/shadow"
chmod 600 "$r/etc/shadow"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
printf 'busybox\n' >"$r/etc/hostname"
printf '/bin/sh\n' >"$r/etc/shells"
: >"$r/etc/resolv.conf"

if [ -n "${PAD_MB:-}" ]; then
	head -c "${PAD_MB}M" /dev/urandom >"$r/pad.bin"
fi

mkdir -p "$work/templates"
printf '{{ instance.name }}\n' >"$work/templates/hostname.tpl"
printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n::1 localhost\n' >"$work/templates/hosts.tpl"
cat >"$work/metadata.yaml" <<META
architecture: x86_64
creation_date: $epoch
properties:
  description: runnerd test image (busybox)
  os: busybox
  release: "1"
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
META

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
	-C "$work" -cf - metadata.yaml templates rootfs | gzip -n ${PAD_MB:+-1} >"$out.tmp"
mv -f "$out.tmp" "$out"
