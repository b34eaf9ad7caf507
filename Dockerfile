# balloon-sim image for cluster campaigns (README "Campaigns on a cluster").
#   docker build -t balloon-sim:latest .
#   docker run --rm balloon-sim:latest --cpus 4 --workload churn --memory 256M --duration 10s
#   docker run --rm -v "$PWD/out:/out" balloon-sim:latest stress --swarm --seed 2024 --runs 200 --shard 0/4 --json
# Stage 1 installs exactly the lockfile (npm ci also compiles, via `prepare`)
# and drops the dev dependencies; stage 2 holds only what `sim` runs.

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# `sim` on the PATH (the package's bin), run as the image's unprivileged
# `node` user (uid 1000); results and schedule files go to the working
# directory /out, a volume in the Job manifest.
RUN chmod 0755 /app/dist/src/cli/main.js \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/sim \
 && mkdir -p /out && chown node:node /out
USER node
WORKDIR /out
# Node runs as PID 1 here: sim installs its own SIGINT/SIGTERM handlers
# (interrupt, summary, exit 130/143), so a pod's SIGTERM is handled, not ignored.
ENTRYPOINT ["sim"]
CMD ["--help"]
