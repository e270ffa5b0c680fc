#!/bin/sh
# Installs what building and testing runnerd needs on Debian 12, when missing:
# Debian packages through apt, and the pinned npm test assets into .deps/npm.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config clang libfyaml-dev libcurl4-openssl-dev
libjansson-dev libarchive-dev libsqlite3-dev sqlite3 libssl-dev libcmocka-dev curl
python3 nodejs npm openssl busybox-static bubblewrap util-linux procps iproute2 ca-certificates
nftables lxd lxd-client dnsmasq-base debootstrap squashfs-tools prometheus librabbitmq-dev
rabbitmq-server nginx wrk tinyproxy"

missing=""
for p in $PKGS; do
	# NodeSource's nodejs package ships npm itself and conflicts with Debian's npm.
	[ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing Debian packages:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install:$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	# nftables before lxd: LXD picks its firewall driver when it starts
	case " $missing " in
	*" nftables "*)
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nftables >/dev/null
		;;
	esac
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm test assets, versions pinned in tests/contract/package.json (lock file committed).
if [ -f tests/contract/package.json ]; then
	stamp=.deps/npm/.stamp
	want=$(cat tests/contract/package.json tests/contract/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
	if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
		echo "deps: installing npm test assets into .deps/npm"
		mkdir -p .deps/npm
		cp tests/contract/package.json .deps/npm/
		[ -f tests/contract/package-lock.json ] && cp tests/contract/package-lock.json .deps/npm/
		(cd .deps/npm && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
			npm install --no-audit --no-fund --loglevel=error >/dev/null)
		echo "$want" >"$stamp"
	fi
fi
