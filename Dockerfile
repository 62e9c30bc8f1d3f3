# tcsync's container image: `docker build -t tcsync .`, then
#   docker run -p 8080:8080 -v tcsync:/data tcsync
# Clients are stored in the volume /data; the server listens on 0.0.0.0:8080 as the user node.
# Every serve variable (CLIENT_ID, CREATE_CLIENTS, SNAPSHOT_VERSIONS, SNAPSHOT_DAYS, ADMIN_TOKEN,
# CONNECTION, ...) configures it; `docker run ... tcsync verify` runs another command.
# See docs/container.md.

# The build stage: compiles TypeScript with the dev dependencies, then keeps only what runs.
FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles from source wherever its prebuilt binary cannot be downloaded, and the
# official image has no compilers or Python; they stay in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json schema.graphql ./
COPY src ./src
# The compiled JavaScript only (no declarations or source maps: the sources are not shipped),
# then production dependencies only, with better-sqlite3 reduced to its compiled module
# and without the empty scope directories npm prune leaves behind.
RUN npm run build \
 && find dist \( -name '*.d.ts' -o -name '*.map' \) -delete \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && find build -mindepth 1 -not -path build/Release -not -path build/Release/better_sqlite3.node -prune -exec rm -rf {} + \
 && rm -rf deps src \
 && find /build/node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete

# The runtime stage: Node, the compiled server and its production dependencies; no compilers.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    LISTEN=0.0.0.0:8080
# Owned by root: the server (user node) cannot change its own code.
COPY --from=build /build/package.json /build/schema.graphql /app/
COPY --from=build /build/node_modules /app/node_modules
COPY --from=build /build/dist /app/dist
COPY contrib/container/healthcheck.cjs /app/contrib/container/
RUN chmod 0755 /app/dist/bin.cjs \
 && ln -s /app/dist/bin.cjs /usr/local/bin/tcsync \
 && mkdir /data /backup \
 && chown node:node /data /backup
USER node
# /backup is node's too: a volume mounted there (`-v tcsync-backups:/backup`) takes the owner, so
# that `tcsync backup /backup/NAME` may write to it.
# The data directory is /data without setting DATA_DIR: tcsync's default ./data, seen from /.
# DATA_DIR set in the image would clash with CONNECTION (the two exclude each other), so that a
# PostgreSQL-backed container would have to unset it.
WORKDIR /
VOLUME /data
EXPOSE 8080
# Healthy while tcsync answers /healthz with 200: it could commit to /data now.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node /app/contrib/container/healthcheck.cjs
# tcsync runs as PID 1 (no shell in between), so SIGTERM reaches it: it finishes requests in
# flight and exits 0.
ENTRYPOINT ["tcsync"]
CMD ["serve"]
