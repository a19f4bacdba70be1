# syntax=docker/dockerfile:1
# Latchkey in a container: production dependencies (native addons included) and the server bundle
# are built in one stage; a slim one runs them as an unprivileged user, with the embedded store
# (and the dev mail outbox) on a volume. test/deploy.test.ts runs this file's build stage on a
# clean clone and starts what it built, so keep each step a plain command.

# Node 24, the LTS line (20 reached its end of life in April 2026), pinned by digest so a rebuild
# runs the same image; move tag and digest together (docker buildx imagetools inspect node:24-bookworm-slim).
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary fits the platform.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# postinstall applies these to the installed packages (patch-package): see patches/.
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
# Builds the server bundle (.cache/) now: at run time the app directory is read-only to its user.
RUN node bin/latchkey.js --version

FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    LATCHKEY_DATA_DIR=/data \
    LATCHKEY_LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Readiness (GET /ready: 503 while the store does not answer), asked by bash, which the base image
# has anyway, over its /dev/tcp: no node process (tens of MB) started every interval, no curl added.
# Orchestrators with their own probes (Kubernetes) use /healthz and /readyz instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && case $status in 'HTTP/1.'?' 200 '*) exit 0;; *) exit 1;; esac"]
# The same command as `npm start`, without npm: node is PID 1 and gets SIGTERM itself.
# Any other command of the CLI runs the same way: `docker run … latchkey users list`.
ENTRYPOINT ["node", "-r", "./bin/threadpool.cjs", "--max-semi-space-size=2", "bin/latchkey.js"]
CMD ["serve"]
