# The backfill worker and command line (the npm package durable-backfill, whose command is
# backfill), compiled, in three stages:
#   deps     the production dependencies (better-sqlite3 compiles here: the full image has the compilers)
#   build    every dependency, then `npm run build`: dist/ holds the compiled code, the workflow
#            bundles and the compiled example
#   runtime  a slim image with the production dependencies and the package (package.json, bin,
#            dist, templates: what npm ships), run as the unprivileged `node` user
# The example's transforms are compiled like the rest, so nothing in the image needs tsx. tsx, an
# optional dependency, stays installed all the same: it loads transforms you mount in TypeScript.
# Every stage is Debian bookworm with the same Node, so the native addon built in `deps` runs in `runtime`.

FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production BACKFILL_HOME=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/templates ./templates
# The code stays root's, read-only to the worker; its state (a SQLite warehouse, a dev server's files) goes to /data.
RUN mkdir /data && chown node:node /data
USER node
ENTRYPOINT ["node", "dist/client/main.js"]
CMD ["worker"]
