# The backfill worker and command line. The full node image has the compilers better-sqlite3 builds with.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ENV BACKFILL_HOME=/data
ENTRYPOINT ["node", "bin/backfill.js"]
CMD ["worker"]
