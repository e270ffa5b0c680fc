#!/bin/sh
# Builds the Debian 12 (bookworm) test image for LXD with cloud-init, the
# way official cloud images boot: LXD metadata templates write the NoCloud
# seed (/var/lib/cloud/seed/nocloud-net/{meta-data,user-data,vendor-data,
# network-config}) from the instance's cloud-init.* (or user.*) config keys,
# and cloud-init runs the user data at first boot; systemd-networkd does
# DHCP on eth0. It holds what ghsim's runner package needs (sh, sed, curl,
# base64, tar, gzip, sha256sum, timeout), what the startup script's
# environment features use (jq merges Docker's JSON configs, nft installs
# aproxy's redirect), a pre-existing /etc/docker/daemon.json (the merge is
# proven against it; there is no Docker) and no runner: instances download
# it. For the `cloud-init` bootstrap path of the LXD tests only: root is
# locked, nothing listens, no default user.
#
#   build-debian-image.sh OUT_DIR
#
# writes OUT_DIR/meta.tar.gz and OUT_DIR/rootfs.squashfs (LXD's split image
# format: `lxc image import meta.tar.gz rootfs.squashfs`). Takes minutes
# (debootstrap from the machine's Debian mirror, the only place reachable);
# tests/lib/lxd.sh caches the result by a hash of this script and its
# inputs. DEBIAN_MIRROR overrides the mirror read from apt's sources;
# DEBOOTSTRAP_CACHE keeps downloaded .debs between builds.
set -eu
out=$1
suite=bookworm
epoch=1704067200 # fixed dates: the same inputs give the same metadata

# The packages on top of minbase (python3-cffi-backend by name: debootstrap
# does not resolve the virtual packages it provides to python3-cryptography).
pkgs=python3-cffi-backend,systemd,systemd-sysv,udev,dbus,cloud-init,curl,ca-certificates,iproute2,netbase,procps,jq,nftables

# The Debian mirror apt uses here: the first source serving $suite (deb822
# .sources or one-line .list), else deb.debian.org.
debian_mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$suite" '
			BEGIN { RS = ""; FS = "\n" }
			{
				uris = ""; ok = 0; deb = 0; en = 1
				for (i = 1; i <= NF; i++) {
					line = $i
					if (line ~ /^[ \t]*#/) continue
					if (line ~ /^Types:/ && line ~ /[ \t]deb([ \t]|$)/) deb = 1
					if (line ~ /^Enabled:[ \t]*no/) en = 0
					if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); split(line, u, /[ \t]+/); uris = u[1] }
					if (line ~ /^Suites:/) { n = split(line, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
				}
				if (deb && en && ok && uris != "") { print uris; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }'
	done
	echo http://deb.debian.org/debian
}
mirror=${DEBIAN_MIRROR:-$(debian_mirror | head -n 1)}

# apt's proxy, if any, for debootstrap too
if [ -z "${http_proxy:-}" ]; then
	p=$(apt-config shell P Acquire::http::Proxy 2>/dev/null | sed -n "s/^P='\(.*\)'$/\1/p")
	[ -n "$p" ] && export http_proxy="$p"
fi

command -v debootstrap >/dev/null || { echo "build-debian-image: debootstrap missing" >&2; exit 1; }
command -v mksquashfs >/dev/null || { echo "build-debian-image: mksquashfs missing (squashfs-tools)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/runnerd-debimg.XXXXXX")
cleanup() {
	for m in proc sys dev/pts dev; do
		mountpoint -q "$work/rootfs/$m" 2>/dev/null && umount -l "$work/rootfs/$m"
	done
	rm -rf "$work"
}
trap cleanup EXIT
r=$work/rootfs

echo "build-debian-image: debootstrap $suite from $mirror" >&2
cache_opt=
if [ -n "${DEBOOTSTRAP_CACHE:-}" ]; then
	mkdir -p "$DEBOOTSTRAP_CACHE"
	cache_opt="--cache-dir=$(cd "$DEBOOTSTRAP_CACHE" && pwd)"
fi
# shellcheck disable=SC2086
if ! debootstrap --variant=minbase --include="$pkgs" $cache_opt "$suite" "$r" "$mirror" \
	>"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	[ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
	echo "build-debian-image: debootstrap failed" >&2
	exit 1
fi

# --- configuration -----------------------------------------------------
# A Docker config an operator's image would carry: runnerd must merge into
# it, never replace it (no Docker itself: the file is proven, not used).
mkdir -p "$r/etc/docker"
printf '{"log-level": "warn", "registry-mirrors": ["https://old-mirror.invalid"]}\n' >"$r/etc/docker/daemon.json"
# cloud-init: only the NoCloud seed the templates write; no default user;
# the modules a runner host needs (the user data is a script or runcmd).
cat >"$r/etc/cloud/cloud.cfg.d/90-runnerd-test.cfg" <<'CFG'
datasource_list: [NoCloud, None]
users: []
disable_root: false
ssh_pwauth: false
preserve_hostname: false
manage_etc_hosts: false
cloud_init_modules: [seed_random, bootcmd, write_files, set_hostname, update_hostname, users_groups]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts_vendor, scripts_per_once, scripts_per_boot, scripts_per_instance,
  scripts_user, final_message, power_state_change]
CFG
# networkd: DHCP on eth0 when cloud-init's network config says nothing else
cat >"$r/etc/systemd/network/90-eth0.network" <<'NET'
[Match]
Name=eth0

[Network]
DHCP=ipv4
NET
chroot "$r" systemctl enable systemd-networkd.service >/dev/null 2>&1
# do not hold boot for long on a network that is slow to answer
mkdir -p "$r/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$r/etc/systemd/system/systemd-networkd-wait-online.service.d/10-runnerd-test.conf" <<'WAIT'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20
WAIT
# nothing a container cannot use (keep systemd-udev-trigger: networkd leaves
# a link "pending" until udev has seen it)
for u in getty-static.service serial-getty@.service console-getty.service systemd-binfmt.service \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
	ln -sf /dev/null "$r/etc/systemd/system/$u"
done
# every instance gets its own machine-id (DHCP client ids derive from it)
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
printf 'debian\n' >"$r/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
: >"$r/etc/fstab"
# root locked (no password login)
chroot "$r" passwd -l root >/dev/null 2>&1 || true
# smaller: package caches, lists, docs
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc/* \
	"$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/log/*.log "$r"/var/lib/cloud/* \
	"$r"/debootstrap "$r"/tmp/* "$r"/var/tmp/*
find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

# --- LXD metadata and templates ----------------------------------------
m=$work/meta
mkdir -p "$m/templates"
cat >"$m/metadata.yaml" <<META
architecture: x86_64
creation_date: $epoch
properties:
  description: runnerd test image (Debian $suite, cloud-init)
  os: debian
  release: $suite
  variant: cloud
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
  /var/lib/cloud/seed/nocloud-net/meta-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-meta.tpl
  /var/lib/cloud/seed/nocloud-net/user-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-user.tpl
    properties:
      default: |
        #cloud-config
        {}
  /var/lib/cloud/seed/nocloud-net/vendor-data:
    when: [create, copy]
    create_only: false
    template: cloud-init-vendor.tpl
    properties:
      default: |
        #cloud-config
        {}
  /var/lib/cloud/seed/nocloud-net/network-config:
    when: [create, copy]
    create_only: false
    template: cloud-init-network.tpl
META
printf '{{ instance.name }}\n' >"$m/templates/hostname.tpl"
printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n::1 localhost ip6-localhost ip6-loopback\n' \
	>"$m/templates/hosts.tpl"
cat >"$m/templates/cloud-init-meta.tpl" <<'TPL'
instance-id: {{ instance.name }}
local-hostname: {{ instance.name }}
{{ config_get("user.meta-data", "") }}
TPL
# cloud-init.* keys first (LXD >= 5.0), then the older user.* ones
cat >"$m/templates/cloud-init-user.tpl" <<'TPL'
{% if config_get("cloud-init.user-data", "") != "" %}{{ config_get("cloud-init.user-data", "") }}{% else %}{{ config_get("user.user-data", properties.default) }}{% endif %}
TPL
cat >"$m/templates/cloud-init-vendor.tpl" <<'TPL'
{% if config_get("cloud-init.vendor-data", "") != "" %}{{ config_get("cloud-init.vendor-data", "") }}{% else %}{{ config_get("user.vendor-data", properties.default) }}{% endif %}
TPL
cat >"$m/templates/cloud-init-network.tpl" <<'TPL'
{% if config_get("cloud-init.network-config", "") != "" %}{{ config_get("cloud-init.network-config", "") }}{% elif config_get("user.network-config", "") != "" %}{{ config_get("user.network-config", "") }}{% else %}version: 1
config:
  - type: physical
    name: eth0
    subnets:
      - type: dhcp
        control: auto
{% endif %}
TPL

mkdir -p "$out"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$m" -cf - metadata.yaml templates |
	gzip -n >"$out/meta.tar.gz.tmp"
rm -f "$out/rootfs.squashfs.tmp"
mksquashfs "$r" "$out/rootfs.squashfs.tmp" -noappend -comp gzip -no-xattrs -no-progress -quiet -all-time "$epoch" \
	-processors 2 >/dev/null
mv -f "$out/meta.tar.gz.tmp" "$out/meta.tar.gz"
mv -f "$out/rootfs.squashfs.tmp" "$out/rootfs.squashfs"
echo "build-debian-image: $(du -sh "$out/rootfs.squashfs" | cut -f1) rootfs" >&2
